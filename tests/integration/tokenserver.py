"""A tiny bearer-token server (the Docker registry token protocol) for the
auth tests, in front of a Registry(auth="token", token_server=...).

    ts = TokenServer(users={"alice": "wonderland"}).start()
    reg = Registry(auth="token", token_server=ts).start()

The registry answers 401 with
    WWW-Authenticate: Bearer realm="<ts.realm>",service="<ts.service>",scope="repository:R:pull"
and the client gets a token from the realm:

  GET  /token?service=S&scope=repository:R:pull[&offline_token=true]
       with Basic credentials, or none (anonymous)
  POST /token (form) grant_type=password&username=U&password=P&service=S&scope=...
       or grant_type=refresh_token&refresh_token=T&service=S&scope=...
       (the OAuth2 flow clients use for an identity token)

Tokens are JWTs signed RS256 with a key whose self-signed certificate is the
registry's rootcertbundle; the header carries the certificate (x5c) and its
libtrust key id (kid), as distribution 2.8 reads either. aud is the service
the client asked for, so a client that sends the wrong one is refused by the
registry.

Who gets what: the admin (ts.admin) any action; a user of `users` the
actions in `grants` (default pull only); an anonymous client depends on
`anonymous`: "deny" (the token server answers 401), "empty" (a token with no
access, the registry then answers 401, like Docker Hub for a private repo) or
"pull" (pull on repositories matching one of the `public` regexes, all when
empty). Every token request is recorded in ts.requests.
"""

import base64
import contextlib
import hashlib
import http.server
import json
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
import urllib.parse

import registry as registry_mod

ALL_ACTIONS = ("pull", "push", "delete", "*")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def libtrust_key_id(public_key):
    """The key id distribution's libtrust gives a public key: base32 of the
    first 240 bits of the SHA-256 of its DER SubjectPublicKeyInfo, in groups
    of four separated by ':'."""
    from cryptography.hazmat.primitives import serialization

    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    s = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(s[i:i + 4] for i in range(0, len(s), 4))


def parse_scope(scope):
    """'repository:foo/bar:pull,push' -> ("repository", "foo/bar", ["pull", "push"])."""
    typ, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    if not typ or not name:
        raise ValueError("bad scope %r" % scope)
    return typ, name, [a for a in actions.split(",") if a]


def decode_jwt(token):
    """(header, claims) of a JWT, unverified: for tests that look inside."""
    h, c, _ = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(c))


class TokenRequest:
    """One request to the token server: method, user (None: anonymous), via
    ("basic", "password", "refresh_token", "anonymous"), service, scopes,
    offline (a refresh token asked for), client_id, status, access granted,
    and whether a password was wrong."""

    def __init__(self, method):
        self.method = method
        self.user = None
        self.via = "anonymous"
        self.service = None
        self.scopes = []
        self.offline = False
        self.client_id = None
        self.status = None
        self.access = []
        self.bad_credentials = False

    def __repr__(self):
        return "<TokenRequest %s %s via %s scopes=%s -> %s>" % (
            self.method, self.user, self.via, self.scopes, self.status)


class TokenServer:
    def __init__(self, users=None, admin=("admin", "admin-secret"), anonymous="deny",
                 public=(), grants=("pull",), service="crisp-test-registry",
                 issuer="crisp-test-issuer", expires_in=300, header=("x5c", "kid")):
        if anonymous not in ("deny", "empty", "pull"):
            raise ValueError("anonymous must be 'deny', 'empty' or 'pull'")
        self.users = dict(users or {})
        self.admin = admin
        if admin:
            self.users[admin[0]] = admin[1]
        self.anonymous = anonymous
        self.public = list(public)  # regexes of repository names
        self.grants = tuple(grants)
        self.service, self.issuer = service, issuer
        self.expires_in = expires_in
        self.header = tuple(header)
        self.refresh_tokens = {}  # refresh (identity) token -> user
        self.requests = []
        self.failures = []  # statuses to answer the next requests with
        self.lock = threading.Lock()
        self.dir = tempfile.mkdtemp(prefix="crisp-tokensrv-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.key, self.cert = registry_mod.make_ca("crisp test token signer", key_type="rsa")
        self.cert_file = registry_mod.write_pem(os.path.join(self.dir, "token-cert.pem"),
                                                cert=self.cert)
        self.kid = libtrust_key_id(self.cert.public_key())
        self.server = None

    @property
    def port(self):
        return self.server.server_address[1]

    @property
    def realm(self):
        return "http://127.0.0.1:%d/token" % self.port

    def start(self):
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TokenHandler)
        self.server.daemon_threads = True
        self.server.tokens = self
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        registry_mod.LIVE.append(self)
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        if self in registry_mod.LIVE:
            registry_mod.LIVE.remove(self)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def reset(self):
        """Forget recorded requests and pending failures."""
        with self.lock:
            self.requests = []
            self.failures = []

    def fail_next(self, *statuses):
        """Answer the next token requests with these statuses, in order."""
        with self.lock:
            self.failures.extend(statuses)

    def add_refresh_token(self, user):
        """A refresh token for user, as an identity token of a CRI AuthConfig."""
        t = "rt-" + secrets.token_urlsafe(24)
        with self.lock:
            self.refresh_tokens[t] = user
        return t

    # policy and tokens

    def grant(self, user, scopes):
        """The access entries the user gets for the requested scopes."""
        out = []
        for scope in scopes:
            try:
                typ, name, actions = parse_scope(scope)
            except ValueError:
                continue
            if self.admin and user == self.admin[0]:
                allowed = actions
            elif user is not None:
                allowed = [a for a in actions if a in self.grants]
            elif self.anonymous == "pull" and typ == "repository" and (
                    not self.public or any(re.search(p, name) for p in self.public)):
                allowed = [a for a in actions if a == "pull"]
            else:
                allowed = []
            if allowed:
                out.append({"type": typ, "name": name, "actions": allowed})
        return out

    def issue(self, subject="", access=(), audience=None, expires_in=None, scopes=None):
        """A signed token. access: [{"type","name","actions"}]; or scopes:
        ["repository:R:pull"] granted as asked. For registry_token tests."""
        if scopes is not None:
            access = [dict(zip(("type", "name", "actions"), parse_scope(s))) for s in scopes]
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256"}
        if "kid" in self.header:
            header["kid"] = self.kid
        if "x5c" in self.header:
            from cryptography.hazmat.primitives import serialization
            der = self.cert.public_bytes(serialization.Encoding.DER)
            header["x5c"] = [base64.b64encode(der).decode()]
        claims = {
            "iss": self.issuer,
            "sub": subject or "",
            "aud": audience or self.service,
            "exp": now + (self.expires_in if expires_in is None else expires_in),
            "nbf": now - 1,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": list(access),
        }
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         b64url(json.dumps(claims, separators=(",", ":")).encode()))
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        sig = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64url(sig)


