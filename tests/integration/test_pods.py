"""Pod sandboxes through the CRI, end to end (frontend -> runtimed, netd,
imaged): the lifecycle and its idempotence, ListPodSandbox filters, verbose
status, validation, two RunPodSandbox calls racing for one name, a failed
RunPodSandbox leaving nothing behind, a pod network from a private bridge
CNI config, UpdatePodSandboxResources refusing clearly, and 20 pods made
and removed in parallel without leaks.

Pods use the host network unless the test is about networking, so they do
not depend on CNI."""

import concurrent.futures
import ipaddress
import json
import os
import shutil
import threading
import uuid

import grpc

import harness
from harness import pod_config, container_config, rpc_error


def assert_no_leftovers(env, ids):
    left = harness.leftovers(env.c, ids, env.baseline_mounts)
    assert not left, "left behind:\n  " + "\n  ".join(left)


def test_pod_lifecycle(pod_env, cri):
    k = pod_env.cri
    cfg = pod_config("lifecycle", labels={"app": "web", "tier": "a"},
                     annotations={"note": "x" * 100})
    pod = k.run_pod(cfg)
    assert len(pod) == 64 and all(ch in "0123456789abcdef" for ch in pod), pod
    st = k.pod_status(pod)
    assert st.status.id == pod
    assert st.status.state == cri.SANDBOX_READY
    assert st.status.metadata.name == "lifecycle"
    assert st.status.metadata.namespace == "crisp-it"
    assert st.status.metadata.uid == cfg.metadata.uid
    assert dict(st.status.labels) == {"app": "web", "tier": "a"}
    assert st.status.annotations["note"] == "x" * 100
    assert st.status.created_at > 0
    assert st.status.linux.namespaces.options.network == cri.NODE
    # Host network: no pod IP of its own.
    assert not st.status.network.ip

    listed = k.list_pods()
    assert [p.id for p in listed] == [pod]
    assert listed[0].metadata.name == "lifecycle"
    assert listed[0].labels["app"] == "web"

    k.stop_pod(pod)
    assert k.pod_status(pod).status.state == cri.SANDBOX_NOTREADY
    k.stop_pod(pod)  # idempotent
    k.remove_pod(pod)
    e = rpc_error(k.pod_status, pod)
    assert e.code() == grpc.StatusCode.NOT_FOUND, (e.code(), e.details())
    k.remove_pod(pod)  # removing twice succeeds
    assert k.list_pods() == []
    assert_no_leftovers(pod_env, [pod])


def test_pod_verbose_status(pod_env, cri):
    k = pod_env.cri
    pod = k.run_pod(pod_config("verbose"))
    st = k.pod_status(pod, verbose=True)
    info = json.loads(st.info["info"])
    assert info["pid"] > 0 and harness.alive(info["pid"]), info
    assert info["config"]["metadata"]["name"] == "verbose"
    assert st.timestamp > 0
    assert "info" not in k.pod_status(pod).info


def test_list_pod_sandbox_filters(pod_env, cri):
    k = pod_env.cri
    a = k.run_pod(pod_config("filter-a", labels={"app": "a", "env": "test"}))
    b = k.run_pod(pod_config("filter-b", labels={"app": "b", "env": "test"}))
    k.stop_pod(b)

    ids = lambda pods: sorted(p.id for p in pods)  # noqa: E731
    assert ids(k.list_pods()) == sorted([a, b])
    assert ids(k.list_pods(id=a)) == [a]
    assert ids(k.list_pods(id=a[:12])) == [a]
    assert ids(k.list_pods(id="0" * 64)) == []
    assert ids(k.list_pods(state=cri.SANDBOX_READY)) == [a]
    assert ids(k.list_pods(state=cri.SANDBOX_NOTREADY)) == [b]
    assert ids(k.list_pods(labels={"env": "test"})) == sorted([a, b])
    assert ids(k.list_pods(labels={"env": "test", "app": "b"})) == [b]
    assert ids(k.list_pods(labels={"app": "c"})) == []
    assert ids(k.list_pods(id=b[:8], state=cri.SANDBOX_READY)) == []


