"""crispd restarts a child that dies, quickly, without touching the others;
Status verbose counts the restarts."""

import os
import signal
import time

import grpc
import pytest

import harness

RESTART_TIMEOUT = 2.0


def _healthy(c):
    try:
        conds = harness.conditions(c.status())
    except grpc.RpcError:
        return False
    return all(conds.get(t) is not None and conds[t].status
               for t in ("RuntimeReady", "NetworkReady"))


def _restart_recorded(c, name, new_pid, restarts):
    def check():
        try:
            p = c.processes().get(harness.short_name(name))
        except grpc.RpcError:
            return None
        return p if p and p["pid"] == new_pid and p["restarts"] == restarts else None
    return check


def kill_and_check(c, name, restarts_before=0, restart_timeout=RESTART_TIMEOUT):
    """SIGKILL child `name`; check a new one within 2 s, the others
    untouched, the runtime healthy and the restart counted."""
    before = c.children()
    old = before[name]
    t0 = time.monotonic()
    os.kill(old, signal.SIGKILL)
    new = c.wait_new_pid(name, old, restart_timeout)
    if name == harness.FRONTEND:
        # A new frontend serves within 2 s of the kill.
        harness.wait_for(c.serves, max(0.1, restart_timeout - (time.monotonic() - t0)),
                         what="Version from a new frontend")
    harness.wait_for(lambda: _healthy(c), 3.0, what="Status healthy after %s restart" % name)
    p = harness.wait_for(_restart_recorded(c, name, new, restarts_before + 1), 3.0,
                         what="Status verbose to show %s pid %d restarts %d" % (
                             name, new, restarts_before + 1))
    assert "SIGKILL" in p["last_exit"] or "signal 9" in p["last_exit"], p
    after = c.children()
    for other, pid in before.items():
        if other != name:
            assert after.get(other) == pid, "killing %s changed %s's pid %d -> %s" % (
                name, other, pid, after.get(other))
    return new


@pytest.mark.parametrize("name", harness.PROCESSES)
def test_kill9_restarts(crispd_net, name):
    kill_and_check(crispd_net, name)


def test_kill9_each_in_turn(crispd_net):
    for name in harness.HELPERS + (harness.FRONTEND,):
        kill_and_check(crispd_net, name)
    # Everything still answers after the round.
    assert crispd_net.call("Version").runtime_name == "crisp"


def test_netd_serves_after_restart(crispd_net, cri):
    """The frontend talks to the new netd, not a dead channel."""
    kill_and_check(crispd_net, "crisp-netd")
    req = cri.UpdateRuntimeConfigRequest(runtime_config=cri.RuntimeConfig(
        network_config=cri.NetworkConfig(pod_cidr="10.88.0.0/16")))
    crispd_net.call("UpdateRuntimeConfig", req)
    e = harness.rpc_error(crispd_net.call, "UpdateRuntimeConfig", cri.UpdateRuntimeConfigRequest(
        runtime_config=cri.RuntimeConfig(network_config=cri.NetworkConfig(pod_cidr="garbage"))))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.code(), e.details())


def test_second_kill_counts_twice(crispd_factory):
    # A second quick death may be delayed by the restart backoff, which is
    # capped at restart_backoff_max.
    c = crispd_factory(config={"crispd": {"restart_backoff_max": 2}}, cni_conflist=True)
    kill_and_check(c, "crisp-imaged")
    kill_and_check(c, "crisp-imaged", restarts_before=1, restart_timeout=2 + RESTART_TIMEOUT)
