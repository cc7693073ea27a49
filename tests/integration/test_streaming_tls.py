"""The streaming server over TLS (streaming.tls_cert and tls_key), end to
end with a real crispd: a test CA and a server certificate for 127.0.0.1 and
localhost, the key root-only (0600). The clients check the chain against the
test CA and the host name, as a kubelet configured with that CA would.
Covered: https URLs; exec over SPDY and WebSocket, attach and port-forward
through TLS; a plain-HTTP request on the TLS port served nothing (its token
still unused); a TLS 1.1 client refused while TLS 1.2 is taken; a
certificate for another name failing the client's host name check;
connections failing before or during the handshake each logged with their
cause and releasing their fd; a key that does not match its certificate, is
missing or is encrypted, or a certificate without a key, leaving the streaming
server off (logged, Exec/Attach/PortForward UNAVAILABLE) while the other CRI
calls work; and the key read as root before the frontend dropped to its
user, who could not read it.

The URL helpers, clients and fixtures are test_streaming.py's and
spdy_client.py's (their ssl_context parameters); this module's
pod_env_factory puts the TLS files into every crispd its tests start."""

import os
import pwd
import re
import shutil
import socket
import ssl
import struct
import tempfile
import threading
import types
import urllib.parse

import grpc
import pytest
from cryptography.hazmat.primitives import serialization

import harness
import registry
import spdy_client as sc
import test_streaming
from harness import container_config, pod_config, rpc_error
from test_streaming import ECHO_PORT, V4, V5, WsSession, attach_url, pf_url, raw, ws_exit_code

# test_streaming.py's fixtures, named here for pytest to find them (they get
# this module's pod_env_factory, so a TLS streaming server).
ctr = test_streaming.ctr
pf_env = test_streaming.pf_env

LISTENING = r"streaming server listening on (\S+)"


# --- certificates and configuration ------------------------------------------------------


@pytest.fixture(scope="module")
def pki():
    """The test CA, a server certificate for 127.0.0.1 and localhost, and one
    for another name, with their keys root-only in a directory anyone may
    enter (so only the files' modes keep the frontend's user out)."""
    d = tempfile.mkdtemp(prefix="crisp-it-tls-", dir="/tmp")
    try:
        os.chmod(d, 0o755)
        ca_key, ca_cert = registry.make_ca("crisp streaming test CA")
        key, cert = registry.make_server_cert(ca_key, ca_cert, names=("127.0.0.1", "localhost"))
        okey, ocert = registry.make_server_cert(ca_key, ca_cert, names=("other.invalid",))
        p = types.SimpleNamespace(dir=d)
        p.ca = registry.write_pem(os.path.join(d, "ca.pem"), cert=ca_cert)
        p.cert = registry.write_pem(os.path.join(d, "server.pem"), cert=cert)
        p.other_cert = registry.write_pem(os.path.join(d, "other.pem"), cert=ocert)
        p.key = os.path.join(d, "server-key.pem")
        p.other_key = os.path.join(d, "other-key.pem")
        p.encrypted_key = os.path.join(d, "encrypted-key.pem")
        for path, k in ((p.key, key), (p.other_key, okey), (p.encrypted_key, None)):
            # Created 0600, never readable by anyone else for a moment.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            if k is not None:
                registry.write_pem(path, key=k)
        with open(p.encrypted_key, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.BestAvailableEncryption(b"passphrase")))
        for path in (p.ca, p.cert, p.other_cert):
            os.chmod(path, 0o644)
        yield p
    finally:
        shutil.rmtree(d, ignore_errors=True)


def tls_config(pki, cert=None, key=None):
    return {"streaming": {"tls_cert": cert or pki.cert, "tls_key": key or pki.key}}


@pytest.fixture
def pod_env_factory(pod_env_factory, pki):
    """conftest's pod_env_factory, the TLS files configured (config given
    to it is merged over them): ctr and pf_env get a TLS streaming server."""
    def make(config=None, before_start=None):
        cfg = tls_config(pki)
        for section, kv in (config or {}).items():
            cfg.setdefault(section, {}).update(kv)
        return pod_env_factory(config=cfg, before_start=before_start)
    return make


def client_context(pki):
    """A client that trusts the test CA only and checks the host name."""
    ctx = ssl.create_default_context(cafile=pki.ca)
    assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    return ctx


def server_address(crispd):
    """(host, port) of the streaming server, from its start-up log line."""
    u = urllib.parse.urlsplit(re.search(LISTENING, crispd.wait_log(LISTENING)).group(1))
    assert u.scheme == "https", u.geturl()
    return u.hostname, u.port


