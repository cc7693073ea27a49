"""crisp on a full disk: a node's disk does fill up (images, logs).

Each test gives crispd a root_dir on a small ext4 filesystem of its own (a
loop device, 4 KiB blocks as on a real disk, -m 0 so that root has no
reserved blocks to fall back on), fills it with filler files, exercises
crisp, deletes the fillers and checks that crisp recovers. What must hold:

- a call that needs space fails with RESOURCE_EXHAUSTED and a message that
  says the disk is full ("No space left on device"), or succeeds;
- nothing is half made: no blob, ingest file, snapshot, record or mount is
  left of what failed, and the lists agree with what answered OK;
- no crisp process dies: the pids of crispd's children stay the same;
- a running container is neither blocked nor killed when its CRI log cannot
  be written (the records are dropped and counted, none is left torn), and
  its output reaches the log again once there is room;
- a container that exits while the disk is full has its exit recorded once
  there is room (the monitor retries);
- the SQLite databases stay intact, and a restart finds the same records.
"""

import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time

import grpc
import pytest

import harness
from space import assert_alive, attempt, ok, remove_everything, space_error
import images
from harness import container_config, pod_config

MiB = 1 << 20
FS_MB = 96


class SmallFs:
    """An ext4 filesystem on a loop device, mounted at self.mnt."""

    def __init__(self, size_mb=FS_MB):
        self.dir = tempfile.mkdtemp(prefix="crisp-enospc-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.image = os.path.join(self.dir, "fs.img")
        self.mnt = os.path.join(self.dir, "mnt")
        os.mkdir(self.mnt)
        with open(self.image, "wb") as f:
            f.truncate(size_mb * MiB)
        subprocess.run(["mkfs.ext4", "-q", "-m", "0", "-b", "4096", "-F", self.image], check=True)
        subprocess.run(["mount", "-o", "loop", self.image, self.mnt], check=True)
        os.chmod(self.mnt, 0o755)
        self.fillers = []

    def free(self):
        st = os.statvfs(self.mnt)
        return st.f_bavail * st.f_frsize

    def fill(self, leave=0):
        """Leave about `leave` bytes free (0: none at all)."""
        path = os.path.join(self.mnt, "filler-%d" % len(self.fillers))
        self.fillers.append(path)
        size = self.free() - leave - (1 * MiB if leave == 0 else 0)
        if size > 0:
            subprocess.run(["fallocate", "-l", str(size), path], check=True)
        if leave == 0:
            # The last blocks, one by one: fallocate of exactly f_bavail
            # can fail for the extent tree's own blocks.
            with open(path + "-tail", "wb", buffering=0) as f:
                self.fillers.append(path + "-tail")
                for chunk in (64 << 10, 4 << 10, 512):
                    try:
                        while True:
                            f.write(b"\0" * chunk)
                    except OSError:
                        pass
            assert self.free() < 64 << 10, "could not fill %s: %d bytes free" % (
                self.mnt, self.free())

    def shrink(self, n):
        """Give n bytes back: the last filler gets shorter."""
        for p in reversed(self.fillers):
            size = os.path.getsize(p)
            if size > 0:
                os.truncate(p, max(0, size - n))
                return
        raise AssertionError("no filler left to shrink")

    def unfill(self):
        for p in self.fillers:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)
        self.fillers = []
        os.sync()

    def close(self):
        self.unfill()
        subprocess.run(["umount", "-l", self.mnt], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def small_fs():
    if not os.path.exists("/dev/loop-control"):
        pytest.fail("no loop devices: the test needs one for its small ext4 filesystem")
    fs = SmallFs()
    try:
        yield fs
    finally:
        fs.close()


def env_on(fs, pod_env_factory, config=None):
    """A pod_env whose root_dir is on fs."""
    cfg = {"crispd": {"root_dir": os.path.join(fs.mnt, "root")}}
    for section, kv in (config or {}).items():
        cfg.setdefault(section, {}).update(kv)
    env = pod_env_factory(config=cfg)
    env.pids = env.c.children()
    return env


def tree(path, skip=()):
    """{relative path: kind} of everything under path."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, path)
            if any(rel.startswith(s) for s in skip):
                continue
            out[rel] = "d" if os.path.isdir(p) and not os.path.islink(p) else "f"
    return out


def wait_dirs_as_before(root, before):
    """imaged's and runtimed's directories hold again what they held
    before. An undo that the full disk failed (a snapshot's removal, whose
    record imaged could not commit) is left to the frontend's reconciler,
    which retries a failed removal after 5 s, then twice as long each
    time, 60 s at most: up to a minute after the last failure."""
    def now():
        return {d: sorted(os.listdir(os.path.join(root, d))) for d in before}
    try:
        harness.wait_for(lambda: now() == before or None, 70, interval=0.2)
    except AssertionError:
        raise AssertionError("imaged's and runtimed's directories: %r, before: %r"
                             % (now(), before))


def list_images(c):
    return sorted(i.id for i in c.call("ListImages", harness.cri.ListImagesRequest()).images)


def fs_used(c):
    r = c.call("ImageFsInfo", harness.cri.ImageFsInfoRequest())
    return sum(f.used_bytes.value for f in r.image_filesystems)


def pull(c, ref, timeout=60):
    return c.call("PullImage", harness.cri.PullImageRequest(
        image=harness.cri.ImageSpec(image=ref)), timeout=timeout).image_ref


@pytest.mark.parametrize("free_mb", [8, 34], ids=["download", "unpack"])
def test_pull_larger_than_free_space(small_fs, pod_env_factory, registry, free_mb):
    """24 MiB of incompressible layers: with 8 MiB free the download fails,
    with 34 MiB the blobs fit and unpacking them does not."""
    env = env_on(small_fs, pod_env_factory)
    c = env.c
    big = registry.push(images.big_image(total_mb=24, layers=2), "crisp-enospc/big")
    imaged_dir = os.path.join(small_fs.mnt, "root", "imaged")
    before = (tree(imaged_dir), list_images(c), fs_used(c))

    small_fs.fill(leave=free_mb * MiB)
    try:
        pull(c, big.ref)
        pytest.fail("a pull of 24 MiB (48 unpacked) into %d MiB succeeded" % free_mb)
    except grpc.RpcError as e:
        space_error(e, "PullImage")
    assert_alive(env)
    small_fs.unfill()

    # Nothing of the failed pull stays: the trash empties on its own.
    def same():
        t = tree(imaged_dir)
        return t == before[0] or None
    try:
        harness.wait_for(same, 10, what="imaged's directory as before the pull")
    except AssertionError:
        t = tree(imaged_dir)
        added = sorted(set(t) - set(before[0]))
        gone = sorted(set(before[0]) - set(t))
        raise AssertionError("imaged's directory after a failed pull: added %r, gone %r" % (
            added[:30], gone[:30]))
    assert list_images(c) == before[1]
    assert abs(fs_used(c) - before[2]) < 1 * MiB, (fs_used(c), before[2])

    # ... and the same pull now succeeds.
    ref = pull(c, big.ref)
    assert ref in list_images(c)
    assert_alive(env)


# Directories under root_dir whose entries are objects (snapshots, ingests,
# blobs, per-object directories).
DIRS = ("imaged/snapshots", "imaged/ingest", "imaged/blobs/sha256", "imaged/trash", "runtimed",
        "netd")


def test_pods_and_containers_on_full_disk(small_fs, pod_env_factory):
    env = env_on(small_fs, pod_env_factory)
    c, k = env.c, env.cri
    baseline = set(harness.mounts_under(small_fs.mnt))
    root = os.path.join(small_fs.mnt, "root")
    dirs_before = {d: sorted(os.listdir(os.path.join(root, d))) for d in DIRS if
                   os.path.isdir(os.path.join(root, d))}
    pod_a = k.run_pod(pod_config("enospc-a"))
    running = k.run(pod_a, container_config("running", env.images.busybox))
    pending = k.create(pod_a, container_config("pending", env.images.busybox))

    small_fs.fill()
    pending_started = ok(attempt("StartContainer", k.start, pending))
    pod_b = attempt("RunPodSandbox", k.run_pod, pod_config("enospc-b"))
    pod_b = pod_b if ok(pod_b) else None
    cid = attempt("CreateContainer", k.create, pod_a, container_config("new", env.images.busybox))
    cid = cid if ok(cid) else None
    started = cid and ok(attempt("StartContainer", k.start, cid))
    cid_b = None
    if pod_b:
        cid_b = attempt("CreateContainer", k.create, pod_b,
                        container_config("new-b", env.images.busybox))
        cid_b = cid_b if ok(cid_b) else None
    assert_alive(env)

    # The lists hold exactly what answered OK.
    assert {p.id for p in k.list_pods()} == {pod_a} | ({pod_b} if pod_b else set())
    want = {running, pending} | {x for x in (cid, cid_b) if x}
    assert {x.id for x in k.list_containers()} == want
    if started:
        k.wait_state(cid, harness.cri.CONTAINER_RUNNING, timeout=10)
    assert k.status(running).state == harness.cri.CONTAINER_RUNNING
    # A start that failed leaves the container exited (StartError), never
    # half running.
    st = k.status(pending)
    if pending_started:
        assert st.state == harness.cri.CONTAINER_RUNNING, st
    else:
        assert st.state in (harness.cri.CONTAINER_CREATED, harness.cri.CONTAINER_EXITED), st

    # Cleanup works after freeing space, and leaves nothing.
    small_fs.unfill()
    ids = [pod_a, running, pending] + [x for x in (pod_b, cid, cid_b) if x]
    for x in [running, pending] + [x for x in (cid, cid_b) if x]:
        k.stop(x, timeout=0)
        k.remove(x)
    for p in [pod_a] + ([pod_b] if pod_b else []):
        k.stop_pod(p)
        k.remove_pod(p)
    assert not k.list_pods() and not k.list_containers()
    assert not harness.leftovers(c, ids, env.baseline_mounts)
    assert set(harness.mounts_under(small_fs.mnt)) == baseline
    # No snapshot, record directory or ingest left of what failed (the
    # trash empties on its own).
    wait_dirs_as_before(root, dirs_before)
    assert_alive(env)

    # And the same calls work now.
    pod = k.run_pod(pod_config("enospc-c"))
    k.run(pod, container_config("after", env.images.busybox))
    assert_alive(env)


def test_space_coming_back_bit_by_bit(small_fs, pod_env_factory):
    """The disk is full, then gets a little room back at a time (16 KiB, then
    more: failed attempts grow the databases' WAL, which takes some): each step's
    RunPodSandbox, CreateContainer and StartContainer fail for want of
    space wherever they are, or succeed, and the lists always agree with
    the answers; at the end everything removes cleanly."""
    env = env_on(small_fs, pod_env_factory)
    c, k = env.c, env.cri
    root = os.path.join(small_fs.mnt, "root")
    dirs_before = {d: sorted(os.listdir(os.path.join(root, d))) for d in DIRS if
                   os.path.isdir(os.path.join(root, d))}
    baseline = set(harness.mounts_under(small_fs.mnt))
    home = k.run_pod(pod_config("enospc-home"))
    small_fs.fill()
    pods, ctrs, failures = {home}, {}, 0
    for step in range(90):
        cfg = pod_config("enospc-ramp-%d" % step)
        pod = attempt("RunPodSandbox", k.run_pod, cfg)
        if ok(pod):
            pods.add(pod)
        cid = attempt("CreateContainer", k.create, pod if ok(pod) else home,
                      container_config("ramp-%d" % step, env.images.busybox))
        started = ok(cid) and ok(attempt("StartContainer", k.start, cid))
        if ok(cid):
            ctrs[cid] = started
        failures += (not ok(pod)) + (not ok(cid)) + (ok(cid) and not started)
        assert {p.id for p in k.list_pods()} == pods, "step %d" % step
        listed = {x.id: x.state for x in k.list_containers()}
        assert set(listed) == set(ctrs), "step %d" % step
        for x, st in ctrs.items():
            if st:
                assert listed[x] in (harness.cri.CONTAINER_RUNNING,
                                     harness.cri.CONTAINER_EXITED), (step, x, listed[x])
        if ok(pod) and started:
            break
        small_fs.shrink(16 * 1024 * (1 + step // 10))
    assert failures >= 3, "only %d failures: the disk was not full" % failures
    assert ok(pod) and started, "still failing after %d steps" % step
    assert_alive(env)

    small_fs.unfill()
    remove_everything(env, pods, ctrs)
    assert set(harness.mounts_under(small_fs.mnt)) == baseline
    wait_dirs_as_before(root, dirs_before)
    assert_alive(env)


def test_pod_start_failing_after_its_reservation(small_fs, pod_env_factory):
    """RunPodSandbox records the sandbox first (a reservation of its name),
    then starts it and records it again: on a disk that fills up in
    between, the start fails, and so may the undo that drops the
    reservation. The kubelet retries with the same name and attempt: once
    there is room, that must succeed within seconds, not after a restart."""
    env = env_on(small_fs, pod_env_factory)
    k = env.cri
    # After the start-up reconcile pass, the next one is a minute away.
    env.c.wait_log(r"reconcile: \d+ sandboxes", timeout=10)
    small_fs.fill()
    started_failing = []
    for step in range(40):
        cfg = pod_config("enospc-resv-%d" % step)
        try:
            k.run_pod(cfg)
        except grpc.RpcError as e:
            space_error(e, "RunPodSandbox")
            if "start sandbox" in e.details():
                started_failing.append(cfg)
        small_fs.shrink(4096)
    assert started_failing, "no RunPodSandbox failed after its reservation"
    assert_alive(env)
    small_fs.unfill()
    deadline = time.monotonic() + 15
    for cfg in started_failing:
        def retry():
            try:
                return k.run_pod(cfg)
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.ALREADY_EXISTS, (e.code(), e.details())
                return None
        harness.wait_for(retry, max(0.1, deadline - time.monotonic()), interval=0.5,
                         what="RunPodSandbox %s to succeed again" % cfg.metadata.name)
    assert_alive(env)


def test_container_log_on_full_disk(small_fs, pod_env_factory):
    """The pod's log directory is on the small filesystem; the container
    prints a numbered line of ~160 bytes every 10 ms."""
    env = env_on(small_fs, pod_env_factory)
    c, k = env.c, env.cri
    log_dir = os.path.join(small_fs.mnt, "logs")
    os.mkdir(log_dir)
    pod = k.run_pod(pod_config("enospc-log", log_directory=log_dir))
    script = "p=%s; i=0; while :; do echo $p line-$i; i=$((i+1)); usleep 10000; done" % (
        "x" * 150)
    cid = k.run(pod, container_config("talker", env.images.busybox, command=["sh", "-c", script]))
    path = os.path.join(log_dir, "talker.log")

    def last_number():
        n = -1
        with open(path, "rb") as f:
            for line in f.read().decode("utf-8", "replace").splitlines():
                if " line-" in line:
                    with contextlib.suppress(ValueError):
                        n = max(n, int(line.rsplit("line-", 1)[1]))
        return n

    harness.wait_for(lambda: last_number() >= 5, 10, what="the container's first lines")
    monitors = harness.monitor_processes([cid])
    assert len(monitors) == 1, monitors

    small_fs.fill()
    time.sleep(1.0)
    full_at = last_number()
    # The container goes on while its log cannot grow: it answers exec,
    # under the same monitor.
    st = k.status(cid)
    assert st.state == harness.cri.CONTAINER_RUNNING
    rc, out, _ = k.sh(cid, "echo alive")
    assert rc == 0 and out.strip() == "alive"
    assert harness.monitor_processes([cid]) == monitors
    assert_alive(env)

    small_fs.unfill()
    # New output reaches the log again, without a ReopenContainerLog.
    harness.wait_for(lambda: last_number() > full_at + 20, 10,
                     what="new lines in the log after freeing space (last before: %d)" % full_at)
    # What was dropped left no torn record behind: every line is a whole
    # CRI record (a record the disk cut short is taken back), and the
    # numbers only ever grow.
    numbers = []
    for _, stream, tag, text in harness.cri_log_records(path):
        assert re.fullmatch(r"x{150} line-\d+", text) and tag == "F", "torn record %r" % text
        numbers.append(int(text.rsplit("-", 1)[1]))
    assert numbers == sorted(set(numbers)), "records out of order or twice"
    # The container went on meanwhile: what it printed while the disk was
    # full is missing from the log (dropped, and counted), not delayed.
    assert any(b - a > 1 for a, b in zip(numbers, numbers[1:])), "nothing was dropped"
    # ReopenContainerLog works too.
    os.rename(path, path + ".1")
    c.call("ReopenContainerLog", harness.cri.ReopenContainerLogRequest(container_id=cid))
    harness.wait_for(lambda: os.path.exists(path) and last_number() >= 0, 10,
                     what="lines in the reopened log")
    assert k.status(cid).state == harness.cri.CONTAINER_RUNNING
    assert_alive(env)
    # The count of what was dropped reaches crisp's log at the exit.
    k.stop(cid, timeout=0)
    c.wait_log(r"container %s: [1-9]\d* log records were lost" % cid[:12], timeout=10)


def test_exit_while_disk_full(small_fs, pod_env_factory):
    """A container exits while the disk is full: its monitor cannot write
    the exit record yet, and must not lose it: once there is room the
    exit is recorded (code and all), and the monitor goes."""
    env = env_on(small_fs, pod_env_factory)
    k = env.cri
    pod = k.run_pod(pod_config("enospc-exit"))
    cid = k.run(pod, container_config("exiter", env.images.busybox,
                                      command=["sh", "-c", "sleep 1.5; exit 3"]))
    # This one is stopped and removed while the disk is still full.
    gone = k.run(pod, container_config("gone", env.images.busybox,
                                       command=["sh", "-c", "sleep 1.5; exit 4"]))
    small_fs.fill()
    time.sleep(2.5)
    st = k.status(cid)
    assert st.state in (harness.cri.CONTAINER_RUNNING, harness.cri.CONTAINER_EXITED), st
    assert_alive(env)
    t0 = time.monotonic()
    stopped = ok(attempt("StopContainer", k.stop, gone, timeout=2))
    assert time.monotonic() - t0 < 15, "StopContainer took %.1f s" % (time.monotonic() - t0)
    if stopped and ok(attempt("RemoveContainer", k.remove, gone)):
        harness.wait_for(lambda: not harness.monitor_processes([gone]), 10,
                         what="the monitor of the removed %s to go" % gone[:12])
    assert_alive(env)
    small_fs.unfill()
    if gone in k.ctrs:
        k.stop(gone, timeout=0)
        k.remove(gone)
    harness.wait_for(lambda: not harness.monitor_processes([gone]), 15,
                     what="the monitor of the removed %s to go" % gone[:12])
    st = k.wait_state(cid, harness.cri.CONTAINER_EXITED, timeout=10)
    assert st.exit_code == 3, st
    harness.wait_for(lambda: not harness.monitor_processes([cid]), 10,
                     what="the monitor of %s to go" % cid[:12])
    k.remove(cid)
    assert_alive(env)


def integrity(path):
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return db.execute("PRAGMA integrity_check").fetchall()
    finally:
        db.close()


def state_lists(c):
    pods = sorted((p.id, p.state) for p in c.call(
        "ListPodSandbox", harness.cri.ListPodSandboxRequest()).items)
    ctrs = sorted((x.id, x.state) for x in c.call(
        "ListContainers", harness.cri.ListContainersRequest()).containers)
    return pods, ctrs, list_images(c)


def test_records_survive_full_disk_and_restart(small_fs, pod_env_factory, registry):
    env = env_on(small_fs, pod_env_factory)
    c, k = env.c, env.cri
    pod = k.run_pod(pod_config("enospc-rec"))
    keep = k.run(pod, container_config("keep", env.images.busybox))
    gone = k.create(pod, container_config("gone", env.images.busybox))
    pending = k.create(pod, container_config("pending", env.images.busybox))
    halt = k.run(pod, container_config("halt", env.images.busybox))
    pod2 = k.run_pod(pod_config("enospc-rec-stop"))
    pod3 = k.run_pod(pod_config("enospc-rec-rm"))
    small = registry.push(images.busybox_image(cmd=["true"], env=["ENOSPC=1"]),
                          "crisp-enospc/small")

    small_fs.fill()
    # Calls that write records, each answered one way or the other.
    for i in range(3):
        attempt("RunPodSandbox", k.run_pod, pod_config("enospc-rec-%d" % i))
        attempt("CreateContainer", k.create, pod, container_config("c%d" % i,
                                                                   env.images.busybox))
    attempt("PullImage", pull, c, small.ref)
    attempt("StartContainer", k.start, pending)
    attempt("StopContainer", k.stop, halt, timeout=0)
    attempt("StopPodSandbox", k.stop_pod, pod2)
    if ok(attempt("StopPodSandbox", k.stop_pod, pod3)):
        attempt("RemovePodSandbox", k.remove_pod, pod3)
    removed = ok(attempt("RemoveContainer", k.remove, gone))
    ctrs = {x.id for x in k.list_containers()}
    assert (gone not in ctrs) == removed, "RemoveContainer answered %s, listed: %s" % (
        removed, gone in ctrs)
    assert keep in ctrs
    assert_alive(env)
    lists = state_lists(c)

    small_fs.unfill()
    c.stop()
    root = os.path.join(small_fs.mnt, "root")
    dbs = [os.path.join(dp, f) for dp, _, fs in os.walk(root) for f in fs if f.endswith(".db")]
    assert len(dbs) >= 2, dbs
    for db in dbs:
        assert integrity(db) == [("ok",)], db
    c.start()
    env.pids = c.children()
    harness.wait_for(lambda: state_lists(c) == lists or None, 10,
                     what="the same records after the restart: %r, was %r" % (
                         state_lists(c), lists))
    assert k.status(keep).state == harness.cri.CONTAINER_RUNNING
    # And the records can be changed again.
    if not removed:
        k.remove(gone)
    assert {x.id for x in k.list_containers()} >= {keep}
    assert_alive(env)
