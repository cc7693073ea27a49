"""critest's core conformance tests (kubernetes-sigs/cri-tools pkg/validate:
runtime_info.go, pod.go, pod_linux.go, container.go, container_linux.go,
multi_container_linux.go, idempotence.go, image.go, image_consistency.go,
image_id_consistency.go), written again in Python against one crispd.

critest cannot run here (no Go modules), so each of its It(...) has a test
here named test_critest_<file>_<what>, doing what critest does with the
same requests (default pod: metadata with attempt 2, an empty Linux config,
so pod network, IPC and PID namespaces; default container: busybox running
top) and asserting what critest asserts. The images critest pulls from
gcr.io/k8s-staging-cri-tools are built with images.py and pushed to the
session registry under critest/ with the same names and properties.

One crispd serves the whole module, as one runtime serves a critest run; it
has a bridge network of its own (NetworkReady). After every test its
children must be the same processes and its log must not show a restart.
"""

import concurrent.futures
import os
import re
import shutil
import subprocess
import tempfile
import time
import types
import urllib.request
import uuid

import grpc
import pytest

import harness
import images
from conftest import pull_images
from harness import rpc_error
from test_images_pull import wait_imaged

# critest's constants (consts.go, container.go, framework)
DEFAULT_ATTEMPT = 2
UID_PREFIX = "cri-test-uid"
NAMESPACE_PREFIX = "cri-test-namespace"
DEFAULT_CMD = ["top"]
PAUSE_CMD = ["sh", "-c", "top"]
ECHO_HELLO_CMD = ["echo", "-n", "hello"]
SLEEP_CMD = ["sleep", "4321"]
CHECK_SLEEP_CMD = ["sh", "-c", "pgrep sleep || true"]
DEFAULT_LOG = "hello World"
LOG_DEFAULT_CMD = ["echo", DEFAULT_LOG]
LOOP_LOG_CMD = ["sh", "-c", "while true; do echo " + DEFAULT_LOG + "; sleep 1; done"]
EXEC_SYNC_TIMEOUT = 30
STOP_TIMEOUT = 60
SYSTEMD_TEST_SLICE = "/test.slice"
HTTPD_PORT = 80

# pod.go: the metric descriptors critest expects, and those it excuses
EXPECTED_METRICS = """container_blkio_device_usage_total container_cpu_cfs_periods_total
container_cpu_cfs_throttled_periods_total container_cpu_cfs_throttled_seconds_total
container_cpu_system_seconds_total container_cpu_usage_seconds_total
container_cpu_user_seconds_total container_file_descriptors container_fs_inodes_free
container_fs_inodes_total container_fs_limit_bytes container_fs_reads_bytes_total
container_fs_reads_total container_fs_usage_bytes container_fs_writes_bytes_total
container_fs_writes_total container_hugetlb_max_usage_bytes container_hugetlb_usage_bytes
container_last_seen container_memory_cache container_memory_failcnt
container_memory_failures_total container_memory_kernel_usage container_memory_mapped_file
container_memory_max_usage_bytes container_memory_rss container_memory_swap
container_memory_usage_bytes container_memory_working_set_bytes
container_network_receive_bytes_total container_network_receive_errors_total
container_network_receive_packets_dropped_total container_network_receive_packets_total
container_network_transmit_bytes_total container_network_transmit_errors_total
container_network_transmit_packets_dropped_total container_network_transmit_packets_total
container_oom_events_total container_pressure_cpu_stalled_seconds_total
container_pressure_cpu_waiting_seconds_total container_pressure_io_stalled_seconds_total
container_pressure_io_waiting_seconds_total container_pressure_memory_stalled_seconds_total
container_pressure_memory_waiting_seconds_total container_processes container_sockets
container_spec_cpu_period container_spec_cpu_quota container_spec_cpu_shares
container_spec_memory_limit_bytes container_spec_memory_reservation_limit_bytes
container_spec_memory_swap_limit_bytes container_start_time_seconds container_threads
container_threads_max container_ulimits_soft""".split()
UNIMPLEMENTED_METRICS = """container_hugetlb_max_usage_bytes container_hugetlb_usage_bytes
container_pressure_cpu_stalled_seconds_total container_pressure_cpu_waiting_seconds_total
container_pressure_io_stalled_seconds_total container_pressure_io_waiting_seconds_total
container_pressure_memory_stalled_seconds_total container_pressure_memory_waiting_seconds_total
container_spec_cpu_quota container_spec_memory_reservation_limit_bytes
container_ulimits_soft""".split()
OPTIONAL_METRICS = """container_blkio_device_usage_total container_fs_reads_bytes_total
container_fs_reads_total container_fs_writes_bytes_total container_fs_writes_total""".split()


def new_uuid():
    return str(uuid.uuid4())


# --- the runtime under test ----------------------------------------------------------


# busybox:1.28 has pgrep (critest's checkSleepCmd runs it); this host's busybox
# has not: the same in sh, on /proc/PID/comm.
PGREP = """#!/bin/sh
# pgrep PATTERN: the pids of the processes whose name contains PATTERN
rc=1
for d in /proc/[0-9]*; do
	read -r comm < "$d/comm" 2>/dev/null || continue
	case "$comm" in *"$1"*) echo "${d#/proc/}"; rc=0 ;; esac
done
exit $rc
"""


def _critest_images():
    """critest's test images (consts.go) as busybox images of ours; the
    env tells them apart where critest's are different images."""
    bb = images.busybox_image
    www = [images.Dir("www"), images.File("www/index.html", "It works!\n")]
    return {
        # framework.DefaultTestContainerImage (busybox)
        "busybox:1.28": bb(extra_layers=[[images.File("bin/pgrep", PGREP, 0o755)]]),
        "test-image-tag:test": bb(env=["CRITEST=tag"]),
        "test-image-tag:all": bb(env=["CRITEST=all"]),
        "test-image-latest:latest": bb(env=["CRITEST=latest"]),
        "test-image-digest:pushed": bb(env=["CRITEST=digest"]),
        "test-image-user-uid:latest": bb(env=["CRITEST=uid"], user="1002"),
        "test-image-user-username:latest": bb(env=["CRITEST=username"], user="www-data"),
        "test-image-user-uid-group:latest": bb(env=["CRITEST=uidgroup"], user="1003:users"),
        "test-image-user-username-group:latest": bb(env=["CRITEST=usergroup"],
                                                    user="www-data:www-data"),
        "test-image-1:latest": bb(env=["CRITEST=1"]),
        "test-image-2:latest": bb(env=["CRITEST=2"]),
        "test-image-3:latest": bb(env=["CRITEST=3"]),
        "test-image-tags:1": bb(env=["CRITEST=tags"]),
        "test-image-tags:2": bb(env=["CRITEST=tags"]),
        "test-image-tags:3": bb(env=["CRITEST=tags"]),
        # e2e httpd: serves / on port 80 and says "httpd" in its log
        "httpd:2.4.39-4": bb(entrypoint=["sh", "-c", "echo httpd: serving /www on port 80 >&2; "
                                         "exec busybox httpd -f -v -p 80 -h /www"],
                             cmd=None, extra_layers=[www]),
    }


