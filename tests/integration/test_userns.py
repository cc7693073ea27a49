"""Kubernetes user namespaces (hostUsers: false, KEP-127) through the CRI.

Every handler advertises them where the kernel and the image store's
filesystem have the idmapped mounts they need (host_detect() in
runtimed/host.c: Linux 6.3, ext4, xfs, btrfs, tmpfs or f2fs), and none
where not, so that the kubelet sends none there; one sent anyway (crictl)
is then refused with a clear message before any side effect (here with the
test hook CRISP_TEST_USERNS=0). The end-to-end test runs where they are
advertised; tests/integration/test_userns_netns.py and test_userns_fs.py
test the namespaces and the idmapped mounts in detail."""

import functools

import os
import re
import shutil
import subprocess
import tempfile

import grpc
import pytest

import harness
from harness import pod_config, container_config, rpc_error

# The kubelet's allocation: 65536 ids at a multiple of 65536 (never 0).
KUBELET_HOST_ID = 65536 * 7
KUBELET_LENGTH = 65536


def userns(cri, mode, host_id=KUBELET_HOST_ID, length=KUBELET_LENGTH, container_id=0):
    u = cri.UserNamespace(mode=mode)
    if mode == cri.POD:
        u.uids.add(container_id=container_id, host_id=host_id, length=length)
        u.gids.add(container_id=container_id, host_id=host_id, length=length)
    return u


def advertised(env, cri):
    st = env.c.call("Status", cri.StatusRequest())
    return {h.name: h.features.user_namespaces for h in st.runtime_handlers}


def netns_entries(env):
    d = os.path.join(env.c.config["crispd"]["state_dir"], "netns")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def host_has_idmapped_mounts(root_dir):
    """What host_detect() looks at."""
    major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    magic = {0xEF53, 0x58465342, 0x9123683E, 0x01021994, 0xF2F52010}
    out = subprocess.run(["stat", "-f", "-c", "%t", root_dir], capture_output=True, text=True,
                         check=True).stdout.strip()
    return (major, minor) >= (6, 3) and int(out, 16) in magic


def test_handlers_advertise_user_namespaces_as_the_host_allows(pod_env_factory, cri):
    """The kubelet sends hostUsers: false pods only to a handler whose
    features say user_namespaces: every handler ("" and its name, and a
    configured one) says so exactly when the host has what they need."""
    env = pod_env_factory(config={'runtime_handler "other"': {"path": shutil.which("runc")}})
    adv = advertised(env, cri)
    assert "" in adv and "other" in adv, adv
    want = host_has_idmapped_mounts(env.c.config["crispd"]["root_dir"])
    assert set(adv.values()) == {want}, (adv, want)


def test_hostusers_false_pod_is_refused_before_any_side_effect(pod_env_factory, cri, tmp_path):
    """A pod as the kubelet sends it for hostUsers: false (pod network, one
    65536-id range) fails UNIMPLEMENTED with a message that says why, and is
    refused when runtimed reserves it: no sandbox, no netns, no mount, no
    cgroup is left, and the same pod without userns_options then runs."""
    def off(c):  # as on a host without idmapped mounts
        c.start = functools.partial(harness.Crispd.start, c, argv=[
            "/usr/bin/env", "CRISP_TEST_USERNS=0", harness.CRISPD, "--config", c.conf])
    if not harness._build_defines("CRISP_TEST_HOOKS"):
        pytest.skip("needs a build with --enable-test-hooks (CRISP_TEST_USERNS)")
    env = pod_env_factory(before_start=off)
    k = env.cri
    assert not any(advertised(env, cri).values())
    before_netns = netns_entries(env)
    cfg = pod_config("userns-refused", host_network=False)
    cfg.linux.security_context.namespace_options.userns_options.CopyFrom(userns(cri, cri.POD))
    e = rpc_error(k.run_pod, cfg)
    assert e.code() == grpc.StatusCode.UNIMPLEMENTED, (e.code(), e.details())
    assert re.search(r"userns_options: user namespaces are not supported on this host "
                     r"\(hostUsers: false", e.details()), e.details()
    assert k.list_pods() == []
    assert netns_entries(env) == before_netns
    assert set(harness.mounts_under(env.c.dir)) == set(env.baseline_mounts)
    # Nothing was reserved: the name is free for the pod without userns.
    cfg.linux.security_context.namespace_options.ClearField("userns_options")
    cfg.linux.security_context.namespace_options.network = cri.NODE
    pod = k.run_pod(cfg)
    k.stop_pod(pod)
    k.remove_pod(pod)
    left = harness.leftovers(env.c, [pod], env.baseline_mounts)
    assert not left, left