def test_pod_requests_validated(pod_env, cri):
    c = pod_env.c
    no_name = pod_config("")
    no_ns = pod_config("n", namespace="")
    no_uid = pod_config("u")
    no_uid.metadata.uid = ""
    for bad in (no_name, no_ns, no_uid):
        e = rpc_error(c.call, "RunPodSandbox", cri.RunPodSandboxRequest(config=bad))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.code(), e.details())
        assert "metadata" in e.details()
    e = rpc_error(c.call, "RunPodSandbox", cri.RunPodSandboxRequest())
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    long_name = pod_config("x" * 300)
    e = rpc_error(c.call, "RunPodSandbox", cri.RunPodSandboxRequest(config=long_name))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "253" in e.details()

    unknown = uuid.uuid4().hex * 2
    for method, req in (("PodSandboxStatus", cri.PodSandboxStatusRequest(pod_sandbox_id=unknown)),
                        ("PodSandboxStatus", cri.PodSandboxStatusRequest(pod_sandbox_id="../x"))):
        e = rpc_error(c.call, method, req)
        assert e.code() == grpc.StatusCode.NOT_FOUND, (method, e.code(), e.details())
    # Stopping or removing what is not there succeeds: the CRI says so, and
    # the kubelet retries both.
    c.call("StopPodSandbox", cri.StopPodSandboxRequest(pod_sandbox_id=unknown))
    c.call("StopPodSandbox", cri.StopPodSandboxRequest(pod_sandbox_id=str(uuid.uuid4())))
    e = rpc_error(c.call, "StopPodSandbox", cri.StopPodSandboxRequest())
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.code(), e.details())
    c.call("RemovePodSandbox", cri.RemovePodSandboxRequest(pod_sandbox_id=unknown))
    c.call("RemovePodSandbox", cri.RemovePodSandboxRequest(pod_sandbox_id="not-an-id"))
    e = rpc_error(c.call, "RemovePodSandbox", cri.RemovePodSandboxRequest())
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    # Nothing was made by any of these.
    assert pod_env.cri.list_pods() == []


def test_unknown_runtime_handler_fails_cleanly(pod_env, cri):
    k = pod_env.cri
    cfg = pod_config("handler")
    e = rpc_error(k.run_pod, cfg, handler="no-such-handler")
    assert e.code() != grpc.StatusCode.OK
    assert "no-such-handler" in e.details(), e.details()
    assert k.list_pods() == []
    # The name is free again: the failed attempt rolled back its reservation.
    pod = k.run_pod(pod_config("handler", uid=cfg.metadata.uid))
    assert k.pod_status(pod).status.state == cri.SANDBOX_READY


def test_pause_under_a_monitor_is_one_runc_run(pod_env_factory, cri):
    """With a handler other than the default the pause runs under a monitor,
    like a container: its one `runc run --detach` starts it (no `runc
    start`), and a container that never started goes with the pod."""
    env = pod_env_factory(config={'runtime_handler "other"': {"path": shutil.which("runc")},
                                  "crispd": {"log_level": "debug"}})
    k = env.cri
    mark = env.c.mark()
    pod = k.run_pod(pod_config("pause-monitor"), handler="other")
    assert k.pod_status(pod).status.state == cri.SANDBOX_READY
    env.c.wait_log(r"runc run %s: [0-9.]+ ms \(in its monitor" % pod, mark, 10)
    assert harness.monitor_processes([pod])
    cid = k.run(pod, container_config("c", env.images.busybox))
    assert k.sh(cid, "echo ok")[1] == "ok\n"
    never = k.create(pod, container_config("never", env.images.busybox))
    assert not [ln for ln in env.c.lines(mark) if " runc start " in ln]
    k.remove_pod(pod)  # without a stop first: it stops what runs
    assert k.list_containers() == [] and k.list_pods() == []
    assert_no_leftovers(env, [pod, cid, never])


def test_same_name_concurrently_one_wins(pod_env, cri):
    k = pod_env.cri
    cfg = pod_config("race")
    barrier = threading.Barrier(2)

    def run():
        barrier.wait()
        try:
            return k.run_pod(pod_config("race", uid=cfg.metadata.uid))
        except grpc.RpcError as e:
            return e

    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        results = list(ex.map(lambda _: run(), range(2)))
    won = [r for r in results if isinstance(r, str)]
    lost = [r for r in results if not isinstance(r, str)]
    assert len(won) == 1 and len(lost) == 1, results
    assert lost[0].code() == grpc.StatusCode.ALREADY_EXISTS, (lost[0].code(), lost[0].details())
    assert [p.id for p in k.list_pods()] == won
    k.stop_pod(won[0])
    k.remove_pod(won[0])
    assert k.list_pods() == []


def test_update_pod_sandbox_resources_recorded(pod_env, cri):
    """The kubelet resizes the pod cgroup itself, then tells the runtime:
    the sandbox's recorded config follows, also across a restart."""
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("resources"))
    req = cri.UpdatePodSandboxResourcesRequest(pod_sandbox_id=pod)
    req.resources.cpu_shares = 512
    req.resources.memory_limit_in_bytes = 64 << 20
    req.overhead.cpu_shares = 8
    env.c.call("UpdatePodSandboxResources", req)

    def recorded():
        info = json.loads(k.pod_status(pod, verbose=True).info["info"])
        return info["config"]["linux"]
    lx = recorded()
    assert int(lx["resources"]["cpu_shares"]) == 512, lx
    assert int(lx["resources"]["memory_limit_in_bytes"]) == 64 << 20, lx
    assert int(lx["overhead"]["cpu_shares"]) == 8, lx
    assert env.c.terminate(timeout=15) == 0
    env.c.start(timeout=30)
    assert int(recorded()["resources"]["cpu_shares"]) == 512
    e = rpc_error(env.c.call, "UpdatePodSandboxResources",
                  cri.UpdatePodSandboxResourcesRequest(pod_sandbox_id="ab" * 32))
    assert e.code() == grpc.StatusCode.NOT_FOUND, (e.code(), e.details())
    e = rpc_error(env.c.call, "UpdatePodSandboxResources",
                  cri.UpdatePodSandboxResourcesRequest(pod_sandbox_id="nope"))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.code(), e.details())


