"""Exec, Attach and PortForward through crisp's streaming server, end to end:
the CRI call returns a URL, and a client speaks to it as the kubelet's
clients do — SPDY/3.1 (spdy_client.py, written here: Debian has no SPDY
library) and WebSocket with the kubelet channel protocols (python3-websocket).
Covered: exec output and exit codes, stdin through cat, a tty resized as
`stty size` sees it, attach to a running container's stdio, port-forward to a
TCP server in a pod's own network namespace, single-use and expiring URLs
(404), the bounds on execs per container and per node, and malformed upgrades and frames, which close that connection only
while the daemon keeps serving."""

import base64
import json
import os
import socket
import ssl
import struct
import time
import types
import urllib.parse

import grpc
import pytest

import harness
import spdy_client as sc
from conftest import pull_images
from harness import container_config, pod_config, rpc_error

websocket = pytest.importorskip("websocket")  # python3-websocket

V4 = "v4.channel.k8s.io"
V5 = "v5.channel.k8s.io"
V4B64 = "v4.base64.channel.k8s.io"
ECHO_PORT = 8080
EXECS_PER_CTR = 64  # runtimed/stream.c EXEC_PER_CTR_MAX
EXECS_MAX_HOOK = 2  # CRISP_TEST_EXECS_MAX: runtimed/ops.c's RT_EXECS_MAX, lowered


# --- WebSocket clients --------------------------------------------------------------------


def ws_url(url):
    return "ws" + url[len("http"):] if url.startswith("http") else url


class WsSession:
    """A kubelet channel-protocol WebSocket session: messages are one channel
    byte and the payload (binary), or '0'+channel and base64 (base64 protocols)."""

    def __init__(self, url, protocol, timeout=30, ssl_context=None):
        # A configured streaming certificate is the operator's; the tests
        # check the protocol, not the chain, unless given an ssl_context
        # (test_streaming_tls.py).
        sslopt = {"context": ssl_context} if ssl_context else {"cert_reqs": ssl.CERT_NONE}
        self.ws = websocket.create_connection(ws_url(url), subprotocols=[protocol] if protocol
                                              else None, timeout=timeout, sslopt=sslopt)
        self.protocol = self.ws.getsubprotocol()
        self.b64 = bool(self.protocol and "base64" in self.protocol)
        self.channels = {}
        self.first = []  # (channel, payload) in arrival order
        self.closed = False

    def send(self, channel, data):
        if self.b64:
            self.ws.send(chr(ord("0") + channel) + base64.b64encode(data).decode())
        else:
            self.ws.send_binary(bytes([channel]) + data)

    def close_channel(self, channel):
        """v5: half-close a channel (stdin EOF)."""
        self.ws.send_binary(bytes([255, channel]))

    def recv(self):
        """One message as (channel, payload), or None once the server closed."""
        try:
            op, data = self.ws.recv_data()
        except (websocket.WebSocketConnectionClosedException, ConnectionError):
            self.closed = True
            return None
        if op == websocket.ABNF.OPCODE_CLOSE:
            self.closed = True
            return None
        if not data:
            return None, b""
        if self.b64:
            ch, payload = data[0] - ord("0"), base64.b64decode(data[1:])
        else:
            ch, payload = data[0], data[1:]
        self.first.append((ch, payload))
        self.channels.setdefault(ch, bytearray()).extend(payload)
        return ch, payload

    def run_until_closed(self, deadline=30):
        end = time.monotonic() + deadline
        while not self.closed:
            if time.monotonic() > end:
                raise TimeoutError("WebSocket session still open")
            self.recv()
        return self

    def data(self, ch):
        return bytes(self.channels.get(ch, b""))


def ws_exit_code(status_bytes):
    st = json.loads(status_bytes)
    if st["status"] == "Success":
        return 0
    assert st["reason"] == "NonZeroExitCode", st
    return int(next(c["message"] for c in st["details"]["causes"] if c["reason"] == "ExitCode"))


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def ctr(pod_env):
    """A running busybox container that reads lines on its stdin and echoes
    them back ("got LINE"), for exec and attach."""
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("stream-pod"))
    cfg = container_config("echo", env.images.busybox,
                           command=["sh", "-c", 'while read l; do echo "got $l"; done; sleep 3600'])
    cfg.stdin = True
    cid = k.run(pod, cfg)
    k.wait_state(cid, harness.cri.CONTAINER_RUNNING)
    env.cid = cid
    env.pod = pod
    return env


