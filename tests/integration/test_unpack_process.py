"""crisp-unpack: every layer is applied by a child of imaged of its own
(imaged/unpack_client.c, unpack/), so libarchive never parses a registry's
bytes inside imaged.

The child runs with exactly the six capabilities of file extraction, its
own seccomp filter on top of imaged's, no_new_privs, and Landlock rules that
let it write beneath the one snapshot directory it fills. imaged trusts
nothing it answers: a child that dies, stalls or answers garbage fails its
layer, leaves no snapshot behind, and the next pull works.

Test hooks (--enable-test-hooks), from crispd's environment:
CRISP_TEST_UNPACK_DELAY_MS holds each layer back once the child is
sandboxed, CRISP_TEST_UNPACK_REPLY=garbage|overlimit makes it answer what
imaged must refuse, CRISP_TEST_UNPACK_PROBE makes it try to write beside
the snapshot, CRISP_TEST_UNPACK_SILENCE_MS shortens imaged's watchdog.
"""
import concurrent.futures
import os
import signal

import pytest

import harness
import images
from harness import rpc_error
from test_images_pull import (pull, push, imaged_pid, snapshot_dirs, snapshot_rows,
                              wait_imaged, imaged_root)

UNPACK = "crisp-unpack"
# CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_MKNOD, CAP_SETFCAP
UNPACK_CAPS = (1 << 0) | (1 << 1) | (1 << 3) | (1 << 4) | (1 << 27) | (1 << 31)

pytestmark = pytest.mark.skipif(not harness._build_defines("CRISP_TEST_HOOKS"),
                                reason="needs a build with --enable-test-hooks")


def landlock_enabled():
    try:
        with open("/sys/kernel/security/lsm") as f:
            return "landlock" in f.read().split(",")
    except OSError:
        return False


def crispd_with(crispd_factory, **env):
    # crisp-fetch goes soon after the pull, so imaged's fds can be counted.
    env.setdefault("CRISP_TEST_FETCH_IDLE_MS", 300)
    c = crispd_factory(start=False)
    c.start(argv=["/usr/bin/env"] + ["%s=%s" % kv for kv in env.items()] +
            [harness.CRISPD, "--config", c.conf])
    wait_imaged(c)
    return c


def unpack_children(c):
    return [pid for pid, comm in harness.children(imaged_pid(c)) if comm == UNPACK]


def wait_for(what, cond, timeout=20.0):
    return harness.wait_for(cond, timeout, interval=0.02, what=what)


def image(registry, name):
    img = images.busybox_image(env=["WHICH=" + name])
    return img, push(registry, img, "unpack/" + name, "v1")


def fds_settle(c, before):
    """imaged's fd count back to before, once crisp-fetch has gone."""
    imaged = imaged_pid(c)
    wait_for("crisp-fetch to go", lambda: not [
        p for p, comm in harness.children(imaged) if comm == "crisp-fetch"], timeout=10)
    wait_for("imaged's fds back to %d" % before,
             lambda: len(os.listdir("/proc/%d/fd" % imaged)) == before, timeout=5)


def left_behind(c, dirs_before):
    """Snapshot directories the failed pull left (crispd running), and,
    after stopping crispd, snapshot records that are not committed."""
    dirs = snapshot_dirs(c) - dirs_before
    c.stop()
    rows = [r for r in snapshot_rows(c) if r[2] != "committed"]
    return dirs, rows


def test_layer_unpacked_by_a_confined_child(crispd_factory, registry):
    c = crispd_with(crispd_factory, CRISP_TEST_UNPACK_DELAY_MS=1500,
                    CRISP_TEST_UNPACK_PROBE=1)
    imaged = imaged_pid(c)
    img, p = image(registry, "confined")
    mark = c.mark()
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(pull, c, p.ref)
        pid = wait_for("crisp-unpack to start", lambda: unpack_children(c))[0]
        # Its own sandbox is in place when the delay starts: wait for the
        # second filter.
        wait_for("crisp-unpack's own seccomp filter",
                 lambda: int(harness.proc_status(pid).get("Seccomp_filters", "0")) >
                 int(harness.proc_status(imaged)["Seccomp_filters"]))
        st = harness.proc_status(pid)
        fds = sorted(int(fd) for fd in os.listdir("/proc/%d/fd" % pid))
        with open("/proc/%d/environ" % pid, "rb") as f:
            env = [kv for kv in f.read().split(b"\0") if kv]
        assert fut.result(timeout=60) == img.id
    assert int(st["PPid"]) == imaged
    assert harness.documented_capeff(UNPACK) == UNPACK_CAPS, "docs/PRIVSEP.md, crisp-unpack"
    for k in ("CapPrm", "CapEff", "CapBnd"):
        assert int(st[k], 16) == UNPACK_CAPS, (k, st[k])
    for k in ("CapInh", "CapAmb"):
        assert int(st[k], 16) == 0, (k, st[k])
    assert st["Seccomp"] == "2" and st["NoNewPrivs"] == "1", st
    # stdin, stdout, stderr, its socket, the blob, the snapshot (the first
    # layer has none below): nothing else of imaged's.
    assert fds == [0, 1, 2, 3, 4, 5], fds
    assert all(kv.startswith(b"CRISP_TEST_UNPACK_") for kv in env), env
    lines = c.lines(mark)
    if landlock_enabled():
        assert any("test hook: creating a file beside the snapshot: Permission denied" in ln
                   for ln in lines), lines
    # The probe's file would be snapshots/<id>/landlock-probe.
    snaps = os.path.join(imaged_root(c), "snapshots")
    assert not [d for d in os.listdir(snaps)
                if os.path.exists(os.path.join(snaps, d, "landlock-probe"))], \
        "Landlock let it write beside the snapshot"
    wait_for("crisp-unpack to be reaped", lambda: unpack_children(c) == [], timeout=5)


