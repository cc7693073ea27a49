"""The frontend's copy of the pod and container lists (frontend/list_cache.c):
ListPodSandbox and ListContainers are answered from it while runtimed has
changed nothing, and it never shows less than crisp already told a client.
Each step below lists first, so that the copy is warm when the next change
comes, then checks that the list right after the change shows it: after the
reply of the call that made it, after a ContainerStatus that reported an
exit nobody asked for, and after runtimed was killed and came back."""

import json
import os
import signal
import time

import harness
from harness import container_config, pod_config


def states(k):
    return {c.id: c.state for c in k.list_containers()}


def pod_states(k):
    return {p.id: p.state for p in k.list_pods()}


def test_lists_follow_every_call(pod_env, cri):
    env, k = pod_env, pod_env.cri
    assert k.list_pods() == [] and k.list_containers() == []
    pod = k.run_pod(pod_config("copy-calls", labels={"app": "copy"}))
    assert pod_states(k) == {pod: cri.SANDBOX_READY}
    assert k.list_containers() == []
    cid = k.create(pod, container_config("main", env.images.busybox, labels={"k": "v"}))
    assert states(k) == {cid: cri.CONTAINER_CREATED}
    k.start(cid)
    assert states(k) == {cid: cri.CONTAINER_RUNNING}
    # filters are applied to the copy: state, labels, ids and their prefixes
    assert [c.id for c in k.list_containers(state=cri.CONTAINER_RUNNING)] == [cid]
    assert k.list_containers(state=cri.CONTAINER_EXITED) == []
    assert [c.id for c in k.list_containers(labels={"k": "v"})] == [cid]
    assert k.list_containers(labels={"k": "w"}) == []
    assert [c.id for c in k.list_containers(id=cid[:12])] == [cid]
    assert [c.id for c in k.list_containers(pod_id=pod)] == [cid]
    assert [p.id for p in k.list_pods(labels={"app": "copy"})] == [pod]
    assert k.list_pods(state=cri.SANDBOX_NOTREADY) == []
    c = k.list_containers()[0]
    assert c.metadata.name == "main" and dict(c.labels) == {"k": "v"}
    assert c.image.image == env.images.busybox and c.image_ref.startswith("sha256:")
    k.stop(cid, timeout=1)
    assert states(k) == {cid: cri.CONTAINER_EXITED}
    k.remove(cid)
    assert k.list_containers() == []
    k.stop_pod(pod)
    assert pod_states(k) == {pod: cri.SANDBOX_NOTREADY}
    k.remove_pod(pod)
    assert k.list_pods() == []


def test_exit_seen_elsewhere_is_listed(pod_env, cri):
    """A container that exits on its own: once ContainerStatus says EXITED,
    the very next list says so too, though nothing was asked of crisp that
    changed anything."""
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("copy-exit"))
    cid = k.create(pod, container_config("quits", env.images.busybox,
                                         command=["sh", "-c", "sleep 1; exit 3"]))
    k.start(cid)
    assert states(k) == {cid: cri.CONTAINER_RUNNING}
    while True:
        st = k.status(cid)
        if st.state == cri.CONTAINER_EXITED:
            break
        # keep the copy warm while waiting (the exit may come in between)
        assert states(k)[cid] in (cri.CONTAINER_RUNNING, cri.CONTAINER_EXITED)
        time.sleep(0.02)
    assert st.exit_code == 3
    assert states(k) == {cid: cri.CONTAINER_EXITED}


def test_lists_answered_without_runtimed(pod_env, cri):
    """With runtimed stopped, a list whose copy is warm is still answered
    (nothing can change meanwhile); once runtimed goes on, changes show."""
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("copy-frozen"))
    cid = k.create(pod, container_config("main", env.images.busybox))
    k.start(cid)
    assert states(k) == {cid: cri.CONTAINER_RUNNING}
    assert pod_states(k) == {pod: cri.SANDBOX_READY}
    runtimed = env.c.children()["crisp-runtimed"]
    os.kill(runtimed, signal.SIGSTOP)
    try:
        t = time.monotonic()
        for _ in range(20):
            assert states(k) == {cid: cri.CONTAINER_RUNNING}
            assert pod_states(k) == {pod: cri.SANDBOX_READY}
        assert time.monotonic() - t < 5
    finally:
        os.kill(runtimed, signal.SIGCONT)
    k.stop(cid, timeout=0)
    assert states(k) == {cid: cri.CONTAINER_EXITED}


def test_copy_dropped_with_runtimed(pod_env, cri):
    """runtimed killed while the copy is warm, and the container's process
    killed while runtimed is down: the list after runtimed's return comes
    from the new runtimed, which found the exit."""
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("copy-restart"))
    cid = k.create(pod, container_config("main", env.images.busybox))
    k.start(cid)
    r = env.c.call("ContainerStatus", cri.ContainerStatusRequest(container_id=cid, verbose=True))
    init = json.loads(r.info["info"])["pid"]
    assert states(k) == {cid: cri.CONTAINER_RUNNING}
    old = env.c.children()["crisp-runtimed"]
    os.kill(old, signal.SIGKILL)
    os.kill(init, signal.SIGKILL)
    env.c.wait_new_pid("crisp-runtimed", old, 15)
    harness.wait_for(lambda: states(k).get(cid) == cri.CONTAINER_EXITED, 15,
                     what="the container listed EXITED after runtimed came back")
    assert k.status(cid).state == cri.CONTAINER_EXITED