@pytest.mark.parametrize("case", [
    ("two uid ranges", None, grpc.StatusCode.INVALID_ARGUMENT,
     "mode POD needs exactly one uid mapping, got 2"),
    ("range holding host root", dict(host_id=0), grpc.StatusCode.INVALID_ARGUMENT,
     "host range 0-65535 holds the host's root user 0"),
    ("overflow", dict(host_id=4294967295 - 100, length=1000), grpc.StatusCode.INVALID_ARGUMENT,
     "passes the last id 4294967294"),
    ("length 0", dict(length=0), grpc.StatusCode.INVALID_ARGUMENT, "length 0 maps no id"),
    ("mode POD without mappings", "empty", grpc.StatusCode.INVALID_ARGUMENT,
     "mode POD needs exactly one uid mapping, got 0"),
    ("mode NODE with mappings", "node+maps", grpc.StatusCode.INVALID_ARGUMENT,
     "mode NODE (the host's user namespace) takes no mappings, got 1 uid and 1 gid"),
    ("with the host network", "hostnet", grpc.StatusCode.INVALID_ARGUMENT,
     "(mode POD) cannot go with the host's network namespace"),
], ids=lambda c: c[0])
def test_bad_userns_options_are_invalid(pod_env, cri, case):
    _, kw, code, needle = case
    if kw is None:
        u = userns(cri, cri.POD)
        u.uids.add(container_id=0, host_id=KUBELET_HOST_ID * 2, length=10)
    elif kw == "empty":
        u = cri.UserNamespace(mode=cri.POD)
    elif kw == "hostnet":
        u = userns(cri, cri.POD)
    elif kw == "node+maps":
        u = userns(cri, cri.POD)
        u.mode = cri.NODE
    else:
        u = userns(cri, cri.POD, **kw)
    cfg = pod_config("userns-bad", host_network=(kw == "hostnet"))
    cfg.linux.security_context.namespace_options.userns_options.CopyFrom(u)
    e = rpc_error(pod_env.cri.run_pod, cfg)
    assert e.code() == code, (e.code(), e.details())
    assert needle in e.details(), e.details()
    assert pod_env.cri.list_pods() == []


def test_container_user_namespace_must_be_its_pods(pod_env, cri):
    """A container of a pod in the host's user namespace may repeat that
    (mode NODE, as the kubelet sends it) and then sees the host's uid_map;
    asking for a namespace of its own (CONTAINER) is invalid, and so is
    one of the pod's (POD) with the host's network, as for a pod."""
    k = pod_env.cri
    cfg_pod = pod_config("userns-ctr")
    cfg_pod.linux.security_context.namespace_options.userns_options.CopyFrom(
        userns(cri, cri.NODE))
    pod = k.run_pod(cfg_pod)

    c = container_config("own", pod_env.images.busybox, ["sh", "-c", "sleep 3600"])
    c.linux.security_context.namespace_options.CopyFrom(
        cfg_pod.linux.security_context.namespace_options)
    c.linux.security_context.namespace_options.userns_options.CopyFrom(
        cri.UserNamespace(mode=cri.CONTAINER))
    e = rpc_error(k.create, pod, c)
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.code(), e.details())
    assert "mode CONTAINER is not supported for a user namespace" in e.details(), e.details()

    c.linux.security_context.namespace_options.userns_options.CopyFrom(userns(cri, cri.POD))
    e = rpc_error(k.create, pod, c)
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.code(), e.details())
    assert "(mode POD) cannot go with the host's network namespace" in e.details(), e.details()

    c.linux.security_context.namespace_options.userns_options.CopyFrom(userns(cri, cri.NODE))
    cid = k.create(pod, c)
    k.start(cid)
    k.wait_state(cid, cri.CONTAINER_RUNNING)
    r = k.exec_sync(cid, ["cat", "/proc/self/uid_map"])
    with open("/proc/self/uid_map") as f:
        assert r.stdout.decode().split() == f.read().split(), r.stdout
    k.stop(cid)
    k.remove(cid)
    k.stop_pod(pod)
    k.remove_pod(pod)
    left = harness.leftovers(pod_env.c, [pod, cid], pod_env.baseline_mounts)
    assert not left, left


