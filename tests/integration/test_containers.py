"""Containers through the CRI, end to end on runc with busybox images from
the local test registry: the whole lifecycle with CRI-format logs (partial
lines, lines over runtime.log_line_max), exit codes, OOMKilled, stop with a
timeout, ListContainers filters, the security context (users, capabilities,
read-only rootfs, seccomp, privileged, sysctls, host namespaces), resources
in the cgroup and UpdateContainerResources, ExecSync, stats and metrics,
GetContainerEvents with two subscribers, and recovery after runtimed is
killed and after crispd restarts — with nothing left behind."""

import json
import os
import queue
import resource
import shutil
import signal
import subprocess
import threading
import time

import grpc
import pytest

import harness
from conftest import POD_LOG_LINE_MAX
from harness import container_config, pod_config, rpc_error

MiB = 1 << 20


def assert_no_leftovers(env, ids):
    left = harness.leftovers(env.c, ids, env.baseline_mounts)
    assert not left, "left behind:\n  " + "\n  ".join(left)


def sh_config(name, image, script, **kw):
    return container_config(name, image, command=["sh", "-c", script], **kw)


def log_file(env, pod, cid):
    st = env.cri.status(cid)
    assert os.path.isabs(st.log_path), st.log_path
    assert st.log_path == os.path.join(env.cri.pods[pod].log_directory, "%s.log" %
                                       st.metadata.name)
    return st.log_path


# --- lifecycle and logs ------------------------------------------------------------------


def test_container_lifecycle_and_logs(pod_env, cri):
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("ctr-life"))
    long = "L" * (POD_LOG_LINE_MAX * 2 + 17)
    script = ("echo hello; echo oops >&2; echo %s; printf partial; exit 3" % long)
    cfg = sh_config("main", env.images.busybox, script, labels={"role": "test"},
                    annotations={"a": "b"})
    m = cfg.mounts.add()
    m.container_path = "/data"
    m.host_path = k.log_dir()
    m.readonly = True
    cid = k.create(pod, cfg)

    st = k.status(cid)
    assert st.state == cri.CONTAINER_CREATED
    assert st.metadata.name == "main"
    assert st.image.image == env.images.busybox
    assert st.image_ref.startswith("sha256:"), st.image_ref
    assert dict(st.labels) == {"role": "test"} and dict(st.annotations) == {"a": "b"}
    assert [(x.container_path, x.readonly) for x in st.mounts] == [("/data", True)]
    assert st.created_at > 0 and st.started_at == 0

    k.start(cid)
    st = k.wait_state(cid, cri.CONTAINER_EXITED)
    assert st.exit_code == 3
    assert st.reason == "Error", st.reason
    assert st.started_at >= st.created_at and st.finished_at >= st.started_at

    path = log_file(env, pod, cid)
    records = harness.cri_log_records(path)
    # No record is longer than the configured maximum.
    assert all(len(r[3].encode()) <= POD_LOG_LINE_MAX for r in records), records
    lines = harness.cri_log_lines(path)
    assert ("stdout", "hello", True) in lines
    assert ("stderr", "oops", True) in lines
    assert ("stdout", long, True) in lines, "long line not reassembled from P records"
    assert sum(1 for r in records if r[1] == "stdout" and r[2] == "P" and r[3].startswith("L")) >= 2
    # The last line had no newline: a partial (P) record, never an F.
    assert records[-1][1:] == ("stdout", "P", "partial") or \
        ("stdout", "partial", False) in lines, records[-3:]

    k.remove(cid)
    e = rpc_error(k.status, cid)
    assert e.code() == grpc.StatusCode.NOT_FOUND
    k.remove(cid)  # twice: fine
    k.stop_pod(pod)
    k.remove_pod(pod)
    assert_no_leftovers(env, [pod, cid])


def test_exit_code_and_completed(pod_env, cri):
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("ctr-exit"))
    ok = k.run(pod, sh_config("ok", env.images.busybox, "exit 0"))
    st = k.wait_state(ok, cri.CONTAINER_EXITED)
    assert (st.exit_code, st.reason) == (0, "Completed")


def test_oom_killed(pod_env, cri):
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("ctr-oom"))
    cfg = sh_config("hog", env.images.busybox, "x=aaaaaaaa; while :; do x=$x$x; done")
    cfg.linux.resources.memory_limit_in_bytes = 16 * MiB
    cfg.linux.resources.memory_swap_limit_in_bytes = 16 * MiB
    cid = k.run(pod, cfg)
    st = k.wait_state(cid, cri.CONTAINER_EXITED, timeout=60)
    assert st.reason == "OOMKilled", (st.reason, st.exit_code, st.message)
    assert st.exit_code == 137


def test_stop_with_timeout(pod_env, cri):
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("ctr-stop"))
    # As pid 1 of its namespace, a process gets only the signals it handles.
    polite = k.run(pod, sh_config("polite", env.images.busybox,
                                  "trap 'exit 143' TERM; while :; do sleep 0.2; done"))
    stubborn = k.run(pod, sh_config("stubborn", env.images.busybox,
                                    "trap '' TERM; while :; do sleep 1; done"))
    time.sleep(0.5)  # let the trap be set

    t = time.monotonic()
    k.stop(polite, timeout=30)
    assert time.monotonic() - t < 10, "SIGTERM did not stop sleep"
    st = k.status(polite)
    assert st.state == cri.CONTAINER_EXITED and st.exit_code == 143, st

    t = time.monotonic()
    k.stop(stubborn, timeout=2)
    took = time.monotonic() - t
    assert 1.8 <= took < 15, took
    st = k.status(stubborn)
    assert st.state == cri.CONTAINER_EXITED and st.exit_code == 137, st
    k.stop(stubborn, timeout=2)  # stopping a stopped container is fine


