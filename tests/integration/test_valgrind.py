"""crispd itself under valgrind memcheck: the config paths and a whole
start / serve / SIGTERM cycle without memory errors or definite leaks. (Its
children run natively: seccomp would not let valgrind run them.)"""

import os
import shutil
import signal
import subprocess

import pytest

import harness

VALGRIND = shutil.which("valgrind") or "/usr/bin/valgrind"


def valgrind_argv(logfile):
    return [VALGRIND, "--quiet", "--error-exitcode=99", "--leak-check=full",
            "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
            "--track-fds=no", "--log-file=" + logfile, harness.CRISPD]


def _report(logfile):
    try:
        with open(logfile) as f:
            return f.read()
    except FileNotFoundError:
        return "(no valgrind log)"


@pytest.fixture
def unstarted(crispd_factory):
    return crispd_factory(start=False)


def test_print_config(unstarted):
    c = unstarted
    c.add_dropin("10-x.conf", {"crispd": {"log_level": "debug"}})
    log = os.path.join(c.dir, "valgrind.log")
    p = subprocess.run(valgrind_argv(log) + ["--config", c.conf, "--print-config"],
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, "exit %d\n%s\n%s" % (p.returncode, p.stderr, _report(log))


def test_config_error(unstarted):
    c = unstarted
    c.add_dropin("10-x.conf", {"crispd": {"bogus": "1"}})
    log = os.path.join(c.dir, "valgrind.log")
    p = subprocess.run(valgrind_argv(log) + ["--config", c.conf],
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert p.returncode == 2, "exit %d\n%s\n%s" % (p.returncode, p.stderr, _report(log))


def test_serve_and_sigterm(unstarted, cri):
    c = unstarted
    log = os.path.join(c.dir, "valgrind.log")
    c.start(argv=valgrind_argv(log) + ["--config", c.conf], wait=False)
    c.wait_ready(60)
    assert c.call("Version").runtime_name == "crisp"
    # A restart exercises the supervisor's child bookkeeping.
    old = c.children()[harness.FRONTEND]
    os.kill(old, signal.SIGKILL)
    c.wait_new_pid(harness.FRONTEND, old, 10)
    c.wait_ready(20)
    rc = c.terminate(timeout=60)
    assert rc == 0, "exit %r\n%s" % (rc, _report(log))