def handshake(addr, ctx, timeout=5):
    """A TLS handshake with the server at addr: the TLS version taken."""
    with socket.create_connection(addr, timeout=timeout) as s:
        with ctx.wrap_socket(s, server_hostname=addr[0]) as t:
            return t.version()


def tls_exec_url(env, cmd):
    """test_streaming.exec_url's https twin (that one insists on http)."""
    r = env.c.call("Exec", harness.cri.ExecRequest(container_id=env.cid, cmd=cmd, stdout=True,
                                                   stderr=True))
    u = urllib.parse.urlsplit(r.url)
    assert u.scheme == "https" and u.hostname == "127.0.0.1" and u.port, r.url
    assert u.path.startswith("/exec/"), r.url
    return r.url


def assert_serving_tls(env, pki):
    r = sc.remote_command(tls_exec_url(env, ["echo", "still serving"]),
                          ssl_context=client_context(pki))
    assert r.stdout == b"still serving\n" and r.exit_code == 0


# --- exec, attach, port-forward through TLS -----------------------------------------------------


def test_exec_spdy_over_tls(ctr, pki):
    ctr.c.wait_log(r"streaming server listening on https://127\.0\.0\.1:\d+$")
    url = tls_exec_url(ctr, ["echo", "hello"])
    ctx = client_context(pki)
    r = sc.remote_command(url, ssl_context=ctx)
    assert r.protocol == V4
    assert r.stdout == b"hello\n" and r.stderr == b""
    assert r.status == {"status": "Success"} and r.exit_code == 0
    # The session really was TLS, of at least 1.2, with the configured
    # certificate (its names as the test CA signed them).
    with sc.SpdyConn.connect(tls_exec_url(ctr, ["true"]), [V4], ssl_context=ctx) as c:
        assert c.sock.version() in ("TLSv1.2", "TLSv1.3"), c.sock.version()
        sans = c.sock.getpeercert()["subjectAltName"]
        assert ("IP Address", "127.0.0.1") in sans and ("DNS", "localhost") in sans, sans


@pytest.mark.parametrize("protocol", [V4, V5])
def test_exec_websocket_over_tls(ctr, pki, protocol):
    s = WsSession(tls_exec_url(ctr, ["echo", "hello"]), protocol,
                  ssl_context=client_context(pki))
    assert s.protocol == protocol
    assert s.ws.sock.version() in ("TLSv1.2", "TLSv1.3")
    s.run_until_closed()
    assert s.first[0] == (1, b"")
    assert s.data(1) == b"hello\n"
    assert ws_exit_code(s.data(3)) == 0


def test_attach_over_tls(ctr, pki):
    url = attach_url(ctr)
    assert url.startswith("https://127.0.0.1:"), url
    with sc.SpdyConn.connect(url, [V4], ssl_context=client_context(pki)) as c:
        c.open_stream({"streamtype": "error"}, fin=True)
        stdin = c.open_stream({"streamtype": "stdin"})
        out = c.open_stream({"streamtype": "stdout"}, fin=True)
        stdin.write(b"over tls\n")
        c.run_until(lambda: b"got over tls\n" in out.data, 20)


def test_port_forward_over_tls(pf_env, pki):
    ctx = client_context(pki)
    url = pf_url(pf_env)
    assert url.startswith("https://127.0.0.1:"), url
    with sc.SpdyConn.connect(url, ["portforward.k8s.io"], ssl_context=ctx) as c:
        assert c.protocol == "portforward.k8s.io"
        for rid in (0, 1):
            data, err = sc.port_forward_conn(c, ECHO_PORT, rid, b"hello %d\n" % rid)
            assert data == b"hello %d\n" % rid
            assert err == b""
    s = WsSession(pf_url(pf_env), V4, ssl_context=ctx)
    try:
        s.recv()  # the port, on the data channel and the error channel
        s.recv()
        s.send(0, b"over websocket\n")
        got = b""
        while b"over websocket\n" not in got:
            r = s.recv()
            assert r is not None, "closed before the echo"
            got += r[1] if r[0] == 0 else b""
    finally:
        s.ws.close()


# --- what the TLS port refuses ------------------------------------------------------------------