@pytest.fixture(scope="module")
def crit(cri, registry):
    c = harness.Crispd()
    n = os.getpid() % 250
    c.add_conflist("10-critest.conflist", {
        "cniVersion": "1.0.0", "name": "crisp-critest",
        "plugins": [{"type": "bridge", "bridge": "crcrit%d" % n, "isGateway": True,
                     "ipMasq": False,
                     "ipam": {"type": "host-local", "dataDir": os.path.join(c.dir, "ipam"),
                              "ranges": [[{"subnet": "10.246.%d.0/24" % n}]]}}]})
    try:
        c.start()
        wait_imaged(c)
        harness.wait_for(lambda: harness.conditions(c.status())["NetworkReady"].status, 20,
                         what="NetworkReady")
        refs = {}
        for name, img in _critest_images().items():
            repo, tag = name.split(":")
            p = registry.push(img, "critest/" + repo, tag)
            refs[name] = p.ref
            refs[name + "@digest"] = p.digest_ref
        pull_images(c, [refs["busybox:1.28"], refs["httpd:2.4.39-4"]])
        yield types.SimpleNamespace(c=c, refs=refs, registry=registry,
                                    default_image=refs["busybox:1.28"])
    finally:
        c.cleanup()


@pytest.fixture
def env(crit):
    """A test's view of the module's crispd: its pods and containers go after
    it, and crispd's children must not have changed meanwhile."""
    c = crit.c
    kids = c.children()
    mark = c.mark()
    e = types.SimpleNamespace(c=c, k=harness.CriObjects(c), crit=crit, paths=[], umounts=[])
    yield e
    for mp in e.umounts:
        subprocess.run(["umount", "-l", mp], stderr=subprocess.DEVNULL, check=False)
    e.k.cleanup()
    for p in e.paths:
        if os.path.islink(p):
            os.unlink(p)
        else:
            shutil.rmtree(p, ignore_errors=True)
    after = c.children()
    suspicious = [ln for ln in c.lines(mark)
                  if re.search(r"restart|died after|signal \d|killed by", ln)]
    assert after == kids, "crispd's children changed during the test: %r -> %r" % (kids, after)
    assert not suspicious, "crispd log:\n" + "\n".join(suspicious[:20])


def call(e, method, req=None, timeout=60):
    return e.c.call(method, req, timeout=timeout)


def cgroup_parent(e):
    """common.GetCgroupParent: "" for the cgroupfs driver, else /test.slice."""
    try:
        rc = call(e, "RuntimeConfig", harness.cri.RuntimeConfigRequest())
    except grpc.RpcError:
        return SYSTEMD_TEST_SLICE
    if not rc.HasField("linux"):
        return SYSTEMD_TEST_SLICE
    if rc.linux.cgroup_driver == harness.cri.CgroupDriver.Value("CGROUPFS"):
        return ""
    return SYSTEMD_TEST_SLICE


def pod_cfg(name, labels=None, annotations=None, log_directory=None, cgroup=None,
            sysctls=None, privileged=False, port_mappings=()):
    cri = harness.cri
    cfg = cri.PodSandboxConfig()
    cfg.metadata.name = name
    cfg.metadata.uid = UID_PREFIX + new_uuid()
    cfg.metadata.namespace = NAMESPACE_PREFIX + new_uuid()
    cfg.metadata.attempt = DEFAULT_ATTEMPT
    cfg.linux.SetInParent()
    for k, v in (labels or {}).items():
        cfg.labels[k] = v
    for k, v in (annotations or {}).items():
        cfg.annotations[k] = v
    if log_directory:
        cfg.log_directory = log_directory
    if cgroup:
        cfg.linux.cgroup_parent = cgroup
    for k, v in (sysctls or {}).items():
        cfg.linux.sysctls[k] = v
    if privileged:
        cfg.linux.security_context.privileged = True
    for port in port_mappings:
        cfg.port_mappings.add(container_port=port)
    return cfg


def run_pod(e, cfg):
    """framework.RunPodSandbox: RunPodSandbox as critest sends it (no log
    directory unless the config has one)."""
    r = call(e, "RunPodSandbox", harness.cri.RunPodSandboxRequest(config=cfg))
    e.k.pods[r.pod_sandbox_id] = cfg
    return r.pod_sandbox_id


def run_default_pod(e, prefix):
    return run_pod(e, pod_cfg(prefix + new_uuid()))


def pod_for_container(e):
    """framework.CreatePodSandboxForContainer."""
    cfg = pod_cfg("create-PodSandbox-for-container-" + new_uuid())
    return run_pod(e, cfg), cfg


def privileged_pod(e):
    cfg = pod_cfg("create-PodSandbox-for-privileged-" + new_uuid(), privileged=True)
    return run_pod(e, cfg), cfg


def log_dir_pod(e, prefix):
    """createPodSandboxWithLogDirectory: log_directory <tmp>/<pod name>."""
    name = prefix + new_uuid()
    host = tempfile.mkdtemp(prefix="podLogTest")
    e.paths.append(host)
    log_dir = os.path.join(host, name)
    os.makedirs(log_dir, 0o777)
    cfg = pod_cfg(name, log_directory=log_dir, cgroup=cgroup_parent(e))
    return run_pod(e, cfg), cfg


def ctr_cfg(e, prefix, command=None, image=None, log_path=None, labels=None):
    cfg = harness.cri.ContainerConfig()
    cfg.metadata.name = prefix + new_uuid()
    cfg.metadata.attempt = DEFAULT_ATTEMPT
    cfg.image.image = image or e.crit.default_image
    cfg.command.extend(command or [])
    for k, v in (labels or {}).items():
        cfg.labels[k] = v
    if log_path:
        cfg.log_path = log_path
    return cfg


def create(e, pod, cfg):
    """framework.CreateContainer (the image is pulled in the fixture)."""
    return e.k.create(pod, cfg)


