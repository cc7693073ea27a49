"""crispd's health protocol and restart policy: a child whose loop hangs is
killed and restarted; quick deaths in a row are reported as crash-looping; a
hung helper does not hang Status."""

import os
import signal
import time

import pytest

import harness


@pytest.mark.parametrize("name", ["crisp-netd", harness.FRONTEND])
def test_hung_process_restarted(crispd_factory, name):
    # health_interval 1: three unanswered pings, about 3 s, and it is killed.
    c = crispd_factory(config={"crispd": {"health_interval": 1}}, cni_conflist=True)
    before = c.children()
    old = before[name]
    mark = c.mark()
    os.kill(old, signal.SIGSTOP)
    try:
        new = c.wait_new_pid(name, old, 8)
    finally:
        if harness.alive(old):
            os.kill(old, signal.SIGCONT)
    assert not harness.alive(old), "the hung %s (pid %d) still exists" % (name, old)
    line = c.wait_log(r"health", since=mark, timeout=1)
    assert harness.short_name(name) in line, line
    c.wait_ready(5)
    after = c.children()
    for other, pid in before.items():
        if other != name:
            assert after[other] == pid, "%s's pid changed" % other
    assert c.processes()[harness.short_name(name)]["pid"] == new


def test_crash_loop_reported(crispd_factory):
    c = crispd_factory(config={"crispd": {"crash_loop_limit": 2, "restart_backoff_max": 1}})
    mark = c.mark()
    name = "crisp-imaged"
    for _ in range(2):
        old = c.children()[name]
        os.kill(old, signal.SIGKILL)
        c.wait_new_pid(name, old, 3)
    line = c.wait_log(r"^<2>crispd\[\d+\]: .*imaged.*crash", since=mark, timeout=3)
    assert line

    def state():
        p = c.processes()["imaged"]
        return p if p["state"] == "crash-looping" else None
    p = harness.wait_for(state, 3, what="Status to report imaged crash-looping")
    assert p["restarts"] == 2, p


def test_status_answers_while_netd_hangs(crispd_factory, cri):
    """A helper that does not answer costs Status at most ipc_timeout: the
    kubelet calls Status every few seconds and a hung netd must not make the
    whole runtime look dead."""
    c = crispd_factory(config={"crispd": {"health_interval": 60}, "frontend": {"ipc_timeout": 2}},
                       cni_conflist=True)
    netd = c.children()["crisp-netd"]
    os.kill(netd, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        resp = c.status()  # harness timeout: 5 s
        took = time.monotonic() - t0
        conds = harness.conditions(resp)
        assert conds["RuntimeReady"].status, conds["RuntimeReady"]
        assert not conds["NetworkReady"].status, "NetworkReady true while netd hangs"
        assert conds["NetworkReady"].reason
        assert took < 4, "Status took %.1f s with ipc_timeout 2" % took
    finally:
        os.kill(netd, signal.SIGCONT)
    harness.wait_for(lambda: harness.conditions(c.status())["NetworkReady"].status, 5,
                     what="NetworkReady once netd runs again")


def test_calls_right_after_start_wait_for_helpers(crispd_factory, cri):
    """A helper that has just started says hello to the frontend before it
    serves; calls made meanwhile wait for it (a few seconds at most) rather
    than fail UNAVAILABLE at every start of crisp."""
    for _ in range(3):
        c = crispd_factory()
        c.call("ImageFsInfo", cri.ImageFsInfoRequest(), timeout=10)
        c.call("ListPodSandbox", cri.ListPodSandboxRequest(), timeout=10)
        c.stop()
    # and after a helper restarts
    c = crispd_factory()
    old = c.children()["crisp-imaged"]
    os.kill(old, signal.SIGKILL)
    c.wait_new_pid("crisp-imaged", old, 15)
    c.call("ImageFsInfo", cri.ImageFsInfoRequest(), timeout=10)
