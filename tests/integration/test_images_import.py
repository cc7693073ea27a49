"""Offline import (crisp-import -> /crisp.v1.Admin/ImportImage -> imaged):
OCI image layouts and docker-archives built here from the images.py
builders, plain and gzip-compressed, from a file and from stdin; importing
twice; names from the archive and from --name; hostile archives (a blob
whose digest does not match, truncation, path traversal, an entry larger
than the limit) fail with a clear error, store nothing and leave no spool
file; only root may import, through the tool or the gRPC method."""

import gzip
import io
import json
import os
import subprocess
import tarfile

import pytest

import harness
import images
from harness import rpc_error
from test_images_pull import (blob_files, image_of, imaged_root, list_images, mounted_image,
                               ready_crispd, snapshot_dirs, start, unverified_blobs, wait_imaged)

CRISP_IMPORT = os.path.join(harness.BUILD, "crisp-import")
NOBODY = 65534
IMPORT_TIMEOUT = 60


# --- archive writers ------------------------------------------------------------------


class Link:
    """A tar entry that is a symlink (or hardlink) to target."""

    def __init__(self, target, hard=False):
        self.target, self.hard = target, hard


def tar_bytes(files, compress=False):
    """files: [(name, bytes or Link)] in order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in files:
            ti = tarfile.TarInfo(name)
            ti.mode = 0o644
            ti.mtime = 1700000000
            if isinstance(data, Link):
                ti.type = tarfile.LNKTYPE if data.hard else tarfile.SYMTYPE
                ti.linkname = data.target
                t.addfile(ti)
                continue
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    raw = buf.getvalue()
    return gzip.compress(raw) if compress else raw


def oci_layout(entries, extra=()):
    """entries: [(Manifest or Index, annotations)]: an OCI image layout."""
    blobs = {}

    def add(m):
        if isinstance(m, images.Index):
            for sub, _, _ in m.entries:
                add(sub)
        else:
            for b in m.blobs():
                blobs[b.digest] = b.data
        blobs[m.digest] = m.manifest_bytes

    for m, _ in entries:
        add(m)
    def descriptor(m, annotations):
        d = {"mediaType": m.media_type, "digest": m.digest, "size": m.size}
        if annotations:
            d["annotations"] = annotations
        return d

    index = {"schemaVersion": 2, "mediaType": images.MT_OCI_INDEX,
             "manifests": [descriptor(m, a) for m, a in entries]}
    files = [("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'),
             ("index.json", json.dumps(index).encode())]
    files += [("blobs/sha256/" + d[7:], data) for d, data in sorted(blobs.items())]
    return files + list(extra)


def docker_archive(imgs, link=None):
    """imgs: [(Image, [repo tags])]: what `docker save` writes (uncompressed
    layer tars named <id>/layer.tar, the config as <hex>.json). link
    "sym" or "hard": every layer is also written as a link from
    <id>-dup/layer.tar, which the manifest names instead (as docker save
    does for a layer it already wrote)."""
    files, manifest, seen = [], [], set()
    for img, tags in imgs:
        cfg = img.config_blob
        cname = cfg.digest[7:] + ".json"
        if cname not in seen:
            files.append((cname, cfg.data))
            seen.add(cname)
        layers = []
        for l in img.layers:
            lname = l.diff_id[7:] + "/layer.tar"
            if lname not in seen:
                files.append((lname, l.tar))
                seen.add(lname)
            if link:
                dup = l.diff_id[7:] + "-dup/layer.tar"
                target = "../" + lname if link == "sym" else lname
                files.append((dup, Link(target, hard=link == "hard")))
                lname = dup
            layers.append(lname)
        manifest.append({"Config": cname, "RepoTags": list(tags), "Layers": layers})
    return [("manifest.json", json.dumps(manifest).encode())] + files


# --- helpers ------------------------------------------------------------------------


def spool_dir(c):
    return os.path.join(imaged_root(c), "import")


def write_archive(c, data, name="image.tar"):
    path = os.path.join(c.dir, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def crisp_import(c, archive, names=(), stdin=None, uid=None):
    argv = [CRISP_IMPORT, "--config", c.conf]
    for n in names:
        argv += ["--name", n]
    argv.append(archive)
    if uid is not None:
        argv = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups"] + argv
    return subprocess.run(argv, input=stdin, capture_output=True, timeout=IMPORT_TIMEOUT)


def import_ok(c, archive, **kw):
    p = crisp_import(c, archive, **kw)
    assert p.returncode == 0, "crisp-import failed: %s\n%s" % (p.stderr.decode(), c.tail(30))
    return p.stdout.decode()


def import_fails(c, archive, **kw):
    p = crisp_import(c, archive, **kw)
    assert p.returncode != 0, "crisp-import of a bad archive succeeded: %s" % p.stdout
    return p.stderr.decode()


def assert_nothing_stored(c):
    assert list_images(c) == []
    assert blob_files(c) == {}, "blobs stored: %s" % sorted(blob_files(c))
    assert os.listdir(spool_dir(c)) == []
    assert snapshot_dirs(c) == set()


@pytest.fixture
def crispd(crispd_factory):
    """conftest's crispd, once imaged answers (it makes the spool)."""
    return ready_crispd(crispd_factory)