class _TokenHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _reply(self, req, status, obj, headers=None):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        req.status = status

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        self._serve(u.path, urllib.parse.parse_qs(u.query), "GET")

    def do_POST(self):
        u = urllib.parse.urlsplit(self.path)
        n = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(n).decode("utf-8", "replace"))
        self._serve(u.path, form, "POST")

    def _serve(self, path, q, method):
        ts = self.server.tokens
        req = TokenRequest(method)
        with ts.lock:
            ts.requests.append(req)
            failure = ts.failures.pop(0) if ts.failures else None
        one = lambda k: (q.get(k) or [None])[0]  # noqa: E731
        req.service = one("service")
        req.scopes = [s for v in q.get("scope", []) for s in v.split(" ") if s]
        req.client_id = one("client_id")
        req.offline = one("offline_token") == "true" or one("access_type") == "offline"
        if failure:
            return self._reply(req, failure, {"errors": [{"code": "UNAVAILABLE",
                                                          "message": "injected failure"}]})
        if path != "/token":
            return self._reply(req, 404, {"errors": [{"code": "NOT_FOUND"}]})
        user, err = self._authenticate(ts, req, method, q, one)
        if err:
            return self._reply(req, 401, {"errors": [{"code": "UNAUTHORIZED", "message": err}]},
                               {"WWW-Authenticate": 'Basic realm="crisp-test-token"'})
        if user is None and ts.anonymous == "deny":
            return self._reply(req, 401, {"errors": [{"code": "UNAUTHORIZED",
                                                      "message": "authentication required"}]},
                               {"WWW-Authenticate": 'Basic realm="crisp-test-token"'})
        req.user = user
        req.access = ts.grant(user, req.scopes)
        token = ts.issue(user or "", req.access, audience=req.service or ts.service)
        out = {"token": token, "access_token": token, "expires_in": ts.expires_in,
               "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        if req.offline and user is not None:
            out["refresh_token"] = ts.add_refresh_token(user)
        self._reply(req, 200, out)

    def _authenticate(self, ts, req, method, q, one):
        """(user or None, error message or None)."""
        auth = self.headers.get("Authorization", "")
        if method == "POST":
            grant = one("grant_type")
            if grant == "password":
                req.via = "password"
                return self._check_password(ts, req, one("username"), one("password"))
            if grant == "refresh_token":
                req.via = "refresh_token"
                with ts.lock:
                    user = ts.refresh_tokens.get(one("refresh_token") or "")
                if user is None:
                    req.bad_credentials = True
                    return None, "invalid refresh token"
                return user, None
            return None, "unsupported grant_type %r" % grant
        if auth.lower().startswith("basic "):
            req.via = "basic"
            try:
                raw = base64.b64decode(auth[6:].strip(), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                req.bad_credentials = True
                return None, "malformed basic credentials"
            user, _, password = raw.partition(":")
            return self._check_password(ts, req, user, password)
        return None, None

    @staticmethod
    def _check_password(ts, req, user, password):
        with contextlib.suppress(TypeError):
            if user in ts.users and secrets.compare_digest(ts.users[user], password or ""):
                return user, None
        req.bad_credentials = True
        return None, "incorrect username or password"