def test_userns_pod_end_to_end(pod_env_factory, cri, tmp_path):
    """The feature itself, once a handler advertises it: a hostUsers: false
    pod whose container writes in its rootfs and in a host directory bind
    mounted into it, sees itself root with the kubelet's uid_map, files it
    writes are its ids inside, the mapped ids in its rootfs's upper layer
    and its own ids in the (idmapped) volume; exec, logs and stats work, and
    removal leaves no mount."""
    data_dir = str(tmp_path / "ipam")

    def conflist(c):
        c.add_conflist("10-crisp-userns.conflist", {
            "cniVersion": "1.0.0", "name": "crisp-userns",
            "plugins": [{"type": "bridge", "bridge": "crispus%d" % (os.getpid() % 1000),
                         "isGateway": True, "ipMasq": False,
                         "ipam": {"type": "host-local", "dataDir": data_dir,
                                  "ranges": [[{"subnet": "10.246.31.0/24"}]]}}]})

    env = pod_env_factory(before_start=conflist)
    if not advertised(env, cri).get(""):
        pytest.skip("the default handler does not advertise user_namespaces")
    k = env.cri
    harness.wait_for(lambda: harness.conditions(env.c.status())["NetworkReady"].status, 15,
                     what="NetworkReady")
    vol = tempfile.mkdtemp(dir=str(tmp_path))
    os.chmod(vol, 0o777)
    cfg_pod = pod_config("userns-e2e", host_network=False, log_directory=k.log_dir())
    cfg_pod.linux.security_context.namespace_options.userns_options.CopyFrom(
        userns(cri, cri.POD))
    pod = k.run_pod(cfg_pod)
    c = container_config("w", env.images.busybox, ["sh", "-c",
                         "id; cat /proc/self/uid_map; echo r > /rootfile; echo v > /vol/volfile;"
                         " chown 1000:1000 /vol/volfile; echo ready; sleep 3600"])
    c.linux.security_context.namespace_options.CopyFrom(
        cfg_pod.linux.security_context.namespace_options)
    c.mounts.add(container_path="/vol", host_path=vol)
    cid = k.create(pod, c)
    k.start(cid)
    k.wait_state(cid, cri.CONTAINER_RUNNING)
    log = os.path.join(cfg_pod.log_directory, c.log_path)
    harness.wait_for(lambda: os.path.exists(log) and
                     any(t == "ready" for _, t, _ in harness.cri_log_lines(log)), 30,
                     what="the container's output")
    out = "\n".join(t for _, t, _ in harness.cri_log_lines(log))
    assert "uid=0(root) gid=0(root)" in out, out
    assert re.search(r"\s+0\s+%d\s+%d" % (KUBELET_HOST_ID, KUBELET_LENGTH), out), out
    # inside: container ids
    r = k.exec_sync(cid, ["stat", "-c", "%u:%g", "/rootfile", "/vol/volfile"])
    assert r.exit_code == 0 and r.stdout.split() == [b"0:0", b"1000:1000"], r
    # outside, through the idmapped volume: the container's ids, as the
    # kubelet expects (it does not chown volumes for such pods)
    st = os.stat(os.path.join(vol, "volfile"))
    assert (st.st_uid, st.st_gid) == (1000, 1000), st
    stats = env.c.call("ContainerStats", cri.ContainerStatsRequest(container_id=cid)).stats
    assert stats.memory.working_set_bytes.value > 0, stats
    status = k.status(cid)
    assert status.user.linux.uid == 0, status.user
    k.stop(cid)
    k.remove(cid)
    k.stop_pod(pod)
    k.remove_pod(pod)
    left = harness.leftovers(env.c, [pod, cid], env.baseline_mounts)
    assert not left, left
    assert not [m for m in harness.mounts_under("/") if vol in m], "idmapped volume left mounted"