def test_list_containers_filters(pod_env, cri):
    env, k = pod_env, pod_env.cri
    pa = k.run_pod(pod_config("ctr-list-a"))
    pb = k.run_pod(pod_config("ctr-list-b"))
    a1 = k.run(pa, container_config("a1", env.images.busybox, labels={"app": "x", "n": "1"}))
    a2 = k.create(pa, container_config("a2", env.images.busybox, labels={"app": "x", "n": "2"}))
    b1 = k.run(pb, container_config("b1", env.images.busybox, labels={"app": "y"}))

    ids = lambda cs: sorted(c.id for c in cs)  # noqa: E731
    assert ids(k.list_containers()) == sorted([a1, a2, b1])
    assert ids(k.list_containers(id=a1)) == [a1]
    assert ids(k.list_containers(id=a2[:10])) == [a2]
    assert ids(k.list_containers(pod_id=pa)) == sorted([a1, a2])
    assert ids(k.list_containers(pod_id=pb[:12])) == [b1]
    assert ids(k.list_containers(state=cri.CONTAINER_CREATED)) == [a2]
    assert ids(k.list_containers(state=cri.CONTAINER_RUNNING)) == sorted([a1, b1])
    assert ids(k.list_containers(labels={"app": "x"})) == sorted([a1, a2])
    assert ids(k.list_containers(labels={"app": "x", "n": "2"})) == [a2]
    assert ids(k.list_containers(labels={"app": "x"}, state=cri.CONTAINER_RUNNING)) == [a1]
    assert ids(k.list_containers(id="f" * 64)) == []
    c = k.list_containers(id=b1)[0]
    assert c.pod_sandbox_id == pb and c.metadata.name == "b1"
    assert c.image.image == env.images.busybox and c.image_ref.startswith("sha256:")
    assert c.labels["app"] == "y"
    # RemovePodSandbox removes its containers too.
    k.stop_pod(pa)
    k.remove_pod(pa)
    assert ids(k.list_containers()) == [b1]
    assert_no_leftovers(env, [pa, a1, a2])


def test_lists_show_what_status_shows(pod_env, cri):
    """ListContainers and ListPodSandbox ask runtimed for brief records
    (config cut to metadata, labels, annotations): what they show must still
    be what the status calls show, and the records keep their whole config."""
    env, k = pod_env, pod_env.cri
    pcfg = pod_config("brief-pod", attempt=2, labels={"app": "brief", "tier": "b"},
                      annotations={"note": "y" * 300, "other": "z"}, hostname="brief-host")
    pod = k.run_pod(pcfg)
    ccfg = container_config("brief-ctr", env.images.busybox, labels={"app": "brief", "c": "1"},
                            annotations={"io.kubernetes.container.hash": "abc123"},
                            env={"BRIEF_ENV_%d" % i: b"v%d" % i for i in range(20)})
    ccfg.metadata.attempt = 4
    ctr = k.create(pod, ccfg)

    listed = k.list_pods(labels={"tier": "b"})
    st = k.pod_status(pod).status
    assert [p.id for p in listed] == [pod]
    lp = listed[0]
    assert lp.metadata == st.metadata and lp.metadata.attempt == 2
    assert lp.metadata.uid == pcfg.metadata.uid and lp.metadata.namespace == "crisp-it"
    assert dict(lp.labels) == dict(st.labels) == {"app": "brief", "tier": "b"}
    assert dict(lp.annotations) == dict(st.annotations) == {"note": "y" * 300, "other": "z"}
    assert lp.created_at == st.created_at and lp.state == cri.SANDBOX_READY
    assert lp.runtime_handler == st.runtime_handler

    listed = k.list_containers(labels={"c": "1"})
    cs = k.status(ctr)
    assert [c.id for c in listed] == [ctr]
    lc = listed[0]
    assert lc.metadata == cs.metadata and lc.metadata.attempt == 4
    assert dict(lc.labels) == dict(cs.labels) == {"app": "brief", "c": "1"}
    assert dict(lc.annotations) == dict(cs.annotations) == {"io.kubernetes.container.hash":
                                                            "abc123"}
    assert lc.pod_sandbox_id == pod and lc.created_at == cs.created_at
    assert lc.image.image == cs.image.image and lc.image_ref == cs.image_ref
    assert lc.state == cri.CONTAINER_CREATED

    # After the lists, the records still hold what only the status calls show.
    info = json.loads(k.c.call("ContainerStatus", cri.ContainerStatusRequest(
        container_id=ctr, verbose=True)).info["info"])
    envs = {e["key"]: e["value"] for e in info["config"]["envs"]}
    assert len([e for e in envs if e.startswith("BRIEF_ENV_")]) == 20, info["config"]
    assert envs["BRIEF_ENV_7"] == "v7", info["config"]  # env values as text
    pinfo = json.loads(k.pod_status(pod, verbose=True).info["info"])
    assert pinfo["config"]["hostname"] == "brief-host", pinfo["config"]
    k.stop_pod(pod)
    k.remove_pod(pod)
    assert k.list_containers() == [] and k.list_pods() == []
    assert_no_leftovers(env, [pod, ctr])


def test_container_requests_validated(pod_env, cri):
    env, k, c = pod_env, pod_env.cri, pod_env.c
    pod = k.run_pod(pod_config("ctr-valid"))
    sc = k.pods[pod]
    for cfg, what in ((container_config("", env.images.busybox), "metadata.name"),
                      (container_config("x", ""), "image")):
        e = rpc_error(c.call, "CreateContainer", cri.CreateContainerRequest(
            pod_sandbox_id=pod, config=cfg, sandbox_config=sc))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and what in e.details(), e.details()
    e = rpc_error(c.call, "CreateContainer", cri.CreateContainerRequest(
        pod_sandbox_id=pod, config=container_config("x", "no-such-image:1"), sandbox_config=sc))
    assert e.details().startswith("image snapshot"), e.details()
    unknown = "ab" * 32
    for method, req in (("StartContainer", cri.StartContainerRequest(container_id=unknown)),
                        ("ContainerStatus", cri.ContainerStatusRequest(container_id=unknown)),
                        ("ContainerStatus", cri.ContainerStatusRequest(container_id="zz"))):
        e = rpc_error(c.call, method, req)
        assert e.code() == grpc.StatusCode.NOT_FOUND, (method, e.code(), e.details())
    # Stopping or removing what is not there succeeds (the CRI says so).
    c.call("StopContainer", cri.StopContainerRequest(container_id=unknown))
    c.call("StopContainer", cri.StopContainerRequest(container_id="zz"))
    e = rpc_error(c.call, "StopContainer", cri.StopContainerRequest())
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.code(), e.details())
    c.call("RemoveContainer", cri.RemoveContainerRequest(container_id=unknown))
    assert k.list_containers() == []
    cid = k.run(pod, container_config("v", env.images.busybox))
    for cmd, timeout in (([], 1), ([""], 1), (["true"], -1), (["x" * 1024] * 200, 1)):
        e = rpc_error(c.call, "ExecSync", cri.ExecSyncRequest(container_id=cid, cmd=cmd,
                                                              timeout=timeout))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (cmd[:1], e.code(), e.details())
    up = cri.UpdateContainerResourcesRequest(container_id=cid)
    e = rpc_error(c.call, "UpdateContainerResources", up)
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "linux" in e.details()