def test_plain_http_to_tls_port_is_not_served(ctr, pki):
    """An HTTP upgrade in clear on the TLS port gets no HTTP answer: the
    connection is closed, after at most a TLS alert record. The request
    never reached the HTTP layer (its token is still unused: the same URL
    then works over TLS), and the server keeps serving."""
    url = tls_exec_url(ctr, ["echo", "hello"])
    u = urllib.parse.urlsplit(url)
    mark = ctr.c.mark()
    request = ("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
               "X-Stream-Protocol-Version: %s\r\n\r\n" % (u.path, u.netloc, V4)).encode()
    answer = raw("http" + url[len("https"):], request)
    assert b"HTTP/" not in answer, answer[:200]
    assert answer == b"" or answer[:1] == b"\x15", answer[:200]  # nothing, or an alert
    ctr.c.wait_log(r"streaming connection from 127\.0\.0\.1:\d+ closed: .*http request",
                   since=mark)
    r = sc.remote_command(url, ssl_context=client_context(pki))
    assert r.stdout == b"hello\n" and r.exit_code == 0
    assert_serving_tls(ctr, pki)


def tls11_client(pki):
    ctx = client_context(pki)
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    # OpenSSL 3 offers no TLS below 1.2 at security level 1 or above.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


def tls11_possible(pki):
    """Whether this Python's OpenSSL can speak TLS 1.1 at all: a handshake
    of the TLS 1.1 client with a local server that allows it."""
    srv_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        srv_ctx.minimum_version = ssl.TLSVersion.TLSv1
        srv_ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        srv_ctx.load_cert_chain(pki.cert, pki.key)
        client = tls11_client(pki)
    except (ssl.SSLError, ValueError):
        return False
    with socket.create_server(("127.0.0.1", 0)) as ls:
        ls.settimeout(5)

        def serve():
            try:
                conn, _ = ls.accept()
                with srv_ctx.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                pass

        t = threading.Thread(target=serve)
        t.start()
        try:
            return handshake(ls.getsockname(), client) == "TLSv1.1"
        except (OSError, ssl.SSLError):
            return False
        finally:
            t.join(10)


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_tls_1_1_client_refused(crispd_factory, pki):
    if not tls11_possible(pki):
        pytest.skip("this Python's OpenSSL (%s) cannot make a TLS 1.1 handshake even at "
                    "SECLEVEL=0 with a local server allowing it: nothing to offer crispd"
                    % ssl.OPENSSL_VERSION)
    c = crispd_factory(config=tls_config(pki))
    addr = server_address(c)
    mark = c.mark()
    with pytest.raises(ssl.SSLError) as e:
        handshake(addr, tls11_client(pki))
    # Refused by the server (its protocol_version alert), not by the client.
    assert e.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION", e.value
    c.wait_log(r"streaming connection from 127\.0\.0\.1:\d+ closed: .*unsupported protocol",
               since=mark)
    # The same client allowed TLS 1.2 gets it; a default one 1.2 or later.
    ctx12 = client_context(pki)
    ctx12.maximum_version = ssl.TLSVersion.TLSv1_2
    assert handshake(addr, ctx12) == "TLSv1.2"
    assert handshake(addr, client_context(pki)) in ("TLSv1.2", "TLSv1.3")


def test_certificate_for_another_name_fails_the_host_name_check(crispd_factory, pki):
    """The clients' checks can fail: a certificate of the test CA for
    another name is refused by the host name check, and only by it."""
    c = crispd_factory(config=tls_config(pki, cert=pki.other_cert, key=pki.other_key))
    addr = server_address(c)
    with pytest.raises(ssl.SSLCertVerificationError) as e:
        handshake(addr, client_context(pki))
    assert "mismatch" in str(e.value), e.value
    no_name_check = client_context(pki)
    no_name_check.check_hostname = False
    assert handshake(addr, no_name_check) in ("TLSv1.2", "TLSv1.3")


def frontend_fds(crispd):
    return len(os.listdir("/proc/%d/fd" % crispd.children()[harness.FRONTEND]))


def test_failed_connections_logged_and_released(crispd_factory, pki):
    """Connections that fail before or during the handshake (clear text,
    junk, a client that rejects the certificate, a reset) are each logged
    with what went wrong, and leave no fd behind."""
    c = crispd_factory(config=tls_config(pki, cert=pki.other_cert, key=pki.other_key))
    addr = server_address(c)
    before = frontend_fds(c)
    mark = c.mark()
    for _ in range(10):
        with socket.create_connection(addr, timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert harness.read_until_closed(s, 5)[1]
        with socket.create_connection(addr, timeout=5) as s:
            s.sendall(b"\x16\x03\x01\x00\x05junk!")
            assert harness.read_until_closed(s, 5)[1]
        with pytest.raises(ssl.SSLCertVerificationError):
            handshake(addr, client_context(pki))  # the name does not match
        with socket.create_connection(addr, timeout=5) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer = r"streaming connection from 127\.0\.0\.1:\d+ closed: "
    for why in ("http request", "unexpected message", "alert bad certificate",
                "connection error: Connection reset by peer"):
        c.wait_log(peer + ".*" + why, since=mark)
    # Every closing says why in words: no bare SSL_get_error() code.
    lines = "\n".join(c.lines(mark))
    assert "lib(0)" not in lines, lines
    harness.wait_for(lambda: frontend_fds(c) <= before, 10,
                     what="the frontend's fds back to %d" % before)
    ctx = client_context(pki)
    ctx.check_hostname = False
    assert handshake(addr, ctx) in ("TLSv1.2", "TLSv1.3")


# --- bad TLS files ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["key of another certificate", "missing key file",
                                  "encrypted key", "certificate without key"])