@pytest.fixture
def small_limit_crispd(crispd_factory):
    c = crispd_factory(config={"images": {"max_layer_size_mb": 1}})
    wait_imaged(c)
    return c


# --- imports that work -------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True], ids=["tar", "tar.gz"])
def test_import_oci_layout(crispd, compress):
    img = images.busybox_image(user="1000", volumes=["/data"])
    ref = "example.com/offline/busybox:1.0"
    path = write_archive(crispd, tar_bytes(oci_layout(
        [(img, {"io.containerd.image.name": ref,
                "org.opencontainers.image.ref.name": "1.0"})]), compress))
    out = import_ok(crispd, path)
    assert img.id in out and ref in out, out
    st = image_of(crispd, ref)
    assert st.id == img.id
    assert list(st.repo_tags) == [ref]
    assert st.uid.value == 1000
    assert [i.id for i in list_images(crispd)] == [img.id]
    assert os.listdir(spool_dir(crispd)) == []
    # one snapshot per layer, unpacked
    assert len(snapshot_dirs(crispd)) == len(img.layers)


def test_import_docker_archive_twice_and_stdin(crispd):
    img = images.multilayer_with_whiteouts(fmt="docker")
    data = tar_bytes(docker_archive([(img, ["busybox:layers", "example.com/x/y:2"])]))
    path = write_archive(crispd, data)
    out = import_ok(crispd, path)
    assert "docker.io/library/busybox:layers" in out, out
    st = image_of(crispd, "busybox:layers")
    assert st.id == img.id
    assert sorted(st.repo_tags) == ["docker.io/library/busybox:layers", "example.com/x/y:2"]
    snaps, blobs = snapshot_dirs(crispd), set(blob_files(crispd))
    assert len(snaps) == len(img.layers)
    # again, from stdin: the same image, nothing duplicated
    out = import_ok(crispd, "-", stdin=data)
    assert img.id in out
    assert [i.id for i in list_images(crispd)] == [img.id]
    assert snapshot_dirs(crispd) == snaps
    assert set(blob_files(crispd)) == blobs
    assert os.listdir(spool_dir(crispd)) == []
    assert unverified_blobs(crispd) == []
    # unpacked as a pull would: the rootfs, file by file, whiteouts applied
    crispd.stop()
    with mounted_image(crispd, img.id) as root:
        images.assert_tree(root, img.expected_tree())
    # and it survives a restart
    start(crispd)
    assert image_of(crispd, "busybox:layers").id == img.id


@pytest.mark.parametrize("link", ["sym", "hard"])
def test_import_docker_archive_with_linked_layers(crispd, link):
    img = images.busybox_image(fmt="docker", extra_layers=[[images.File("x", "x\n")]])
    path = write_archive(crispd, tar_bytes(docker_archive([(img, ["linked:1"])], link=link)))
    import_ok(crispd, path)
    assert image_of(crispd, "linked:1").id == img.id


def test_import_link_out_of_the_archive(crispd):
    img = images.busybox_image(fmt="docker")
    files = docker_archive([(img, ["linkout:1"])])
    files.append(("a/layer.tar", Link("../../etc/passwd")))
    err = import_fails(crispd, write_archive(crispd, tar_bytes(files)))
    assert "links outside the archive" in err, err
    assert_nothing_stored(crispd)


def test_import_with_name_and_index(crispd):
    idx = images.multiarch_index()
    host = idx.host_image
    path = write_archive(crispd, tar_bytes(oci_layout([(idx, None)])))
    # an index without names: a name must be given
    err = import_fails(crispd, path)
    assert "no name" in err, err
    assert list_images(crispd) == []
    out = import_ok(crispd, path, names=["registry.local/multi:v1"])
    assert host.id in out, out
    assert image_of(crispd, "registry.local/multi:v1").id == host.id
    assert len(list_images(crispd)) == 1


# --- hostile archives ------------------------------------------------------------------------


def test_import_bad_digest(crispd):
    img = images.busybox_image()
    files = oci_layout([(img, {"io.containerd.image.name": "bad/digest:1"})])
    layer_name = "blobs/sha256/" + img.layer_blobs[0].digest[7:]
    files = [(n, (d[:-1] + bytes([d[-1] ^ 1])) if n == layer_name else d) for n, d in files]
    err = import_fails(crispd, write_archive(crispd, tar_bytes(files)))
    assert "corrupt or tampered" in err, err
    assert_nothing_stored(crispd)


