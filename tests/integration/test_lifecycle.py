"""Start-up and shutdown: one crispd per state dir (a lock), SIGTERM stops
crispd and every child within 5 s with exit status 0."""

import os
import re
import signal
import subprocess
import time

import harness

ANOTHER = re.compile(r"another|lock|already running", re.I)


def run_second(c, timeout=10):
    """Run a second crispd on c's config; return (exit status, output)."""
    p = subprocess.run([harness.CRISPD, "--config", c.conf], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=timeout, start_new_session=True,
                       env=harness.SERVICE_ENV)
    return p.returncode, p.stdout + p.stderr


def assert_second_refused(c):
    kids = c.children()
    ino = os.stat(c.sock).st_ino
    rc, out = run_second(c)
    assert rc != 0, "a second crispd on the same config started (exit 0): %s" % out
    assert ANOTHER.search(out), "refusal does not mention another crispd or the lock: %r" % out
    # The first one is untouched and still serves on the same socket.
    assert c.running()
    assert os.stat(c.sock).st_ino == ino, "the second crispd replaced the socket"
    assert c.call("Version").runtime_name == "crisp"
    assert c.children() == kids, "the second crispd disturbed the first one's children"


def assert_sigterm_clean(c):
    kids = c.children()
    assert len(kids) == 4
    t0 = time.monotonic()
    rc = c.terminate(timeout=5)
    assert rc is not None, "crispd still running 5 s after SIGTERM"
    assert rc == 0, "crispd exited with status %r after SIGTERM" % rc
    left = time.monotonic() - t0
    harness.wait_for(lambda: not any(harness.alive(p) for p in kids.values()), max(0.1, 5 - left),
                     what="crispd's children to exit (%r)" % kids)


def test_second_crispd_refused(crispd):
    assert_second_refused(crispd)


def test_sigterm_stops_everything(crispd):
    assert_sigterm_clean(crispd)


def test_sigterm_after_restarts(crispd):
    """The restarted children are stopped too."""
    for name in harness.PROCESSES:
        old = crispd.children()[name]
        os.kill(old, signal.SIGKILL)
        crispd.wait_new_pid(name, old, 2.0)
    crispd.wait_ready(5)
    assert_sigterm_clean(crispd)


def test_restart_after_sigterm(crispd_factory):
    """A clean stop leaves nothing that keeps the next start from working."""
    c = crispd_factory()
    assert_sigterm_clean(c)
    c.start()
    assert c.call("Version").runtime_name == "crisp"


def test_stale_socket_replaced(crispd_factory):
    """A socket file left by a crispd that was SIGKILLed does not stop the
    next one from starting."""
    c = crispd_factory()
    kids = c.children()
    os.kill(c.pid, 9)
    c.proc.wait()
    # Children exit when crispd goes away (ipc/child.h).
    harness.wait_for(lambda: not any(harness.alive(p) for p in kids.values()), 5,
                     what="children to exit after crispd was killed")
    c.start()
    assert c.call("Version").runtime_name == "crisp"
