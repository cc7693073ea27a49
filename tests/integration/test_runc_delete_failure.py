"""A `runc delete` that fails at removal (here: hangs and is killed after
runtime_timeout) fails RemoveContainer / RemovePodSandbox and keeps the
record, runc's state and the cgroups, so that the kubelet's retry deletes
them once runc works again; and at its start runtimed removes runc state
and crisp's cgroups that no record owns (crisp-runtimed(8))."""
import contextlib
import os
import secrets
import signal
import subprocess
import time

import grpc

import harness
from harness import container_config, pod_config, rpc_error
from test_runtime_timeout import _hanging_handler


def _runc_state(env, id_):
    return os.path.join(env.c.config["crispd"]["state_dir"], "runtimed", "runc", id_)


def _hanging_env(pod_env_factory, tmp_path):
    script, flag = _hanging_handler(tmp_path)
    env = pod_env_factory(config={"runtime": {"runtime_timeout": "2"},
                                  'runtime_handler "hangs"': {"path": str(script)}})
    return env, flag


def _remove_fails(env, method, req, id_):
    e = rpc_error(env.c.call, method, req, timeout=30)
    assert e.code() == grpc.StatusCode.INTERNAL, (e.code(), e.details())
    assert "runc delete %s: " % id_ in e.details(), e.details()
    assert "did not finish in 2 s and was killed" in e.details(), e.details()


def test_failed_container_delete_keeps_it_for_a_retry(pod_env_factory, tmp_path):
    env, flag = _hanging_env(pod_env_factory, tmp_path)
    k = env.cri
    pod = k.run_pod(pod_config("rdel-ctr"), handler="hangs")
    cid = k.run(pod, container_config("box", env.images.busybox))
    k.stop(cid, timeout=0)
    flag.write_text("delete")
    req = harness.cri.RemoveContainerRequest(container_id=cid)
    _remove_fails(env, "RemoveContainer", req, cid)
    assert [c.id for c in k.list_containers()] == [cid]
    assert os.path.isdir(_runc_state(env, cid))
    assert harness.cgroups_named([cid]), "the container's cgroups went before runc delete"
    # the retry once runc answers again removes all of it
    os.unlink(flag)
    k.remove(cid)
    assert k.list_containers() == []
    assert not os.path.exists(_runc_state(env, cid))
    assert harness.cgroups_named([cid]) == []
    k.stop_pod(pod)
    k.remove_pod(pod)
    assert harness.leftovers(env.c, [pod, cid]) == []


def test_failed_pause_and_container_delete_fail_the_pod_removal(pod_env_factory, tmp_path):
    env, flag = _hanging_env(pod_env_factory, tmp_path)
    k = env.cri
    pod = k.run_pod(pod_config("rdel-pod"), handler="hangs")
    cid = k.run(pod, container_config("box", env.images.busybox))
    k.stop_pod(pod)
    flag.write_text("delete")
    req = harness.cri.RemovePodSandboxRequest(pod_sandbox_id=pod)
    _remove_fails(env, "RemovePodSandbox", req, cid)
    assert [c.id for c in k.list_containers()] == [cid]
    assert [p.id for p in k.list_pods()] == [pod]
    # the container goes once its delete works; the pod's pause still fails
    os.unlink(flag)
    k.remove(cid)
    flag.write_text("delete")
    _remove_fails(env, "RemovePodSandbox", req, pod)
    assert [p.id for p in k.list_pods()] == [pod]
    assert os.path.isdir(_runc_state(env, pod))
    os.unlink(flag)
    k.remove_pod(pod)
    assert k.list_pods() == [] and k.list_containers() == []
    assert not os.path.exists(_runc_state(env, pod))
    assert harness.leftovers(env.c, [pod, cid]) == []


def _hierarchies():
    """The cgroup directories a path exists in: every v1 hierarchy (and
    unified/ on hybrid hosts), or the v2 root."""
    root = harness.CGROUP_ROOT
    if os.path.exists(os.path.join(root, "cgroup.controllers")):
        return [root]
    return [os.path.join(root, d) for d in sorted(os.listdir(root))
            if os.path.isdir(os.path.join(root, d)) and
            not os.path.islink(os.path.join(root, d))]


def _cgroup_in(rel):
    return [h for h in _hierarchies() if os.path.isdir(os.path.join(h, rel))]


def _backdate(paths, age=3600):
    """As if made an hour ago: the sweep leaves younger pod cgroups alone."""
    t = time.time() - age
    for p in paths:
        os.utime(p, (t, t))