def test_import_truncated(crispd):
    img = images.busybox_image()
    data = tar_bytes(oci_layout([(img, {"io.containerd.image.name": "trunc/x:1"})]), True)
    err = import_fails(crispd, write_archive(crispd, data[:len(data) // 2]))
    assert "truncated" in err or "cannot be read" in err, err
    assert_nothing_stored(crispd)


def test_import_path_traversal(crispd):
    img = images.busybox_image()
    files = oci_layout([(img, {"io.containerd.image.name": "evil/x:1"})],
                       extra=[("../../escape", b"x")])
    err = import_fails(crispd, write_archive(crispd, tar_bytes(files)))
    assert "'..'" in err, err
    assert_nothing_stored(crispd)
    assert not os.path.exists(os.path.join(os.path.dirname(crispd.dir), "escape"))


def test_import_huge_entry(small_limit_crispd):
    c = small_limit_crispd
    files = docker_archive([(images.busybox_image(fmt="docker"), ["huge:1"])])
    files.append(("filler/layer.tar", b"\0" * (2 << 20)))
    err = import_fails(c, write_archive(c, tar_bytes(files)))
    assert "max_layer_size_mb" in err, err
    assert_nothing_stored(c)


def test_import_not_an_image(crispd):
    err = import_fails(crispd, write_archive(crispd, tar_bytes([("hello.txt", b"hi")])))
    assert "neither an OCI image layout" in err, err
    assert_nothing_stored(crispd)


# --- who may import ---------------------------------------------------------------------------


def test_import_refused_for_non_root(crispd):
    img = images.busybox_image()
    path = write_archive(crispd, tar_bytes(oci_layout(
        [(img, {"io.containerd.image.name": "nobody/x:1"})])))
    os.chmod(path, 0o644)
    err = import_fails(crispd, path, uid=NOBODY)
    assert "must run as root" in err, err
    assert_nothing_stored(crispd)


CLIENT = """
import sys, grpc
sock, name = sys.argv[1], sys.argv[2].encode()
with grpc.insecure_channel("unix:" + sock) as ch:
    fn = ch.unary_unary("/crisp.v1.Admin/ImportImage")
    try:
        fn(b"\\x0a" + bytes([len(name)]) + name, timeout=10)
        print("OK")
    except grpc.RpcError as e:
        print("ERROR", e.code().name, e.details())
"""


def test_admin_method_refused_for_socket_group(crispd_factory, cri_gen_dir):
    import grp
    group = grp.getgrgid(NOBODY).gr_name
    c = crispd_factory(config={"crispd": {"socket_group": group, "socket_mode": "0660"}})
    wait_imaged(c)
    script = os.path.join(cri_gen_dir, "admin_client.py")
    with open(script, "w") as f:
        f.write(CLIENT)
    os.chmod(script, 0o644)
    name = "crisp-import-" + "a" * 32 + ".tar"
    p = subprocess.run(["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY,
                        "--clear-groups", "/usr/bin/python3", script, c.sock, name],
                       capture_output=True, text=True, timeout=30,
                       env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"})
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("ERROR PERMISSION_DENIED"), p.stdout
    # root gets past that check (and is told the file does not exist)
    e = rpc_error(harness.call, c.sock, None, raw=b"\x0a" + bytes([len(name)]) + name.encode(),
                  path="/crisp.v1.Admin/ImportImage", timeout=10)
    assert e.code().name == "NOT_FOUND", e
    # a name that is not of the spool: refused by the frontend
    bad = b"../../etc/shadow"
    e = rpc_error(harness.call, c.sock, None, raw=b"\x0a" + bytes([len(bad)]) + bad,
                  path="/crisp.v1.Admin/ImportImage", timeout=10)
    assert e.code().name == "INVALID_ARGUMENT", e


# --- the spool ------------------------------------------------------------------------------


def test_spool_is_roots_and_leftovers_go(crispd):
    st = os.stat(spool_dir(crispd))
    assert st.st_uid == 0 and (st.st_mode & 0o777) == 0o700, oct(st.st_mode)
    # an archive crisp-import left behind (killed before its call)
    old = os.path.join(spool_dir(crispd), "crisp-import-" + "b" * 32 + ".tar")
    young = os.path.join(spool_dir(crispd), "crisp-import-" + "c" * 32 + ".tar")
    for p in (old, young):
        with open(p, "wb") as f:
            f.write(b"x")
    os.utime(old, (1000000000, 1000000000))
    crispd.stop()
    # crispd down: crisp-import says so at once, and leaves nothing behind
    img = images.busybox_image()
    path = write_archive(crispd, tar_bytes(oci_layout(
        [(img, {"io.containerd.image.name": "down/x:1"})])))
    err = import_fails(crispd, path)
    assert "UNAVAILABLE" in err, err
    assert sorted(os.listdir(spool_dir(crispd))) == sorted(
        os.path.basename(p) for p in (old, young))
    start(crispd)
    assert os.listdir(spool_dir(crispd)) == [os.path.basename(young)]