def default_container(e, pod, prefix, labels=None):
    cfg = ctr_cfg(e, prefix, DEFAULT_CMD, labels=labels)
    cfg.linux.SetInParent()
    return create(e, pod, cfg)


def pause_container(e, pod, prefix):
    return create(e, pod, ctr_cfg(e, prefix, PAUSE_CMD))


def status(e, cid):
    return e.k.status(cid)


def start_and_wait_running(e, cid):
    """testStartContainer."""
    e.k.start(cid)
    e.k.wait_state(cid, harness.cri.CONTAINER_RUNNING, timeout=60)


def stop_and_wait_exited(e, cid):
    """testStopContainer: StopContainer(60) must return within 60 s."""
    t0 = time.monotonic()
    e.k.stop(cid, timeout=STOP_TIMEOUT)
    assert time.monotonic() - t0 < STOP_TIMEOUT, "StopContainer took longer than its timeout"
    e.k.wait_state(cid, harness.cri.CONTAINER_EXITED, timeout=60)


def exec_sync(e, cid, cmd, timeout=EXEC_SYNC_TIMEOUT):
    """execSyncContainer: the Go client fails a nonzero exit; stderr empty."""
    r = e.k.exec_sync(cid, cmd, timeout=timeout, call_timeout=timeout)
    assert r.exit_code == 0, "ExecSync %r: exit %d, stderr %r" % (cmd, r.exit_code, r.stderr)
    assert r.stderr == b"", "ExecSync %r: stderr %r" % (cmd, r.stderr)
    return r.stdout.decode()


def list_containers_by_id(e, cid):
    return [x.id for x in e.k.list_containers(id=cid)]


def list_pods_by_id(e, pod):
    return [p.id for p in e.k.list_pods(id=pod)]


def list_stats(e, filter_id=None, labels=None):
    req = harness.cri.ListContainerStatsRequest()
    if filter_id is not None or labels is not None:
        req.filter.SetInParent()
        if filter_id is not None:
            req.filter.id = filter_id
        for k, v in (labels or {}).items():
            req.filter.label_selector[k] = v
    return [s.attributes.id for s in call(e, "ListContainerStats", req).stats]


def parse_log(path):
    """parseLogLine: [(stream, text + "\\n")]; every line must be CRI format."""
    return [(stream, text + "\n") for _, stream, _, text in harness.cri_log_records(path)]


def host_path(e, pod):
    """createHostPath: a temp dir holding testVolume.file."""
    d = tempfile.mkdtemp(prefix="test" + pod)
    e.paths.append(d)
    open(os.path.join(d, "testVolume.file"), "w").close()
    return d


# --- runtime_info.go --------------------------------------------------------------------


def test_critest_runtime_info_version(env):
    """Runtime info: runtime should return version info [Conformance]"""
    v = call(env, "Version", harness.cri.VersionRequest(version="0.1.0"))
    assert v.version and v.runtime_name and v.runtime_version and v.runtime_api_version, v


def test_critest_runtime_info_conditions(env):
    """Runtime info: runtime should return runtime conditions [Conformance]"""
    st = call(env, "Status", harness.cri.StatusRequest())
    ready = [c.type for c in st.status.conditions
             if c.type in ("RuntimeReady", "NetworkReady") and c.status]
    assert len(ready) >= 2, st


# --- pod.go -------------------------------------------------------------------------------


def test_critest_pod_running_pod_sandbox(env):
    """PodSandbox: runtime should support running PodSandbox [Conformance]"""
    pod = run_default_pod(env, "PodSandbox-for-create-test-")
    assert env.k.pod_status(pod).status.state == harness.cri.SANDBOX_READY
    assert pod in list_pods_by_id(env, pod)


def test_critest_pod_stopping_pod_sandbox(env):
    """PodSandbox: runtime should support stopping PodSandbox [Conformance]"""
    pod = run_default_pod(env, "PodSandbox-for-test-stop-")
    env.k.stop_pod(pod)
    assert env.k.pod_status(pod).status.state == harness.cri.SANDBOX_NOTREADY


def test_critest_pod_removing_pod_sandbox(env):
    """PodSandbox: runtime should support removing PodSandbox [Conformance]"""
    pod = run_default_pod(env, "PodSandbox-for-test-remove-")
    env.k.stop_pod(pod)
    env.k.remove_pod(pod)
    assert pod not in list_pods_by_id(env, pod)


def test_critest_pod_preserving_attributes(env):
    """PodSandbox: runtime should support preserving PodSandbox attributes [Conformance]"""
    name = "PodSandbox-with-attributes-" + new_uuid()
    cfg = pod_cfg(name, cgroup=cgroup_parent(env), annotations={"abc": "def"})
    labels = {"foo": "bar", "io.kubernetes.pod.name": name,
              "io.kubernetes.pod.namespace": cfg.metadata.namespace,
              "io.kubernetes.pod.uid": cfg.metadata.uid}
    for k, v in labels.items():
        cfg.labels[k] = v
    pod = run_pod(env, cfg)
    got = env.k.pod_status(pod).status
    assert got.metadata == cfg.metadata, got.metadata
    assert labels.items() <= dict(got.labels).items(), got.labels
    assert {"abc": "def"}.items() <= dict(got.annotations).items(), got.annotations
    pods = env.k.list_pods(id=pod)
    assert len(pods) == 1, pods
    assert pods[0].metadata == cfg.metadata, pods[0].metadata
    assert labels.items() <= dict(pods[0].labels).items(), pods[0].labels
    assert {"abc": "def"}.items() <= dict(pods[0].annotations).items(), pods[0].annotations


def _metric_descriptors_or_skip(e):
    try:
        return list(call(e, "ListMetricDescriptors",
                         harness.cri.ListMetricDescriptorsRequest()).descriptors)
    except grpc.RpcError as err:
        if err.code() == grpc.StatusCode.UNIMPLEMENTED:
            pytest.skip("critest skips: CRI Metrics endpoints not supported (UNIMPLEMENTED)")
        raise


def test_critest_pod_metric_descriptors(env):
    """PodSandbox: runtime should support returning metrics descriptors [Conformance]"""
    descs = _metric_descriptors_or_skip(env)
    names = set()
    for d in descs:
        names.add(d.name)
        assert d.help, "metric descriptor %s has no help text" % d.name
        assert list(d.label_keys), "metric descriptor %s has no label keys" % d.name
    missing = [m for m in EXPECTED_METRICS if m not in names and m not in UNIMPLEMENTED_METRICS]
    assert not missing, "metric descriptors missing: %s" % " ".join(missing)


