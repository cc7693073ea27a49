"""UpdateContainerResources applies what CreateContainer would: the same
checks (and error messages), the same defaults (memory + swap equal to the
memory limit where the kernel accounts swap, so a resize neither grants swap
nor fails on cgroup v1's memsw ordering), and oom_score_adj written to the
container's init, all read back from the host's cgroup files and /proc and
from what ContainerStatus and the bundle's config.json report."""

import json
import os

import grpc

from harness import container_config, pod_config, rpc_error

MiB = 1 << 20


def init_pid(c, cri, cid):
    r = c.call("ContainerStatus", cri.ContainerStatusRequest(container_id=cid, verbose=True))
    pid = json.loads(r.info["info"])["pid"]
    assert pid > 0, r.info
    return pid


def memory_cgroup(pid):
    """The host directory of pid's memory cgroup, and whether it is v1."""
    with open("/proc/%d/cgroup" % pid) as f:
        lines = [ln.rstrip("\n").split(":", 2) for ln in f]
    for _, controllers, path in lines:
        if "memory" in controllers.split(","):
            return "/sys/fs/cgroup/memory" + path, True
    for hid, controllers, path in lines:
        if hid == "0" and controllers == "":
            return "/sys/fs/cgroup" + path, False
    raise AssertionError("no memory cgroup for %d: %s" % (pid, lines))


def read(path):
    with open(path) as f:
        return f.read().strip()


def memory_and_swap(pid):
    """(memory limit, memory + swap limit or None where swap is not
    accounted) as the kernel has them; v2's memory.swap.max is swap alone."""
    d, v1 = memory_cgroup(pid)
    if v1:
        memsw = os.path.join(d, "memory.memsw.limit_in_bytes")
        return (int(read(os.path.join(d, "memory.limit_in_bytes"))),
                int(read(memsw)) if os.path.exists(memsw) else None)
    mem = int(read(os.path.join(d, "memory.max")))
    swap = os.path.join(d, "memory.swap.max")
    return mem, mem + int(read(swap)) if os.path.exists(swap) else None


def bundle_spec(env, cid):
    path = os.path.join(env.c.config["crispd"]["state_dir"], "runtimed", "bundles", cid,
                        "config.json")
    with open(path) as f:
        return json.load(f)


def update(env, cri, cid, **fields):
    up = cri.UpdateContainerResourcesRequest(container_id=cid)
    for k, v in fields.items():
        setattr(up.linux, k, v)
    env.c.call("UpdateContainerResources", up)


def test_memory_lowered_and_raised(pod_env, cri):
    """Only a limit, no swap value: swap follows the limit down and up, as
    at create (the kubelet's resize sends no swap)."""
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("upd-mem"))
    cfg = container_config("mem", env.images.busybox)
    cfg.linux.resources.memory_limit_in_bytes = 64 * MiB
    cid = k.run(pod, cfg)
    pid = init_pid(env.c, cri, cid)
    mem, swap = memory_and_swap(pid)
    assert mem == 64 * MiB and swap in (None, 64 * MiB), (mem, swap)
    accounted = swap is not None

    for limit in (32 * MiB, 128 * MiB):
        update(env, cri, cid, memory_limit_in_bytes=limit)
        assert memory_and_swap(pid) == (limit, limit if accounted else None)
        st = k.status(cid).resources.linux
        assert st.memory_limit_in_bytes == limit
        assert st.memory_swap_limit_in_bytes == (limit if accounted else 0)
        spec_mem = bundle_spec(env, cid)["linux"]["resources"]["memory"]
        assert spec_mem["limit"] == limit, spec_mem
        assert spec_mem.get("swap") == (limit if accounted else None), spec_mem

    # An explicit swap above the limit is kept, as at create.
    if accounted:
        update(env, cri, cid, memory_limit_in_bytes=48 * MiB,
               memory_swap_limit_in_bytes=96 * MiB)
        assert memory_and_swap(pid) == (48 * MiB, 96 * MiB)
        assert k.status(cid).resources.linux.memory_swap_limit_in_bytes == 96 * MiB