def exec_url(env, cmd, stdin=False, stdout=True, stderr=True, tty=False, cid=None):
    r = env.c.call("Exec", harness.cri.ExecRequest(container_id=cid or env.cid, cmd=cmd,
                                                   stdin=stdin, stdout=stdout, stderr=stderr,
                                                   tty=tty))
    u = urllib.parse.urlsplit(r.url)
    assert u.scheme == "http" and u.hostname == "127.0.0.1" and u.port, r.url
    assert u.path.startswith("/exec/"), r.url
    return r.url


def attach_url(env, stdin=True, stdout=True, stderr=False, tty=False):
    return env.c.call("Attach", harness.cri.AttachRequest(container_id=env.cid, stdin=stdin,
                                                          stdout=stdout, stderr=stderr,
                                                          tty=tty)).url


def assert_serving(env):
    """The streaming server still answers a fresh exec."""
    r = sc.remote_command(exec_url(env, ["echo", "still serving"]))
    assert r.stdout == b"still serving\n" and r.exit_code == 0


# --- exec over SPDY -----------------------------------------------------------------------


def test_exec_echo(ctr):
    r = sc.remote_command(exec_url(ctr, ["echo", "hi"]))
    assert r.protocol == V4
    assert r.stdout == b"hi\n"
    assert r.stderr == b""
    assert r.status == {"status": "Success"}
    assert r.exit_code == 0


def test_exec_exit_code(ctr):
    r = sc.remote_command(exec_url(ctr, ["sh", "-c", "echo oops >&2; exit 7"]))
    assert r.stderr == b"oops\n"
    assert r.exit_code == 7
    assert r.status["reason"] == "NonZeroExitCode"


def test_exec_stdin_through_cat(ctr):
    data = b"".join(b"line %d\n" % i for i in range(20000))  # ~200 KiB: past every buffer
    r = sc.remote_command(exec_url(ctr, ["cat"], stdin=True), stdin=data, timeout=60)
    assert r.stdout == data
    assert r.exit_code == 0


def test_exec_tty_resize(ctr):
    script = ('for i in $(seq 50); do s=$(stty size); [ "$s" = "42 100" ] && break; '
              'sleep 0.1; done; echo "size=$s"')
    r = sc.remote_command(exec_url(ctr, ["sh", "-c", script], stdin=True, stderr=False, tty=True),
                          stdin=b"", tty=True, resize=[(100, 42)], stdin_close=False)
    assert b"size=42 100" in r.stdout, r.stdout
    assert r.exit_code == 0


def test_exec_tty_exit_code(ctr):
    """A tty exec's exit code is runc exec's exit status, as without a tty."""
    r = sc.remote_command(exec_url(ctr, ["sh", "-c", "echo on a tty; exit 7"], stdin=True,
                                   stderr=False, tty=True), stdin=b"", tty=True,
                          stdin_close=False)
    assert b"on a tty" in r.stdout, r.stdout
    assert r.exit_code == 7


def test_exec_large_output_slow_reader(ctr):
    """8 MiB through a client that does not read for a while: the frontend
    stops reading the process instead of buffering it."""
    fe_pid = ctr.c.children()[harness.FRONTEND]

    def rss_kib():
        return int(harness.proc_status(fe_pid)["VmRSS"].split()[0])

    url = exec_url(ctr, ["sh", "-c", "head -c 8388608 /dev/zero"])
    before = rss_kib()
    with sc.SpdyConn.connect(url, [V4]) as c:
        err = c.open_stream({"streamtype": "error"}, fin=True)
        out = c.open_stream({"streamtype": "stdout"}, fin=True)
        c.open_stream({"streamtype": "stderr"}, fin=True)
        time.sleep(3)  # not reading: the process must be held back, not buffered
        stalled = rss_kib()
        c.run_until(lambda: err.closed, 120)
        assert len(out.data) == 8388608
        assert c.streams[1].data == b'{"status":"Success"}'
    # Bounded buffers (64 KiB a side), not the 8 MiB of output.
    assert stalled - before < 4096, (before, stalled)