# --- a pod network from a private bridge config -----------------------------------------

POD_SUBNET = "10.247.13.0/24"


def write_pod_conflist(c, data_dir):
    body = {
        "cniVersion": "1.0.0",
        "name": "crisp-pod-test",
        "plugins": [
            {"type": "bridge", "bridge": "crisppod%d" % (os.getpid() % 1000),
             "isGateway": True, "ipMasq": False,
             "ipam": {"type": "host-local", "dataDir": data_dir,
                      "ranges": [[{"subnet": POD_SUBNET}]]}},
        ],
    }
    return c.add_conflist("10-crisp-pod-test.conflist", body)


def test_pod_network_lifecycle(pod_env_factory, cri, tmp_path):
    data_dir = str(tmp_path / "ipam")
    env = pod_env_factory(before_start=lambda c: write_pod_conflist(c, data_dir))
    k = env.cri
    harness.wait_for(lambda: harness.conditions(env.c.status())["NetworkReady"].status, 15,
                     what="NetworkReady")
    pod = k.run_pod(pod_config("net", host_network=False))
    st = k.pod_status(pod).status
    assert st.network.ip, st
    assert ipaddress.ip_address(st.network.ip) in ipaddress.ip_network(POD_SUBNET)
    assert st.linux.namespaces.options.network == cri.POD
    # host-local holds the address under its data dir until DEL.
    net_dir = os.path.join(data_dir, "crisp-pod-test")
    assert os.path.exists(os.path.join(net_dir, st.network.ip))
    netns = os.path.join(env.c.config["crispd"]["state_dir"], "netns", pod)
    assert os.path.exists(netns)

    k.stop_pod(pod)
    assert not os.path.exists(os.path.join(net_dir, st.network.ip)), "IP not freed by stop"
    k.stop_pod(pod)
    k.remove_pod(pod)
    assert not os.path.exists(netns)
    assert_no_leftovers(env, [pod])


def test_pod_network_failure_rolls_back(pod_env_factory, cri, tmp_path):
    env = pod_env_factory(before_start=lambda c: c.add_conflist("10-broken.conflist", {
        "cniVersion": "1.0.0", "name": "broken",
        "plugins": [{"type": "no-such-plugin-crisp"}]}))
    k = env.cri
    cfg = pod_config("netfail", host_network=False)
    e = rpc_error(k.run_pod, cfg)
    assert e.details().startswith("pod network"), e.details()
    assert k.list_pods() == []
    netns_dir = os.path.join(env.c.config["crispd"]["state_dir"], "netns")
    assert not os.path.isdir(netns_dir) or os.listdir(netns_dir) == []


# --- many at once -------------------------------------------------------------------------


def test_pod_networks_in_parallel(pod_env_factory, cri, tmp_path):
    """RunPodSandbox starts the pause while CNI ADD runs: pods made at once
    each get their own netns and IP, and leave nothing when removed."""
    data_dir = str(tmp_path / "ipam")
    env = pod_env_factory(before_start=lambda c: write_pod_conflist(c, data_dir))
    k = env.cri
    harness.wait_for(lambda: harness.conditions(env.c.status())["NetworkReady"].status, 15,
                     what="NetworkReady")
    n = 8

    def one(i):
        pod = k.run_pod(pod_config("netpar-%d" % i, host_network=False))
        return pod, k.pod_status(pod).status

    with concurrent.futures.ThreadPoolExecutor(n) as ex:
        results = list(ex.map(one, range(n)))
    pods = [pod for pod, _ in results]
    ips = [st.network.ip for _, st in results]
    assert all(st.state == cri.SANDBOX_READY for _, st in results), results
    assert len(set(ips)) == n and all(
        ipaddress.ip_address(ip) in ipaddress.ip_network(POD_SUBNET) for ip in ips), ips
    net_dir = os.path.join(data_dir, "crisp-pod-test")
    assert sorted(f for f in os.listdir(net_dir) if f.startswith("10.")) == sorted(ips)
    assert sorted(p.id for p in k.list_pods()) == sorted(pods)
    for pod in pods:
        k.stop_pod(pod)
        k.remove_pod(pod)
    assert [f for f in os.listdir(net_dir) if f.startswith("10.")] == []
    assert_no_leftovers(env, pods)



