"""User namespaces (hostUsers: false), the namespace half: netd makes the
pod's user namespace and its netns inside it, pins both, the pause joins
them and makes its ipc, uts (and pid) namespaces inside, containers join
the pins (docs/PRIVSEP.md "Known gaps" 18).

runtimed turns the feature on where the host has idmapped mounts
(host_detect() in runtimed/host.c); these tests turn it on whatever the host
with the test hook CRISP_TEST_USERNS=1 (a --enable-test-hooks build)."""

import fcntl
import functools
import json
import os
import shutil
import signal

import grpc
import pytest

import harness
from harness import pod_config, container_config, rpc_error

HOOKS = harness._build_defines("CRISP_TEST_HOOKS")
HOST_ID = 65536 * 9
LENGTH = 65536


def _userns_on(c, data_dir):
    c.add_conflist("10-crisp-uns.conflist", {
        "cniVersion": "1.0.0", "name": "crisp-uns",
        "plugins": [{"type": "bridge", "bridge": "crispun%d" % (os.getpid() % 1000),
                     "isGateway": True, "ipMasq": False,
                     "ipam": {"type": "host-local", "dataDir": data_dir,
                              "ranges": [[{"subnet": "10.246.47.0/24"}]]}}]})
    c.start = functools.partial(harness.Crispd.start, c, argv=[
        "/usr/bin/env", "CRISP_TEST_USERNS=1", harness.CRISPD, "--config", c.conf])


@pytest.fixture
def uenv(pod_env_factory, tmp_path):
    assert HOOKS, "needs a build with --enable-test-hooks (CRISP_TEST_USERNS)"
    # "other": the same runc as a second handler, so its pods' pause runs
    # through runc (spec_sandbox's namespaces) rather than crisp-pause alone
    env = pod_env_factory(config={'runtime_handler "other"': {"path": shutil.which("runc")}},
                          before_start=lambda c: _userns_on(c, str(tmp_path / "ipam")))
    harness.wait_for(lambda: harness.conditions(env.c.status())["NetworkReady"].status, 15,
                     what="NetworkReady")
    return env


def userns_cfg(cri, name, host_id=HOST_ID, length=LENGTH):
    cfg = pod_config(name, host_network=False)
    u = cri.UserNamespace(mode=cri.POD)
    u.uids.add(container_id=0, host_id=host_id, length=length)
    u.gids.add(container_id=0, host_id=host_id, length=length)
    cfg.linux.security_context.namespace_options.userns_options.CopyFrom(u)
    return cfg


def state(env, kind, pod=None):
    d = os.path.join(env.c.config["crispd"]["state_dir"], kind)
    return os.path.join(d, pod) if pod else d


def ns_id(path):
    """The namespace inode of a pin or of /proc/PID/ns/X."""
    return os.stat(path).st_ino


def mounted(path):
    return path in harness.mounts_under(os.path.dirname(path))


def pause_pid(env, pod):
    return json.loads(env.cri.pod_status(pod, verbose=True).info["info"])["pid"]


def ctr_pid(env, cid):
    return json.loads(env.c.call("ContainerStatus", harness.cri.ContainerStatusRequest(
        container_id=cid, verbose=True)).info["info"])["pid"]


def owner_userns(nspath):
    """The inode of the user namespace owning a namespace (NS_GET_USERNS)."""
    NS_GET_USERNS = 0xb701
    fd = os.open(nspath, os.O_RDONLY)
    try:
        ufd = fcntl.ioctl(fd, NS_GET_USERNS)
        try:
            return os.fstat(ufd).st_ino
        finally:
            os.close(ufd)
    finally:
        os.close(fd)


def no_pins(env, pod):
    for kind in ("userns", "netns"):
        p = state(env, kind, pod)
        assert not os.path.exists(p), "%s pin left: %s" % (kind, p)
        assert not mounted(p), "%s pin still mounted: %s" % (kind, p)


def runtimed_searchable(env):
    """The container's (or runc-run pause's) root, a mapped id, must
    traverse to its bundle (runc mounts the rootfs as it): runtimed makes
    <state_dir>/runtimed searchable by all, listable by none, and keeps
    what is below closed (pods/<id> 0700 or 0710 to a user-namespaced
    pod's gid)."""
    d = os.path.join(env.c.config["crispd"]["state_dir"], "runtimed")
    assert os.stat(d).st_mode & 0o777 == 0o711, oct(os.stat(d).st_mode)
    assert os.stat(os.path.join(d, "runc")).st_mode & 0o777 == 0o700