def test_exec_requests_validated(ctr, cri):
    c = ctr.c
    e = rpc_error(c.call, "Exec", cri.ExecRequest(container_id=ctr.cid, cmd=["true"], tty=True,
                                                   stdout=True, stderr=True))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "tty and stderr cannot both be true" in e.details()
    e = rpc_error(c.call, "Exec", cri.ExecRequest(container_id=ctr.cid, cmd=["true"]))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "one of stdin, stdout, or stderr must be set" in e.details()
    e = rpc_error(c.call, "Exec", cri.ExecRequest(cmd=["true"], stdout=True))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "missing required container_id" in e.details()
    e = rpc_error(c.call, "Exec", cri.ExecRequest(container_id=ctr.cid, stdout=True))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    e = rpc_error(c.call, "PortForward", cri.PortForwardRequest(port=[80]))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "missing required pod_sandbox_id" in e.details()


def test_exec_command_at_the_bound(ctr, cri):
    """The largest command Exec takes (4096 arguments, 128 KiB counted as
    their lengths plus one each) runs: its message to runtimed stays inside
    runtimed's bound, which a bigger one would break (runtimed would take
    it for a violation and restart). One byte more is refused."""
    runtimed = ctr.c.children()["crisp-runtimed"]
    args = ["a" * 31] * 4095
    args[0] += "b" * (128 * 1024 - 5 - 32 * 4095)
    cmd = ["echo"] + args
    assert len(cmd) == 4096 and sum(len(a) + 1 for a in cmd) == 128 * 1024
    r = sc.remote_command(exec_url(ctr, cmd))
    assert r.exit_code == 0 and r.stdout == (" ".join(args) + "\n").encode()
    e = rpc_error(ctr.c.call, "Exec", cri.ExecRequest(container_id=ctr.cid, cmd=cmd[:-1] + [
        cmd[-1] + "c"], stdout=True))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "longer than" in e.details()
    e = rpc_error(ctr.c.call, "Exec", cri.ExecRequest(container_id=ctr.cid, cmd=cmd + ["x"],
                                                       stdout=True))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "4097 arguments" in e.details()
    assert ctr.c.children()["crisp-runtimed"] == runtimed


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def test_exec_records_forgotten(ctr):
    """runtimed forgets an exec once its exit was reported, and keeps no fd
    of it: more execs in a row than the per-container bound all run, and its
    open files come back to where they were, clients that left included."""
    rt_pid = ctr.c.children()["crisp-runtimed"]
    sc.remote_command(exec_url(ctr, ["true"]))
    before = fd_count(rt_pid)
    for i in range(EXECS_PER_CTR + 6):
        tty = i % 8 == 0
        r = sc.remote_command(exec_url(ctr, ["echo", str(i)], tty=tty, stderr=not tty), tty=tty)
        assert r.stdout.strip() == str(i).encode() and r.exit_code == 0, (i, r.stdout)
    for _ in range(3):
        c = sc.SpdyConn.connect(exec_url(ctr, ["cat"], stdin=True), [V4])
        c.open_stream({"streamtype": "error"}, fin=True)
        c.open_stream({"streamtype": "stdin"})
        c.open_stream({"streamtype": "stdout"}, fin=True)
        c.open_stream({"streamtype": "stderr"}, fin=True)
        time.sleep(0.3)
        c.sock.close()
    harness.wait_for(lambda: fd_count(rt_pid) <= before, 20, what="runtimed's fds back to %d" % before)


def test_exec_bound_per_container(ctr):
    """At most EXECS_PER_CTR execs run in one container; one more fails with
    a clear message on the error stream, and the others are unaffected."""
    sessions = []
    try:
        for _ in range(EXECS_PER_CTR):
            s = WsSession(exec_url(ctr, ["sleep", "60"]), V4)
            assert s.recv() == (1, b"")  # opened: the exec runs
            sessions.append(s)
        extra = WsSession(exec_url(ctr, ["echo", "one too many"]), V4).run_until_closed()
        st = json.loads(extra.data(3))
        assert st["status"] == "Failure", st
        assert "has %d execs already" % EXECS_PER_CTR in st["message"], st
        assert b"one too many" not in extra.data(1)
    finally:
        for s in sessions:
            s.ws.close()