def test_20_pods_in_parallel(pod_env, cri):
    k = pod_env.cri
    n = 20

    def one(i):
        pod = k.run_pod(pod_config("par-%d" % i, labels={"batch": "par"}))
        cid = k.run(pod, container_config("c", pod_env.images.busybox))
        assert k.status(cid).state == cri.CONTAINER_RUNNING
        k.stop(cid, timeout=5)
        k.stop_pod(pod)
        k.remove_pod(pod)
        return pod, cid

    with concurrent.futures.ThreadPoolExecutor(n) as ex:
        results = list(ex.map(one, range(n)))
    assert len(results) == n
    assert k.list_pods(labels={"batch": "par"}) == []
    assert k.list_containers() == []
    ids = [x for pair in results for x in pair]
    assert len(set(ids)) == 2 * n
    assert_no_leftovers(pod_env, ids)


# --- reconciliation -----------------------------------------------------------------------


def test_reconcile_removes_orphan_netns_and_snapshot(pod_env_factory, cri, tmp_path):
    """A netns and a container snapshot whose owners runtimed no longer
    knows (their records deleted while crisp was down) are removed by the
    frontend's reconciliation when crisp comes back."""
    import sqlite3
    from test_images_pull import snapshot_rows

    data_dir = str(tmp_path / "ipam")
    env = pod_env_factory(before_start=lambda c: write_pod_conflist(c, data_dir))
    k, c = env.cri, env.c
    harness.wait_for(lambda: harness.conditions(c.status())["NetworkReady"].status, 15,
                     what="NetworkReady")
    pod = k.run_pod(pod_config("orphan", host_network=False))
    cid = k.create(pod, container_config("orphan", env.images.busybox))
    k.stop_pod(pod)
    netns = os.path.join(c.config["crispd"]["state_dir"], "netns", pod)
    assert os.path.exists(netns)

    assert c.terminate(timeout=15) == 0
    assert ("container-" + cid) in [r[1] for r in snapshot_rows(c)]
    db = sqlite3.connect(os.path.join(c.config["crispd"]["root_dir"], "runtimed", "state.db"))
    with db:
        db.execute("DELETE FROM containers WHERE id = ?", (cid,))
        db.execute("DELETE FROM sandboxes WHERE id = ?", (pod,))
    db.close()
    k.pods.clear()
    k.ctrs.clear()

    mark = c.mark()
    c.start(timeout=30)
    c.wait_log(r"reconcile: removing the network namespace of sandbox %s" % pod, mark, 15)
    c.wait_log(r"reconcile: removing the snapshot of container %s" % cid, mark, 15)
    harness.wait_for(lambda: not os.path.exists(netns), 15, what="the orphan netns removed")
    assert c.terminate(timeout=15) == 0
    assert ("container-" + cid) not in [r[1] for r in snapshot_rows(c)]
    # The pod's (empty) cgroups were runtimed's to remove at RemovePodSandbox;
    # with its record deleted by hand nothing will: this test made them
    # orphans, so it removes them, deepest first.
    for d in sorted(harness.cgroups_named([pod]), key=lambda d: -d.count("/")):
        os.rmdir(d)
    assert harness.cgroups_named([pod]) == []


def test_reconcile_keeps_what_is_owned(pod_env_factory, cri, tmp_path):
    """netd killed with a pod up: when it comes back the frontend reconciles,
    and the pod keeps its netns and its IP."""
    import signal
    data_dir = str(tmp_path / "ipam")
    env = pod_env_factory(before_start=lambda c: write_pod_conflist(c, data_dir))
    k, c = env.cri, env.c
    harness.wait_for(lambda: harness.conditions(c.status())["NetworkReady"].status, 15,
                     what="NetworkReady")
    pod = k.run_pod(pod_config("owned", host_network=False))
    cid = k.create(pod, container_config("owned", env.images.busybox))
    ip = k.pod_status(pod).status.network.ip
    mark = c.mark()
    old = c.children()["crisp-netd"]
    os.kill(old, signal.SIGKILL)
    c.wait_new_pid("crisp-netd", old, 15)
    line = c.wait_log(r"reconcile: 1 sandboxes, 1 containers, 1 pod networks, 1 snapshots; "
                      r"0 orphans removed", mark, 40)
    assert not [ln for ln in c.lines(mark) if "reconcile: removing" in ln], line
    assert k.pod_status(pod).status.network.ip == ip
    assert os.path.exists(os.path.join(c.config["crispd"]["state_dir"], "netns", pod))
    k.start(cid)
    assert k.status(cid).state == cri.CONTAINER_RUNNING
