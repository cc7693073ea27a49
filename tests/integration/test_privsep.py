"""Who runs as whom: crispd's four children, their uids, capabilities,
no_new_privs and seccomp (DESIGN.md, STYLE.md point 5, docs/PRIVSEP.md)."""

import os
import pwd

import pytest

import harness


def _ids(line):
    return [int(x) for x in line.split()]


def test_one_of_each_child(shared_crispd):
    kids = shared_crispd.children()
    assert sorted(kids) == sorted(harness.PROCESSES), kids
    for name, pid in kids.items():
        assert harness.proc_stat(pid)[2] == shared_crispd.pid, "%s is not crispd's child" % name


def test_frontend_unprivileged(shared_crispd):
    pid = shared_crispd.children()[harness.FRONTEND]
    st = harness.proc_status(pid)
    user = pwd.getpwnam("crisp")
    assert user.pw_uid != 0
    assert _ids(st["Uid"]) == [user.pw_uid] * 4, "frontend Uid: %s" % st["Uid"]
    assert _ids(st["Gid"]) == [user.pw_gid] * 4, "frontend Gid: %s" % st["Gid"]
    assert st["Groups"] == "", "frontend keeps supplementary groups: %r" % st["Groups"]
    assert int(st["CapEff"], 16) == 0, "frontend CapEff %s" % st["CapEff"]
    assert int(st["CapPrm"], 16) == 0, "frontend CapPrm %s" % st["CapPrm"]
    assert int(st["CapAmb"], 16) == 0, "frontend CapAmb %s" % st["CapAmb"]
    assert int(st["CapBnd"], 16) == 0, "frontend CapBnd %s" % st["CapBnd"]
    assert st["NoNewPrivs"] == "1"
    assert st["Seccomp"] == "2"


def test_frontend_chrooted(shared_crispd):
    pid = shared_crispd.children()[harness.FRONTEND]
    root = os.readlink("/proc/%d/root" % pid)
    assert root != "/", "frontend is not chrooted"
    # docs/PRIVSEP.md: chroot <state_dir>/empty
    want = os.path.join(shared_crispd.config["crispd"]["state_dir"], "empty")
    assert root == want, "frontend root %s, want %s" % (root, want)
    assert os.readlink("/proc/%d/cwd" % pid) == root, "frontend cwd is not its root"
    assert os.listdir(root) == [], "the frontend's root is not empty: %r" % os.listdir(root)


def test_frontend_not_dumpable(shared_crispd):
    # A non-dumpable process's /proc files belong to root, not to its uid, so
    # other processes of the crisp user cannot ptrace or read its memory.
    pid = shared_crispd.children()[harness.FRONTEND]
    assert os.stat("/proc/%d/status" % pid).st_uid == 0, "the frontend is dumpable"


@pytest.mark.parametrize("name", harness.PROCESSES)
def test_no_core_dumps(shared_crispd, name):
    pid = shared_crispd.children()[name]
    # the limit is set with the rest of the confinement, at the end of start-up
    harness.wait_for(lambda: harness.proc_status(pid)["Seccomp"] == "2", 10,
                     what="%s's confinement" % name)
    assert harness.proc_limit(pid, "Max core file size") == ("0", "0")


@pytest.mark.parametrize("name", harness.HELPERS)
def test_helper_sandboxed(shared_crispd, name):
    pid = shared_crispd.children()[name]
    # A helper installs its filter at the end of its start-up work, which
    # may still run when crispd already answers.
    harness.wait_for(lambda: harness.proc_status(pid)["Seccomp"] == "2", 10,
                     what="%s's seccomp filter" % name)
    st = harness.proc_status(pid)
    assert _ids(st["Uid"]) == [0] * 4, "%s Uid: %s" % (name, st["Uid"])
    assert st["NoNewPrivs"] == "1", name
    assert st["Seccomp"] == "2", name
    capeff = int(st["CapEff"], 16)
    # "Every capability" is crispd's own set: on a host whose bounding set
    # lacks some (this one lacks CAP_SYS_RESOURCE) root's set is not all ones.
    full = int(harness.proc_status(shared_crispd.pid)["CapEff"], 16)
    assert capeff & ~full == 0, "%s has capabilities crispd lacks" % name
    assert capeff != full and capeff != harness.FULL_CAPS, \
        "%s keeps every capability crispd has (CapEff %s)" % (name, st["CapEff"])
    # docs/PRIVSEP.md: for the helpers CapPrm and CapBnd equal CapEff.
    assert int(st["CapPrm"], 16) == capeff, "%s CapPrm %s != CapEff %s" % (
        name, st["CapPrm"], st["CapEff"])
    assert int(st["CapBnd"], 16) == capeff, "%s CapBnd %s != CapEff %s" % (
        name, st["CapBnd"], st["CapEff"])
    assert int(st["CapInh"], 16) == 0, "%s CapInh %s" % (name, st["CapInh"])
    # cwd <root_dir>/<helper>
    want = os.path.join(shared_crispd.config["crispd"]["root_dir"], harness.short_name(name))
    assert os.readlink("/proc/%d/cwd" % pid) == want
    assert int(st["CapAmb"], 16) == 0, "%s CapAmb %s" % (name, st["CapAmb"])
    documented = harness.documented_capeff(name)
    if documented is not None:
        assert capeff == documented, "%s CapEff %016x, docs/PRIVSEP.md says %016x" % (
            name, capeff, documented)