def test_critest_pod_listing_pod_sandbox_metrics(env):
    """PodSandbox: runtime should support listing pod sandbox metrics [Conformance]"""
    _metric_descriptors_or_skip(env)
    pod, _ = pod_for_container(env)
    cfg = ctr_cfg(env, "container-for-metrics-", DEFAULT_CMD)
    res = cfg.linux.resources
    res.cpu_period, res.cpu_quota, res.cpu_shares = 100000, 20000, 1024
    res.memory_limit_in_bytes = res.memory_swap_limit_in_bytes = 64 << 20
    cid = create(env, pod, cfg)
    env.k.start(cid)
    exec_sync(env, cid, ["/bin/sh", "-c", "mkdir -p /var/lib/mydisktest && for i in $(seq 1 10);"
                         " do echo hi >> /var/lib/mydisktest/inode_test_file_$i; done; sync"])
    descs = _metric_descriptors_or_skip(env)
    allm = call(env, "ListPodSandboxMetrics",
                harness.cri.ListPodSandboxMetricsRequest()).pod_metrics
    mine = [m for m in allm if m.pod_sandbox_id == pod]
    assert mine, "no metrics for pod %s" % pod
    found = {}
    for m in list(mine[0].metrics) + [x for cm in mine[0].container_metrics for x in cm.metrics]:
        if not found.get(m.name):
            found[m.name] = list(m.label_values)
    missing = [m for m in EXPECTED_METRICS if not found.get(m)
               and m not in OPTIONAL_METRICS and m not in UNIMPLEMENTED_METRICS]
    assert not missing, "metrics missing for the pod: %s" % " ".join(missing)
    mismatched = []
    for d in descs:
        if d.name not in found:
            if d.name not in OPTIONAL_METRICS and d.name not in UNIMPLEMENTED_METRICS:
                mismatched.append(d.name)
            continue
        if len(found[d.name]) != len(d.label_keys):
            mismatched.append(d.name)
    assert not mismatched, "label sets differ between descriptors and metrics: %s" % mismatched


# --- pod_linux.go ---------------------------------------------------------------------------


def _sysctl_test(e, sysctl, path, value, prefix):
    cfg = pod_cfg("pod-sandbox-with-sysctls-" + new_uuid(), cgroup=cgroup_parent(e),
                  sysctls={sysctl: value})
    pod = run_pod(e, cfg)
    cid = default_container(e, pod, prefix)
    e.k.start(cid)
    assert exec_sync(e, cid, ["cat", path]).strip() == value
    e.k.stop_pod(pod)
    e.k.remove_pod(pod)


def test_critest_pod_safe_sysctls(env):
    """PodSandbox: runtime should support sysctls: should support safe sysctls"""
    _sysctl_test(env, "kernel.shm_rmid_forced", "/proc/sys/kernel/shm_rmid_forced", "1",
                 "container-shm-rmid-forced")


def test_critest_pod_unsafe_sysctls(env):
    """PodSandbox: runtime should support sysctls: should support unsafe sysctls"""
    _sysctl_test(env, "fs.mqueue.msg_max", "/proc/sys/fs/mqueue/msg_max", "100",
                 "container-fs-mqueue-msg-max")


# --- container.go ---------------------------------------------------------------------------


@pytest.fixture
def cpod(env):
    """The pod of critest's "basic operations on container" context; its
    AfterEach stops and removes it and expects both to succeed."""
    pod, cfg = pod_for_container(env)
    yield pod
    env.k.stop_pod(pod)
    env.k.remove_pod(pod)


def test_critest_container_create(env, cpod):
    """Container: runtime should support creating container [Conformance]"""
    cid = default_container(env, cpod, "container-for-create-")
    assert cid in list_containers_by_id(env, cid)


def test_critest_container_start(env, cpod):
    """Container: runtime should support starting container [Conformance]"""
    cid = default_container(env, cpod, "container-for-start-test-")
    start_and_wait_running(env, cid)


def test_critest_container_stop(env, cpod):
    """Container: runtime should support stopping container [Conformance]"""
    cid = default_container(env, cpod, "container-for-stop-test-")
    env.k.start(cid)
    stop_and_wait_exited(env, cid)


def test_critest_container_remove_created(env, cpod):
    """Container: runtime should support removing created container [Conformance]"""
    cid = pause_container(env, cpod, "container-for-remove-created-test-")
    env.k.remove(cid)
    assert cid not in list_containers_by_id(env, cid)


def test_critest_container_remove_running(env, cpod):
    """Container: runtime should support removing running container [Conformance]"""
    cid = pause_container(env, cpod, "container-for-remove-running-test-")
    env.k.start(cid)
    env.k.remove(cid)
    assert cid not in list_containers_by_id(env, cid)


def test_critest_container_remove_stopped(env, cpod):
    """Container: runtime should support removing stopped container [Conformance]"""
    cid = pause_container(env, cpod, "container-for-remove-stopped-test-")
    env.k.start(cid)
    stop_and_wait_exited(env, cid)
    env.k.remove(cid)
    assert cid not in list_containers_by_id(env, cid)


def test_critest_container_exec_sync(env, cpod):
    """Container: runtime should support execSync [Conformance]"""
    cid = default_container(env, cpod, "container-for-execSync-test-")
    env.k.start(cid)
    assert exec_sync(env, cid, ECHO_HELLO_CMD) == "hello"


def test_critest_container_exec_sync_timeout(env, cpod):
    """Container: runtime should support execSync with timeout [Conformance]"""
    cid = default_container(env, cpod, "container-for-execSync-timeout-test-")
    env.k.start(cid)
    # Our pgrep (see PGREP) must see what runs: top does.
    assert exec_sync(env, cid, ["pgrep", "top"]).strip(), "pgrep does not find top"
    # The Go client sends timeout=1 and gives the call a 1 s deadline.
    failed = False
    try:
        r = env.k.exec_sync(cid, SLEEP_CMD, timeout=1, call_timeout=1)
        failed = r.exit_code != 0
    except grpc.RpcError:
        failed = True
    assert failed, "execSync of sleep 4321 with a 1 s timeout did not fail"
    out = exec_sync(env, cid, CHECK_SLEEP_CMD)
    assert out.strip() == "", "the timed-out exec is still there: %r" % out


def test_critest_container_stats(env, cpod):
    """Container: runtime should support listing container stats [Conformance]"""
    cid = default_container(env, cpod, "container-for-stats-")
    env.k.start(cid)
    st = call(env, "ContainerStats", harness.cri.ContainerStatsRequest(container_id=cid)).stats
    assert st.attributes.id == cid, st
    assert "container-for-stats-" in st.attributes.metadata.name, st
    assert st.cpu.timestamp != 0, st
    assert st.memory.timestamp != 0, st


