"""A SPDY/3.1 client for crisp's streaming tests: the kubelet remote command
protocol (exec, attach) and port-forward, as client-go speaks them
(PROTOCOLS.md 2, 4.1). Debian has no SPDY library, so this is written here,
from the frame layouts: frames are parsed strictly, header blocks go through
one zlib context per direction with the SPDY/3 dictionary.

    with SpdyConn.connect(url, ["v4.channel.k8s.io"]) as c:
        err = c.open_stream({"streamtype": "error"})
        out = c.open_stream({"streamtype": "stdout"})
        ...
        c.run_until(lambda: err.closed)
"""

import socket
import ssl
import struct
import time
import urllib.parse
import zlib

_NAMES = ["options", "head", "post", "put", "delete", "trace", "accept", "accept-charset",
          "accept-encoding", "accept-language", "accept-ranges", "age", "allow",
          "authorization", "cache-control", "connection", "content-base", "content-encoding",
          "content-language", "content-length", "content-location", "content-md5",
          "content-range", "content-type", "date", "etag", "expect", "expires", "from", "host",
          "if-match", "if-modified-since", "if-none-match", "if-range", "if-unmodified-since",
          "last-modified", "location", "max-forwards", "pragma", "proxy-authenticate",
          "proxy-authorization", "range", "referer", "retry-after", "server", "te", "trailer",
          "transfer-encoding", "upgrade", "user-agent", "vary", "via", "warning",
          "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1",
          "url", "public", "set-cookie", "keep-alive", "origin"]