@pytest.mark.parametrize("handler", ["", "other"], ids=["crisp-pause", "runc"])
def test_userns_pod_namespaces(uenv, cri, handler):
    """A hostUsers: false pod: the pause runs with the mapping, its user
    and net namespaces are netd's pins, its ipc, uts and net namespaces are
    owned by the pod's user namespace, it has an IP in the pinned netns,
    and Stop+Remove take both pins, their mounts and the pause away. The
    same whether crisp-pause starts itself or runc runs it."""
    k = uenv.cri
    runtimed_searchable(uenv)
    pod = k.run_pod(userns_cfg(cri, "uns-ns"), handler=handler)
    upin, npin = state(uenv, "userns", pod), state(uenv, "netns", pod)
    assert mounted(upin) and mounted(npin), harness.mounts_under(state(uenv, "userns"))
    pid = pause_pid(uenv, pod)
    assert pid > 0
    with open("/proc/%d/uid_map" % pid) as f:
        assert f.read().split() == ["0", str(HOST_ID), str(LENGTH)]
    with open("/proc/%d/gid_map" % pid) as f:
        assert f.read().split() == ["0", str(HOST_ID), str(LENGTH)]
    with open("/proc/%d/setgroups" % pid) as f:
        assert f.read().strip() == "allow"  # runc keeps supplemental groups
    st = os.stat("/proc/%d" % pid)
    assert (st.st_uid, st.st_gid) == (HOST_ID + 65535, HOST_ID + 65535), st
    assert ns_id("/proc/%d/ns/user" % pid) == ns_id(upin)
    assert ns_id("/proc/%d/ns/net" % pid) == ns_id(npin)
    for ns in ("net", "ipc", "uts", "pid"):
        assert owner_userns("/proc/%d/ns/%s" % (pid, ns)) == ns_id(upin), ns
    assert ns_id("/proc/%d/ns/ipc" % pid) != ns_id("/proc/self/ns/ipc")
    st = k.pod_status(pod).status
    assert st.network.ip.startswith("10.246.47."), st.network
    k.stop_pod(pod)
    assert not os.path.exists("/proc/%d" % pid) or open(
        "/proc/%d/stat" % pid).read().split()[2] == "Z"
    k.remove_pod(pod)
    no_pins(uenv, pod)
    left = harness.leftovers(uenv.c, [pod], uenv.baseline_mounts)
    assert not left, left


def test_userns_container_joins_the_pins(uenv, cri):
    """A container of the pod runs with the pod's mapping, in the pinned
    user and net namespaces and the pause's ipc and uts."""
    k = uenv.cri
    runtimed_searchable(uenv)
    cfg = userns_cfg(cri, "uns-ctr")
    pod = k.run_pod(cfg)
    c = container_config("s", uenv.images.busybox, ["sleep", "3600"])
    c.linux.security_context.namespace_options.CopyFrom(
        cfg.linux.security_context.namespace_options)
    cid = k.create(pod, c)
    k.start(cid)
    k.wait_state(cid, cri.CONTAINER_RUNNING)
    cpid = ctr_pid(uenv, cid)
    with open("/proc/%d/uid_map" % cpid) as f:
        assert f.read().split() == ["0", str(HOST_ID), str(LENGTH)]
    ppid = pause_pid(uenv, pod)
    assert ns_id("/proc/%d/ns/user" % cpid) == ns_id(state(uenv, "userns", pod))
    assert ns_id("/proc/%d/ns/net" % cpid) == ns_id(state(uenv, "netns", pod))
    for ns in ("ipc", "uts"):
        assert ns_id("/proc/%d/ns/%s" % (cpid, ns)) == ns_id("/proc/%d/ns/%s" % (ppid, ns))
    k.stop(cid, timeout=0)
    k.remove(cid)
    k.stop_pod(pod)
    k.remove_pod(pod)
    no_pins(uenv, pod)
    left = harness.leftovers(uenv.c, [pod, cid], uenv.baseline_mounts)
    assert not left, left