def test_critest_container_stats_for_started_containers(env, cpod):
    """Container: runtime should support listing stats for started containers [Conformance]"""
    cid = default_container(env, cpod, "container-for-stats-")
    env.k.start(cid)
    assert cid in list_stats(env, filter_id=cid)


def test_critest_container_stats_nil_filter(env, cpod):
    """Container: runtime should support listing stats for started containers when filter
    is nil [Conformance]"""
    cid = default_container(env, cpod, "container-for-stats-with-nil-filter-")
    env.k.start(cid)
    assert cid in list_stats(env)


def test_critest_container_stats_three_containers_nil_filter(env, cpod):
    """Container: runtime should support listing stats for three created containers when
    filter is nil. [Conformance]"""
    ids = [default_container(env, cpod, "container-for-stats-with-nil-filter-")
           for _ in range(3)]
    for cid in ids:
        env.k.start(cid)
    got = list_stats(env)
    assert all(cid in got for cid in ids), (ids, got)


def test_critest_container_stats_label_filter(env, cpod):
    """Container: runtime should support listing stats for containers filtered by labels
    [Conformance]"""
    cid = default_container(env, cpod, "container-for-stats-with-labels-", labels={"foo": "bar"})
    env.k.start(cid)
    assert cid in list_stats(env, labels={"foo": "bar"})
    assert cid not in list_stats(env, labels={"foo": "baz"})


def _volume_container(e, pod, prefix, path):
    cfg = ctr_cfg(e, prefix, PAUSE_CMD)
    m = cfg.mounts.add()
    m.host_path = m.container_path = path
    m.selinux_relabel = True
    return create(e, pod, cfg)


def test_critest_container_volume(env, cpod):
    """Container: runtime should support starting container with volume [Conformance]"""
    hp = host_path(env, cpod)
    cid = _volume_container(env, cpod, "container-with-volume-test-", hp)
    start_and_wait_running(env, cid)
    assert exec_sync(env, cid, ["ls", "-A", hp]) != ""


def test_critest_container_volume_symlink_host_path(env, cpod):
    """Container: runtime should support starting container with volume when host path is a
    symlink [Conformance]"""
    hp = host_path(env, cpod)
    link = hp + "-symlink"
    os.symlink(hp, link)
    env.paths.append(link)
    cid = _volume_container(env, cpod, "container-with-symlink-host-path-test-", link)
    start_and_wait_running(env, cid)
    assert exec_sync(env, cid, ["ls", "-A", link]) != ""


@pytest.fixture
def logpod(env):
    pod, cfg = log_dir_pod(env, "PodSandbox-with-log-directory-")
    yield pod, cfg
    env.k.stop_pod(pod)
    env.k.remove_pod(pod)


def test_critest_container_log(env, logpod):
    """Container: runtime should support starting container with log [Conformance]"""
    pod, pcfg = logpod
    cfg = ctr_cfg(env, "container-with-log-test-", LOG_DEFAULT_CMD)
    cfg.log_path = cfg.metadata.name + ".log"
    cid = create(env, pod, cfg)
    env.k.start(cid)
    env.k.wait_state(cid, harness.cri.CONTAINER_EXITED, timeout=60)
    msgs = parse_log(os.path.join(pcfg.log_directory, cfg.log_path))
    assert ("stdout", DEFAULT_LOG + "\n") in msgs, msgs


def test_critest_container_reopen_log(env, logpod):
    """Container: runtime should support reopening container log [Conformance]"""
    pod, pcfg = logpod
    cfg = ctr_cfg(env, "container-reopen-log-test-", LOOP_LOG_CMD)
    cfg.log_path = cfg.metadata.name + ".log"
    cid = create(env, pod, cfg)
    env.k.start(cid)
    path = os.path.join(pcfg.log_directory, cfg.log_path)
    harness.wait_for(lambda: os.path.exists(path) and parse_log(path), 60, interval=1,
                     what="container log")
    os.rename(path, path + ".new")
    call(env, "ReopenContainerLog", harness.cri.ReopenContainerLogRequest(container_id=cid))
    assert os.path.exists(path), "new container log file should be created"
    harness.wait_for(lambda: parse_log(path), 60, interval=1, what="new container log")
    old = len(parse_log(path + ".new"))
    for _ in range(5):
        time.sleep(1)
        assert len(parse_log(path + ".new")) == old, "old container log should not change"


# --- container_linux.go ----------------------------------------------------------------------


PROP = {"private": "PROPAGATION_PRIVATE", "bidirectional": "PROPAGATION_BIDIRECTIONAL",
        "host_to_container": "PROPAGATION_HOST_TO_CONTAINER"}


def _mount(*args):
    subprocess.run(["mount"] + list(args), check=True)


@pytest.mark.parametrize("prop", ["private", "bidirectional", "host_to_container"])
def test_critest_container_mount_propagation(env, prop):
    """Container Mount Propagation: mount with 'rprivate' should not support propagation /
    'rshared' should support propagation from host to container and vice versa /
    'rslave' should support propagation from host to container"""
    cri = harness.cri
    propagation = cri.MountPropagation.Value(PROP[prop])
    pod, _ = privileged_pod(env)
    root = tempfile.mkdtemp(prefix="test" + pod)
    env.paths.append(root)
    src = os.path.join(root, "mnt")
    mntpoint = os.path.join(src, "propagationMnt")
    srcdir = os.path.join(root, "propagationSrcDir")
    os.makedirs(mntpoint, 0o700)
    os.makedirs(srcdir, 0o700)
    open(os.path.join(srcdir, "flagFile"), "w").close()
    _mount("--rbind", src, src)
    env.umounts.insert(0, src)
    _mount("--make-rprivate" if prop == "private" else "--make-rshared", src)

    cfg = ctr_cfg(env, "mount-propagation-test-", PAUSE_CMD)
    cfg.linux.security_context.privileged = True
    m = cfg.mounts.add()
    m.host_path = m.container_path = src
    m.propagation = propagation
    cid = create(env, pod, cfg)
    mounts = list(status(env, cid).mounts)
    assert len(mounts) == 1, mounts
    assert (mounts[0].container_path, mounts[0].host_path) == (src, src), mounts
    assert not mounts[0].readonly and not mounts[0].selinux_relabel, mounts
    assert mounts[0].propagation == propagation, mounts
    start_and_wait_running(env, cid)

    _mount("--rbind", srcdir, mntpoint)
    env.umounts.insert(0, mntpoint)
    out = exec_sync(env, cid, ["ls", "-A", mntpoint])
    if prop == "private":
        assert out == "", out
    else:
        assert out != "", "host mount did not propagate into the container"

    cmnt = os.path.join(src, "containerMntPoint")
    exec_sync(env, cid, ["sh", "-c", "mkdir -p " + cmnt])
    exec_sync(env, cid, ["sh", "-c", "mount --bind /etc " + cmnt])
    env.umounts.insert(0, cmnt)
    seen = os.listdir(cmnt)
    if prop == "bidirectional":
        assert seen, "container mount did not propagate to the host"
    else:
        assert not seen, "container mount propagated to the host: %r" % seen[:5]


