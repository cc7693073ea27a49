"""A forbidden syscall kills the process (seccomp, SIGSYS); crispd says so
and restarts it. Needs a build with --enable-test-hooks: SIGUSR2 makes a
crisp process attempt reboot(2)."""

import os
import re
import signal

import grpc
import pytest

import harness


@pytest.mark.skipif(harness.SECCOMP_DEBUG,
                    reason="a seccomp debug build logs forbidden syscalls instead of killing")
@pytest.mark.parametrize("name", harness.PROCESSES)
def test_forbidden_syscall_kills_and_restarts(crispd_net, name):
    c = crispd_net
    before = c.children()
    old = before[name]
    mark = c.mark()
    os.kill(old, signal.SIGUSR2)
    harness.wait_for(lambda: not harness.alive(old), 2.0, what="%s (pid %d) to die" % (name, old))
    new = c.wait_new_pid(name, old, 2.0)
    line = c.wait_log(r"SIGSYS|signal 31\b", since=mark, timeout=2.0)
    assert (harness.short_name(name) in line) or (str(old) in line), \
        "the SIGSYS line names neither %s nor pid %d: %s" % (name, old, line)

    def recorded():
        try:
            p = c.processes().get(harness.short_name(name))
        except grpc.RpcError:
            return None
        return p if p and p["pid"] == new else None
    p = harness.wait_for(recorded, 3.0, what="Status verbose to show the new %s" % name)
    assert "SIGSYS" in p["last_exit"] or re.search(r"signal 31\b", p["last_exit"]), p
    assert p["restarts"] == 1, p

    # The others are untouched and the runtime serves.
    after = c.children()
    for other, pid in before.items():
        if other != name:
            assert after.get(other) == pid, "%s's pid changed" % other
    harness.wait_for(c.serves, 2.0, what="Version after the restart")