# The SPDY/3 header dictionary, built from its definition; checked below
# against its known length and Adler-32 (PROTOCOLS.md 2.2).
DICTIONARY = b"".join(struct.pack(">I", len(n)) + n.encode() for n in _NAMES) + (
    b"100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    b"203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    b"401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    b"503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
    b"Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    b"application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    b"gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
assert len(DICTIONARY) == 1423 and zlib.adler32(DICTIONARY) == 0xE3C6A7C2

SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = (
    1, 2, 3, 4, 6, 7, 8, 9)
FLAG_FIN = 0x01
RST_CANCEL = 5


class ProtocolError(Exception):
    pass


class HttpError(Exception):
    def __init__(self, status, headers, body):
        super().__init__("HTTP %d: %s" % (status, body[:200]))
        self.status = status
        self.headers = headers
        self.body = body


def http_upgrade(url, headers, timeout=10, ssl_context=None):
    """Connect to url and send a GET with headers; return (sock, status,
    response headers as a list of (lower-case name, value), leftover bytes).
    The socket is left open whatever the status. An https URL is checked
    with ssl_context if given, else not at all."""
    u = urllib.parse.urlsplit(url)
    host = u.hostname
    port = u.port or (443 if u.scheme == "https" else 80)
    sock = socket.create_connection((host, port), timeout=timeout)
    if u.scheme == "https":
        ctx = ssl_context
        if ctx is None:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        sock = ctx.wrap_socket(sock, server_hostname=host)
    target = u.path + ("?" + u.query if u.query else "")
    lines = ["GET %s HTTP/1.1" % target, "Host: %s:%d" % (host, port)]
    lines += ["%s: %s" % (k, v) for k, v in headers]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return (sock,) + read_response_head(sock)


def read_response_head(sock):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise ProtocolError("connection closed during the HTTP response: %r" % buf)
        buf += chunk
        if len(buf) > 65536:
            raise ProtocolError("HTTP response head too long")
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise ProtocolError("bad status line %r" % lines[0])
    status = int(parts[1])
    hdrs = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        hdrs.append((name.strip().lower(), value.strip()))
    return status, hdrs, rest


def read_body(sock, hdrs, rest, timeout=5):
    """The body of an error response (Content-Length), for messages."""
    length = int(dict(hdrs).get("content-length", "0"))
    sock.settimeout(timeout)
    while len(rest) < length:
        chunk = sock.recv(4096)
        if not chunk:
            break
        rest += chunk
    return rest[:length]


class Stream:
    def __init__(self, conn, sid, headers):
        self.conn = conn
        self.id = sid
        self.headers = headers
        self.replied = False
        self.data = bytearray()
        self.closed = False  # the server sent FIN or RST
        self.reset = False   # the server sent RST
        self.local_closed = False

    def write(self, data):
        self.conn.send_data(self.id, data)

    def close(self):
        """Half-close our side: an empty DATA frame with FIN."""
        if not self.local_closed:
            self.conn.send_data(self.id, b"", fin=True)
            self.local_closed = True

    def reset_stream(self):
        self.conn.send_control(RST_STREAM, 0, struct.pack(">II", self.id, RST_CANCEL))
        self.local_closed = True


class SpdyConn:
    def __init__(self, sock, protocol, leftover=b""):
        self.sock = sock
        self.protocol = protocol
        self.buf = bytearray(leftover)
        self.next_id = 1
        self.streams = {}
        self.deflate = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY,
                                        DICTIONARY)
        self.inflate = zlib.decompressobj(zdict=DICTIONARY)
        self.goaway = None
        self.eof = False
        self.pings = []
        self.window_updates = []

    @classmethod
    def connect(cls, url, protocols, extra_headers=(), timeout=10, ssl_context=None):
        hdrs = [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")]
        hdrs += [("X-Stream-Protocol-Version", p) for p in protocols]
        hdrs += list(extra_headers)
        sock, status, rh, rest = http_upgrade(url, hdrs, timeout, ssl_context)
        if status != 101:
            body = read_body(sock, rh, rest)
            sock.close()
            raise HttpError(status, rh, body.decode(errors="replace"))
        chosen = dict(rh).get("x-stream-protocol-version")
        return cls(sock, chosen, rest)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # --- sending -------------------------------------------------------------

    def send_control(self, ftype, flags, payload):
        self.sock.sendall(struct.pack(">HHI", 0x8003, ftype, (flags << 24) | len(payload))
                          + payload)

    def send_data(self, sid, data, fin=False):
        self.sock.sendall(struct.pack(">II", sid & 0x7FFFFFFF,
                                      ((FLAG_FIN if fin else 0) << 24) | len(data)) + data)

    def header_block(self, headers):
        raw = struct.pack(">I", len(headers))
        for k, v in headers.items():
            k, v = k.lower().encode(), v.encode()
            raw += struct.pack(">I", len(k)) + k + struct.pack(">I", len(v)) + v
        return self.deflate.compress(raw) + self.deflate.flush(zlib.Z_SYNC_FLUSH)

    def open_stream(self, headers, fin=False, wait_reply=True, timeout=10):
        sid = self.next_id
        self.next_id += 2
        st = Stream(self, sid, headers)
        self.streams[sid] = st
        payload = struct.pack(">IIBB", sid, 0, 0, 0) + self.header_block(headers)
        self.send_control(SYN_STREAM, FLAG_FIN if fin else 0, payload)
        if fin:
            st.local_closed = True
        if wait_reply:
            self.run_until(lambda: st.replied or st.closed, timeout)
        return st

    def ping(self, pid):
        self.send_control(PING, 0, struct.pack(">I", pid))

    # --- receiving -----------------------------------------------------------

    def _decode_headers(self, block):
        raw = self.inflate.decompress(block)
        if len(raw) < 4:
            raise ProtocolError("header block shorter than its count")
        (n,), off, out = struct.unpack_from(">I", raw), 4, {}
        for _ in range(n):
            (ln,) = struct.unpack_from(">I", raw, off)
            name = raw[off + 4:off + 4 + ln].decode()
            off += 4 + ln
            (lv,) = struct.unpack_from(">I", raw, off)
            out[name] = raw[off + 4:off + 4 + lv].decode()
            off += 4 + lv
        if off != len(raw):
            raise ProtocolError("trailing bytes in a header block")
        return out

    def _frame(self):
        """One complete frame from the buffer, or None."""
        if len(self.buf) < 8:
            return None
        w0, w1 = struct.unpack_from(">II", self.buf)
        length = w1 & 0xFFFFFF
        if len(self.buf) < 8 + length:
            return None
        payload = bytes(self.buf[8:8 + length])
        del self.buf[:8 + length]
        return w0, w1 >> 24, payload

    def _handle(self, w0, flags, p):
        if w0 & 0x80000000:
            version, ftype = (w0 >> 16) & 0x7FFF, w0 & 0xFFFF
            if version != 3:
                raise ProtocolError("control frame of version %d" % version)
            if ftype == SYN_REPLY:
                (sid,) = struct.unpack_from(">I", p)
                self._decode_headers(p[4:])
                st = self.streams.get(sid & 0x7FFFFFFF)
                if st is None:
                    raise ProtocolError("SYN_REPLY for unknown stream %d" % sid)
                st.replied = True
                if flags & FLAG_FIN:
                    st.closed = True
            elif ftype == RST_STREAM:
                sid, status = struct.unpack(">II", p)
                st = self.streams.get(sid)
                if st:
                    st.closed = st.reset = True
                    st.reset_status = status
            elif ftype == PING:
                (pid,) = struct.unpack(">I", p)
                if pid % 2 == 0:  # the server's: echo it
                    self.send_control(PING, 0, p)
                else:
                    self.pings.append(pid)
            elif ftype == GOAWAY:
                self.goaway = struct.unpack(">II", p)
            elif ftype == WINDOW_UPDATE:
                self.window_updates.append(struct.unpack(">II", p))
            elif ftype == HEADERS:
                self._decode_headers(p[4:])
            elif ftype in (SETTINGS,):
                pass
            else:
                raise ProtocolError("unknown control frame type %d" % ftype)
        else:
            st = self.streams.get(w0)
            if st is None:
                raise ProtocolError("DATA for unknown stream %d" % w0)
            if not st.replied:
                raise ProtocolError("DATA before SYN_REPLY on stream %d" % w0)
            if st.closed:
                raise ProtocolError("DATA after FIN on stream %d" % w0)
            st.data += p
            if flags & FLAG_FIN:
                st.closed = True

    def pump(self, timeout):
        """Read what arrives within timeout and handle every complete frame."""
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            chunk = None
        except (ConnectionResetError, ssl.SSLError):
            chunk = b""
        if chunk == b"":
            self.eof = True
        elif chunk:
            self.buf += chunk
        while True:
            f = self._frame()
            if f is None:
                break
            self._handle(*f)

    def run_until(self, cond, timeout=10):
        deadline = time.monotonic() + timeout
        while not cond():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("condition not met within %gs" % timeout)
            if self.eof:
                raise ProtocolError("connection closed before the condition was met")
            self.pump(min(left, 0.5))
        return True

    def run_until_eof(self, timeout=10):
        deadline = time.monotonic() + timeout
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("connection still open after %gs" % timeout)
            self.pump(min(left, 0.5))


# --- the kubelet remote command protocol --------------------------------------------


class ExecResult:
    def __init__(self, protocol, stdout, stderr, error, goaway):
        self.protocol = protocol
        self.stdout = bytes(stdout)
        self.stderr = bytes(stderr)
        self.error = bytes(error)
        self.goaway = goaway

    @property
    def status(self):
        import json
        return json.loads(self.error) if self.error else None

    @property
    def exit_code(self):
        """The exit code from a v4 status: 0 on Success, the ExitCode cause
        on NonZeroExitCode; an exception for anything else."""
        st = self.status
        if st is None:
            raise ProtocolError("no status on the error stream")
        if st.get("status") == "Success":
            return 0
        if st.get("reason") == "NonZeroExitCode":
            for cause in st["details"]["causes"]:
                if cause.get("reason") == "ExitCode":
                    return int(cause["message"])
        raise ProtocolError("failure status: %r" % st)


def remote_command(url, stdin=None, stdout=True, stderr=True, tty=False,
                   protocols=("v4.channel.k8s.io",), resize=None, timeout=30,
                   stdin_close=True, during=None, ssl_context=None):
    """Run an exec or attach session as client-go does: streams error,
    stdin?, stdout?, stderr? (not with tty), resize (tty); stdin (bytes) is
    written then half-closed; resize is a list of (width, height) sent before
    stdin. during(conn, streams) runs once the streams are open; ssl_context
    checks an https URL (see http_upgrade). Returns an ExecResult once the
    server closed the error stream and the connection."""
    c = SpdyConn.connect(url, list(protocols), ssl_context=ssl_context)
    with c:
        streams = {"error": c.open_stream({"streamtype": "error"}, fin=True)}
        if stdin is not None:
            streams["stdin"] = c.open_stream({"streamtype": "stdin"})
        if stdout:
            streams["stdout"] = c.open_stream({"streamtype": "stdout"}, fin=True)
        if stderr and not tty:
            streams["stderr"] = c.open_stream({"streamtype": "stderr"}, fin=True)
        if tty and c.protocol != "v2.channel.k8s.io":
            streams["resize"] = c.open_stream({"streamtype": "resize"})
        import json
        for w, h in resize or ():
            streams["resize"].write(json.dumps({"Width": w, "Height": h}).encode() + b"\n")
        if during:
            during(c, streams)
        if stdin is not None:
            if stdin:
                streams["stdin"].write(stdin)
            if stdin_close:
                streams["stdin"].close()
        c.run_until(lambda: streams["error"].closed, timeout)
        # The server finishes with FIN/RST and GOAWAY, then closes.
        c.run_until_eof(timeout)
        return ExecResult(c.protocol, streams["stdout"].data if "stdout" in streams else b"",
                          streams["stderr"].data if "stderr" in streams else b"",
                          streams["error"].data, c.goaway)


def port_forward_conn(c, port, request_id, data=b"", close=True, timeout=10):
    """One forwarded connection on an open portforward.k8s.io SpdyConn: the
    error stream (half-closed at once), then the data stream; sends data,
    half-closes if close, and returns (data received, error text) once the
    server finished the data stream."""
    err = c.open_stream({"streamtype": "error", "port": str(port),
                         "requestid": str(request_id)}, fin=True)
    dat = c.open_stream({"streamtype": "data", "port": str(port),
                         "requestid": str(request_id)})
    if data:
        dat.write(data)
    if close:
        dat.close()
    c.run_until(lambda: dat.closed or err.closed, timeout)
    c.run_until(lambda: err.closed, timeout)
    return bytes(dat.data), bytes(err.data)