@pytest.fixture
def capped_env(crispd_factory, ctr_images):
    """crisp with runtimed's bound on execs running on the node lowered to
    EXECS_MAX_HOOK (test hook, --enable-test-hooks builds only), and a pod
    with two running containers."""
    if not harness._build_defines("CRISP_TEST_HOOKS"):
        pytest.skip("needs a build with --enable-test-hooks")
    c = crispd_factory(start=False)
    c.start(env={"CRISP_TEST_EXECS_MAX": str(EXECS_MAX_HOOK)})
    pull_images(c, [ctr_images.busybox])
    env = types.SimpleNamespace(c=c, cri=harness.CriObjects(c), images=ctr_images)
    pod = env.cri.run_pod(pod_config("exec-cap-pod"))
    env.cids = [env.cri.run(pod, container_config(name, ctr_images.busybox,
                                                  command=["sleep", "3600"]))
                for name in ("held", "other")]
    for cid in env.cids:
        env.cri.wait_state(cid, harness.cri.CONTAINER_RUNNING)
    env.cid = env.cids[0]
    yield env
    if c.running():
        env.cri.cleanup()


def test_exec_bound_per_node(capped_env):
    """Execs running on the node are bounded in all, not only per container,
    so that they cannot take every launcher slot: past the bound a streaming
    exec fails on its error stream and an ExecSync with RESOURCE_EXHAUSTED,
    both saying why, while stopping and removing containers still works; once
    the execs end, new ones run."""
    env, k = capped_env, capped_env.cri
    full = ("%d execs are running on this node, at most %d: the rest of the launcher is "
            "kept for stopping and removing containers" % (EXECS_MAX_HOOK, EXECS_MAX_HOOK))
    sessions = []
    try:
        for _ in range(EXECS_MAX_HOOK):
            s = WsSession(exec_url(env, ["sleep", "30"]), V4, timeout=45)
            assert s.recv() == (1, b"")  # opened: the exec runs
            sessions.append(s)
        # The URL is still given (the CRI Exec call does not start anything);
        # the exec fails when its stream starts, as the kubelet's client sees.
        extra = WsSession(exec_url(env, ["echo", "one too many"]), V4).run_until_closed()
        st = json.loads(extra.data(3))
        assert st["status"] == "Failure", st
        assert (st["reason"], st["code"]) == ("TooManyRequests", 429), st
        assert full in st["message"], st
        assert b"one too many" not in extra.data(1)
        e = rpc_error(k.exec_sync, env.cids[1], ["echo", "one too many"])
        assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e
        assert full in e.details(), e.details()
        # What the rest of the launcher is kept for
        k.stop(env.cids[1], timeout=2)
        assert k.status(env.cids[1]).state == harness.cri.CONTAINER_EXITED
        k.remove(env.cids[1])
        # The held execs end on their own: each reports its exit, and its
        # slot is free again.
        for s in sessions:
            s.run_until_closed(deadline=45)
            assert ws_exit_code(s.data(3)) == 0
    finally:
        for s in sessions:
            s.ws.close()
    r = k.exec_sync(env.cid, ["echo", "after"])
    assert r.exit_code == 0 and r.stdout == b"after\n"
    assert_serving(env)


def test_missing_container_or_pod_not_found(ctr, cri):
    """No URL for a container or pod that is not there (or not running)."""
    c = ctr.c
    missing = "0" * 64
    for method, req in (("Exec", cri.ExecRequest(container_id=missing, cmd=["true"], stdout=True)),
                        ("Attach", cri.AttachRequest(container_id=missing, stdout=True)),
                        ("PortForward", cri.PortForwardRequest(pod_sandbox_id=missing,
                                                               port=[80]))):
        e = rpc_error(c.call, method, req)
        assert e.code() == grpc.StatusCode.NOT_FOUND, (method, e.details())
        assert missing in e.details()
    ctr.cri.stop(ctr.cid, timeout=0)
    e = rpc_error(c.call, "Exec", cri.ExecRequest(container_id=ctr.cid, cmd=["true"], stdout=True))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION, e.details()
    assert "is not running" in e.details()