def test_critest_container_oom_killed(env):
    """Container OOM: should terminate with exitCode 137 and reason OOMKilled"""
    pod, _ = privileged_pod(env)
    cfg = ctr_cfg(env, "OOM-test-", ["sh", "-c", "dd if=/dev/zero of=/dev/null bs=20M"])
    res = cfg.linux.resources
    res.memory_limit_in_bytes = res.memory_swap_limit_in_bytes = 15 << 20
    cid = create(env, pod, cfg)
    call(env, "ContainerStatus", harness.cri.ContainerStatusRequest(container_id=cid,
                                                                    verbose=True))
    env.k.start(cid)
    env.k.wait_state(cid, harness.cri.CONTAINER_EXITED, timeout=60)
    harness.wait_for(lambda: status(env, cid).reason == "OOMKilled", 60, interval=1,
                     what="reason OOMKilled (is %r)" % status(env, cid).reason)
    assert status(env, cid).exit_code == 137


def _supports_rro(e):
    st = call(e, "Status", harness.cri.StatusRequest())
    for h in st.runtime_handlers:
        if h.name == "" and h.HasField("features"):
            return h.features.recursive_read_only_mounts
    return False


def _rro_host_path(e, pod):
    d = tempfile.mkdtemp(prefix="test" + pod)
    e.paths.append(d)
    t = os.path.join(d, "tmpfs")
    os.makedirs(t, 0o700)
    _mount("-t", "tmpfs", "none", t)
    e.umounts.insert(0, t)
    return d


def _mount_container(e, pod, mounts, expect_error):
    cfg = ctr_cfg(e, "test-mount-", PAUSE_CMD)
    for kw in mounts:
        cfg.mounts.add(**kw)
    if expect_error:
        err = rpc_error(e.k.create, pod, cfg)
        return err
    cid = create(e, pod, cfg)
    st = call(e, "ContainerStatus", harness.cri.ContainerStatusRequest(container_id=cid,
                                                                       verbose=True))
    assert len(st.status.mounts) == len(mounts), st.status.mounts
    return cid


@pytest.mark.parametrize("rro", [False, True], ids=["non_recursive", "recursive"])
def test_critest_container_readonly_mounts(env, rro):
    """Container Mount Readonly: should support non-recursive readonly mounts / should
    support recursive readonly mounts"""
    pod, _ = privileged_pod(env)
    if rro and not _supports_rro(env):
        pytest.skip("critest skips: runtime does not implement recursive readonly mounts")
    hp = _rro_host_path(env, pod)
    cid = _mount_container(env, pod, [dict(host_path=hp, container_path="/mnt", readonly=True,
                                           recursive_read_only=rro, selinux_relabel=True)],
                           False)
    start_and_wait_running(env, cid)
    cmd = ["touch", "/mnt/tmpfs/file"]
    if rro:
        cmd = ["sh", "-c", 'touch /mnt/tmpfs/foo 2>&1 | grep -q "Read-only file system"']
    exec_sync(env, cid, cmd)


@pytest.mark.parametrize("case", ["host_to_container", "bidirectional", "readonly_false"])
def test_critest_container_reject_recursive_readonly(env, case):
    """Container Mount Readonly: should reject a recursive readonly mount with
    PROPAGATION_HOST_TO_CONTAINER / PROPAGATION_BIDIRECTIONAL / ReadOnly: false"""
    pod, _ = privileged_pod(env)
    if not _supports_rro(env):
        pytest.skip("critest skips: runtime does not implement recursive readonly mounts")
    hp = _rro_host_path(env, pod)
    m = dict(host_path=hp, container_path="/mnt", readonly=True, recursive_read_only=True,
             selinux_relabel=True)
    if case == "readonly_false":
        m["readonly"] = False
    else:
        m["propagation"] = harness.cri.MountPropagation.Value(PROP[case])
    _mount_container(env, pod, [m], True)


# --- multi_container_linux.go ------------------------------------------------------------------


@pytest.fixture
def multi(env):
    """The BeforeEach of "Multiple Containers [Conformance]": a pod with a log
    directory and a port mapping, an httpd and a busybox container, both
    running."""
    name = "PodSandbox-for-multi-container-test-" + new_uuid()
    host = tempfile.mkdtemp(prefix="podLogTest")
    env.paths.append(host)
    log_dir = os.path.join(host, name)
    os.makedirs(log_dir, 0o777)
    cfg = pod_cfg(name, log_directory=log_dir, cgroup=cgroup_parent(env),
                  port_mappings=[HTTPD_PORT])
    pod = run_pod(env, cfg)
    h = ctr_cfg(env, "httpd", image=env.crit.refs["httpd:2.4.39-4"])
    h.linux.SetInParent()
    h.log_path = h.metadata.name + ".log"
    httpd = create(env, pod, h)
    start_and_wait_running(env, httpd)
    b = ctr_cfg(env, "busybox", ["sh", "-c", "echo " + DEFAULT_LOG + "; sleep 1000"])
    b.log_path = b.metadata.name + ".log"
    busybox = create(env, pod, b)
    start_and_wait_running(env, busybox)
    yield types.SimpleNamespace(pod=pod, httpd=httpd, busybox=busybox)
    env.k.stop_pod(pod)
    env.k.remove_pod(pod)


def test_critest_multi_container_network(env, multi):
    """Multiple Containers [Conformance]: should support network"""
    st = env.k.pod_status(multi.pod).status
    assert st.HasField("network") and st.network.ip, st
    url = "http://%s:%d/" % (st.network.ip, HTTPD_PORT)

    def get():
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.status
        except OSError:
            return None
    code = harness.wait_for(get, 60, interval=1, what="GET " + url)
    assert code == 200