def test_startup_sweep_leaves_a_young_pod_cgroup_to_a_later_sweep(crispd_factory):
    """Another crisp on the same host (test machines run several; they share
    "crisp") makes a pod cgroup a moment before its pause joins it: a
    runtimed starting then must not take it for a leftover. An unowned pod
    cgroup changed within the minimum age (here 3 s, by the test hook) is
    left at start and removed by the sweep that follows that long after."""
    c = crispd_factory(start=False)
    c.start(argv=["/usr/bin/env", "CRISP_TEST_SWEEP_MIN_AGE_S=3", harness.CRISPD, "--config",
                  c.conf])
    pod = secrets.token_hex(32)
    rel = "crisp/pod-%s" % pod
    hiers = _hierarchies()
    made = [os.path.join(h, rel) for h in hiers]
    try:
        for p in made:
            os.mkdir(p)
        mark = c.mark()
        old = c.children()["crisp-runtimed"]
        os.kill(old, signal.SIGKILL)
        c.wait_new_pid("crisp-runtimed", old, 15)
        c.wait_log(r"recovered \d+ sandboxes", since=mark, timeout=15)
        assert _cgroup_in(rel) == hiers, "a young pod cgroup was swept at start"
        c.wait_log(r"removing cgroup %s: no record owns it" % rel, since=mark, timeout=20)
        assert _cgroup_in(rel) == []
    finally:
        for p in made:
            with contextlib.suppress(OSError):
                os.rmdir(p)


def test_startup_sweeps_unowned_runc_state_and_cgroups(crispd):
    c = crispd
    orphan_state, orphan_pod, orphan_ctr, foreign_pod, busy_pod, busy_ctr = (
        secrets.token_hex(32) for _ in range(6))
    state = os.path.join(c.config["crispd"]["state_dir"], "runtimed", "runc", orphan_state)
    ours = "crisp/pod-%s/crisp-%s" % (orphan_pod, orphan_ctr)
    # a cgroup crisp did not name, in a pod cgroup no record owns: both stay
    foreign = "crisp/pod-%s/not-crisp" % foreign_pod
    # one that still holds a process is left alone (and so its pod's)
    busy = "crisp/pod-%s/crisp-%s" % (busy_pod, busy_ctr)
    hiers = _hierarchies()
    busy_hier = os.path.join(harness.CGROUP_ROOT, "pids")
    busy_hier = busy_hier if busy_hier in hiers else hiers[0]
    # more than a small array's worth of pod cgroups (glibc's qsort asks
    # sysinfo(2) past 1 KiB, which runtimed's seccomp filter refuses)
    empty_pods = ["crisp/pod-%s" % secrets.token_hex(32) for _ in range(140)]
    made = []
    sleeper = None
    try:
        os.mkdir(state)
        for h in hiers:
            for rel in (ours, foreign, busy):
                os.makedirs(os.path.join(h, rel))
                made.append(os.path.join(h, rel))
        for rel in empty_pods:
            os.mkdir(os.path.join(hiers[0], rel))
            made.append(os.path.join(hiers[0], rel))
        _backdate(made + [os.path.join(h, os.path.dirname(rel))
                          for h in hiers for rel in (ours, foreign, busy)])
        sleeper = subprocess.Popen(["sleep", "600"])
        with open(os.path.join(busy_hier, busy, "cgroup.procs"), "w") as f:
            f.write(str(sleeper.pid))
        mark = c.mark()
        old = c.children()["crisp-runtimed"]
        os.kill(old, signal.SIGKILL)
        c.wait_new_pid("crisp-runtimed", old, 15)
        c.wait_log(r"runc state %s: no record owns it: running runc delete --force" %
                   state, since=mark, timeout=15)
        c.wait_log(r"runc state of %s removed" % orphan_state, since=mark, timeout=15)
        c.wait_log(r"removing cgroup %s: no record owns it" % ours, since=mark)
        c.wait_log(r"removing cgroup crisp/pod-%s: no record owns it" % orphan_pod,
                   since=mark)
        assert not os.path.exists(state)
        assert _cgroup_in(ours) == [] and _cgroup_in("crisp/pod-" + orphan_pod) == []
        assert _cgroup_in(foreign) == hiers
        assert [rel for rel in empty_pods if _cgroup_in(rel)] == []
        assert not [ln for ln in c.lines(mark) if foreign_pod in ln]
        c.wait_log(r"removing cgroup %s/%s.*: left alone" % (busy_hier, busy), since=mark)
        assert _cgroup_in(busy) == [busy_hier]
        assert _cgroup_in("crisp/pod-" + busy_pod) == hiers
        assert sleeper.poll() is None, "the sweep killed a process"
    finally:
        if sleeper:
            sleeper.kill()
            sleeper.wait()
        with contextlib.suppress(OSError):
            os.rmdir(state)
        # what was made, then the pod cgroups made for it (never crisp/)
        pod_dirs = [os.path.join(h, os.path.dirname(rel))
                    for h in hiers for rel in (ours, foreign, busy)]
        for path in made + pod_dirs:
            with contextlib.suppress(OSError):
                os.rmdir(path)