def test_bad_tls_files_leave_streaming_off(pod_env_factory, pki, case):
    """The frontend logs why its streaming server did not start and serves
    CRI without it: the streaming calls fail UNAVAILABLE with a message,
    everything else works (a container runs, ExecSync runs in it)."""
    key, why = {
        "key of another certificate": (pki.other_key, r"key values mismatch"),
        "missing key file": (os.path.join(pki.dir, "missing-key.pem"), r"No such file"),
        # No passphrase is configurable: the frontend refuses OpenSSL's prompt.
        "encrypted key": (pki.encrypted_key, r"the key is encrypted; crisp takes unencrypted "
                          r"keys only"),
        "certificate without key": ("", r"tls_cert and tls_key must be set together"),
    }[case]
    env = pod_env_factory(config={"streaming": {"tls_key": key}})
    k = env.cri
    line = env.c.wait_log(r"streaming server not started: ")
    assert re.search(why, line), line
    if key:
        assert "streaming TLS: cannot load certificate %s and key %s: " % (pki.cert, key) in line
    assert not any(re.search(LISTENING, ln) for ln in env.c.lines()), env.c.tail()
    pod = k.run_pod(pod_config("tls-off-pod"))
    cid = k.run(pod, container_config("sleep", env.images.busybox, command=["sleep", "3600"]))
    k.wait_state(cid, harness.cri.CONTAINER_RUNNING)
    cri = harness.cri
    for method, req in (
            ("Exec", cri.ExecRequest(container_id=cid, cmd=["true"], stdout=True)),
            ("Attach", cri.AttachRequest(container_id=cid, stdout=True)),
            ("PortForward", cri.PortForwardRequest(pod_sandbox_id=pod, port=[80]))):
        e = rpc_error(env.c.call, method, req)
        assert e.code() == grpc.StatusCode.UNAVAILABLE, (method, e.code(), e.details())
        assert "the streaming server is not running" in e.details(), (method, e.details())
    r = k.exec_sync(cid, ["echo", "still here"])
    assert r.exit_code == 0 and r.stdout == b"still here\n"
    assert env.c.call("Version").runtime_name == "crisp"
    assert [c.id for c in k.list_containers(pod_id=pod)] == [cid]


# --- the key and the frontend's privilege -------------------------------------------------------


def readable_as(uid, gid, path):
    """Whether uid:gid (no supplementary groups) can open path for reading."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            os.close(os.open(path, os.O_RDONLY))
            os._exit(0)
        except PermissionError:
            os._exit(1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    assert code in (0, 1), "the check as uid %d failed: exit %d" % (uid, code)
    return code == 0


def test_root_only_key_read_before_privilege_drop(ctr, pki):
    """The key is root's, mode 0600, and the frontend's user cannot read
    it; the frontend, running as that user, serves TLS with it all the
    same (it loaded it as root, before the drop) and keeps no fd of it."""
    st = os.stat(pki.key)
    assert st.st_uid == 0 and st.st_mode & 0o777 == 0o600, oct(st.st_mode)
    user = pwd.getpwnam(ctr.c.config.get("frontend", {}).get("user", "crisp"))
    assert user.pw_uid != 0
    assert readable_as(user.pw_uid, user.pw_gid, pki.cert)  # the check can say yes
    assert not readable_as(user.pw_uid, user.pw_gid, pki.key)
    fe = ctr.c.children()[harness.FRONTEND]
    status = harness.proc_status(fe)
    assert status["Uid"].split() == [str(user.pw_uid)] * 4, status["Uid"]
    assert status["Gid"].split()[:3] == [str(user.pw_gid)] * 3, status["Gid"]
    fds = os.listdir("/proc/%d/fd" % fe)
    targets = set()
    for fd in fds:
        try:
            targets.add(os.readlink("/proc/%d/fd/%s" % (fe, fd)))
        except FileNotFoundError:
            pass
    assert pki.key not in targets and pki.cert not in targets, targets
    assert_serving_tls(ctr, pki)