def test_critest_multi_container_log(env, multi):
    """Multiple Containers [Conformance]: should support container log"""
    for cid, text in ((multi.httpd, "httpd"), (multi.busybox, DEFAULT_LOG)):
        path = status(env, cid).log_path

        def has():
            with open(path) as f:   # an error fails the test, as in critest
                return text in f.read()
        harness.wait_for(has, 60, interval=0.1, what="%r in %s" % (text, path))


def test_critest_multi_container_exec(env, multi):
    """Multiple Containers [Conformance]: should support container exec"""
    assert exec_sync(env, multi.httpd, ["echo", "httpd"]) == "httpd\n"
    assert exec_sync(env, multi.busybox, ["echo", "busybox"]) == "busybox\n"


# --- idempotence.go ----------------------------------------------------------------------------


def test_critest_idempotence_stop_pod_sandbox_not_found(env):
    """Idempotence: StopPodSandbox should not return an error if not found"""
    call(env, "StopPodSandbox", harness.cri.StopPodSandboxRequest(pod_sandbox_id=new_uuid()))


def test_critest_idempotence_stop_pod_sandbox_already_stopped(env):
    """Idempotence: StopPodSandbox should not return an error if already stopped"""
    pod = run_default_pod(env, "idempotence-pod-")
    for _ in range(2):
        env.k.stop_pod(pod)
        assert env.k.pod_status(pod).status.state == harness.cri.SANDBOX_NOTREADY
    env.k.remove_pod(pod)


def test_critest_idempotence_remove_pod_sandbox_not_found(env):
    """Idempotence: RemovePodSandbox should not return an error if not found"""
    call(env, "RemovePodSandbox", harness.cri.RemovePodSandboxRequest(pod_sandbox_id=new_uuid()))


def test_critest_idempotence_stop_container_not_found(env):
    """Idempotence: StopContainer should not return an error if not found"""
    call(env, "StopContainer", harness.cri.StopContainerRequest(container_id=new_uuid(),
                                                                timeout=0))


def test_critest_idempotence_stop_container_already_stopped(env):
    """Idempotence: StopContainer should not return an error if already stopped"""
    pod, _ = pod_for_container(env)
    cid = pause_container(env, pod, "idempotence-container-")
    env.k.start(cid)
    stop_and_wait_exited(env, cid)
    env.k.remove(cid)
    call(env, "RemoveContainer", harness.cri.RemoveContainerRequest(container_id=cid))
    env.k.stop_pod(pod)
    env.k.remove_pod(pod)


def test_critest_idempotence_remove_container_not_found(env):
    """Idempotence: RemoveContainer should not return an error if not found"""
    call(env, "RemoveContainer", harness.cri.RemoveContainerRequest(container_id=new_uuid()))


def test_critest_idempotence_remove_image_not_found(env):
    """Idempotence: RemoveImage should not return an error if not found"""
    fake = "0" * 64
    for _ in range(2):
        call(env, "RemoveImage", harness.cri.RemoveImageRequest(
            image=harness.cri.ImageSpec(image=fake)))


# --- image.go, image_consistency.go, image_id_consistency.go -----------------------------------


def image_status(e, name):
    """framework.ImageStatus: the Image, or None; an error fails."""
    r = call(e, "ImageStatus", harness.cri.ImageStatusRequest(
        image=harness.cri.ImageSpec(image=name)))
    return r.image if r.HasField("image") else None


def pull_public(e, name):
    """framework.PullPublicImage, with testImagePodSandbox (empty labels)."""
    req = harness.cri.PullImageRequest(image=harness.cri.ImageSpec(image=name))
    req.sandbox_config.SetInParent()
    return call(e, "PullImage", req, timeout=120).image_ref


def remove_image(e, name):
    """removeImage: by id if ImageStatus finds it."""
    img = image_status(e, name)
    if img is not None:
        call(e, "RemoveImage", harness.cri.RemoveImageRequest(
            image=harness.cri.ImageSpec(image=img.id)))


def list_all_images(e):
    return list(call(e, "ListImages", harness.cri.ListImagesRequest()).images)


def _pull_and_remove(e, name, check):
    """testPullPublicImage."""
    remove_image(e, name)
    pull_public(e, name)
    img = image_status(e, name)
    assert img is not None, "no image after pulling %s" % name
    assert img.id
    check(img)
    remove_image(e, name)
    assert image_status(e, name) is None, "image %s still there after removal" % name


def test_critest_image_pull_with_tag(env):
    """Image Manager: public image with tag should be pulled and removed [Conformance]"""
    name = env.crit.refs["test-image-tag:test"]
    _pull_and_remove(env, name, lambda s: (list(s.repo_tags) == [name]) or pytest.fail(
        "repo_tags %r, expected [%r]" % (list(s.repo_tags), name)))


def test_critest_image_pull_timeout(env):
    """Image Manager: public image should timeout if requested [Conformance]"""
    name = env.crit.refs["test-image-tag:test"]
    req = harness.cri.PullImageRequest(image=harness.cri.ImageSpec(image=name))
    err = rpc_error(env.c.call, "PullImage", req, timeout=0.001)
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED, (err.code(), err.details())


def test_critest_image_pull_without_tag(env):
    """Image Manager: public image without tag should be pulled and removed [Conformance]"""
    name = env.crit.refs["test-image-latest:latest"][:-len(":latest")]
    _pull_and_remove(env, name, lambda s: (list(s.repo_tags) == [name + ":latest"]) or
                     pytest.fail("repo_tags %r" % list(s.repo_tags)))


def test_critest_image_pull_with_digest(env):
    """Image Manager: public image with digest should be pulled and removed [Conformance]"""
    name = env.crit.refs["test-image-digest:pushed@digest"]

    def check(s):
        assert list(s.repo_tags) == [], s.repo_tags
        assert list(s.repo_digests) == [name], s.repo_digests
    _pull_and_remove(env, name, check)


def test_critest_image_status_all_references(env):
    """Image Manager: image status should support all kinds of references [Conformance]"""
    name = env.crit.refs["test-image-tag:all"]
    remove_image(env, name)
    pull_public(env, name)
    st = image_status(env, name)
    assert st is not None
    for other in [st.id] + list(st.repo_tags) + list(st.repo_digests):
        got = image_status(env, other)
        assert got == st, "image status with %r:\n%s\n!=\n%s" % (other, got, st)
    remove_image(env, name)
    assert image_status(env, name) is None


