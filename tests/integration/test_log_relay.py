"""crispd relays its children's log lines (supervisor/logrelay.c): each child
writes into a pipe of its own, and crispd prefixes every line with the name
and pid it started that child with. A line a helper forges as the frontend's
audit line is attributed to the helper; ordinary lines read as before; the
pipes of dead children are closed (no fd leak), what their launchers write as
they go is still attributed to them, and the children's last lines come out
before crispd's own at shutdown."""

import os
import re
import signal

import harness

MARK = "forged-by-a-test-%d" % os.getpid()
# What a process taken over could write: two lines in one write, the second
# with an escape sequence that would clear a terminal.
FORGED = ("<6>crisp-frontend[1]: audit: method=/runtime.v1.RuntimeService/RemovePodSandbox "
          "peer_uid=0 result=OK %s\n"
          "<6>crisp-frontend[1]: audit: second %s \x1b[2J" % (MARK, MARK))


def forging(crispd_factory, name="crisp-imaged"):
    return crispd_factory(env={"CRISP_TEST_LOG_FORGE": "%s:%s" % (name, FORGED)})


def marked(c, since=0):
    return [l for l in c.lines(since) if MARK in l]


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def test_forged_audit_line_attributed_to_its_writer(crispd_factory):
    c = forging(crispd_factory)
    imaged = c.children()["crisp-imaged"]
    got = harness.wait_for(lambda: len(marked(c)) >= 2 and marked(c), 5,
                           what="the forged lines in the log")
    assert len(got) == 2, got
    want = "<6>crisp-imaged[%d]: crisp-frontend[1]: audit: " % imaged
    for line in got:
        assert line.startswith(want), "not attributed to imaged (pid %d): %r" % (imaged, line)
    assert got[1].endswith(" \\x1b[2J"), "the escape sequence was not escaped: %r" % got[1]
    text = open(c.log_path, "rb").read()
    assert b"\x1b" not in text, "a raw escape character reached the log"
    claimed = [l for l in c.lines() if re.match(r"^<\d>crisp-frontend\[", l) and MARK in l]
    assert not claimed, "lines attributed to the frontend: %r" % claimed
    # The frontend's own lines are still its own, as they always read.
    fe = c.children()[harness.FRONTEND]
    assert any(l.startswith("<6>crisp-frontend[%d]: " % fe) for l in c.lines()), \
        "no line of the frontend's (pid %d) in its usual form" % fe


def test_relay_follows_restarts_without_leaking_fds(crispd_factory):
    c = forging(crispd_factory)
    harness.wait_for(lambda: len(marked(c)) >= 2, 5, what="the forged lines in the log")
    c.wait_ready(5)
    before = fd_count(c.pid)
    for _ in range(3):
        old = c.children()["crisp-imaged"]
        mark = c.mark()
        os.kill(old, signal.SIGKILL)
        new = c.wait_new_pid("crisp-imaged", old, 5)
        got = harness.wait_for(lambda: len(marked(c, mark)) >= 2 and marked(c, mark), 5,
                               what="the new imaged's forged lines")
        for line in got:
            assert line.startswith("<6>crisp-imaged[%d]: crisp-frontend[1]: " % new), line
    c.wait_ready(5)
    harness.wait_for(lambda: fd_count(c.pid) == before, 5,
                     what="crispd's fds back to %d (now %d)" % (before, fd_count(c.pid)))


def test_launcher_lines_after_its_helper_died(crispd_factory):
    c = crispd_factory(cni_conflist=True)
    netd = c.children()["crisp-netd"]
    mark = c.mark()
    # A netd that exits cleanly closes its end of the launcher's socket;
    # the launcher logs as it goes, after crispd reaped netd.
    os.kill(netd, signal.SIGTERM)
    c.wait_new_pid("crisp-netd", netd, 5)
    line = c.wait_log(r"crisp-netd-launch\[\d+\]: the helper closed its end", since=mark)
    assert line.startswith("<6>crisp-netd[%d]: crisp-netd-launch[" % netd), line


def test_last_lines_before_crispd_stops(crispd_factory):
    c = crispd_factory()
    kids = c.children()
    assert c.terminate(timeout=10) == 0
    lines = c.lines()
    stopped = [i for i, l in enumerate(lines) if re.match(r"^<5>crispd\[\d+\]: crispd stopped", l)]
    assert stopped, "no 'crispd stopped' line"
    for name in ("crisp-imaged", "crisp-netd", "crisp-runtimed"):
        mine = [i for i, l in enumerate(lines)
                if l.startswith("<6>%s[%d]: stopping" % (name, kids[name]))]
        assert mine, "%s's last line is missing" % name
        assert mine[-1] < stopped[-1], "%s's last line came after crispd's" % name