def test_failed_start_after_netd_leaves_nothing(uenv, cri):
    """netd made both namespaces, then the start fails (a sysctl the pause
    cannot write): the rollback removes both pins and the record."""
    k = uenv.cri
    cfg = userns_cfg(cri, "uns-fail")
    cfg.linux.sysctls["net.ipv4.no_such_sysctl"] = "1"
    mark = uenv.c.mark()
    e = rpc_error(k.run_pod, cfg)
    assert e.code() == grpc.StatusCode.INTERNAL, (e.code(), e.details())
    assert "start sandbox" in e.details() and "no_such_sysctl" in e.details(), e.details()
    # netd had made both namespaces (and ADD ran) before the rollback
    uenv.c.wait_log(r"network removed", since=mark)
    assert k.list_pods() == []
    assert os.listdir(state(uenv, "userns")) == []
    assert not harness.mounts_under(state(uenv, "userns"))
    assert not [m for m in harness.mounts_under(state(uenv, "netns"))
                if m != state(uenv, "netns")]


def test_netd_killed_does_not_leak_the_userns_pin(uenv, cri):
    """netd killed while the pod lives: the restarted netd keeps the record
    (which says there is a user namespace pin), RemovePodSandbox removes both
    pins; a netd killed while the pod is being stopped and removed leaks no
    pin either."""
    k = uenv.cri
    pod = k.run_pod(userns_cfg(cri, "uns-kill"))
    upin = state(uenv, "userns", pod)
    assert mounted(upin)
    netd = uenv.c.children()["crisp-netd"]
    os.kill(netd, signal.SIGKILL)
    harness.wait_for(lambda: uenv.c.children().get("crisp-netd") not in (None, netd), 15,
                     what="netd restarted")
    assert mounted(upin)
    k.stop_pod(pod)
    k.remove_pod(pod)
    no_pins(uenv, pod)

    # netd killed, and the pod stopped and removed while it is down: those
    # calls may fail (UNAVAILABLE), the kubelet calls them again, and in
    # the end neither pin is left (REMOVE, or the reconciler when netd's
    # channel is up again)
    pod = k.run_pod(userns_cfg(cri, "uns-kill2"))
    assert mounted(state(uenv, "userns", pod))
    netd = uenv.c.children()["crisp-netd"]
    os.kill(netd, signal.SIGKILL)

    def stop_remove():
        try:
            k.stop_pod(pod)
            k.remove_pod(pod)
            return True
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNAVAILABLE, (e.code(), e.details())
            return False
    harness.wait_for(stop_remove, 30, interval=0.5, what="the pod stopped and removed")
    harness.wait_for(lambda: not os.path.exists(state(uenv, "userns", pod)) and
                     not os.path.exists(state(uenv, "netns", pod)), 30,
                     what="both pins removed")
    no_pins(uenv, pod)


def test_userns_pod_survives_runtimed_restart(uenv, cri):
    """runtimed's record keeps the user namespace pin: after runtimed is
    killed and restarted, a container created in the pod still joins it."""
    k = uenv.cri
    runtimed_searchable(uenv)
    cfg = userns_cfg(cri, "uns-restart")
    pod = k.run_pod(cfg)
    runtimed = uenv.c.children()["crisp-runtimed"]
    os.kill(runtimed, signal.SIGKILL)
    harness.wait_for(lambda: uenv.c.children().get("crisp-runtimed") not in (None, runtimed),
                     15, what="runtimed restarted")
    info = harness.wait_for(lambda: json.loads(k.pod_status(pod, verbose=True).info["info"]),
                            15, what="the pod's status after the restart")
    assert info["pid"] > 0, info
    c = container_config("s", uenv.images.busybox, ["sleep", "3600"])
    c.linux.security_context.namespace_options.CopyFrom(
        cfg.linux.security_context.namespace_options)
    cid = harness.wait_for(lambda: _try_create(k, pod, c), 15, what="CreateContainer")
    k.start(cid)
    k.wait_state(cid, cri.CONTAINER_RUNNING)
    assert ns_id("/proc/%d/ns/user" % ctr_pid(uenv, cid)) == ns_id(state(uenv, "userns", pod))
    k.stop(cid, timeout=0)
    k.remove(cid)
    k.stop_pod(pod)
    k.remove_pod(pod)
    no_pins(uenv, pod)


def _try_create(k, pod, c):
    try:
        return k.create(pod, c)
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.UNAVAILABLE, (e.code(), e.details())
        return None
