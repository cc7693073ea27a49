"""Who may call: SO_PEERCRED checks on the CRI socket (root and members of
socket_group), and the audit log of refused connections and mutating calls."""

import grp
import os
import re
import stat
import subprocess
import textwrap

import pytest

import harness

CLIENT = textwrap.dedent("""\
    import sys
    sys.path.insert(0, sys.argv[2])
    import grpc
    import cri_api_pb2 as cri
    ch = grpc.insecure_channel("unix:" + sys.argv[1])
    fn = ch.unary_unary("/runtime.v1.RuntimeService/Version",
                        request_serializer=lambda m: m.SerializeToString(),
                        response_deserializer=cri.VersionResponse.FromString)
    try:
        r = fn(cri.VersionRequest(), timeout=5)
        print("OK", r.runtime_name)
    except grpc.RpcError as e:
        print("ERROR", e.code().name, e.details())
""")

NOBODY = 65534


@pytest.fixture
def client(cri_gen_dir):
    path = os.path.join(cri_gen_dir, "client.py")
    with open(path, "w") as f:
        f.write(CLIENT)
    os.chmod(path, 0o644)

    def run(sock, uid=None, gid=None):
        argv = ["/usr/bin/python3", path, sock, cri_gen_dir]
        if uid is not None:
            argv = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid, "--clear-groups"] + argv
        p = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                           env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"})
        assert p.returncode == 0, "client failed: %s" % p.stderr
        return p.stdout.strip()
    return run


def test_client_works_as_root(crispd, client):
    # The control for the tests below: the same client, as root, is served.
    assert client(crispd.sock).startswith("OK crisp")


def test_other_uid_refused(crispd, client):
    # The socket itself lets anyone connect: the refusal must come from crisp.
    st = os.stat(crispd.sock)
    assert stat.S_IMODE(st.st_mode) == 0o666, oct(st.st_mode)
    mark = crispd.mark()
    out = client(crispd.sock, NOBODY, NOBODY)
    assert out.startswith("ERROR"), "uid %d was served: %s" % (NOBODY, out)
    code = out.split()[1]
    assert code in ("UNAVAILABLE", "PERMISSION_DENIED"), out
    line = crispd.wait_log(r"connection-refused", since=mark, timeout=3)
    assert re.search(r"\buid=%d\b" % NOBODY, line), line
    # and root still is served
    assert crispd.call("Version").runtime_name == "crisp"


def test_socket_group_members_allowed(crispd_factory, client):
    group = grp.getgrgid(NOBODY).gr_name  # Debian: nogroup
    c = crispd_factory(config={"crispd": {"socket_group": group, "socket_mode": "0660"}})
    st = os.stat(c.sock)
    assert st.st_gid == NOBODY, "socket group is %d, not %d" % (st.st_gid, NOBODY)
    assert stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)
    out = client(c.sock, NOBODY, NOBODY)
    assert out.startswith("OK crisp"), "member of socket_group %s refused: %s" % (group, out)


def _cidr_req(cri, cidr):
    return cri.UpdateRuntimeConfigRequest(
        runtime_config=cri.RuntimeConfig(network_config=cri.NetworkConfig(pod_cidr=cidr)))


def _audit_line(c, since):
    return c.wait_log(r"audit:.*method=UpdateRuntimeConfig", since=since, timeout=3)


def test_mutating_call_audited(crispd, cri):
    mark = crispd.mark()
    crispd.call("UpdateRuntimeConfig", _cidr_req(cri, "10.88.0.0/16"))
    ok_line = _audit_line(crispd, mark)
    assert re.search(r"\buid=0\b", ok_line), ok_line
    ok_result = re.search(r"\bresult=(\S+)", ok_line)
    assert ok_result, ok_line

    mark = crispd.mark()
    harness.rpc_error(crispd.call, "UpdateRuntimeConfig", _cidr_req(cri, "garbage"))
    bad_line = _audit_line(crispd, mark)
    assert re.search(r"\buid=0\b", bad_line), bad_line
    bad_result = re.search(r"\bresult=(\S+)", bad_line)
    assert bad_result, bad_line
    assert bad_result.group(1) != ok_result.group(1), \
        "the audit log gives one result for a success and a failure: %s / %s" % (
            ok_line, bad_line)


def test_audit_line_does_not_leak_to_other_lines(crispd, cri):
    """A value with a newline cannot forge an audit line."""
    mark = crispd.mark()
    harness.rpc_error(crispd.call, "UpdateRuntimeConfig",
                      _cidr_req(cri, "x\n<5>crisp-frontend[1]: audit: method=Forged uid=0 result=OK"))
    _audit_line(crispd, mark)
    assert not any("method=Forged" in l and not re.search(r"method=UpdateRuntimeConfig", l)
                   for l in crispd.lines(mark)), "\n".join(crispd.lines(mark))