# --- exec ---------------------------------------------------------------------------------


def test_exec_sync(pod_env, cri):
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("ctr-exec"))
    cid = k.run(pod, container_config("box", env.images.busybox))
    r = k.exec_sync(cid, ["sh", "-c", "echo out; echo err >&2; exit 5"])
    assert (r.stdout, r.stderr, r.exit_code) == (b"out\n", b"err\n", 5)
    assert k.exec_sync(cid, ["true"]).exit_code == 0
    t = time.monotonic()
    e = rpc_error(k.exec_sync, cid, ["sleep", "30"], timeout=1)
    assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, (e.code(), e.details())
    assert time.monotonic() - t < 20
    # The timed-out command was killed: only the container's own sleep is left.
    harness.wait_for(lambda: k.sh(cid, "ps -o comm | grep -c '^sleep$'")[1].strip() == "1",
                     10, what="the timed-out exec killed")
    k.stop(cid, timeout=0)
    e = rpc_error(k.exec_sync, cid, ["true"])
    assert e.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND), e


# --- security context ----------------------------------------------------------------------


def test_users(pod_env, cri):
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("ctr-users"))
    image_user = k.run(pod, container_config("img", env.images.nonroot))
    assert k.sh(image_user, "id -u; id -g")[1].split() == ["1000", "1000"]
    cfg = container_config("asuser", env.images.busybox)
    cfg.linux.security_context.run_as_user.value = 4242
    cfg.linux.security_context.run_as_group.value = 4343
    as_user = k.run(pod, cfg)
    assert k.sh(as_user, "id -u; id -g")[1].split() == ["4242", "4343"]


def cap_eff(k, cid):
    code, out, _ = k.sh(cid, "grep CapEff /proc/self/status")
    assert code == 0, out
    return int(out.split()[1], 16)


def test_capabilities(pod_env, cri):
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("ctr-caps"))
    default = k.run(pod, container_config("default", env.images.busybox))
    dropped = container_config("dropped", env.images.busybox)
    dropped.linux.security_context.capabilities.drop_capabilities.append("ALL")
    dropped = k.run(pod, dropped)
    added = container_config("added", env.images.busybox)
    added.linux.security_context.capabilities.drop_capabilities.append("ALL")
    added.linux.security_context.capabilities.add_capabilities.append("CAP_NET_ADMIN")
    added = k.run(pod, added)
    CAP_NET_RAW, CAP_NET_ADMIN, CAP_SYS_ADMIN = 1 << 13, 1 << 12, 1 << 21
    d = cap_eff(k, default)
    assert d != 0 and not d & CAP_SYS_ADMIN, hex(d)
    assert cap_eff(k, dropped) == 0
    assert cap_eff(k, added) == CAP_NET_ADMIN
    assert not cap_eff(k, added) & CAP_NET_RAW


def test_readonly_rootfs(pod_env, cri):
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("ctr-ro"))
    cfg = container_config("ro", env.images.busybox)
    cfg.linux.security_context.readonly_rootfs = True
    ro = k.run(pod, cfg)
    code, _, err = k.sh(ro, "touch /newfile")
    assert code != 0 and "Read-only" in err, err
    rw = k.run(pod, container_config("rw", env.images.busybox))
    assert k.sh(rw, "touch /newfile")[0] == 0


def test_seccomp_runtime_default_blocks_unshare(pod_env, cri):
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("ctr-seccomp"))
    confined = container_config("confined", env.images.busybox)
    confined.linux.security_context.seccomp.profile_type = cri.SecurityProfile.RuntimeDefault
    confined = k.run(pod, confined)
    free = container_config("free", env.images.busybox)
    free.linux.security_context.seccomp.profile_type = cri.SecurityProfile.Unconfined
    free = k.run(pod, free)
    # A user namespace needs no capability: only the profile stops it.
    assert k.sh(free, "/bin/busybox unshare -U true")[0] == 0
    code, _, err = k.sh(confined, "/bin/busybox unshare -U true")
    assert code != 0 and "not permitted" in err, err


def test_privileged_sees_host_devices(pod_env, cri):
    env, k = pod_env, pod_env.cri
    dev = next(d for d in ("kmsg", "loop-control", "mem") if os.path.exists("/dev/" + d))
    pod = k.run_pod(pod_config("ctr-priv", privileged=True))
    priv = container_config("priv", env.images.busybox)
    priv.linux.security_context.privileged = True
    priv = k.run(pod, priv)
    plain = k.run(pod, container_config("plain", env.images.busybox))
    assert k.sh(priv, "test -e /dev/%s" % dev)[0] == 0
    assert k.sh(plain, "test -e /dev/%s" % dev)[0] != 0
    assert cap_eff(k, priv) & (1 << 21)


def test_sysctls_and_host_namespaces(pod_env, cri):
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("ctr-ns", sysctls={"kernel.shm_rmid_forced": "1"}))
    cid = k.run(pod, container_config("c", env.images.busybox))
    assert k.sh(cid, "cat /proc/sys/kernel/shm_rmid_forced")[1].strip() == "1"

    def ns(cid, kind):
        return k.sh(cid, "readlink /proc/self/ns/%s" % kind)[1].strip()

    # The test runs in the host's namespaces, as crispd does.
    host = {kind: os.readlink("/proc/self/ns/%s" % kind) for kind in ("net", "pid", "ipc")}
    # This pod: host network, its own pid and ipc namespaces.
    assert ns(cid, "net") == host["net"]
    assert ns(cid, "pid") != host["pid"]
    assert ns(cid, "ipc") != host["ipc"]
    hpod = k.run_pod(pod_config("ctr-hostns", host_pid=True, host_ipc=True))
    hc = k.run(hpod, container_config("c", env.images.busybox))
    assert ns(hc, "pid") == host["pid"] and ns(hc, "ipc") == host["ipc"]


# --- resources -------------------------------------------------------------------------------


