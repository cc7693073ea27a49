"""systemd socket activation: crispd serves on the socket it inherits
(LISTEN_FDS) and ignores the configured path; and the sd_notify protocol:
READY=1 and STOPPING=1 reach NOTIFY_SOCKET. crispd speaks both itself, and
keeps these variables from its children."""

import os
import shutil
import signal
import socket

import grpc
import pytest

import harness
from test_lifecycle import assert_second_refused, assert_sigterm_clean

ACTIVATE = shutil.which("systemd-socket-activate") or "/usr/bin/systemd-socket-activate"


# What systemd gives its service, and crispd must not pass on to its children.
SYSTEMD_VARS = ("NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


def bind_notify_socket(path):
    """A datagram socket at path, standing in for systemd's notify socket."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    return s


def next_notification(sock, timeout):
    """The next datagram within timeout seconds, or None."""
    sock.settimeout(timeout)
    try:
        return sock.recv(4096).decode("utf-8", "replace")
    except socket.timeout:
        return None


def assert_children_without_systemd_vars(c):
    kids = c.children()
    assert len(kids) == 4, "children: %r" % kids
    for name, pid in kids.items():
        with open("/proc/%d/environ" % pid, "rb") as f:
            names = {v.split(b"=", 1)[0].decode() for v in f.read().split(b"\0") if v}
        leaked = names.intersection(SYSTEMD_VARS)
        assert not leaked, "%s (pid %d) inherited %s" % (name, pid, sorted(leaked))


@pytest.fixture
def activated(crispd_factory):
    c = crispd_factory(start=False)
    configured = os.path.join(c.dir, "configured.sock")
    c.update_config({"crispd": {"socket": configured}})
    activated_sock = os.path.join(c.dir, "activated.sock")
    notify_path = os.path.join(c.dir, "notify.sock")
    c.notify = bind_notify_socket(notify_path)
    # systemd-socket-activate listens on activated_sock and execs crispd (same
    # pid) with LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES and (-E) NOTIFY_SOCKET
    # when the first client connects.
    c.sock = activated_sock
    c.start(argv=[ACTIVATE, "-l", activated_sock, "-E", "NOTIFY_SOCKET=" + notify_path,
                  harness.CRISPD, "--config", c.conf],
            wait=False)
    harness.wait_for(lambda: os.path.exists(activated_sock), 10, what="the activation socket")
    c.wait_ready(20)
    c.configured_sock = configured
    yield c
    c.notify.close()


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


def test_activated_children_without_systemd_vars(activated):
    assert next_notification(activated.notify, 10) == "READY=1"
    assert_children_without_systemd_vars(activated)


def test_notify_ready_and_stopping(crispd_factory):
    """READY=1 once the CRI socket is open, STOPPING=1 on SIGTERM, each once,
    and no child can notify in crispd's name."""
    c = crispd_factory(start=False)
    notify_path = os.path.join(c.dir, "notify.sock")
    with bind_notify_socket(notify_path) as notify:
        c.start(wait=False, env={"NOTIFY_SOCKET": notify_path})
        assert next_notification(notify, 20) == "READY=1"
        assert os.path.exists(c.sock), "READY=1 before the CRI socket exists"
        c.wait_ready(20)
        assert next_notification(notify, 0.5) is None, "more than one notification at start"
        assert_children_without_systemd_vars(c)
        assert_sigterm_clean(c)
        assert next_notification(notify, 2) == "STOPPING=1"
        assert next_notification(notify, 0.2) is None, "more than one notification at stop"


def test_notify_failure_not_fatal(crispd_factory):
    """A NOTIFY_SOCKET nobody listens on, or one that is no address, is
    logged; crispd serves all the same."""
    c = crispd_factory(start=False)
    c.start(env={"NOTIFY_SOCKET": os.path.join(c.dir, "nobody.sock")}, timeout=20)
    c.wait_log(r"cannot send READY=1 to systemd at .*nobody\.sock")
    assert c.call("Version").runtime_name == "crisp"
    assert_sigterm_clean(c)

    c.start(env={"NOTIFY_SOCKET": "relative.sock"}, timeout=20)
    c.wait_log(r"NOTIFY_SOCKET 'relative\.sock' is neither an absolute path")
    assert c.call("Version").runtime_name == "crisp"
    assert_children_without_systemd_vars(c)