@pytest.mark.parametrize("how", ["killed", "stalled"])
def test_child_that_dies_or_stalls_fails_the_layer_cleanly(crispd_factory, registry, how):
    env = {"CRISP_TEST_UNPACK_DELAY_MS": 4000}
    if how == "stalled":
        env["CRISP_TEST_UNPACK_SILENCE_MS"] = 1000
    c = crispd_with(crispd_factory, **env)
    imaged = imaged_pid(c)
    img, p = image(registry, how)
    dirs_before = snapshot_dirs(c)
    fds_before = len(os.listdir("/proc/%d/fd" % imaged))
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(rpc_error, pull, c, p.ref)
        pid = wait_for("crisp-unpack to start", lambda: unpack_children(c))[0]
        if how == "killed":
            os.kill(pid, signal.SIGKILL)
        err = fut.result(timeout=60)
    want = ("crisp-unpack exited with signal 9" if how == "killed" else
            "crisp-unpack read nothing of the layer for too long: killed")
    assert want in err.details(), err.details()
    assert imaged_pid(c) == imaged, "imaged was restarted"
    wait_for("crisp-unpack to be reaped", lambda: unpack_children(c) == [], timeout=5)
    fds_settle(c, fds_before)
    dirs, rows = left_behind(c, dirs_before)
    assert dirs == set() and rows == [], (dirs, rows)
    # The retry, without the hooks, works.
    c.start()
    wait_imaged(c)
    assert pull(c, p.ref) == img.id


@pytest.mark.parametrize("reply,want", [
    ("garbage", "that are no UnpackReply"),
    ("overlimit", "crisp-unpack answered an impossible result"),
])
def test_an_answer_that_cannot_be_fails_the_layer(crispd_factory, registry, reply, want):
    c = crispd_with(crispd_factory, CRISP_TEST_UNPACK_REPLY=reply)
    imaged = imaged_pid(c)
    img, p = image(registry, reply)
    dirs_before = snapshot_dirs(c)
    fds_before = len(os.listdir("/proc/%d/fd" % imaged))
    err = rpc_error(pull, c, p.ref)
    assert want in err.details(), err.details()
    assert imaged_pid(c) == imaged
    fds_settle(c, fds_before)
    dirs, rows = left_behind(c, dirs_before)
    assert dirs == set() and rows == [], (dirs, rows)
    c.start()
    wait_imaged(c)
    assert pull(c, p.ref) == img.id


def test_child_dies_with_imaged(crispd_factory, registry):
    """imaged killed mid-layer: its crisp-unpack goes too (parent-death
    signal, though a worker thread forked it), and the restarted imaged
    drops the half-made snapshot and pulls the image again."""
    c = crispd_with(crispd_factory, CRISP_TEST_UNPACK_DELAY_MS=3000)
    imaged = imaged_pid(c)
    img, p = image(registry, "orphan")
    dirs_before = snapshot_dirs(c)
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(rpc_error, pull, c, p.ref)
        pid = wait_for("crisp-unpack to start", lambda: unpack_children(c))[0]
        os.kill(imaged, signal.SIGKILL)
        fut.result(timeout=60)
    wait_for("crisp-unpack %d to die with imaged" % pid, lambda: not harness.alive(pid))
    wait_for("imaged to be restarted",
             lambda: c.children().get("crisp-imaged") not in (None, imaged), timeout=30)
    wait_imaged(c, timeout=30)
    # The restarted imaged's recovery removed the half-made snapshot.
    assert snapshot_dirs(c) - dirs_before == set(), snapshot_dirs(c) - dirs_before
    assert pull(c, p.ref) == img.id