def cgroup_value(k, cid, path):
    code, out, err = k.sh(cid, "cat /sys/fs/cgroup/%s" % path)
    assert code == 0, err
    return out.strip()


def test_resources_and_update(pod_env, cri):
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("ctr-res"))
    cfg = container_config("res", env.images.busybox)
    r = cfg.linux.resources
    r.cpu_shares = 512
    r.cpu_period = 100000
    r.cpu_quota = 50000
    r.memory_limit_in_bytes = 64 * MiB
    r.memory_swap_limit_in_bytes = 64 * MiB  # no swap, as the kubelet asks
    cid = k.run(pod, cfg)
    assert cgroup_value(k, cid, "cpu/cpu.shares") == "512"
    assert cgroup_value(k, cid, "cpu/cpu.cfs_quota_us") == "50000"
    assert cgroup_value(k, cid, "memory/memory.limit_in_bytes") == str(64 * MiB)

    up = cri.UpdateContainerResourcesRequest(container_id=cid)
    up.linux.cpu_shares = 1024
    up.linux.cpu_period = 100000
    up.linux.cpu_quota = 25000
    up.linux.memory_limit_in_bytes = 128 * MiB
    up.linux.memory_swap_limit_in_bytes = 128 * MiB
    env.c.call("UpdateContainerResources", up)
    assert cgroup_value(k, cid, "cpu/cpu.shares") == "1024"
    assert cgroup_value(k, cid, "cpu/cpu.cfs_quota_us") == "25000"
    assert cgroup_value(k, cid, "memory/memory.limit_in_bytes") == str(128 * MiB)
    st = k.status(cid)
    assert st.resources.linux.memory_limit_in_bytes in (64 * MiB, 128 * MiB)


# --- stats and metrics -----------------------------------------------------------------------


def test_stats_and_metrics(pod_env, cri):
    env, k, c = pod_env, pod_env.cri, pod_env.c
    pod = k.run_pod(pod_config("ctr-stats", labels={"s": "1"}))
    cid = k.run(pod, sh_config("busy", env.images.busybox,
                               "dd if=/dev/zero of=/f bs=1k count=256; "
                               "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 3600"))
    time.sleep(2)
    s = c.call("ContainerStats", cri.ContainerStatsRequest(container_id=cid)).stats
    assert s.attributes.id == cid and s.attributes.metadata.name == "busy"
    assert s.cpu.usage_core_nano_seconds.value > 0
    assert s.memory.working_set_bytes.value > 0
    assert s.writable_layer.fs_id.mountpoint
    assert s.writable_layer.used_bytes.value >= 256 * 1024
    listed = c.call("ListContainerStats", cri.ListContainerStatsRequest()).stats
    assert [x.attributes.id for x in listed] == [cid]
    req = cri.ListContainerStatsRequest()
    req.filter.pod_sandbox_id = pod[:10]
    assert [x.attributes.id for x in c.call("ListContainerStats", req).stats] == [cid]

    ps = c.call("PodSandboxStats", cri.PodSandboxStatsRequest(pod_sandbox_id=pod)).stats
    assert ps.attributes.id == pod and ps.attributes.labels["s"] == "1"
    assert ps.linux.cpu.usage_core_nano_seconds.value > 0
    assert ps.linux.process.process_count.value >= 1
    assert [x.attributes.id for x in ps.linux.containers] == [cid]
    lps = c.call("ListPodSandboxStats", cri.ListPodSandboxStatsRequest()).stats
    assert [x.attributes.id for x in lps] == [pod]

    names = {d.name for d in c.call("ListMetricDescriptors",
                                    cri.ListMetricDescriptorsRequest()).descriptors}
    for n in ("container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
              "container_network_receive_bytes_total", "container_fs_usage_bytes"):
        assert n in names
    pm = c.call("ListPodSandboxMetrics", cri.ListPodSandboxMetricsRequest()).pod_metrics
    assert [p.pod_sandbox_id for p in pm] == [pod]
    cm = {m.name: m for m in pm[0].container_metrics[0].metrics}
    assert cm["container_memory_working_set_bytes"].value.value > 0
    assert pm[0].container_metrics[0].container_id == cid


# --- events ---------------------------------------------------------------------------------------


class EventStream:
    """A GetContainerEvents subscriber on its own thread."""

    def __init__(self, sock):
        self.ch = grpc.insecure_channel(
            "unix:" + sock, options=[("grpc.use_local_subchannel_pool", 1)])
        fn = self.ch.unary_stream(harness.method_path("GetContainerEvents"),
                                  request_serializer=lambda m: m.SerializeToString(),
                                  response_deserializer=harness.cri.ContainerEventResponse.FromString)
        self.call = fn(harness.cri.GetEventsRequest(), timeout=120)
        self.events = queue.Queue()
        self.error = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for ev in self.call:
                self.events.put(ev)
        except grpc.RpcError as e:
            self.error = e

    def wait_for(self, cid, kinds, timeout=30):
        """The events of cid until all kinds were seen, in order of arrival."""
        seen = []
        deadline = time.monotonic() + timeout
        while not all(x in [e.container_event_type for e in seen] for x in kinds):
            left = deadline - time.monotonic()
            assert left > 0, "events seen for %s: %r" % (cid[:12], seen)
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if ev.container_id == cid:
                seen.append(ev)
        return seen

    def close(self):
        self.call.cancel()
        self.ch.close()


def test_events_two_subscribers(pod_env, cri):
    env, k = pod_env, pod_env.cri
    streams = [EventStream(env.c.sock), EventStream(env.c.sock)]
    try:
        time.sleep(0.5)  # both subscribed before anything happens
        pod = k.run_pod(pod_config("ctr-events"))
        cid = k.run(pod, container_config("e", env.images.busybox))
        k.stop(cid, timeout=0)
        k.remove(cid)
        kinds = [cri.CONTAINER_CREATED_EVENT, cri.CONTAINER_STARTED_EVENT,
                 cri.CONTAINER_STOPPED_EVENT, cri.CONTAINER_DELETED_EVENT]
        for s in streams:
            seen = s.wait_for(cid, kinds)
            assert [e.container_event_type for e in seen] == kinds, seen
            assert all(e.pod_sandbox_status.id == pod for e in seen)
            assert all(e.created_at > 0 for e in seen)
            started = seen[1]
            assert [x.id for x in started.containers_statuses] == [cid]
            assert s.error is None, s.error
    finally:
        for s in streams:
            s.close()
    # The server dropped both subscriptions and still serves.
    assert env.c.serves()