# --- exec over WebSocket ------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [V4, V4B64])
def test_exec_websocket(ctr, protocol):
    s = WsSession(exec_url(ctr, ["sh", "-c", "echo out; echo err >&2; exit 3"]), protocol)
    assert s.protocol == protocol
    s.run_until_closed()
    # The first message says the session is open: empty, on stdout.
    assert s.first[0] == (1, b"")
    assert s.data(1) == b"out\n"
    assert s.data(2) == b"err\n"
    assert ws_exit_code(s.data(3)) == 3


def test_exec_websocket_v5_close_stdin(ctr):
    s = WsSession(exec_url(ctr, ["cat"], stdin=True), V5)
    assert s.protocol == V5
    s.send(0, b"through cat\n")
    s.close_channel(0)  # stdin EOF: cat exits
    s.run_until_closed()
    assert s.data(1) == b"through cat\n"
    assert ws_exit_code(s.data(3)) == 0


# --- attach ---------------------------------------------------------------------------------


def test_attach_stdin_and_output(ctr):
    url = attach_url(ctr)
    assert urllib.parse.urlsplit(url).path.startswith("/attach/")
    with sc.SpdyConn.connect(url, [V4]) as c:
        c.open_stream({"streamtype": "error"}, fin=True)
        stdin = c.open_stream({"streamtype": "stdin"})
        out = c.open_stream({"streamtype": "stdout"}, fin=True)
        stdin.write(b"ping\n")
        c.run_until(lambda: b"got ping\n" in out.data, 20)
        stdin.write(b"pong\n")
        c.run_until(lambda: b"got pong\n" in out.data, 20)
    # The container keeps running after the client left.
    assert ctr.cri.status(ctr.cid).state == harness.cri.CONTAINER_RUNNING
    assert_serving(ctr)


def test_attach_tty_with_resize(pod_env):
    """Attach to a container with a terminal: input through the monitor's
    terminal, output back on stdout, and a resize the container sees."""
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("stream-tty-pod"))
    cfg = container_config("tty", env.images.busybox,
                           command=["sh", "-c", 'while read l; do echo "got $l $(stty size)"; done'])
    cfg.stdin = True
    cfg.tty = True
    cid = k.run(pod, cfg)
    k.wait_state(cid, harness.cri.CONTAINER_RUNNING)
    env.cid = cid
    url = attach_url(env, stdin=True, stdout=True, stderr=False, tty=True)
    with sc.SpdyConn.connect(url, [V4]) as c:
        c.open_stream({"streamtype": "error"}, fin=True)
        stdin = c.open_stream({"streamtype": "stdin"})
        out = c.open_stream({"streamtype": "stdout"}, fin=True)
        resize = c.open_stream({"streamtype": "resize"})
        resize.write(json.dumps({"Width": 90, "Height": 33}).encode() + b"\n")
        time.sleep(0.5)
        stdin.write(b"ping\r")
        c.run_until(lambda: b"got ping 33 90" in out.data, 20)
    assert k.status(cid).state == harness.cri.CONTAINER_RUNNING


# --- port-forward ------------------------------------------------------------------------------


@pytest.fixture
def pf_env(pod_env_factory):
    """A pod in its own network namespace (CNI) running an echo server on
    ECHO_PORT (busybox nc, persistent, cat as the handler)."""
    env = pod_env_factory(before_start=lambda c: c.add_conflist())
    k = env.cri
    pod = k.run_pod(pod_config("pf-pod", host_network=False))
    cid = k.run(pod, container_config("echo-server", env.images.busybox,
                                      command=["nc", "-ll", "-p", str(ECHO_PORT), "-e", "cat"]))
    k.wait_state(cid, harness.cri.CONTAINER_RUNNING)
    env.pod, env.cid = pod, cid
    # The server is up once nc listens (ExecSync checks from inside).
    harness.wait_for(lambda: k.sh(cid, "netstat -ltn | grep -q :%d" % ECHO_PORT)[0] == 0, 20,
                     what="echo server listening")
    return env


def pf_url(env, ports=None):
    ports = (ECHO_PORT,) if ports is None else ports
    r = env.c.call("PortForward", harness.cri.PortForwardRequest(pod_sandbox_id=env.pod,
                                                                 port=list(ports)))
    assert urllib.parse.urlsplit(r.url).path.startswith("/portforward/"), r.url
    return r.url