def test_critest_image_status_uid_username(env):
    """Image Manager: image status get image fields should not have Uid|Username empty
    [Conformance]"""
    cases = [("UID only", "test-image-user-uid:latest", 1002, ""),
             ("Username only", "test-image-user-username:latest", 0, "www-data"),
             ("UID:group", "test-image-user-uid-group:latest", 1003, ""),
             ("Username:group", "test-image-user-username-group:latest", 0, "www-data")]
    bad = []
    try:
        for what, key, uid, username in cases:
            name = env.crit.refs[key]
            pull_public(env, name)
            st = image_status(env, name)
            if (st.uid.value, st.username) != (uid, username):
                bad.append("%s: uid %r username %r, expected %r %r" % (
                    what, st.uid.value if st.HasField("uid") else None, st.username, uid,
                    username))
    finally:
        for _, key, _, _ in cases:
            remove_image(env, env.crit.refs[key])
    assert not bad, "\n".join(bad)


def test_critest_image_list_three_images(env):
    """Image Manager: listImage should get exactly 3 image in the result list [Conformance]"""
    names = [env.crit.refs["test-image-%d:latest" % i] for i in (1, 2, 3)]
    for n in names:
        remove_image(env, n)
    try:
        ids = [pull_public(env, n) for n in names]
        assert len(ids) == 3
        imgs = list_all_images(env)
        for name, iid in zip(names, ids):
            for img in imgs:
                if img.id == iid:
                    assert list(img.repo_tags) == [name], img.repo_tags
                    break
    finally:
        for n in names:
            remove_image(env, n)


def test_critest_image_list_three_repo_tags(env):
    """Image Manager: listImage should get exactly 3 repoTags in the result image
    [Conformance]"""
    names = [env.crit.refs["test-image-tags:%d" % i] for i in (1, 2, 3)]
    for n in names:
        remove_image(env, n)
    try:
        ids = sorted(set(pull_public(env, n) for n in names))
        assert len(ids) == 1, ids
        for img in list_all_images(env):
            if img.id == ids[0]:
                assert sorted(img.repo_tags) == sorted(names), img.repo_tags
                break
    finally:
        for n in names:
            remove_image(env, n)


def test_critest_image_consistency_not_listed_after_removal(env):
    """Image Consistency: should not list or get image status immediately after removal
    [Conformance]"""
    name = env.crit.refs["test-image-tag:test"]
    remove_image(env, name)
    pull_public(env, name)
    remove_image(env, name)
    assert not any(name in img.repo_tags for img in list_all_images(env))
    assert image_status(env, name) is None


def test_critest_image_consistency_listed_after_pull(env):
    """Image Consistency: should list and get image status immediately after pulling
    [Conformance]"""
    name = env.crit.refs["test-image-tag:test"]
    remove_image(env, name)
    pull_public(env, name)
    try:
        assert any(name in img.repo_tags for img in list_all_images(env))
        assert image_status(env, name) is not None
    finally:
        remove_image(env, name)


def test_critest_image_consistency_simultaneous_remove(env):
    """Image Consistency: should not fail on simultaneous RemoveImage calls [Conformance]"""
    name = env.crit.refs["test-image-tag:test"]
    remove_image(env, name)
    pull_public(env, name)
    img = image_status(env, name)
    assert img is not None
    iid = img.id

    def one(_):
        err = None
        try:
            call(env, "RemoveImage", harness.cri.RemoveImageRequest(
                image=harness.cri.ImageSpec(image=iid)))
        except grpc.RpcError as e:
            err = "%s %s" % (e.code(), e.details())
        return err, image_status(env, iid) is not None

    with concurrent.futures.ThreadPoolExecutor(5) as ex:
        results = list(ex.map(one, range(5)))
    assert all(err is None for err, _ in results), results
    assert not any(found for _, found in results), \
        "image still there right after a RemoveImage returned: %r" % results
    assert image_status(env, iid) is None


def _container_from_ref(e, pod, image_ref, name, prefix):
    cfg = harness.cri.ContainerConfig()
    cfg.metadata.name = prefix + new_uuid()
    cfg.metadata.attempt = DEFAULT_ATTEMPT
    cfg.image.image = image_ref
    cfg.image.user_specified_image = name
    cid = create(e, pod, cfg)
    e.k.start(cid)
    return cid


def test_critest_image_id_consistency_across_apis(env):
    """Image Identifier Consistency: should return the same image identifier across all APIs
    [Conformance]"""
    name = env.crit.refs["test-image-tag:test"]
    ref = pull_public(env, name)
    assert ref
    try:
        st = image_status(env, name)
        assert st is not None
        pod, _ = pod_for_container(env)
        cid = _container_from_ref(env, pod, ref, name, "id-consistency-")
        cst = status(env, cid)
        listed = env.k.list_containers(id=cid)
        assert len(listed) == 1, listed
        assert st.id == ref, "Image.id %s != PullImageResponse.image_ref %s" % (st.id, ref)
        if cst.image_id == "":
            pytest.skip("critest skips: ContainerStatus.image_id is empty")
        assert cst.image_id == ref, "ContainerStatus.image_id %s != %s" % (cst.image_id, ref)
        if listed[0].image_id == "":
            pytest.skip("critest skips: Container.image_id is empty")
        assert listed[0].image_id == ref, "Container.image_id %s != %s" % (listed[0].image_id,
                                                                           ref)
        env.k.remove(cid)
        env.k.stop_pod(pod)
        env.k.remove_pod(pod)
    finally:
        remove_image(env, name)


def test_critest_image_id_consistency_different_registries(env, registry_factory):
    """Image Identifier Consistency: should return the same image identifier when pulled from
    different registries [Conformance]"""
    img = images.busybox_image(env=["CRITEST=two-registries"])
    n1 = env.crit.registry.push(img, "critest/same-image", "v1").ref
    n2 = registry_factory().push(img, "critest/same-image", "v1").ref
    try:
        r1 = pull_public(env, n1)
        r2 = pull_public(env, n2)
        assert r1 and r1 == r2, (r1, r2)
        assert image_status(env, n1).id == r1
        assert image_status(env, n2).id == r1
        pod, _ = pod_for_container(env)
        cid = _container_from_ref(env, pod, r2, n2, "id-consistency-multi-registry-")
        cst = status(env, cid)
        if cst.image_id == "":
            pytest.skip("critest skips: ContainerStatus.image_id is empty")
        assert cst.image_id == r1, (cst.image_id, r1)
        env.k.remove(cid)
        env.k.stop_pod(pod)
        env.k.remove_pod(pod)
    finally:
        remove_image(env, n1)
        remove_image(env, n2)