# --- recovery --------------------------------------------------------------------------------------


def recovery_scenario(env, cri, restart):
    """Containers running and one exiting while restart() takes crisp (or a
    part of it) down: afterwards states and exit codes are right, logs go
    on, and stop/remove clean up everything."""
    k = env.cri
    pod = k.run_pod(pod_config("ctr-recover"))
    runner = k.run(pod, container_config("runner", env.images.busybox))
    ticker = k.run(pod, sh_config("ticker", env.images.busybox,
                                  "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.2; done"))
    quitter = k.run(pod, sh_config("quitter", env.images.busybox, "sleep 2; exit 7"))
    log = log_file(env, pod, ticker)
    restart()
    time.sleep(3)  # the quitter exits while (or right after) crisp is down
    harness.wait_for(lambda: env.c.serves(), 30, what="crisp serving again")

    def settled():
        try:
            return k.status(quitter).state == cri.CONTAINER_EXITED
        except grpc.RpcError:
            return False
    harness.wait_for(settled, 30, what="the quitter reported exited")
    assert k.status(quitter).exit_code == 7
    assert k.status(runner).state == cri.CONTAINER_RUNNING
    assert k.status(ticker).state == cri.CONTAINER_RUNNING
    assert k.pod_status(pod).status.state == cri.SANDBOX_READY
    n = len(harness.cri_log_lines(log))
    harness.wait_for(lambda: len(harness.cri_log_lines(log)) > n + 2, 10,
                     what="the ticker's log to go on")
    assert k.sh(runner, "echo alive")[1] == "alive\n"
    ids = [pod, runner, ticker, quitter]
    k.stop(runner, timeout=1)
    k.stop_pod(pod)
    k.remove_pod(pod)
    assert k.list_containers() == [] and k.list_pods() == []
    assert_no_leftovers(env, ids)


def test_runtimed_killed(pod_env, cri):
    env = pod_env

    def restart():
        old = env.c.children()["crisp-runtimed"]
        os.kill(old, signal.SIGKILL)
        env.c.wait_new_pid("crisp-runtimed", old, 15)

    recovery_scenario(env, cri, restart)


def test_crispd_restarted(pod_env, cri):
    env = pod_env

    def restart():
        assert env.c.terminate(timeout=15) == 0
        env.c.start(timeout=30)

    recovery_scenario(env, cri, restart)


def test_node_reboot(pod_env, cri):
    """A node restart: every process gone and the state dir (a tmpfs) empty.
    crisp comes back with what it recorded: the pod not ready, a container
    that ran reported exited and lost, one that had exited with its real
    code, and all of it removable without leftovers."""
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("ctr-reboot"))
    runner = k.run(pod, container_config("runner", env.images.busybox))
    done = k.run(pod, sh_config("done", env.images.busybox, "exit 3"))
    harness.wait_for(lambda: k.status(done).state == cri.CONTAINER_EXITED, 15,
                     what="the container that exits 3")
    assert env.c.terminate(timeout=15) == 0
    # the reboot: the pods' processes die, then the tmpfs is gone
    env.c.kill_leftover_containers()
    state = env.c.config["crispd"]["state_dir"]
    for mp in reversed(harness.mounts_under(state)):
        subprocess.run(["umount", "-l", mp], check=False)
    shutil.rmtree(state)
    env.c.start(timeout=30)
    st = k.status(runner)
    assert st.state == cri.CONTAINER_EXITED, st
    assert st.exit_code != 0 and st.finished_at > 0, st
    st = k.status(done)
    assert st.state == cri.CONTAINER_EXITED and st.exit_code == 3, st
    assert k.pod_status(pod).status.state == cri.SANDBOX_NOTREADY
    k.stop_pod(pod)
    k.remove_pod(pod)
    assert k.list_containers() == [] and k.list_pods() == []
    assert_no_leftovers(env, [pod, runner, done])


def test_reopen_container_log(pod_env, cri):
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("ctr-reopen"))
    cid = k.run(pod, sh_config("t", env.images.busybox,
                               "i=0; while :; do echo line $i; i=$((i+1)); sleep 0.1; done"))
    log = log_file(env, pod, cid)
    harness.wait_for(lambda: os.path.getsize(log) > 0, 10, what="first log lines")
    os.rename(log, log + ".1")
    env.c.call("ReopenContainerLog", cri.ReopenContainerLogRequest(container_id=cid))
    harness.wait_for(lambda: os.path.exists(log) and len(harness.cri_log_lines(log)) >= 2, 10,
                     what="lines in the reopened log")
    assert harness.cri_log_lines(log + ".1")


def test_events_subscribers_end_cleanly(pod_env, cri):
    """A subscriber that leaves is forgotten; one still subscribed when crisp
    stops gets an error, and the frontend stops promptly."""
    env = pod_env
    gone = EventStream(env.c.sock)
    time.sleep(0.3)
    gone.close()
    staying = EventStream(env.c.sock)
    time.sleep(0.3)
    mark = env.c.mark()
    pod = env.cri.run_pod(pod_config("ctr-events-end"))
    env.cri.stop_pod(pod)
    env.cri.remove_pod(pod)
    t = time.monotonic()
    assert env.c.terminate(timeout=15) == 0
    assert time.monotonic() - t < 5
    staying.thread.join(5)
    assert staying.error is not None
    assert staying.error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED), \
        staying.error
    assert not [ln for ln in env.c.lines(mark) if "bug:" in ln or "SIGSEGV" in ln]
    staying.close()


# --- start racing the exit, stored resources, limits -----------------------------------------


SLOW_START = """#!/bin/sh
# runc, but `run` (the monitor's, which starts the container) returns only a
# second after the container started: a container that exits at once has
# exited long before its monitor reports it started.
%s "$@"
rc=$?
case " $* " in *" run "*) sleep 1 ;; esac
exit $rc
"""