def test_port_forward_spdy(pf_env):
    with sc.SpdyConn.connect(pf_url(pf_env), ["portforward.k8s.io"]) as c:
        assert c.protocol == "portforward.k8s.io"
        # Two forwarded connections on the one session.
        for rid in (0, 1):
            data, err = sc.port_forward_conn(c, ECHO_PORT, rid, b"hello %d\n" % rid)
            assert data == b"hello %d\n" % rid
            assert err == b""


def test_port_forward_closed_port_reports_error(pf_env):
    with sc.SpdyConn.connect(pf_url(pf_env, ports=()), ["portforward.k8s.io"]) as c:
        data, err = sc.port_forward_conn(c, 9, 0, b"x")
        assert b"error forwarding port 9" in err, err
        assert b"unavailable" not in err, err  # the dial failed, not the backend
        assert data == b""


def test_port_forward_websocket(pf_env):
    s = WsSession(pf_url(pf_env), V4)
    # The port, little-endian, first on the data and the error channel.
    ch, payload = s.recv()
    ch2, payload2 = s.recv()
    assert {(ch, payload), (ch2, payload2)} == {(0, struct.pack("<H", ECHO_PORT)),
                                               (1, struct.pack("<H", ECHO_PORT))}
    s.send(0, b"over websocket\n")
    got = b""
    while b"over websocket\n" not in got:
        r = s.recv()
        assert r is not None, "closed before the echo"
        if r[0] == 0:
            got += r[1]
    s.ws.close()


# --- tokens -----------------------------------------------------------------------------------


def test_token_single_use(ctr):
    url = exec_url(ctr, ["true"])
    assert sc.remote_command(url).exit_code == 0
    with pytest.raises(sc.HttpError) as e:
        sc.remote_command(url)
    assert e.value.status == 404
    # A well-formed token nobody issued, and a token used on the wrong path.
    with pytest.raises(sc.HttpError) as e:
        sc.remote_command(url.rsplit("/", 1)[0] + "/" + "A" * 43)
    assert e.value.status == 404
    with pytest.raises(sc.HttpError) as e:
        sc.remote_command(exec_url(ctr, ["true"]).replace("/exec/", "/attach/"))
    assert e.value.status == 404


def test_token_expires(pod_env_factory):
    env = pod_env_factory(config={"streaming": {"token_ttl": "1"}})
    k = env.cri
    pod = k.run_pod(pod_config("ttl-pod"))
    env.cid = k.run(pod, container_config("sleep", env.images.busybox, command=["sleep", "3600"]))
    url = exec_url(env, ["true"])
    time.sleep(1.5)
    with pytest.raises(sc.HttpError) as e:
        sc.remote_command(url)
    assert e.value.status == 404
    assert sc.remote_command(exec_url(env, ["true"])).exit_code == 0


# --- hostile clients ------------------------------------------------------------------------------


def raw(url, data, timeout=5):
    """Send raw bytes to the streaming server; what comes back until it closes."""
    u = urllib.parse.urlsplit(url)
    s = socket.create_connection((u.hostname, u.port), timeout=timeout)
    s.sendall(data)
    answer, closed = harness.read_until_closed(s, timeout)
    s.close()
    assert closed, "the server kept a bad request's connection open"
    return answer


def test_idle_connections_cannot_fill_the_listener(ctr):
    """Connections that never send a request head (no token needed for
    that) cannot keep the kubelet's sessions out: past 64 of them, or with
    the listener full, each newcomer closes the oldest of them, while an
    established session is never closed for a newcomer."""
    session = WsSession(exec_url(ctr, ["cat"], stdin=True), V5)
    port = urllib.parse.urlsplit(exec_url(ctr, ["true"])).port
    idle = []
    try:
        for _ in range(300):  # more than the listener's 256
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        assert_serving(ctr)  # refused once 256 were open, before
        session.send(0, b"still here\n")
        got = b""
        while b"still here\n" not in got:
            ch, data = session.recv()
            got += data if ch == 1 else b""
        closed = 0
        for s in idle:
            s.settimeout(0.05)
            try:
                closed += s.recv(1) == b""
            except ConnectionResetError:
                closed += 1
            except socket.timeout:
                pass
        assert 300 - closed <= 64, closed
    finally:
        for s in idle:
            s.close()
        session.close_channel(0)
        session.run_until_closed()
    assert_serving(ctr)


