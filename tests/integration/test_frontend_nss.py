"""The frontend's user and group lookups run in a short-lived child of it
(frontend/frontend.c, resolve_users): no NSS module stays mapped in the
process that parses network input, and what the child sends back (the
frontend user, the socket group, its members, or an error) still decides
start-up and authorization as before.

The lookups see /etc/passwd and /etc/group of crispd's mount namespace: the
tests below start crispd in a private one, with copies of both bind-mounted
over the real files, and edit the copies in place (same inode) while crispd
runs; a restarted frontend reads them again."""

import grp
import os
import pwd
import re
import signal
import subprocess

import pytest

import harness
from test_auth import CLIENT

NOBODY = 65534
UNKNOWN = "crisp-it-no-such-user"


def _nss_modules(maps):
    return sorted({os.path.basename(l.split()[-1]) for l in maps.splitlines()
                   if len(l.split()) >= 6 and "libnss_" in l.split()[-1]})


def test_no_nss_module_in_frontend(crispd):
    # What the frontend's getpwent() used to load: a process enumerating the
    # users here. Without such a module (nsswitch.conf: files only, built
    # into glibc) there would be nothing to see.
    p = subprocess.run(["/usr/bin/python3", "-c", "import pwd, sys; pwd.getpwall(); "
                        "sys.stdout.write(open('/proc/self/maps').read())"],
                       capture_output=True, text=True, timeout=30, check=True)
    if not _nss_modules(p.stdout):
        pytest.skip("enumerating users loads no NSS module on this host")
    fe = crispd.children()[harness.FRONTEND]
    with open("/proc/%d/maps" % fe) as f:
        mods = _nss_modules(f.read())
    assert not mods, "NSS modules mapped in the frontend (pid %d): %s" % (fe, mods)


def _free_id(taken):
    for i in range(42420, 42520):
        if not taken(i):
            return i
    pytest.skip("no free id in 42420..42519")


def _gid_taken(g):
    try:
        grp.getgrgid(g)
        return True
    except KeyError:
        return False


def _uid_taken(u):
    try:
        pwd.getpwuid(u)
        return True
    except KeyError:
        return False


@pytest.fixture
def private_etc(crispd_factory):
    """crispd_factory(config) -> (crispd, passwd copy, group copy), with the
    copies bind-mounted over /etc/passwd and /etc/group for crispd only."""

    def make(config, passwd_extra="", group_extra=""):
        c = crispd_factory(config=config, start=False)
        paths = {}
        for name, extra in (("passwd", passwd_extra), ("group", group_extra)):
            paths[name] = os.path.join(c.dir, name)
            with open("/etc/" + name) as src, open(paths[name], "w") as dst:
                dst.write(src.read() + extra)
            os.chmod(paths[name], 0o644)
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                'mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group && shift 2 && '
                'exec "$@"', "sh", paths["passwd"], paths["group"],
                harness.CRISPD, "--config", c.conf]
        c.start(argv=argv)
        return c, paths["passwd"], paths["group"]
    return make


def _rewrite(path, edit):
    with open(path) as f:
        text = f.read()
    new = edit(text)
    assert new != text, "the edit of %s changed nothing" % path
    with open(path, "w") as f:  # O_TRUNC: same inode, the bind mount sees it
        f.write(new)


def _restart_frontend_and_expect(c, pattern):
    old = c.children()[harness.FRONTEND]
    mark = c.mark()
    os.kill(old, signal.SIGKILL)
    line = c.wait_log(r"crisp-frontend\[\d+\]: " + pattern, since=mark, timeout=10)
    # It does not come up: no frontend serves with that database.
    assert not c.serves(), "a frontend serves after: %s" % line
    # Now: the cleanup would wait 10 s for the pods of a frontend that is not there.
    c.stop()
    return line


def test_members_reach_the_frontend(private_etc, cri_gen_dir):
    """Members by the group's list and by primary group cross the pipe; an
    unknown member is warned about, as before."""
    gid = _free_id(_gid_taken)
    uid = _free_id(_uid_taken)
    group = "crisp-it-nss"
    c, _, _ = private_etc(
        {"crispd": {"socket_group": group}},
        passwd_extra="crisp-it-nss-prim:x:%d:%d::/nonexistent:/usr/sbin/nologin\n" % (uid, gid),
        group_extra="%s:x:%d:%s,%s\n" % (group, gid, pwd.getpwuid(NOBODY).pw_name, UNKNOWN))
    c.wait_log(r"crisp-frontend\[\d+\]: group %s lists unknown user '%s'" % (group, UNKNOWN))
    line = c.wait_log(r"crisp-frontend\[\d+\]: CRI callers: ")
    want = "CRI callers: root, group %s (gid %d) and 2 users in it" % (group, gid)
    assert line.endswith(want), line

    path = os.path.join(cri_gen_dir, "client.py")
    with open(path, "w") as f:
        f.write(CLIENT)
    os.chmod(path, 0o644)

    def call_as(u, g):
        p = subprocess.run(["setpriv", "--reuid=%d" % u, "--regid=%d" % g, "--clear-groups",
                            "/usr/bin/python3", path, c.sock, cri_gen_dir],
                           capture_output=True, text=True, timeout=30,
                           env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"})
        assert p.returncode == 0, "client failed: %s" % p.stderr
        return p.stdout.strip()

    # The socket is 0666 (the test default): crisp decides, not the file mode.
    # By the member list: nobody's primary gid is not the group's.
    assert call_as(NOBODY, NOBODY).startswith("OK crisp")
    # By primary group: the uid alone is checked, whatever gid it connects with.
    assert call_as(uid, NOBODY).startswith("OK crisp")
    # In neither list: refused, unless it connects with the group's gid.
    assert call_as(uid + 1, NOBODY).startswith("ERROR")
    assert call_as(uid + 1, gid).startswith("OK crisp")


def test_missing_socket_group_is_fatal(private_etc):
    gid = _free_id(_gid_taken)
    group = "crisp-it-nss"
    c, _, group_path = private_etc({"crispd": {"socket_group": group}},
                                   group_extra="%s:x:%d:\n" % (group, gid))
    _rewrite(group_path, lambda t: t.replace("%s:x:%d:\n" % (group, gid), ""))
    _restart_frontend_and_expect(c, r"socket group '%s' does not exist" % group)


def test_missing_frontend_user_is_fatal(private_etc):
    uid = _free_id(_uid_taken)
    user = "crisp-it-nss-fe"
    entry = "%s:x:%d:%d::/nonexistent:/usr/sbin/nologin\n" % (user, uid, NOBODY)
    c, passwd_path, _ = private_etc({"frontend": {"user": user}}, passwd_extra=entry)
    _rewrite(passwd_path, lambda t: t.replace(entry, ""))
    _restart_frontend_and_expect(
        c, re.escape("user '%s' does not exist; create it with scripts/create-user" % user))


def test_frontend_user_with_gid_0_is_fatal(private_etc):
    uid = _free_id(_uid_taken)
    user = "crisp-it-nss-fe"
    entry = "%s:x:%d:%d::/nonexistent:/usr/sbin/nologin\n" % (user, uid, NOBODY)
    c, passwd_path, _ = private_etc({"frontend": {"user": user}}, passwd_extra=entry)
    _rewrite(passwd_path, lambda t: t.replace(entry, entry.replace(":%d:" % NOBODY, ":0:")))
    _restart_frontend_and_expect(
        c, re.escape("frontend user '%s' has uid or gid 0: it must be an unprivileged user"
                     % user))