def test_start_reply_after_exit(pod_env_factory, cri, tmp_path):
    script = tmp_path / "slow-start-runc"
    script.write_text(SLOW_START % shutil.which("runc"))
    script.chmod(0o755)
    env = pod_env_factory(config={'runtime_handler "slow-start"': {"path": str(script)}})
    k = env.cri
    pod = k.run_pod(pod_config("ctr-slow-start"), handler="slow-start")
    cid = k.create(pod, sh_config("quick", env.images.busybox, "exit 4"))
    before = time.time_ns()
    k.start(cid)
    st = k.wait_state(cid, cri.CONTAINER_EXITED, timeout=15)
    # The exit came before the start was reported: the start time is the
    # one taken before the start, never after the finish.
    assert st.exit_code == 4 and st.reason == "Error", st
    assert before <= st.started_at <= st.finished_at, (before, st.started_at, st.finished_at)
    assert st.finished_at < time.time_ns()
    k.remove(cid)
    assert_no_leftovers(env, [cid])


NO_FEATURES = """#!/bin/sh
# runc, as an older one: no `features` subcommand (so no "rro" listed).
case " $* " in *" features "*) echo 'No help topic for features' >&2; exit 1 ;; esac
exec %s "$@"
"""


def test_recursive_read_only_needs_the_runtime(pod_env_factory, cri, tmp_path):
    """A recursive read-only mount is refused, saying why, for a pod whose
    runtime does not list "rro" in its features (as Status reports); the
    default handler's runc 1.1 has them."""
    script = tmp_path / "old-runc"
    script.write_text(NO_FEATURES % shutil.which("runc"))
    script.chmod(0o755)
    env = pod_env_factory(config={'runtime_handler "old-runc"': {"path": str(script)}})
    k = env.cri
    src = tmp_path / "rro-src"
    src.mkdir()

    def rro_config(name):
        cfg = container_config(name, env.images.busybox)
        m = cfg.mounts.add()
        m.container_path, m.host_path = "/data", str(src)
        m.readonly = m.recursive_read_only = True
        m.propagation = cri.PROPAGATION_PRIVATE
        return cfg

    old = k.run_pod(pod_config("rro-old"), handler="old-runc")
    e = rpc_error(k.create, old, rro_config("rro-refused"))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.code(), e.details())
    assert "recursive read-only" in e.details() and "rro" in e.details(), e.details()
    pod = k.run_pod(pod_config("rro-default"))
    cid = k.run(pod, rro_config("rro-made"))
    assert k.status(cid).state == cri.CONTAINER_RUNNING
    k.stop_pod(old)
    k.remove_pod(old)
    k.stop_pod(pod)
    k.remove_pod(pod)
    assert_no_leftovers(env, [old, pod, cid])


def test_update_resources_stored(pod_env, cri):
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("ctr-res-stored"))
    cfg = container_config("res", env.images.busybox)
    cfg.linux.resources.cpu_shares = 512
    cfg.linux.resources.memory_limit_in_bytes = 64 * MiB
    cid = k.run(pod, cfg)
    up = cri.UpdateContainerResourcesRequest(container_id=cid)
    up.linux.memory_limit_in_bytes = 96 * MiB
    up.linux.memory_swap_limit_in_bytes = 96 * MiB
    env.c.call("UpdateContainerResources", up)
    # The bundle's spec says what is in force (what was not updated stays) ...
    bundle = os.path.join(env.c.config["crispd"]["state_dir"], "runtimed", "bundles", cid)
    with open(os.path.join(bundle, "config.json")) as f:
        res = json.load(f)["linux"]["resources"]
    assert res["memory"]["limit"] == 96 * MiB, res
    assert res["cpu"]["shares"] == 512, res
    # ... and so does the record, which the frontend reloads when runtimed
    # comes back.
    old = env.c.children()["crisp-runtimed"]
    os.kill(old, signal.SIGKILL)
    env.c.wait_new_pid("crisp-runtimed", old, 15)

    def reloaded():
        try:
            return k.status(cid).resources.linux.memory_limit_in_bytes == 96 * MiB
        except grpc.RpcError:
            return False
    harness.wait_for(reloaded, 30, what="ContainerStatus showing the updated memory limit")
    assert k.status(cid).resources.linux.cpu_shares == 512
    assert cgroup_value(k, cid, "memory/memory.limit_in_bytes") == str(96 * MiB)


def test_nofile_limit(pod_env_factory, cri):
    """Containers get RLIMIT_NOFILE soft = hard = 1048576 (containerd's
    default) or crisp's hard limit where that is lower, never what crisp was
    started with: here a low soft limit, and where the test may raise it, a
    hard limit above the default (runc raises its soft limit to its hard one,
    so only a hard limit above 1048576 tells an inherited limit apart)."""
    with open("/proc/sys/fs/nr_open") as f:
        nr_open = int(f.read())
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    crisp_hard = hard
    try:
        try:
            with open("/proc/sys/fs/nr_open", "w") as f:
                f.write(str(max(nr_open, 2 * 1048576)))
            resource.setrlimit(resource.RLIMIT_NOFILE, (512, 2 * 1048576))
            crisp_hard = 2 * 1048576
        except (OSError, ValueError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(512, hard), hard))
        env = pod_env_factory()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        with open("/proc/sys/fs/nr_open", "w") as f:
            f.write(str(nr_open))
    want = 1048576 if crisp_hard > hard else min(1048576, hard, nr_open)
    k = env.cri
    pod = k.run_pod(pod_config("ctr-nofile"))
    cid = k.run(pod, container_config("nofile", env.images.busybox))
    code, out, err = k.sh(cid, "ulimit -Sn; ulimit -Hn")
    assert code == 0, err
    assert out.split() == [str(want), str(want)], out


def test_copy_snapshot_bind_mounted(pod_env_factory, cri):
    """Where imaged makes copy snapshots (no overlayfs), runtimed
    bind-mounts the copy as the rootfs (nodev, like the overlay), the
    container writes into it, and its stats measure it."""
    env = pod_env_factory(config={"images": {"snapshotter": "copy"}})
    k = env.cri
    pod = k.run_pod(pod_config("ctr-copy"))
    cid = k.run(pod, sh_config("copy", env.images.busybox,
                               "dd if=/dev/zero of=/written bs=1k count=300; sleep 3600"))
    assert k.sh(cid, "cat /etc/passwd >/dev/null && echo ok")[1] == "ok\n"
    rootfs = os.path.join(env.c.config["crispd"]["state_dir"], "runtimed", "bundles", cid,
                          "rootfs")
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split() for line in f]
    mine = [m for m in mounts if m[4] == rootfs]
    assert len(mine) == 1, mine
    sep = mine[0].index("-")
    assert mine[0][sep + 1] != "overlay", mine[0]
    assert "nodev" in mine[0][5].split(","), mine[0]
    snapshots = os.path.join(env.c.config["crispd"]["root_dir"], "imaged", "snapshots")

    def measured():
        s = env.c.call("ContainerStats", cri.ContainerStatsRequest(container_id=cid)).stats
        return s.writable_layer.used_bytes.value >= 300 * 1024 and s
    s = harness.wait_for(measured, 10, what="the copy's usage in the stats")
    copy = s.writable_layer.fs_id.mountpoint
    assert copy.startswith(snapshots + "/"), copy
    # the mount's root (within its filesystem) is that copy
    assert mine[0][3].endswith("/" + os.path.basename(copy)), (mine[0], copy)
    k.stop(cid, timeout=1)
    k.remove(cid)
    k.stop_pod(pod)
    k.remove_pod(pod)
    assert_no_leftovers(env, [pod, cid])