def test_malformed_upgrades(ctr):
    url = exec_url(ctr, ["true"])
    path = urllib.parse.urlsplit(url).path.encode()
    # No upgrade headers at all (the token is spent: each case gets its own).
    assert raw(url, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n").startswith(
        b"HTTP/1.1 400 ")
    for req in (b"GET /exec/x HTTP/1.1\r\nBroken header line\r\n\r\n",
                b"BREW /exec/x HTTP/1.1\r\n\r\n",
                b"GET /exec/x HTTP/1.1\r\n" + b"X-Long: " + b"a" * 9000 + b"\r\n\r\n",
                b"\x16\x03\x01\x02\x00" + b"\x00" * 300 + b"\r\n\r\n"):
        answer = raw(url, req)
        assert answer.startswith(b"HTTP/1.1 4"), answer[:100]
    # SPDY without X-Stream-Protocol-Version: 400; an unknown one: 403.
    with pytest.raises(sc.HttpError) as e:
        sc.SpdyConn.connect(exec_url(ctr, ["true"]), [])
    assert e.value.status == 400
    with pytest.raises(sc.HttpError) as e:
        sc.SpdyConn.connect(exec_url(ctr, ["true"]), ["v9.channel.k8s.io"])
    assert e.value.status == 403
    assert ("x-accepted-stream-protocol-versions", V4) in e.value.headers
    assert_serving(ctr)


@pytest.mark.parametrize("frame", [
    b"\x80\x02\x00\x01\x00\x00\x00\x0a" + b"\x00" * 10,          # SPDY version 2
    # SYN_STREAM whose header block is not zlib with the SPDY dictionary
    b"\x80\x03\x00\x01\x00\x00\x00\x16" + b"\x00\x00\x00\x01" + b"\x00" * 6 + b"\x78\xf9junkjunk!!",
    b"\x80\x03\x00\x06\x00\x00\x00\x09" + b"\x00" * 9,           # PING of 9 bytes
    b"\x00\x00\x00\x01\xff\xff\xff\xff",                          # 16 MiB data frame
])
def test_malformed_spdy_frame_closes_that_connection(ctr, frame):
    bystander = sc.SpdyConn.connect(exec_url(ctr, ["cat"], stdin=True), [V4])
    berr = bystander.open_stream({"streamtype": "error"}, fin=True)
    bin_ = bystander.open_stream({"streamtype": "stdin"})
    bout = bystander.open_stream({"streamtype": "stdout"}, fin=True)
    bystander.open_stream({"streamtype": "stderr"}, fin=True)
    with sc.SpdyConn.connect(exec_url(ctr, ["sleep", "30"]), [V4]) as c:
        c.sock.sendall(frame)
        c.run_until_eof(10)
        assert c.goaway is None or c.goaway[1] == 1
    # Another session on the same server is unaffected.
    bin_.write(b"unaffected\n")
    bin_.close()
    bystander.run_until(lambda: berr.closed, 20)
    assert bout.data == b"unaffected\n"
    bystander.close()
    assert_serving(ctr)


def test_malformed_websocket_frame(ctr):
    s = WsSession(exec_url(ctr, ["sleep", "30"]), V4)
    s.ws.sock.sendall(b"\x82\x05hello")  # unmasked client frame: a protocol error
    s.run_until_closed(10)
    assert_serving(ctr)


def test_client_leaving_closes_stdin(ctr):
    """A client that disconnects mid-exec closes the process's stdin: cat
    ends and the marker appears."""
    k = ctr.cri
    url = exec_url(ctr, ["sh", "-c", "cat >/dev/null; touch /tmp/stdin-closed"], stdin=True)
    c = sc.SpdyConn.connect(url, [V4])
    c.open_stream({"streamtype": "error"}, fin=True)
    stdin = c.open_stream({"streamtype": "stdin"})
    c.open_stream({"streamtype": "stdout"}, fin=True)
    c.open_stream({"streamtype": "stderr"}, fin=True)
    stdin.write(b"some input\n")
    time.sleep(0.5)
    c.sock.close()
    harness.wait_for(lambda: k.sh(ctr.cid, "test -e /tmp/stdin-closed")[0] == 0, 20,
                     what="stdin closed after the client left")
    assert_serving(ctr)
