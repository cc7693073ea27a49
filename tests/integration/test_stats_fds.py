"""The open fds of containers in the metrics: runtimed counts them (a
readlink per fd) off its loop and only for ListPodSandboxMetrics, which
shows them as container_file_descriptors and container_sockets; the stats
calls do without. A container whose fds were not counted (one that exited)
has no such metrics, rather than a 0 that would read as "no open files"."""

import time

import harness
from harness import container_config, pod_config

OPEN_FDS = 300

# Opens fds 10.. (busybox ash takes multi-digit fds), then execs sleep, which
# keeps them: a process holding OPEN_FDS + 3 fds.
HOLD_FDS = ("i=10; while [ $i -lt %d ]; do eval \"exec $i</etc/passwd\"; i=$((i+1)); done; "
            "exec sleep 3600" % (10 + OPEN_FDS))


def sh_config(name, image, script):
    return container_config(name, image, command=["sh", "-c", script])


def container_metrics(c, cri, pod, cid):
    """{name: metric} of cid in ListPodSandboxMetrics, None when not listed."""
    pm = c.call("ListPodSandboxMetrics", cri.ListPodSandboxMetricsRequest()).pod_metrics
    for p in pm:
        if p.pod_sandbox_id != pod:
            continue
        for cm in p.container_metrics:
            if cm.container_id == cid:
                return {m.name: m for m in cm.metrics}
    return None


def test_metrics_count_open_fds(pod_env, cri):
    env, k, c = pod_env, pod_env.cri, pod_env.c
    pod = k.run_pod(pod_config("stats-fds"))
    cid = k.run(pod, sh_config("holder", env.images.busybox, HOLD_FDS))
    done = k.run(pod, sh_config("done", env.images.busybox, "exit 0"))
    harness.wait_for(lambda: k.status(done).state == cri.CONTAINER_EXITED, 30,
                     what="the short container to exit")

    # The stats calls work as ever (they count nothing).
    s = c.call("ContainerStats", cri.ContainerStatsRequest(container_id=cid)).stats
    assert s.attributes.id == cid and s.memory.working_set_bytes.value > 0
    listed = {x.attributes.id for x in
              c.call("ListContainerStats", cri.ListContainerStatsRequest()).stats}
    assert {cid, done} <= listed

    # The shell opens its fds in a moment; a count may be cached for up to
    # 10 s: poll until the metrics show them all.
    seen = {}

    def counted():
        seen["m"] = container_metrics(c, cri, pod, cid)
        m = seen["m"] or {}
        return ("container_file_descriptors" in m
                and m["container_file_descriptors"].value.value >= OPEN_FDS)
    harness.wait_for(counted, 30, interval=0.5,
                     what="container_file_descriptors >= %d" % OPEN_FDS)
    m = seen["m"]
    fds = m["container_file_descriptors"]
    socks = m["container_sockets"]
    assert fds.value.value < OPEN_FDS + 100, "counted %d fds" % fds.value.value
    assert socks.value.value <= fds.value.value
    assert list(fds.label_values) == list(m["container_threads"].label_values)
    # The time of the count, not after the reply's.
    assert 0 < fds.timestamp <= m["container_last_seen"].timestamp
    assert socks.timestamp == fds.timestamp

    # The exited container: listed, without fd metrics (not counted).
    dm = container_metrics(c, cri, pod, done)
    assert dm is not None and "container_last_seen" in dm
    assert "container_file_descriptors" not in dm and "container_sockets" not in dm

    # ContainerStats still answers while counts are cached.
    s = c.call("ContainerStats", cri.ContainerStatsRequest(container_id=cid)).stats
    assert s.attributes.id == cid


def test_metrics_fds_follow_the_container(pod_env, cri):
    """A count is of the container's processes as they are: after the shell
    closes its fds, a later count (at most 10 s later) shows fewer."""
    env, k, c = pod_env, pod_env.cri, pod_env.c
    pod = k.run_pod(pod_config("stats-fds-change"))
    script = ("i=10; while [ $i -lt %d ]; do eval \"exec $i</etc/passwd\"; i=$((i+1)); done; "
              "while [ ! -e /tmp/close ]; do sleep 0.1; done; "
              "i=10; while [ $i -lt %d ]; do eval \"exec $i<&-\"; i=$((i+1)); done; "
              "exec sleep 3600" % (10 + OPEN_FDS, 10 + OPEN_FDS))
    cid = k.run(pod, sh_config("closer", env.images.busybox, script))
    value = {}

    def fds_at_least(n):
        m = container_metrics(c, cri, pod, cid) or {}
        v = m.get("container_file_descriptors")
        value["v"] = v.value.value if v else None
        return v is not None and v.value.value >= n

    harness.wait_for(lambda: fds_at_least(OPEN_FDS), 30, interval=0.5,
                     what="the open fds counted")
    code, _, err = k.sh(cid, "touch /tmp/close")
    assert code == 0, err

    def fewer():
        m = container_metrics(c, cri, pod, cid) or {}
        v = m.get("container_file_descriptors")
        value["v"] = v.value.value if v else None
        return v is not None and v.value.value < OPEN_FDS // 2

    harness.wait_for(fewer, 40, interval=1, what="fewer fds counted")
