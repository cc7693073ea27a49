"""The registry test infrastructure itself, without crispd: docker-registry
starts and stops, images push and come back intact, the token and basic
auth flows work, FlakyProxy does what it says, the image builders make what
they claim (the expected-tree model included)."""

import base64
import gzip
import hashlib
import http.client
import io
import json
import os
import shutil
import socket
import ssl
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

import images
import registry as registry_mod
import tokenserver
from fixtures_registry import BASIC_USERS, TOKEN_USERS

ACCEPT = ", ".join(images.ALL_MANIFEST_TYPES)


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def urlget(url, headers=None, context=None):
    """(status, headers, body) of a GET with urllib; HTTP errors too."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10, context=context) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.headers, e.read()


def raw_get(host, path, headers=None, timeout=5):
    """An http.client GET; returns the response, body unread."""
    conn = http.client.HTTPConnection(host, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        return conn, conn.getresponse()
    except Exception:
        conn.close()
        raise


def members(data):
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return tf.getmembers()


def untar(data):
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name: (m, tf.extractfile(m).read() if m.isfile() else None)
                for m in tf.getmembers()}


# --- the registry ---------------------------------------------------------------------


def test_registry_starts_restarts_and_stops(registry_factory):
    reg = registry_factory()
    pid = reg.proc.pid
    st, hdrs, _ = urlget(reg.url + "/v2/")
    assert st == 200 and hdrs["Docker-Distribution-API-Version"] == "registry/2.0"
    pushed = reg.push(images.busybox_image(), "restart/busybox")
    port = reg.port
    reg.stop()
    assert reg.proc.returncode is not None and not os.path.exists("/proc/%d" % pid)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    # Again on the same port, with the same storage.
    reg.start()
    assert reg.port == port and reg.proc.pid != pid
    r = reg.client().get_manifest("restart/busybox", "latest")
    assert r.status == 200 and sha(r.body) == pushed.digest
    d = reg.dir
    reg.cleanup()
    assert not reg.running() and not os.path.exists(d)


@pytest.mark.parametrize("fmt", ["oci", "docker"])
def test_push_then_fetch_with_urllib(registry, fmt):
    img = images.busybox_image(fmt=fmt, user="1000:1000", env=["A=1"], workdir="/tmp",
                               volumes=["/data"], stop_signal="SIGINT", labels={"x": "y"})
    pushed = registry.push(img, "infra/busybox-" + fmt, "v1")
    assert pushed.ref == "%s/infra/busybox-%s:v1" % (registry.host, fmt)
    base = registry.url + "/v2/infra/busybox-" + fmt
    for ref in ("v1", pushed.digest):
        st, hdrs, body = urlget(base + "/manifests/" + ref, {"Accept": ACCEPT})
        assert st == 200
        assert body == img.manifest_bytes
        assert hdrs["Docker-Content-Digest"] == sha(body) == pushed.digest
        assert hdrs["Content-Type"] == img.media_type
    m = json.loads(body)
    st, _, cfg_bytes = urlget(base + "/blobs/" + m["config"]["digest"])
    assert st == 200 and sha(cfg_bytes) == m["config"]["digest"]
    cfg = json.loads(cfg_bytes)
    assert cfg["os"] == "linux" and cfg["architecture"] == images.host_platform()["architecture"]
    c = cfg["config"]
    assert c["User"] == "1000:1000" and c["WorkingDir"] == "/tmp" and c["Volumes"] == {
        "/data": {}} and c["StopSignal"] == "SIGINT" and c["Labels"] == {"x": "y"}
    assert c["Env"] == [images.PATH_ENV, "A=1"]
    (layer,) = m["layers"]
    assert layer["mediaType"] == ("application/vnd.oci.image.layer.v1.tar+gzip" if fmt == "oci"
                                  else "application/vnd.docker.image.rootfs.diff.tar.gzip")
    st, _, blob = urlget(base + "/blobs/" + layer["digest"])
    assert st == 200 and sha(blob) == layer["digest"] and len(blob) == layer["size"]
    tar = gzip.decompress(blob)
    assert cfg["rootfs"]["diff_ids"] == [sha(tar)]
    files = untar(tar)
    with open(images.BUSYBOX, "rb") as f:
        assert files["bin/busybox"][1] == f.read()
    assert files["bin/sh"][0].issym() and files["bin/sh"][0].linkname == "busybox"
    assert files["tmp"][0].mode == 0o1777
    assert all(m.mtime == images.EPOCH and m.uid == 0 for m, _ in files.values())


def test_images_are_deterministic():
    a, b = images.multilayer_with_whiteouts(), images.multilayer_with_whiteouts()
    assert a.digest == b.digest and [l.digest for l in a.layers] == [l.digest for l in b.layers]
    assert images.Layer([images.File("x", "y")], "zstd").digest == images.Layer(
        [images.File("x", "y")], "zstd").digest


@pytest.mark.parametrize("fmt", ["oci", "docker"])
def test_index_of_platforms(registry, fmt):
    idx = images.multiarch_index(fmt)
    pushed = registry.push(idx, "infra/multi-" + fmt)
    c = registry.client()
    r = c.get_manifest("infra/multi-" + fmt, "latest")
    assert r.status == 200 and r.body == idx.manifest_bytes
    assert r.headers["Content-Type"] == idx.media_type and sha(r.body) == pushed.digest
    entries = r.json()["manifests"]
    host = images.host_platform()
    hosts = [i for i, e in enumerate(entries) if e["platform"] == host]
    assert len(hosts) == 1 and 0 < hosts[0] < len(entries) - 1
    assert len({images.platform_str(e["platform"]) for e in entries}) == len(entries) >= 4
    for e in entries:
        r = c.get_manifest("infra/multi-" + fmt, e["digest"])
        assert r.status == 200 and sha(r.body) == e["digest"], e
        cfg = json.loads(c.get_blob("infra/multi-" + fmt, r.json()["config"]["digest"]).body)
        assert cfg["architecture"] == e["platform"]["architecture"]
        assert cfg["os"] == e["platform"]["os"]
    assert idx.host_image.config["config"]["Labels"]["org.crisp.test.platform"] == \
        images.platform_str(host)
    assert (images.platform_str(host) + "\n").encode() == idx.host_image.expected_tree()[
        "platform"].data


def test_zstd_and_uncompressed_layers(registry):
    img = images.zstd_image()
    registry.push(img, "infra/zstd")
    m = json.loads(img.manifest_bytes)
    types = [l["mediaType"] for l in m["layers"]]
    assert types == ["application/vnd.oci.image.layer.v1.tar+zstd"] * 2 + [
        "application/vnd.oci.image.layer.v1.tar"]
    diff_ids = json.loads(img.config_blob.data)["rootfs"]["diff_ids"]
    for desc, diff_id in zip(m["layers"], diff_ids):
        blob = registry.client().get_blob("infra/zstd", desc["digest"]).body
        assert sha(blob) == desc["digest"]
        if desc["mediaType"].endswith("+zstd"):
            assert blob[:4] == b"\x28\xb5\x2f\xfd"  # the zstd frame magic
            blob = subprocess.run(["zstd", "-d", "-q", "-c"], input=blob, check=True,
                                  stdout=subprocess.PIPE).stdout
        assert sha(blob) == diff_id


# --- the expected-tree model and the checker --------------------------------------------


def materialize(tree, root):
    """Write an expected tree to a directory (a reference extraction)."""
    for p in sorted(tree):
        e = tree[p]
        full = os.path.join(root, p)
        if e.kind == "dir":
            os.makedirs(full, exist_ok=True)
        elif e.kind == "file":
            with open(full, "wb") as f:
                f.write(e.data)
        elif e.kind == "symlink":
            os.symlink(e.link, full)
        elif e.kind == "hardlink":
            os.link(os.path.join(root, e.link), full)
        elif e.kind == "fifo":
            os.mkfifo(full)
        if e.kind in ("file", "dir", "fifo"):
            os.chown(full, e.uid or 0, e.gid or 0)
            os.chmod(full, 0o755 if e.mode is None else e.mode)
        for k, v in e.xattrs.items():
            os.setxattr(full, k, v)
    for p in sorted(tree):
        e = tree[p]
        if e.kind != "hardlink" and e.mtime is not None:
            os.utime(os.path.join(root, p), (e.mtime, e.mtime), follow_symlinks=False)


def test_whiteout_model_and_tree_check():
    img = images.multilayer_with_whiteouts()
    tree = img.expected_tree()
    present = {"app/keep.txt": b"keep\n", "app/added.txt": b"added\n",
               "opaque/new.txt": b"new\n", "etc/motd": b"layer 3\n",
               "app/dir-to-file": b"now a file\n", "app/type-change/now-a-dir": b"dir\n",
               "newdir/nested/file": b"made with implicit parents\n", "opaque2/only": b"x\n"}
    for p, data in present.items():
        assert tree[p].kind == "file" and tree[p].data == data, p
    for p in ("app/remove-me.txt", "app/sub", "app/sub/a.txt", "app/sub/deeper/b.txt",
              "opaque/old1", "opaque/olddir", "opaque/olddir/deep", "etc/issue",
              "app/dir-to-file/inner"):
        assert p not in tree, p
    assert not [p for p in tree if ".wh." in p]
    assert tree["opaque"].mode == 0o750 and tree["app/type-change"].kind == "dir"
    assert tree["etc/motd"].mode == 0o600 and tree["app/added.txt"].uid == 1000
    assert tree["app/link"].link == "keep.txt" and tree["bin/busybox"].mode == 0o755
    assert tree["newdir"].kind == "dir" and tree["newdir"].mode is None

    d = tempfile.mkdtemp(prefix="crisp-tree-")
    try:
        materialize(tree, d)
        assert images.tree_diff(d, tree) == []
        os.chmod(os.path.join(d, "etc/motd"), 0o644)
        with open(os.path.join(d, "opaque/old1"), "w") as f:
            f.write("resurrected")
        os.unlink(os.path.join(d, "app/keep.txt"))
        os.chown(os.path.join(d, "app/added.txt"), 0, 0)
        diff = "\n".join(images.tree_diff(d, tree))
        for want in ("/etc/motd: mode 644, expected 600", "unexpected: /opaque/old1",
                     "missing: /app/keep.txt", "/app/added.txt: owner 0:0, expected 1000:1000"):
            assert want in diff, diff
    finally:
        shutil.rmtree(d)


def test_special_files_layer():
    img = images.special_files_image()
    files = untar(img.layers[1].tar)
    assert files["special/hardlink"][0].islnk()
    assert files["special/hardlink"][0].linkname == "special/file"
    assert files["special/null"][0].ischr() and files["special/null"][0].devminor == 3
    assert files["special/setuid"][0].mode == 0o4755
    cap = files["special/cap"][0].pax_headers["SCHILY.xattr.security.capability"]
    assert cap.encode("utf-8", "surrogateescape") == images.vfs_cap(10)
    assert len(images.vfs_cap(10)) == 20
    tree = img.expected_tree()
    assert tree["special/hardlink"].link == "special/file"
    assert tree["special/old"].mtime == 1234567890


def test_hostile_layers_keep_their_names(tmp_path):
    cases = images.hostile_cases(str(tmp_path))
    assert set(cases) == {"dotdot", "absolute", "symlink-dir", "symlink-file", "hardlink",
                          "planted-parent"}
    names = {n: [(m.name, m.linkname) for l in c.image.layers[1:] for m in members(l.tar)]
             for n, c in cases.items()}
    t = str(tmp_path)
    assert any(n.startswith("../../") and n.endswith(t + "/escape-dotdot")
               for n, _ in names["dotdot"])
    assert (t + "/escape-abs", "") in names["absolute"]
    assert ("evil", t) in names["symlink-dir"] and ("evil/escape-symlink", "") in names[
        "symlink-dir"]
    assert names["hardlink"][:2] == [("hl-abs", t + "/victim-hardlink"), ("hl-abs", "")]
    # Two layers: the symlink first, the entry through it in the next one.
    assert [len(l.entries) for l in cases["planted-parent"].image.layers] == [2, 2, 3]
    c = cases["hardlink"]
    c.plant()
    assert c.problems() == []
    with open(t + "/victim-hardlink", "w") as f:
        f.write("changed")
    os.link(t + "/victim-hardlink-rel", t + "/extra-link")
    assert len(c.problems()) == 2
    c2 = cases["dotdot"]
    open(c2.outside[0], "w").close()
    assert c2.problems() == ["%s was created outside the snapshot" % c2.outside[0]]
    with pytest.raises(AssertionError):
        c2.assert_untouched()


def test_malformed_manifests_and_big_image_shape():
    img = images.busybox_image()
    mal = images.malformed_manifests(img)
    assert {"not-json", "schema-version-3", "bad-digest-syntax", "huge-size", "too-big",
            "schema1", "index-no-match"} <= set(mal)
    mt, body = mal["huge-size"]
    assert mt == images.MT_OCI_MANIFEST and json.loads(body)["layers"][0]["size"] == 1 << 62
    assert len(mal["too-big"][1]) > 5 << 20
    assert mal["schema1"][0] == images.MT_DOCKER_SCHEMA1
    big = images.big_image(total_mb=4, layers=2)
    assert len(big.layers) == 3
    assert all(l.size > 2 << 20 for l in big.layers[1:])  # incompressible


# --- auth -----------------------------------------------------------------------------------


def _token_via_urllib(challenge, user=None, password=None):
    scheme, params = registry_mod.parse_challenge(challenge)
    assert scheme == "bearer"
    q = urllib.parse.urlencode({"service": params["service"], "scope": params["scope"]})
    headers = {}
    if user:
        headers["Authorization"] = "Basic " + base64.b64encode(
            ("%s:%s" % (user, password)).encode()).decode()
    return urlget(params["realm"] + "?" + q, headers)


def test_token_auth_flow_with_urllib(token_registry, token_server):
    pushed = token_registry.push(images.busybox_image(), "private/busybox")
    url = token_registry.url + "/v2/private/busybox/manifests/latest"
    st, hdrs, _ = urlget(url, {"Accept": ACCEPT})
    assert st == 401
    challenge = hdrs["WWW-Authenticate"]
    scheme, params = registry_mod.parse_challenge(challenge)
    assert params == {"realm": token_server.realm, "service": token_server.service,
                      "scope": "repository:private/busybox:pull"}

    # Anonymous: denied by the token server. Wrong password: denied.
    assert _token_via_urllib(challenge)[0] == 401
    assert _token_via_urllib(challenge, "alice", "wrong")[0] == 401
    assert token_server.requests[-1].bad_credentials

    st, _, body = _token_via_urllib(challenge, "alice", TOKEN_USERS["alice"])
    assert st == 200
    token = json.loads(body)["token"]
    header, claims = tokenserver.decode_jwt(token)
    assert header["alg"] == "RS256" and header["kid"] == token_server.kid and header["x5c"]
    assert claims["aud"] == token_server.service and claims["iss"] == token_server.issuer
    assert claims["access"] == [{"type": "repository", "name": "private/busybox",
                                 "actions": ["pull"]}]
    st, hdrs, body = urlget(url, {"Accept": ACCEPT, "Authorization": "Bearer " + token})
    assert st == 200 and sha(body) == pushed.digest
    last = token_server.requests[-1]
    assert (last.user, last.via, last.scopes) == ("alice", "basic",
                                                  ["repository:private/busybox:pull"])

    # A token for another repository, or for another service, is refused.
    other = token_server.issue("alice", scopes=["repository:other/repo:pull"])
    assert urlget(url, {"Accept": ACCEPT, "Authorization": "Bearer " + other})[0] == 401
    wrong_aud = token_server.issue("alice", scopes=["repository:private/busybox:pull"],
                                   audience="elsewhere")
    assert urlget(url, {"Accept": ACCEPT, "Authorization": "Bearer " + wrong_aud})[0] == 401
    # A registry token minted directly (CRI registry_token) works.
    direct = token_server.issue("", scopes=["repository:private/busybox:pull"])
    assert urlget(url, {"Accept": ACCEPT, "Authorization": "Bearer " + direct})[0] == 200
    # alice may pull but not push.
    with pytest.raises(RuntimeError):
        token_registry.client("alice", TOKEN_USERS["alice"]).push_blob("private/busybox",
                                                                       b"not allowed")


def test_token_refresh_and_anonymous_modes(token_registry, token_server):
    token_registry.push(images.busybox_image(), "public/busybox")
    realm = token_server.realm
    form = {"grant_type": "password", "username": "alice", "password": TOKEN_USERS["alice"],
            "service": token_server.service, "scope": "repository:public/busybox:pull",
            "client_id": "crisp", "access_type": "offline"}
    with urllib.request.urlopen(realm, urllib.parse.urlencode(form).encode(), timeout=5) as r:
        j = json.load(r)
    assert j["access_token"] and j["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": j["refresh_token"],
            "service": token_server.service, "scope": "repository:public/busybox:pull"}
    with urllib.request.urlopen(realm, urllib.parse.urlencode(form).encode(), timeout=5) as r:
        assert tokenserver.decode_jwt(json.load(r)["access_token"])[1]["sub"] == "alice"
    assert token_server.requests[-1].via == "refresh_token"
    form["refresh_token"] = "rt-bogus"
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(realm, urllib.parse.urlencode(form).encode(), timeout=5)
    assert ei.value.code == 401
    ei.value.close()

    anon = token_registry.client(anonymous=True)
    token_server.anonymous = "pull"
    token_server.public = [r"^public/"]
    assert anon.get_manifest("public/busybox", "latest").status == 200
    anon2 = token_registry.client(anonymous=True)
    token_server.anonymous = "empty"
    r = anon2.get_manifest("public/busybox", "latest")
    assert r.status == 401  # a token without access
    token_server.fail_next(503)
    with pytest.raises(RuntimeError, match="503"):
        token_registry.client(anonymous=True).get_manifest("public/busybox", "latest")


def test_basic_auth(basic_registry):
    url = basic_registry.url + "/v2/"
    st, hdrs, _ = urlget(url)
    assert st == 401 and hdrs["WWW-Authenticate"].lower().startswith("basic")
    user, pw = next(iter(BASIC_USERS.items()))
    good = "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()
    bad = "Basic " + base64.b64encode(("%s:nope" % user).encode()).decode()
    assert urlget(url, {"Authorization": good})[0] == 200
    assert urlget(url, {"Authorization": bad})[0] == 401
    pushed = basic_registry.push(images.busybox_image(), "basic/busybox")
    assert basic_registry.client().get_manifest("basic/busybox", pushed.digest).status == 200


def test_tls_registry(tls_registry):
    ctx = ssl.create_default_context(cafile=tls_registry.ca_file)
    assert urlget(tls_registry.url + "/v2/", context=ctx)[0] == 200
    with pytest.raises(urllib.error.URLError) as ei:
        urlget(tls_registry.url + "/v2/", context=ssl.create_default_context())
    assert "CERTIFICATE_VERIFY_FAILED" in str(ei.value)


# --- the flaky front -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def pushed_busybox(registry):
    return registry.push(images.busybox_image(), "flaky/busybox")


def _layer_path(p):
    return p.image.layer_path(p.repo, 0)


def test_flaky_forwards_and_fails_n_times(flaky, pushed_busybox):
    p = pushed_busybox
    mpath = registry_mod.manifest_path(p.repo, p.tag)
    rule = flaky.fail(mpath, status=500, times=2)
    st = [urlget(flaky.url + mpath, {"Accept": ACCEPT})[0] for _ in range(3)]
    assert st == [500, 500, 200] and rule.hits == 2
    assert flaky.count(mpath, "GET") == 3
    s, h, body = urlget(flaky.url + mpath, {"Accept": ACCEPT})
    assert s == 200 and sha(body) == p.digest == h["Docker-Content-Digest"]
    # HEAD, Range and pushes go through (upload URLs stay on the proxy).
    lp = _layer_path(p)
    conn, r = raw_get(flaky.host, lp, {"Range": "bytes=10-19"})
    assert r.status == 206 and r.read() == p.image.layers[0].data[10:20]
    conn.close()
    assert flaky.client().push_blob("flaky/pushed", b"through the proxy") == sha(
        b"through the proxy")
    assert flaky.count(r"/blobs/uploads/", "PUT") == 1
    assert urlget(flaky.url + "/v2/flaky/pushed/blobs/" + sha(b"through the proxy"))[2] == \
        b"through the proxy"


def test_flaky_truncates_and_corrupts(flaky, pushed_busybox):
    lp = _layer_path(pushed_busybox)
    data = pushed_busybox.image.layers[0].data
    flaky.truncate(lp, after=1000, times=1)
    conn, r = raw_get(flaky.host, lp)
    assert int(r.headers["Content-Length"]) == len(data)
    with pytest.raises(http.client.IncompleteRead) as ei:
        r.read()
    assert len(ei.value.partial) == 1000
    conn.close()
    assert sha(urlget(flaky.url + lp)[2]) == pushed_busybox.image.layers[0].digest
    flaky.corrupt(lp)
    for _ in range(2):
        body = urlget(flaky.url + lp)[2]
        assert len(body) == len(data) and body != data
        assert sum(a != b for a, b in zip(body, data)) == 1


def test_flaky_serves_its_own_content(flaky, pushed_busybox):
    p = pushed_busybox
    mt, body = images.malformed_manifests(p.image)["bad-digest-syntax"]
    mpath = registry_mod.manifest_path(p.repo, "broken")
    flaky.serve(mpath, body, mt)
    st, h, got = urlget(flaky.url + mpath, {"Accept": ACCEPT})
    assert (st, got, h["Content-Type"], h["Docker-Content-Digest"]) == (200, body, mt, sha(body))
    # A blob whose bytes do not match its digest.
    lp = _layer_path(p)
    flaky.serve(lp, b"x" * 100, digest_header=False)
    st, h, got = urlget(flaky.url + lp)
    assert got == b"x" * 100 and sha(got) != p.image.layers[0].digest


def test_flaky_stall_throttle_reset_redirect_delay(flaky, registry, pushed_busybox):
    lp = _layer_path(pushed_busybox)
    data = pushed_busybox.image.layers[0].data
    flaky.stall(lp, after=4096, seconds=30)
    conn, r = raw_get(flaky.host, lp, timeout=0.5)
    assert r.read(4096) == data[:4096]
    with pytest.raises(socket.timeout):
        r.read(1)
    conn.close()

    flaky.throttle(lp, rate=len(data) * 4)  # ~0.25 s for the blob
    t0 = time.monotonic()
    assert urlget(flaky.url + lp)[2] == data
    assert time.monotonic() - t0 >= 0.2
    flaky.clear()

    flaky.reset(lp, times=1)
    with pytest.raises((ConnectionResetError, http.client.RemoteDisconnected)):
        raw_get(flaky.host, lp)
    assert urlget(flaky.url + lp)[2] == data

    flaky.redirect(lp, registry.url)
    conn, r = raw_get(flaky.host, lp)
    assert r.status == 307 and r.headers["Location"] == registry.url + lp
    conn.close()
    assert urlget(flaky.url + lp)[2] == data  # urllib follows the redirect
    flaky.clear()

    flaky.delay(lp, 0.3, times=1)
    t0 = time.monotonic()
    assert urlget(flaky.url + lp)[2] == data
    assert time.monotonic() - t0 >= 0.3


def test_flaky_as_forward_proxy(flaky, registry, tls_registry):
    # HTTP_PROXY style: an absolute URL, sent on to the host it names.
    conn = http.client.HTTPConnection(flaky.host, timeout=5)
    conn.request("GET", tls_registry.url.replace("https", "http", 1) + "/v2/")
    assert conn.getresponse().status == 400  # it went to the TLS one, which wants TLS
    conn.close()
    conn = http.client.HTTPConnection(flaky.host, timeout=5)
    conn.request("GET", registry.url + "/v2/")
    r = conn.getresponse()
    assert r.status == 200 and r.headers["Docker-Distribution-API-Version"]
    conn.close()
    # HTTPS_PROXY style: CONNECT, then TLS to the registry through the tunnel.
    ctx = ssl.create_default_context(cafile=tls_registry.ca_file)
    conn = http.client.HTTPSConnection(flaky.host, timeout=5, context=ctx)
    conn.set_tunnel(tls_registry.host)
    conn.request("GET", "/v2/")
    assert conn.getresponse().status == 200
    conn.close()
    assert [r.path for r in flaky.seen(method="CONNECT")] == [tls_registry.host]
    flaky.fail("^" + tls_registry.host + "$", status=403, methods=["CONNECT"])
    conn = http.client.HTTPSConnection(flaky.host, timeout=5, context=ctx)
    conn.set_tunnel(tls_registry.host)
    with pytest.raises(OSError, match="403"):
        conn.request("GET", "/v2/")
    conn.close()
