"""A real OCI registry for the image tests: Debian's docker-registry
(distribution 2.8) on 127.0.0.1, with its storage, config and log in a temp
dir; optionally behind token auth (tokenserver.py), htpasswd basic auth or
TLS with a CA of its own. Plus a small HTTP client for it and FlakyProxy, an
HTTP front that misbehaves on request (5xx, truncated or corrupted blobs,
stalls, resets, redirects, content of its own) for imaged's robustness tests.

    reg = Registry().start()            # plain HTTP, no auth
    pushed = reg.push(images.busybox_image(), "busybox")   # -> Pushed
    pushed.ref            # "127.0.0.1:PORT/busybox:latest"
    pushed.digest_ref     # "127.0.0.1:PORT/busybox@sha256:..."
    reg.client().get("/v2/")
    reg.cleanup()         # stops it (by pid) and removes its temp dir

Everything here is Python's standard library plus python3-cryptography (for
the certificates of the TLS and token modes).
"""

import atexit
import base64
import contextlib
import datetime
import hashlib
import http.client
import http.server
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse

from images import ALL_MANIFEST_TYPES

DOCKER_REGISTRY = "/usr/bin/docker-registry"

# Every Registry and FlakyProxy running, stopped at exit if a test run dies
# before its fixtures' teardown.
LIVE = []


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- certificates -------------------------------------------------------------------


def make_ca(common_name="crisp test CA", key_type="ec"):
    """A self-signed CA certificate: (key, cert) as python-cryptography objects.
    key_type "rsa" gives the RSA-2048 key that RS256 tokens need."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    if key_type == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_server_cert(ca_key, ca_cert, names=("127.0.0.1", "localhost")):
    """A server certificate signed by the CA for these IPs and DNS names."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    sans = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def write_pem(path, key=None, cert=None):
    from cryptography.hazmat.primitives import serialization

    with open(path, "wb") as f:
        if cert is not None:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        if key is not None:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return path


