"""What a sandbox or container removal could not clean up at once is not left
for runtimed's next start.

- A process found in a removed pod's pause cgroup is killed, and runtimed
  waits for it to go on a timer (never sleeping on its loop), trying the
  cgroup's removal again every 50 ms for a while: a process with much memory
  takes longer than one such wait to exit.
- A cgroup or directory whose removal fails (a process kept in the pod's
  cgroup, a mount left in a container's bundle) is listed and tried again
  later with backoff (every 60 s at first; the test hook
  CRISP_TEST_CLEANUP_RETRY_MS of a --enable-test-hooks build shortens that),
  until it goes. Only what a failure listed is touched: a bundle no record
  owns but no failure listed is left for the start-up sweep.
"""

import functools
import os
import signal
import subprocess
import time

import harness
from harness import CGROUP_ROOT, container_config, pod_config

RETRY_MS = 1000
HOOKS = harness._build_defines("CRISP_TEST_HOOKS")


def _cgroup(rel):
    """The pids hierarchy's directory of rel (hybrid and v1; v2 has one)."""
    pids = os.path.join(CGROUP_ROOT, "pids")
    return os.path.join(pids if os.path.isdir(pids) else CGROUP_ROOT, rel)


def _join(rel, pid):
    with open(os.path.join(_cgroup(rel), "cgroup.procs"), "w") as f:
        f.write(str(pid))


def _fast_retries(c):
    """Start c with the cleanup retry period shortened (test hook)."""
    c.start = functools.partial(harness.Crispd.start, c, argv=[
        "/usr/bin/env", "CRISP_TEST_CLEANUP_RETRY_MS=%d" % RETRY_MS, harness.CRISPD,
        "--config", c.conf])


def _retry_env(pod_env_factory):
    assert HOOKS, "needs a build with --enable-test-hooks (CRISP_TEST_CLEANUP_RETRY_MS)"
    return pod_env_factory(before_start=_fast_retries)


def test_killed_process_in_pause_cgroup_waited_for(pod_env, cri):
    """The process takes a few hundred ms to exit (the kernel frees its 2 GiB
    first): a single 50 ms wait would leave the pod's cgroups behind."""
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("leftover-kill"))
    pause_rel = "crisp/pod-%s/crisp-%s" % (pod, pod)
    assert os.path.isdir(_cgroup(pause_rel)), "no pause cgroup %s" % _cgroup(pause_rel)
    big = subprocess.Popen(
        ["/usr/bin/python3", "-c",
         "import time\nb = bytearray(2 << 30)\nb[::4096] = b'\\x01' * (len(b) // 4096)\n"
         "print('ready', flush=True)\ntime.sleep(600)"],
        stdout=subprocess.PIPE)
    try:
        assert big.stdout.readline() == b"ready\n"
        k.stop_pod(pod)
        _join(pause_rel, big.pid)
        runtimed = env.c.children()["crisp-runtimed"]
        mark = env.c.mark()
        k.remove_pod(pod)
        assert big.wait(10) == -signal.SIGKILL
        env.c.wait_log(r"still held processes: killed them", since=mark)
        # gone when the removal answers, not at the next start or retry
        assert not os.path.exists(_cgroup(pause_rel)), "pause cgroup left behind"
        assert not os.path.exists(_cgroup("crisp/pod-%s" % pod)), "pod cgroup left behind"
        assert not [ln for ln in env.c.lines(mark) if "tried again" in ln], env.c.lines(mark)
        assert env.c.children()["crisp-runtimed"] == runtimed
    finally:
        if big.poll() is None:
            big.kill()
            big.wait()


def test_busy_pod_cgroup_removed_once_released(pod_env_factory, cri):
    env = _retry_env(pod_env_factory)
    k = env.cri
    pod = k.run_pod(pod_config("leftover-cgroup"))
    pod_rel = "crisp/pod-%s" % pod
    blocker = subprocess.Popen(["sleep", "600"])
    try:
        _join(pod_rel, blocker.pid)
        mark = env.c.mark()
        k.stop_pod(pod)
        k.remove_pod(pod)
        assert not k.list_pods(id=pod), "the record stayed"
        env.c.wait_log(r"cgroup %s of %s will be tried again" % (pod_rel, pod[:12]), since=mark)
        # still blocked: retries fail, and say so, until it is released
        env.c.wait_log(r"left over from the removal of %s: .*retry 1\)" % pod[:12], since=mark,
                       timeout=5)
        assert os.path.isdir(_cgroup(pod_rel)), "the blocker did not block the removal"
    finally:
        blocker.kill()
        blocker.wait()
    harness.wait_for(lambda: not os.path.exists(_cgroup(pod_rel)), 10,
                     what="the pod cgroup removed by a retry")
    env.c.wait_log(r"removed cgroup %s, left over from the removal of %s" % (pod_rel, pod[:12]),
                   since=mark)


def test_bundle_behind_a_mount_removed_once_unmounted(pod_env_factory, cri):
    env = _retry_env(pod_env_factory)
    k = env.cri
    pod = k.run_pod(pod_config("leftover-bundle"))
    cid = k.run(pod, container_config("box", env.images.busybox))
    bundles = os.path.join(env.c.dir, "state", "runtimed", "bundles")
    bundle = os.path.join(bundles, cid)
    # a bundle no record owns, that no failure listed: a retry leaves it
    # alone (it could be a create in flight), only a restart sweeps it
    stranger = os.path.join(bundles, "ab" * 32)
    os.mkdir(stranger)
    blocker = os.path.join(bundle, "blocker")
    os.mkdir(blocker)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "blocker", blocker], check=True)
    mounted = True
    try:
        mark = env.c.mark()
        k.stop(cid, timeout=0)
        k.remove(cid)
        assert not k.list_containers(id=cid), "the record stayed"
        env.c.wait_log(r"path %s of %s will be tried again" % (bundle, cid[:12]), since=mark)
        env.c.wait_log(r"left over from the removal of %s: .*retry 1\)" % cid[:12], since=mark,
                       timeout=5)
        assert os.path.isdir(blocker), "the mount did not block the removal"
        subprocess.run(["umount", blocker], check=True)
        mounted = False
        harness.wait_for(lambda: not os.path.exists(bundle), 10,
                         what="the bundle removed by a retry")
        env.c.wait_log(r"removed path %s, left over from the removal of %s" % (bundle, cid[:12]),
                       since=mark)
        time.sleep(2 * RETRY_MS / 1000)
        assert os.path.isdir(stranger), "a retry swept what no failure listed"
    finally:
        if mounted:
            subprocess.run(["umount", "-l", blocker], check=False)
        if os.path.isdir(stranger):
            os.rmdir(stranger)
