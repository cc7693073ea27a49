"""systemd socket activation: crispd serves on the socket it inherits
(LISTEN_FDS) and ignores the configured path."""

import os
import shutil
import signal

import grpc
import pytest

import harness
from test_lifecycle import assert_second_refused, assert_sigterm_clean

ACTIVATE = shutil.which("systemd-socket-activate") or "/usr/bin/systemd-socket-activate"


@pytest.fixture
def activated(crispd_factory):
    c = crispd_factory(start=False)
    configured = os.path.join(c.dir, "configured.sock")
    c.update_config({"crispd": {"socket": configured}})
    activated_sock = os.path.join(c.dir, "activated.sock")
    # systemd-socket-activate listens on activated_sock and execs crispd (same
    # pid) with LISTEN_FDS when the first client connects.
    c.sock = activated_sock
    c.start(argv=[ACTIVATE, "-l", activated_sock, harness.CRISPD, "--config", c.conf],
            wait=False)
    harness.wait_for(lambda: os.path.exists(activated_sock), 10, what="the activation socket")
    c.wait_ready(20)
    c.configured_sock = configured
    return c


def test_version_through_activated_socket(activated):
    assert activated.call("Version").runtime_name == "crisp"
    assert harness.proc_stat(activated.pid)[0] == "crispd", "not crispd at the activator's pid"
    assert not os.path.exists(activated.configured_sock), \
        "crispd also created the configured socket under socket activation"


def test_activated_status(activated):
    conds = harness.conditions(activated.status())
    assert conds["RuntimeReady"].status


def test_activated_second_refused(activated):
    # The second one is not activated: it would bind the configured path,
    # but must stop at the lock first.
    assert_second_refused(activated)
    assert not os.path.exists(activated.configured_sock)


def test_activated_sigterm(activated):
    assert_sigterm_clean(activated)


def test_activated_frontend_restart_keeps_socket(activated):
    """The inherited listening socket survives a frontend restart."""
    old = activated.children()[harness.FRONTEND]
    os.kill(old, signal.SIGKILL)
    activated.wait_new_pid(harness.FRONTEND, old, 2.0)
    harness.wait_for(activated.serves, 2.0, what="Version from the new frontend")