def test_invalid_as_at_create(pod_env, cri):
    """What CreateContainer refuses, an update refuses with the same words,
    before anything reaches runc: the cgroup keeps its values."""
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("upd-inval"))
    bad = container_config("bad", env.images.busybox)
    bad.linux.resources.cpu_shares = 1000000
    e = rpc_error(k.create, pod, bad)
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.code(), e.details())
    words = "linux.resources.cpu_shares 1000000 is out of range"
    assert words in e.details(), e.details()

    cfg = container_config("ok", env.images.busybox)
    cfg.linux.resources.cpu_shares = 512
    cfg.linux.resources.memory_limit_in_bytes = 64 * MiB
    cid = k.run(pod, cfg)
    pid = init_pid(env.c, cri, cid)
    before = memory_and_swap(pid)
    cases = [
        ({"cpu_shares": 1000000, "memory_limit_in_bytes": 32 * MiB}, words),
        ({"cpu_period": 10}, "linux.resources.cpu_period 10 is not from 1000 to 1000000"),
        ({"cpuset_cpus": "0-x"}, "linux.resources.cpuset_cpus '0-x' is not a CPU list"),
        ({"memory_limit_in_bytes": 64 * MiB, "memory_swap_limit_in_bytes": 32 * MiB},
         "linux.resources.memory_swap_limit_in_bytes 33554432 is below the memory limit"),
        ({"oom_score_adj": 1001}, "linux.resources.oom_score_adj 1001 is not from -1000 to 1000"),
    ]
    for fields, msg in cases:
        up = cri.UpdateContainerResourcesRequest(container_id=cid)
        for f, v in fields.items():
            setattr(up.linux, f, v)
        e = rpc_error(env.c.call, "UpdateContainerResources", up)
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (fields, e.code(), e.details())
        assert msg in e.details(), (fields, e.details())
    up = cri.UpdateContainerResourcesRequest(container_id=cid)
    hp = up.linux.hugepage_limits.add()
    hp.page_size, hp.limit = "2XB", 0
    e = rpc_error(env.c.call, "UpdateContainerResources", up)
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and \
        "'2XB' is not a page size" in e.details(), (e.code(), e.details())
    assert memory_and_swap(pid) == before
    st = k.status(cid).resources.linux
    assert (st.cpu_shares, st.memory_limit_in_bytes) == (512, 64 * MiB)


def test_oom_score_adj_applied(pod_env, cri):
    """The update's oom_score_adj is written to the container's init and
    reported; one below what the process started with (which runtimed,
    without CAP_SYS_RESOURCE, cannot set) is refused with nothing changed."""
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("upd-oom"))
    cfg = container_config("oom", env.images.busybox)
    cfg.linux.resources.oom_score_adj = 100
    cfg.linux.resources.cpu_shares = 512
    cid = k.run(pod, cfg)
    pid = init_pid(env.c, cri, cid)
    oom = "/proc/%d/oom_score_adj" % pid
    assert read(oom) == "100"

    update(env, cri, cid, oom_score_adj=500, cpu_shares=600)
    assert read(oom) == "500"
    st = k.status(cid).resources.linux
    assert (st.oom_score_adj, st.cpu_shares) == (500, 600)
    assert bundle_spec(env, cid)["process"]["oomScoreAdj"] == 500

    # Lower, but not below the start value: allowed.
    update(env, cri, cid, oom_score_adj=200)
    assert read(oom) == "200" and k.status(cid).resources.linux.oom_score_adj == 200

    # An update without oom_score_adj (0 is proto3's "not set") leaves it.
    update(env, cri, cid, cpu_shares=700)
    assert read(oom) == "200" and k.status(cid).resources.linux.oom_score_adj == 200

    # Below the start value: the kernel lets only CAP_SYS_RESOURCE do that,
    # which runtimed lacks on this host. The rest of the update still goes
    # (the kubelet's resize sends an oom_score_adj with every change), and
    # the status keeps the value in force.
    mark = env.c.mark()
    update(env, cri, cid, oom_score_adj=50, cpu_shares=800)
    st = k.status(cid).resources.linux
    if read(oom) == "200":
        assert (st.oom_score_adj, st.cpu_shares) == (200, 800), st
        env.c.wait_log(r"oom_score_adj 50 not applied: below the value its process started",
                       since=mark)
    else:  # runtimed may lower it (CAP_SYS_RESOURCE)
        assert read(oom) == "50" and (st.oom_score_adj, st.cpu_shares) == (50, 800), st


def test_oom_score_adj_of_created_container(pod_env, cri):
    """A created container's update goes to its config.json: its start
    sets the new oom_score_adj."""
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("upd-oom-created"))
    cfg = container_config("oom", env.images.busybox)
    cfg.linux.resources.oom_score_adj = 100
    cfg.linux.resources.memory_limit_in_bytes = 64 * MiB
    cid = k.create(pod, cfg)
    update(env, cri, cid, oom_score_adj=300, memory_limit_in_bytes=32 * MiB)
    spec = bundle_spec(env, cid)
    assert spec["process"]["oomScoreAdj"] == 300
    k.start(cid)
    pid = init_pid(env.c, cri, cid)
    assert read("/proc/%d/oom_score_adj" % pid) == "300"
    mem, swap = memory_and_swap(pid)
    assert mem == 32 * MiB and swap in (None, 32 * MiB), (mem, swap)
    assert k.status(cid).resources.linux.oom_score_adj == 300