# --- CreateContainer prepares, StartContainer runs: one runc invocation ------------------


def runc_state_dir(env, cid):
    return os.path.join(env.c.config["crispd"]["state_dir"], "runtimed", "runc", cid)


def test_created_container_has_no_process(pod_env_factory, cri):
    """CreateContainer writes the bundle only: no monitor, no runc state,
    no cgroup until StartContainer; the start is one `runc run`."""
    env = pod_env_factory(config={"crispd": {"log_level": "debug"}})
    k = env.cri
    pod = k.run_pod(pod_config("ctr-lazy"))
    mark = env.c.mark()
    cid = k.create(pod, container_config("lazy", env.images.busybox))
    assert k.status(cid).state == cri.CONTAINER_CREATED
    assert not harness.monitor_processes([cid])
    assert not os.path.exists(runc_state_dir(env, cid))
    assert not harness.cgroups_named([cid])
    # A created container's stats are zeros, not an error.
    s = env.c.call("ContainerStats", cri.ContainerStatsRequest(container_id=cid)).stats
    assert s.attributes.id == cid
    assert s.cpu.usage_core_nano_seconds.value == 0 and s.memory.working_set_bytes.value == 0
    k.start(cid)
    assert k.status(cid).state == cri.CONTAINER_RUNNING
    assert harness.monitor_processes([cid])
    line = env.c.wait_log(r"runc run %s: [0-9.]+ ms \(in its monitor" % cid, mark, 10)
    assert line
    calls = [ln for ln in env.c.lines(mark) if cid in ln and
             any(" runc %s " % sub in ln for sub in ("create", "start", "run"))]
    assert len(calls) == 1 and "runc run" in calls[0], calls


def test_start_of_missing_executable_fails_cleanly(pod_env, cri):
    """What runc create used to report at CreateContainer comes at
    StartContainer now: the start fails with runc's message, the container
    is EXITED with reason StartError, and nothing of it is left."""
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("ctr-noexec"))
    cid = k.create(pod, container_config("noexec", env.images.busybox,
                                         command=["no-such-executable"]))
    assert k.status(cid).state == cri.CONTAINER_CREATED
    e = rpc_error(k.start, cid)
    assert "no-such-executable" in e.details() and "not found" in e.details(), e.details()
    st = k.status(cid)
    assert st.state == cri.CONTAINER_EXITED, st
    assert st.exit_code == 128 and st.reason == "StartError", st
    assert "no-such-executable" in st.message, st.message
    assert st.finished_at > 0 and st.started_at == 0, st
    # the monitor exits right after it reported the failure
    harness.wait_for(lambda: not harness.monitor_processes([cid]), 10,
                     what="the monitor of the failed start to exit")
    assert not os.path.exists(runc_state_dir(env, cid))
    assert not harness.cgroups_named([cid])
    bundle = os.path.join(env.c.config["crispd"]["state_dir"], "runtimed", "bundles", cid)
    assert not [f for f in os.listdir(bundle) if f.endswith(".sock") or f == "starting"]
    # It cannot be started again, and goes like any exited container.
    e = rpc_error(k.start, cid)
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION, e
    k.remove(cid)
    k.stop_pod(pod)
    k.remove_pod(pod)
    assert_no_leftovers(env, [pod, cid])


def test_stop_and_remove_never_started(pod_env_factory, cri):
    """A created container that never started stops and goes without any
    runc call, as it was seen before: EXITED, killed by the stop's signal."""
    env = pod_env_factory(config={"crispd": {"log_level": "debug"}})
    k = env.cri
    streams = [EventStream(env.c.sock)]
    try:
        time.sleep(0.3)
        pod = k.run_pod(pod_config("ctr-never"))
        mark = env.c.mark()
        a = k.create(pod, container_config("a", env.images.busybox))
        b = k.create(pod, container_config("b", env.images.busybox))
        c = k.create(pod, container_config("c", env.images.busybox))
        k.stop(a, timeout=10)
        st = k.status(a)
        assert st.state == cri.CONTAINER_EXITED and st.exit_code == 143, st
        assert st.reason == "Error" and st.started_at == 0 and st.finished_at > 0, st
        k.stop(a, timeout=10)  # again: fine
        k.remove(a)
        k.remove(b)  # never stopped: removed all the same
        with pytest.raises(grpc.RpcError):
            k.status(b)
        k.stop_pod(pod)
        st = k.status(c)
        assert st.state == cri.CONTAINER_EXITED and st.exit_code == 137, st
        k.remove_pod(pod)
        assert k.list_containers() == []
        kinds = [cri.CONTAINER_CREATED_EVENT, cri.CONTAINER_STOPPED_EVENT,
                 cri.CONTAINER_DELETED_EVENT]
        seen = {a: [], b: [], c: []}
        deadline = time.monotonic() + 30
        while any(len(v) < len(kinds) for v in seen.values()) and time.monotonic() < deadline:
            try:
                ev = streams[0].events.get(timeout=1)
            except queue.Empty:
                continue
            if ev.container_id in seen:
                seen[ev.container_id].append(ev.container_event_type)
        for cid, got in seen.items():
            assert got == kinds, (cid[:12], got)
        runc_calls = [ln for ln in env.c.lines(mark)
                      if any(" runc %s " % sub in ln and i in ln
                             for sub in ("kill", "delete", "run") for i in (a, b, c))]
        assert not runc_calls, runc_calls
        assert_no_leftovers(env, [pod, a, b, c])
    finally:
        for s in streams:
            s.close()


