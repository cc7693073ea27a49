"""Landlock signal scoping (ABI 6, Linux 6.12; common/sandbox.c,
docs/PRIVSEP.md): imaged's seccomp filter lets it SIGKILL through a pidfd,
for crisp-fetch, and a pidfd can be opened on /proc/<pid> of any process, so
seccomp alone would let a subverted imaged kill any process of uid 0. With
its signal scope it reaches only what it forked after restricting itself.

The test hook (--enable-test-hooks): SIGUSR1 makes imaged SIGKILL the pid
written in <root_dir>/imaged/test-signal-pid through a pidfd of /proc/<pid>
(or, for "sigio <pid>", through F_SETOWN and F_SETSIG on a socket, which
every crisp filter refuses), and log the outcome (imaged/imaged.c).
"""
import concurrent.futures
import ctypes
import os
import re
import signal
import subprocess

import pytest

import harness
from harness import rpc_error
from test_fetch_process import IDLE_MS, crispd_fetch, fetch_children, slow_image  # noqa: F401
from test_images_pull import imaged_pid, pull


def landlock_abi():
    """The kernel's Landlock ABI version, or 0 if it has none (or it is
    disabled): landlock_create_ruleset(NULL, 0, VERSION)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    # 444 on x86_64 and aarch64 alike (syscalls numbered after 403 are shared)
    v = libc.syscall(ctypes.c_long(444), None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(v, 0)


ABI = landlock_abi()

pytestmark = [
    pytest.mark.skipif(not harness._build_defines("CRISP_TEST_HOOKS"),
                       reason="needs a build with --enable-test-hooks"),
    pytest.mark.skipif(ABI < 6, reason="kernel Landlock ABI %d: signal scoping needs 6 "
                       "(Linux 6.12); crisp only warns there" % ABI),
]


def signal_with_hook(c, pid, how=""):
    """Make imaged SIGKILL pid (through a pidfd, or with how "sigio " through
    F_SETOWN); return its log line about it."""
    # The hook's handler is installed just before imaged logs "ready",
    # which may come after the frontend serves (a loaded machine).
    c.wait_log(r"crisp-imaged\[%d\]: ready" % imaged_pid(c), timeout=30)
    path = os.path.join(c.config["crispd"]["root_dir"], "imaged", "test-signal-pid")
    with open(path, "w") as f:
        f.write("%s%d\n" % (how, pid))
    mark = c.mark()
    os.kill(imaged_pid(c), signal.SIGUSR1)
    return c.wait_log(r"test hook: (SIGKILL to pid %d|F_SETOWN %d|cannot|socketpair|write)"
                      % (pid, pid), since=mark)


def test_imaged_cannot_signal_outside_its_domain(crispd):
    c = crispd
    imaged = imaged_pid(c)
    # A root process of the test's own, started before and outside imaged:
    # what crispd, runtimed or a container's process is to imaged.
    outside = subprocess.Popen(["sleep", "300"])
    try:
        line = signal_with_hook(c, outside.pid)
        assert re.search(r"refused: errno 1 \(", line), line
        assert outside.poll() is None, "imaged killed a process outside its domain"
        # crispd itself, imaged's parent, likewise.
        line = signal_with_hook(c, c.pid)
        assert re.search(r"refused: errno 1 \(", line), line
        assert c.serves(timeout=5)
        # F_SETOWN with SIGKILL as the I/O signal, which the kernel lets
        # euid 0 send to any process: every filter refuses F_SETOWN (the
        # scope would drop the signal too, silently), so watch the target.
        line = signal_with_hook(c, outside.pid, how="sigio ")
        assert re.search(r"F_SETOWN %d refused: errno 1 \(" % outside.pid, line), line
        with pytest.raises(subprocess.TimeoutExpired):
            outside.wait(timeout=1)
    finally:
        outside.kill()
        outside.wait()
    assert imaged_pid(c) == imaged, "imaged was restarted"
    # No warning that the scope is missing on this kernel.
    assert not [l for l in c.lines(0) if "Landlock" in l and "not blocked" in l], \
        [l for l in c.lines(0) if "Landlock" in l]


def test_imaged_still_kills_crisp_fetch(crispd_fetch, registry, flaky):
    """crisp-fetch, forked after imaged restricted itself, is in a nested
    domain: the same hook's SIGKILL reaches it, the pull fails, imaged stays
    (the kill paths of imaged/fetch_client.c are in test_fetch_process.py)."""
    c = crispd_fetch
    imaged = imaged_pid(c)
    img, p = slow_image(registry, flaky, "landlock", rate=128 << 10)
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(rpc_error, pull, c, p.via(flaky.host))
        pid = harness.wait_for(lambda: fetch_children(c), 10, what="crisp-fetch to start")[0]
        line = signal_with_hook(c, pid)
        assert line.endswith("SIGKILL to pid %d sent" % pid), line
        err = fut.result(timeout=60)
    assert "crisp-fetch exited with signal 9" in err.details(), err.details()
    harness.wait_for(lambda: not harness.alive(pid), 5, what="crisp-fetch %d to die" % pid)
    assert imaged_pid(c) == imaged
    assert pull(c, p.ref) == img.id