def htpasswd_line(user, password):
    """A bcrypt htpasswd entry (the only hash docker-registry accepts), by
    glibc's crypt (libxcrypt does bcrypt)."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
        h = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 4))
    if not h or not h.startswith("$2"):
        raise RuntimeError("crypt() cannot make bcrypt hashes here")
    return "%s:%s\n" % (user, h)


# --- HTTP client --------------------------------------------------------------------


class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # http.client.HTTPMessage: case-insensitive get()
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %d %s %d bytes>" % (self.status, self.reason, len(self.body))


def parse_challenge(value):
    """'Bearer realm="x",service="y"' -> ("bearer", {"realm": "x", ...})."""
    scheme, _, rest = value.strip().partition(" ")
    params = dict((k.lower(), v) for k, v in
                  re.findall(r'([A-Za-z_]+)="([^"]*)"', rest))
    return scheme.lower(), params


class RegistryClient:
    """A minimal registry v2 client on http.client: answers Bearer and Basic
    challenges with its credentials (if any), never follows redirects, keeps
    no connection. base: "http://127.0.0.1:PORT" (or https, with cafile)."""

    def __init__(self, base, username=None, password=None, cafile=None, timeout=60):
        u = urllib.parse.urlsplit(base)
        self.scheme, self.host = u.scheme, u.netloc
        self.username, self.password = username, password
        self.timeout = timeout
        self.ssl_context = None
        if self.scheme == "https":
            self.ssl_context = ssl.create_default_context(cafile=cafile)
        self._tokens = {}  # repository (or path) -> bearer token

    def _conn(self, host=None, scheme=None):
        host = host or self.host
        if (scheme or self.scheme) == "https":
            return http.client.HTTPSConnection(host, timeout=self.timeout,
                                               context=self.ssl_context)
        return http.client.HTTPConnection(host, timeout=self.timeout)

    def raw(self, method, path, body=None, headers=None, host=None, scheme=None):
        """One request, no auth handling."""
        conn = self._conn(host, scheme)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            return Response(r.status, r.reason, r.headers, data)
        finally:
            conn.close()

    def _basic(self):
        raw = ("%s:%s" % (self.username, self.password)).encode()
        return "Basic " + base64.b64encode(raw).decode()

    def fetch_token(self, params):
        """GET the token realm with our credentials (if any); return the token."""
        realm = urllib.parse.urlsplit(params["realm"])
        q = [(k, params[k]) for k in ("service", "scope") if params.get(k)]
        path = realm.path + "?" + urllib.parse.urlencode(q)
        headers = {}
        if self.username is not None:
            headers["Authorization"] = self._basic()
        r = self.raw("GET", path, headers=headers, host=realm.netloc, scheme=realm.scheme)
        if r.status != 200:
            raise RuntimeError("token server %s answered %d: %r" % (params["realm"], r.status,
                                                                  r.body[:200]))
        j = r.json()
        return j.get("token") or j["access_token"]

    def request(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        m = re.match(r"/v2/(.+?)/(blobs|manifests|tags)/", path)
        scope_key = m.group(1) if m else path.split("?")[0]
        for attempt in range(2):
            if "Authorization" not in headers and scope_key in self._tokens:
                headers["Authorization"] = "Bearer " + self._tokens[scope_key]
            r = self.raw(method, path, body, headers)
            if r.status != 401 or attempt:
                return r
            scheme, params = parse_challenge(r.headers.get("WWW-Authenticate", ""))
            if scheme == "bearer":
                token = self.fetch_token(params)
                self._tokens[scope_key] = token
                headers["Authorization"] = "Bearer " + token
            elif scheme == "basic" and self.username is not None:
                headers["Authorization"] = self._basic()
            else:
                return r
        return r

    def get(self, path, headers=None):
        return self.request("GET", path, headers=headers)

    # registry operations

    def blob_exists(self, repo, digest):
        return self.request("HEAD", "/v2/%s/blobs/%s" % (repo, digest)).status == 200

    def push_blob(self, repo, data, digest=None):
        """Monolithic upload: POST an upload, PUT the bytes with ?digest=."""
        digest = digest or sha256_digest(data)
        if self.blob_exists(repo, digest):
            return digest
        r = self.request("POST", "/v2/%s/blobs/uploads/" % repo, body=b"",
                         headers={"Content-Length": "0"})
        if r.status != 202:
            raise RuntimeError("POST upload %s: %d %r" % (repo, r.status, r.body[:300]))
        loc = urllib.parse.urlsplit(r.headers["Location"])
        sep = "&" if loc.query else "?"
        path = loc.path + ("?" + loc.query if loc.query else "") + sep + urllib.parse.urlencode(
            {"digest": digest})
        r = self.request("PUT", path, body=data,
                         headers={"Content-Type": "application/octet-stream",
                                  "Content-Length": str(len(data))})
        if r.status != 201:
            raise RuntimeError("PUT blob %s %s: %d %r" % (repo, digest, r.status, r.body[:300]))
        return digest

    def push_manifest(self, repo, ref, body, media_type):
        r = self.request("PUT", "/v2/%s/manifests/%s" % (repo, ref), body=body,
                         headers={"Content-Type": media_type, "Content-Length": str(len(body))})
        if r.status != 201:
            raise RuntimeError("PUT manifest %s:%s: %d %r" % (repo, ref, r.status, r.body[:500]))
        digest = r.headers.get("Docker-Content-Digest")
        if digest and digest != sha256_digest(body):
            raise RuntimeError("registry computed digest %s for manifest %s" % (
                digest, sha256_digest(body)))
        return sha256_digest(body)

    def get_manifest(self, repo, ref, accept=None):
        return self.get("/v2/%s/manifests/%s" % (repo, ref),
                        headers={"Accept": ", ".join(accept or ALL_MANIFEST_TYPES)})

    def get_blob(self, repo, digest):
        return self.get("/v2/%s/blobs/%s" % (repo, digest))

    def delete_manifest(self, repo, digest):
        return self.request("DELETE", "/v2/%s/manifests/%s" % (repo, digest))


class Pushed:
    """An image (or index) pushed to a registry under repo:tag."""

    def __init__(self, host, repo, tag, digest, image):
        self.host, self.repo, self.tag, self.digest, self.image = host, repo, tag, digest, image

    @property
    def ref(self):
        return "%s/%s:%s" % (self.host, self.repo, self.tag)

    @property
    def digest_ref(self):
        return "%s/%s@%s" % (self.host, self.repo, self.digest)

    def via(self, host, by_digest=False):
        """The same reference through another host:port (a FlakyProxy)."""
        if by_digest:
            return "%s/%s@%s" % (host, self.repo, self.digest)
        return "%s/%s:%s" % (host, self.repo, self.tag)

    def __repr__(self):
        return "<Pushed %s %s>" % (self.ref, self.digest)


# --- the registry -----------------------------------------------------------------


class Registry:
    """docker-registry serving on 127.0.0.1:<port> from a temp dir:

        T/config.yml  T/storage/  T/registry.log  T/*.pem  T/htpasswd

    auth: None, "token" (token_server: a tokenserver.TokenServer, whose
    signing certificate becomes the rootcertbundle) or "htpasswd" (users:
    {name: password}). tls: serve HTTPS with a certificate of a CA of its
    own (self.ca_file for clients). admin: (user, password) its own client
    pushes with."""

    def __init__(self, auth=None, token_server=None, users=None, tls=False, admin=None,
                 port=None, extra_config=None):
        if auth not in (None, "token", "htpasswd"):
            raise ValueError("auth must be None, 'token' or 'htpasswd'")
        if auth == "token" and token_server is None:
            raise ValueError("token auth needs a token_server")
        self.auth = auth
        self.token_server = token_server
        self.users = dict(users or {})
        self.tls = tls
        self.admin = admin
        if admin is None and auth == "htpasswd" and self.users:
            self.admin = next(iter(self.users.items()))
        if admin is None and auth == "token":
            self.admin = token_server.admin
        self.port = port
        self.extra_config = extra_config or {}
        self.dir = tempfile.mkdtemp(prefix="crisp-registry-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.storage = os.path.join(self.dir, "storage")
        self.config_path = os.path.join(self.dir, "config.yml")
        self.log_path = os.path.join(self.dir, "registry.log")
        self.ca_file = None
        self.proc = None
        self._log = None
        if tls:
            ca_key, ca_cert = make_ca("crisp test registry CA")
            key, cert = make_server_cert(ca_key, ca_cert)
            self.ca_file = write_pem(os.path.join(self.dir, "ca.pem"), cert=ca_cert)
            self._cert_file = write_pem(os.path.join(self.dir, "server.pem"), cert=cert)
            self._key_file = write_pem(os.path.join(self.dir, "server-key.pem"), key=key)

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    @property
    def url(self):
        return "%s://%s" % ("https" if self.tls else "http", self.host)

    def config(self):
        storage = {
            "filesystem": {"rootdirectory": self.storage},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        }
        http_cfg = {"addr": self.host, "secret": "crisp-test-secret",
                    "headers": {"X-Content-Type-Options": ["nosniff"]}}
        if self.tls:
            http_cfg["tls"] = {"certificate": self._cert_file, "key": self._key_file}
        cfg = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
            "storage": storage,
            "http": http_cfg,
            "health": {"storagedriver": {"enabled": False}},
        }
        if self.auth == "token":
            ts = self.token_server
            cfg["auth"] = {"token": {"realm": ts.realm, "service": ts.service,
                                     "issuer": ts.issuer, "rootcertbundle": ts.cert_file}}
        elif self.auth == "htpasswd":
            path = os.path.join(self.dir, "htpasswd")
            with open(path, "w") as f:
                for u, p in self.users.items():
                    f.write(htpasswd_line(u, p))
            cfg["auth"] = {"htpasswd": {"realm": "crisp-test", "path": path}}
        for k, v in self.extra_config.items():
            cfg[k] = v
        return cfg

    def start(self, timeout=10.0):
        """Start it (again, on the same port and storage, after stop()); wait
        until /v2/ answers. Retries on another port if the first was taken."""
        if not os.access(DOCKER_REGISTRY, os.X_OK):
            raise AssertionError("%s is missing: apt-get install docker-registry"
                                 % DOCKER_REGISTRY)
        fixed = self.port is not None
        for attempt in range(3):
            if not fixed:
                self.port = free_port()
            with open(self.config_path, "w") as f:
                json.dump(self.config(), f, indent=1)  # JSON is YAML
            self._log = open(self.log_path, "ab")
            # Its own session: a ^C to the test run reaches pytest, whose
            # teardown stops it, not the registry directly.
            self.proc = subprocess.Popen([DOCKER_REGISTRY, "serve", self.config_path],
                                         stdin=subprocess.DEVNULL, stdout=self._log,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         cwd=self.dir)
            if self not in LIVE:
                LIVE.append(self)
            if self._wait_ready(timeout):
                return self
            self.stop()
            if fixed or "address already in use" not in self.tail(20):
                break
        raise AssertionError("docker-registry did not come up on %s:\n%s" % (self.host,
                                                                            self.tail(40)))

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        c = self.client(anonymous=True, timeout=2)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                r = c.raw("GET", "/v2/")
                if r.status in (200, 401):
                    return True
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.05)
        return False

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=5.0):
        """Stop it by its pid (SIGTERM, then SIGKILL); keep its storage."""
        if self.proc is not None:
            if self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self.proc.pid, signal.SIGKILL)
                    self.proc.wait()
        if self._log:
            self._log.close()
            self._log = None
        if self in LIVE:
            LIVE.remove(self)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def tail(self, n=100):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(lines[-n:])

    # clients and pushes

    def client(self, username=None, password=None, anonymous=False, timeout=60):
        """A RegistryClient; by default with the admin credentials."""
        if username is None and not anonymous and self.admin:
            username, password = self.admin
        return RegistryClient(self.url, username, password, cafile=self.ca_file,
                              timeout=timeout)

    def push(self, image, repo, tag="latest"):
        """Push an images.Image or images.Index; return a Pushed."""
        digest = image.push(self.client(), repo, tag)
        return Pushed(self.host, repo, tag, digest, image)

    def blob_files(self):
        """{digest: path} of the blobs in its storage."""
        root = os.path.join(self.storage, "docker", "registry", "v2", "blobs")
        out = {}
        for dirpath, _, files in os.walk(root):
            if "data" in files:
                algo = os.path.basename(os.path.dirname(os.path.dirname(dirpath)))
                out["%s:%s" % (algo, os.path.basename(dirpath))] = os.path.join(dirpath, "data")
        return out


# --- a misbehaving front ---------------------------------------------------------------

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailers", "transfer-encoding", "upgrade"}


def blob_path(repo, digest):
    """The URL path of a blob, for FlakyProxy patterns."""
    return "/v2/%s/blobs/%s" % (repo, digest)


def manifest_path(repo, ref):
    return "/v2/%s/manifests/%s" % (repo, ref)


class Rule:
    """What FlakyProxy does with a request whose path (without the query)
    matches `pattern` (a regex, re.search: a plain path such as blob_path()
    gives works as it is) and whose method is one of `methods` (None: any):
    `times` times (None: every time), then it forwards normally again.
    `hits` counts how often it fired."""

    def __init__(self, kind, pattern, times, methods, **params):
        self.kind = kind
        self.pattern = pattern
        self.rx = re.compile(pattern)
        self.times = times
        self.methods = tuple(m.upper() for m in methods) if methods else None
        self.params = params
        self.hits = 0

    def matches(self, method, path):
        if self.times is not None and self.hits >= self.times:
            return False
        if self.methods and method not in self.methods:
            return False
        return bool(self.rx.search(path))

    def __repr__(self):
        return "<Rule %s %s times=%s hits=%d>" % (self.kind, self.pattern, self.times,
                                                  self.hits)


class ProxyRequest:
    """One request FlakyProxy saw: method, path (with query), headers (a
    dict with lower-case keys), the rule that fired (or None), the status it
    answered and how many body bytes it sent."""

    def __init__(self, method, path, headers):
        self.method, self.path, self.headers = method, path, headers
        self.time = time.monotonic()
        self.rule = None
        self.status = None
        self.sent = 0

    def __repr__(self):
        return "<%s %s -> %s (%s)>" % (self.method, self.path, self.status,
                                       self.rule.kind if self.rule else "forwarded")


class _ProxyServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # clients hanging up on a stalled or truncated answer are expected


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self._handle()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_CONNECT(self):
        """A tunnel to host:port (HTTPS through a forward proxy)."""
        proxy = self.server.proxy
        req = ProxyRequest("CONNECT", self.path, {k.lower(): v for k, v in self.headers.items()})
        rule = proxy.record(req, self.path)
        if rule and rule.kind in ("status", "serve"):
            self.close_connection = True
            return self._answer(req, rule.params["status"], rule.params["body"],
                                rule.params["headers"])
        host, _, port = self.path.rpartition(":")
        try:
            up = socket.create_connection((host, int(port)), timeout=10)
        except (OSError, ValueError) as e:
            self.close_connection = True
            return self._answer(req, 502, ("connect: %s" % e).encode(), {})
        self.send_response(200, "Connection established")
        self.end_headers()
        req.status = 200
        self.close_connection = True
        _pipe(self.connection, up, proxy.released)

    def _handle(self):
        proxy = self.server.proxy
        body = self._read_body()
        req = ProxyRequest(self.command, self.path,
                           {k.lower(): v for k, v in self.headers.items()})
        # An absolute URL: used as a forward proxy (HTTP_PROXY), it goes to
        # the host the URL names instead of the upstream.
        target, fwd_path = None, self.path
        if self.path.startswith("http://"):
            u = urllib.parse.urlsplit(self.path)
            target = u.netloc
            fwd_path = u.path + ("?" + u.query if u.query else "")
        rule = proxy.record(req, fwd_path.split("?")[0])
        try:
            if rule is None or rule.kind in ("truncate", "corrupt", "stall", "throttle",
                                             "delay"):
                self._forward(req, body, rule, target, fwd_path)
            elif rule.kind == "status":
                self._answer(req, rule.params["status"], rule.params["body"],
                             rule.params["headers"])
            elif rule.kind == "serve":
                self._answer(req, rule.params["status"], rule.params["body"],
                             rule.params["headers"])
            elif rule.kind == "redirect":
                loc = rule.params["target"].rstrip("/") + fwd_path
                self._answer(req, rule.params["status"], b"", {"Location": loc})
            elif rule.kind == "reset":
                self._reset()
                req.status = 0
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _answer(self, req, status, body, headers):
        self.send_response(status)
        headers = dict(headers or {})
        for k, v in headers.items():
            self.send_header(k, v)
        if not any(k.lower() == "content-length" for k in headers):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        req.status = status
        if self.command != "HEAD" and body:
            self.wfile.write(body)
            req.sent = len(body)

    def _reset(self):
        # SO_LINGER 0: close() sends RST, a "connection reset by peer".
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.close()

    def _forward(self, req, body, rule, target, path):
        proxy = self.server.proxy
        kind = rule.kind if rule else None
        if kind == "delay":
            proxy.released.wait(rule.params["seconds"])
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if body or self.command in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = str(len(body))
        conn = proxy.upstream_conn(target)
        try:
            try:
                conn.request(self.command, path, body=body, headers=headers)
                up = conn.getresponse()
            except (OSError, http.client.HTTPException) as e:
                self._answer(req, 502, ("upstream: %s" % e).encode(), {})
                return
            length = up.getheader("Content-Length")
            data = None
            if self.command == "HEAD":
                data = b""
            elif length is None or kind == "corrupt":
                data = up.read()
                length = str(len(data))
            if kind == "corrupt" and data:
                data = _corrupt(data, rule.params["offset"])
            self.send_response(up.status, up.reason)
            for k, v in up.getheaders():
                if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            if length is not None:
                self.send_header("Content-Length", length)
            self.end_headers()
            req.status = up.status
            if self.command == "HEAD":
                return
            self._send_body(req, rule, up, data, int(length))
        finally:
            conn.close()

    def _send_body(self, req, rule, up, data, length):
        """Stream the upstream body, doing what the rule says on the way."""
        kind = rule.kind if rule else None
        limit = length
        if kind in ("truncate", "stall"):
            after = rule.params["after"]
            limit = int(length * after) if isinstance(after, float) else min(after, length)
            if kind == "truncate" and limit >= length and length:
                limit = length - 1  # always short by at least one byte
        rate = rule.params.get("rate") if kind == "throttle" else None
        sent = 0
        while sent < limit:
            n = min(65536, limit - sent)
            if rate:
                n = min(n, max(1, rate // 20))
            chunk = data[sent:sent + n] if data is not None else up.read(n)
            if not chunk:
                break
            self.wfile.write(chunk)
            self.wfile.flush()
            sent += len(chunk)
            req.sent = sent
            if rate:
                if self.server.proxy.released.wait(len(chunk) / rate):
                    rate = None  # the proxy is stopping: finish quickly
        if kind in ("truncate", "stall"):
            if kind == "stall":
                self.server.proxy.released.wait(rule.params["seconds"])
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)


def _pipe(a, b, released):
    """Copy bytes both ways between two sockets until one side closes."""
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(a, selectors.EVENT_READ, b)
    sel.register(b, selectors.EVENT_READ, a)
    try:
        while not released.is_set():
            for key, _ in sel.select(timeout=0.2):
                try:
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
                except OSError:
                    return
    finally:
        sel.close()
        b.close()


def _corrupt(data, offset):
    i = len(data) // 2 if offset is None else offset % len(data)
    return data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]


class FlakyProxy:
    """An HTTP front on 127.0.0.1:<port> that forwards to a Registry (or any
    http URL) and misbehaves when told to. Each method adds a Rule (returned,
    with its hit count); the first matching rule fires; rules with `times`
    stop firing after that many hits:

        fail(pattern, status=500, times=1)      answer status (a JSON error body)
        serve(pattern, body, media_type, ...)   answer content of its own
        truncate(pattern, after=0.5, times=1)   full Content-Length, then close
                                                after `after` bytes (int) or
                                                that fraction (float)
        corrupt(pattern, offset=None)           flip one byte (the middle one)
        stall(pattern, after=0.5, seconds=30)   send part, then nothing
        throttle(pattern, rate)                 at most `rate` bytes a second
        delay(pattern, seconds)                 wait, then forward
        reset(pattern, times=1)                 close with RST, no answer
        redirect(pattern, target, status=307)   Location: target + path

    requests: every ProxyRequest seen; count(pattern, method) counts them.
    The registry builds upload URLs from the Host header, so pushes through
    the front stay on it.

    It is also a forward proxy, for HTTP_PROXY/HTTPS_PROXY tests: a request
    for an absolute http:// URL goes to the host the URL names, and CONNECT
    host:port opens a tunnel (method "CONNECT", path "host:port" in
    requests; fail("^127.0.0.1:PORT$", methods=["CONNECT"]) refuses it)."""

    def __init__(self, upstream):
        if isinstance(upstream, Registry):
            self.upstream_url = upstream.url
            self._cafile = upstream.ca_file
        else:
            self.upstream_url = upstream
            self._cafile = None
        self.lock = threading.Lock()
        self.rules = []
        self.requests = []
        self.released = threading.Event()
        self.server = None
        self.thread = None

    @property
    def host(self):
        return "127.0.0.1:%d" % self.server.server_address[1]

    @property
    def url(self):
        return "http://" + self.host

    def upstream_conn(self, netloc=None):
        if netloc:
            return http.client.HTTPConnection(netloc, timeout=60)
        u = urllib.parse.urlsplit(self.upstream_url)
        if u.scheme == "https":
            ctx = ssl.create_default_context(cafile=self._cafile)
            return http.client.HTTPSConnection(u.netloc, timeout=60, context=ctx)
        return http.client.HTTPConnection(u.netloc, timeout=60)

    def start(self):
        self.server = _ProxyServer(("127.0.0.1", 0), _ProxyHandler)
        self.server.proxy = self
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        LIVE.append(self)
        return self

    def stop(self):
        self.released.set()  # stalled and throttled answers end now
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        if self in LIVE:
            LIVE.remove(self)

    cleanup = stop

    def client(self, username=None, password=None):
        return RegistryClient(self.url, username, password)

    # rules

    def record(self, req, path):
        """Note a request; return the rule that fires for it, or None."""
        with self.lock:
            self.requests.append(req)
            rule = next((r for r in self.rules if r.matches(req.method, path)), None)
            if rule:
                rule.hits += 1
                req.rule = rule
        return rule

    def add(self, kind, pattern, times=None, methods=None, **params):
        r = Rule(kind, pattern, times, methods, **params)
        with self.lock:
            self.rules.append(r)
        return r

    def clear(self):
        """Drop every rule (requests stay recorded)."""
        with self.lock:
            self.rules = []

    def fail(self, pattern, status=500, times=1, methods=None, headers=None, body=None):
        if body is None:
            body = json.dumps({"errors": [{"code": "UNKNOWN", "message": "injected failure",
                                           "detail": None}]}).encode()
        headers = dict(headers or {})
        headers.setdefault("Content-Type", "application/json")
        return self.add("status", pattern, times, methods, status=status, body=body,
                        headers=headers)

    def serve(self, pattern, body, media_type="application/octet-stream", status=200,
              headers=None, times=None, methods=("GET", "HEAD"), digest_header=True):
        """Answer `body` ourselves. For manifests, Docker-Content-Digest is
        the sha256 of body unless digest_header is False or a string."""
        h = {"Content-Type": media_type}
        if digest_header is True:
            h["Docker-Content-Digest"] = sha256_digest(body)
        elif digest_header:
            h["Docker-Content-Digest"] = digest_header
        h.update(headers or {})
        return self.add("serve", pattern, times, methods, status=status, body=body,
                        headers=h)

    def truncate(self, pattern, after=0.5, times=1, methods=("GET",)):
        return self.add("truncate", pattern, times, methods, after=after)

    def corrupt(self, pattern, offset=None, times=None, methods=("GET",)):
        return self.add("corrupt", pattern, times, methods, offset=offset)

    def stall(self, pattern, after=0.5, seconds=30.0, times=1, methods=("GET",)):
        return self.add("stall", pattern, times, methods, after=after, seconds=seconds)

    def throttle(self, pattern, rate, times=None, methods=("GET",)):
        return self.add("throttle", pattern, times, methods, rate=int(rate))

    def delay(self, pattern, seconds, times=None, methods=None):
        return self.add("delay", pattern, times, methods, seconds=seconds)

    def reset(self, pattern, times=1, methods=None):
        return self.add("reset", pattern, times, methods)

    def redirect(self, pattern, target, status=307, times=None, methods=("GET", "HEAD")):
        return self.add("redirect", pattern, times, methods, target=target, status=status)

    # what it saw

    def seen(self, pattern=None, method=None):
        rx = re.compile(pattern) if pattern else None
        with self.lock:
            return [r for r in self.requests
                    if (rx is None or rx.search(r.path)) and (method is None or
                                                              r.method == method)]

    def count(self, pattern=None, method=None):
        return len(self.seen(pattern, method))


@atexit.register
def _stop_all():
    for x in list(LIVE):
        with contextlib.suppress(Exception):
            x.stop()