def test_update_created_then_start(pod_env, cri):
    """UpdateContainerResources of a created container changes its record
    and its config.json only; the start puts the new limits in the cgroup."""
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("ctr-upd-created"))
    cfg = container_config("upd", env.images.busybox)
    cfg.linux.resources.cpu_shares = 512
    cfg.linux.resources.memory_limit_in_bytes = 64 * MiB
    cid = k.create(pod, cfg)
    up = cri.UpdateContainerResourcesRequest(container_id=cid)
    up.linux.memory_limit_in_bytes = 96 * MiB
    up.linux.memory_swap_limit_in_bytes = 96 * MiB
    env.c.call("UpdateContainerResources", up)
    st = k.status(cid)
    assert st.state == cri.CONTAINER_CREATED
    assert st.resources.linux.memory_limit_in_bytes == 96 * MiB
    assert st.resources.linux.cpu_shares == 512
    assert not os.path.exists(runc_state_dir(env, cid))
    bundle = os.path.join(env.c.config["crispd"]["state_dir"], "runtimed", "bundles", cid)
    with open(os.path.join(bundle, "config.json")) as f:
        res = json.load(f)["linux"]["resources"]
    assert res["memory"]["limit"] == 96 * MiB and res["cpu"]["shares"] == 512, res
    k.start(cid)
    assert cgroup_value(k, cid, "memory/memory.limit_in_bytes") == str(96 * MiB)
    assert cgroup_value(k, cid, "cpu/cpu.shares") == "512"


SLOW_RUN = """#!/bin/sh
# runc, but the monitor's `run` waits before it runs: runtimed can be killed
# while a start is in flight.
case " $* " in *" run "*) sleep 1.5 ;; esac
exec %s "$@"
"""


def test_runtimed_killed_during_start(pod_env_factory, cri, tmp_path):
    """runtimed killed while two StartContainer calls are in flight, one
    that succeeds and one whose executable is missing: the restarted
    runtimed finds each outcome from the bundle and the monitor: RUNNING
    and EXITED (StartError), and nothing is left behind. A created
    container that was not being started stays created, and starts."""
    script = tmp_path / "slow-run-runc"
    script.write_text(SLOW_RUN % shutil.which("runc"))
    script.chmod(0o755)
    env = pod_env_factory(config={'runtime_handler "slow-run"': {"path": str(script)}})
    k = env.cri
    pod = k.run_pod(pod_config("ctr-start-killed"), handler="slow-run")
    good = k.create(pod, sh_config("good", env.images.busybox, "echo up; sleep 3600"))
    bad = k.create(pod, container_config("bad", env.images.busybox,
                                         command=["no-such-executable"]))
    idle = k.create(pod, container_config("idle", env.images.busybox))
    errors = []

    def start(cid):
        try:
            k.start(cid)
        except grpc.RpcError as e:
            errors.append(e)
    threads = [threading.Thread(target=start, args=(cid,)) for cid in (good, bad)]
    for t in threads:
        t.start()
    time.sleep(0.5)  # both monitors launched, their runc not yet run
    assert harness.monitor_processes([good]) and harness.monitor_processes([bad])
    old = env.c.children()["crisp-runtimed"]
    mark = env.c.mark()
    os.kill(old, signal.SIGKILL)
    for t in threads:
        t.join(30)
    env.c.wait_new_pid("crisp-runtimed", old, 15)
    assert len(errors) == 2, errors  # their runtimed went away

    def settled():
        try:
            return (k.status(good).state == cri.CONTAINER_RUNNING and
                    k.status(bad).state == cri.CONTAINER_EXITED)
        except grpc.RpcError:
            return False
    harness.wait_for(settled, 30, what="the starts in flight resolved")
    # resolved by the restarted runtimed, not by the one killed
    env.c.wait_log(r"container %s: its start, in flight at the restart, succeeded" % good[:12],
                   mark, 5)
    env.c.wait_log(r"container %s: start failed: .*no-such-executable" % bad[:12], mark, 5)
    st = k.status(good)
    assert st.started_at > 0 and st.started_at <= time.time_ns(), st
    assert k.sh(good, "echo alive")[1] == "alive\n"
    harness.wait_for(lambda: ("stdout", "up", True) in
                     harness.cri_log_lines(log_file(env, pod, good)), 10, what="its log")
    st = k.status(bad)
    assert st.reason == "StartError" and st.exit_code != 0, st
    harness.wait_for(lambda: not harness.monitor_processes([bad]), 10,
                     what="the monitor of the failed start to exit")
    assert not os.path.exists(runc_state_dir(env, bad))
    assert k.status(idle).state == cri.CONTAINER_CREATED
    assert not harness.monitor_processes([idle])
    k.start(idle)
    assert k.status(idle).state == cri.CONTAINER_RUNNING
    k.stop(good, timeout=1)
    assert k.status(good).state == cri.CONTAINER_EXITED
    k.stop_pod(pod)
    k.remove_pod(pod)
    assert k.list_containers() == []
    assert_no_leftovers(env, [pod, good, bad, idle])


def test_remove_never_crosses_into_a_mount(pod_env_factory, cri):
    """A filesystem mounted below a container's bundle (an unmount that
    failed, a mount a container's bidirectional propagation stacked there)
    may be a volume with the user's data: removing the container leaves it
    and its files alone, and says why the bundle stayed."""
    env = pod_env_factory()
    k = env.cri
    pod = k.run_pod(pod_config("ctr-foreign-mount"))
    cid = k.create(pod, container_config("box", env.images.busybox))
    bundle = os.path.join(env.c.config["crispd"]["state_dir"], "runtimed", "bundles", cid)
    extra = os.path.join(bundle, "extra")
    os.mkdir(extra)
    subprocess.run(["mount", "-t", "tmpfs", "crisp-test", extra], check=True)
    try:
        with open(os.path.join(extra, "data"), "w") as f:
            f.write("keep me\n")
        k.remove(cid)
        env.c.wait_log(r"removing %s: Device or resource busy" % bundle)
        with open(os.path.join(extra, "data")) as f:
            assert f.read() == "keep me\n"
    finally:
        subprocess.run(["umount", extra], check=True)
        shutil.rmtree(bundle)
    k.remove_pod(pod)
    assert_no_leftovers(env, [pod, cid])
