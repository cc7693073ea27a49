"""The CRI ImageService end to end (crispd -> frontend -> imaged -> a real
docker-registry): pulls by tag, by digest and through a multi-platform
index; the rootfs a multi-layer image with whiteouts unpacks to, checked
file by file through a read-only overlayfs mount of its layer snapshots;
zstd and uncompressed layers; USER and volumes; ListImages, ImageStatus,
RemoveImage of unknown images and ImageFsInfo.

The helpers here (pulling, reading imaged's metadata.db and content store,
mounting an image's layers) are shared with test_images_store.py and
test_images_hostile.py."""

import concurrent.futures
import contextlib
import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import tempfile

import grpc
import pytest

import harness
import images
from harness import rpc_error

PULL_TIMEOUT = 60


# --- helpers ------------------------------------------------------------------------


def imaged_root(c):
    """<root_dir>/imaged of a Crispd."""
    return os.path.join(c.config["crispd"]["root_dir"], "imaged")


def spec(ref):
    return harness.cri.ImageSpec(image=ref)


def pull(c, ref, auth=None, timeout=PULL_TIMEOUT):
    """PullImage; returns image_ref."""
    req = harness.cri.PullImageRequest(image=spec(ref))
    if auth is not None:
        req.auth.CopyFrom(auth)
    return c.call("PullImage", req, timeout=timeout).image_ref


def pull_error(c, ref, auth=None, timeout=PULL_TIMEOUT):
    """A PullImage that must fail: its grpc.RpcError."""
    return rpc_error(pull, c, ref, auth=auth, timeout=timeout)


def status(c, ref, verbose=False):
    return c.call("ImageStatus", harness.cri.ImageStatusRequest(image=spec(ref), verbose=verbose))


def image_of(c, ref):
    """ImageStatus(ref).image, asserting it is there."""
    r = status(c, ref)
    assert r.HasField("image"), "ImageStatus(%s) found no image" % ref
    return r.image


def list_images(c, filter_ref=None):
    req = harness.cri.ListImagesRequest()
    if filter_ref is not None:
        req.filter.image.image = filter_ref
    return list(c.call("ListImages", req).images)


def remove(c, ref):
    c.call("RemoveImage", harness.cri.RemoveImageRequest(image=spec(ref)), timeout=30)


def fs_info(c):
    return c.call("ImageFsInfo", harness.cri.ImageFsInfoRequest())


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def blob_files(c):
    """{digest: path} of every file in imaged's blobs/<alg>/."""
    out = {}
    top = os.path.join(imaged_root(c), "blobs")
    if not os.path.isdir(top):
        return out
    for alg in os.listdir(top):
        d = os.path.join(top, alg)
        for name in os.listdir(d):
            out["%s:%s" % (alg, name)] = os.path.join(d, name)
    return out


def unverified_blobs(c):
    """Blob files whose content does not hash to their name."""
    bad = []
    for digest, path in sorted(blob_files(c).items()):
        if not digest.startswith("sha256:"):
            bad.append("%s: not a sha256 blob" % path)
        elif sha256_file(path) != digest:
            bad.append("%s: content hashes to %s" % (path, sha256_file(path)))
    return bad


def snapshot_dirs(c):
    """Names of the directories in imaged's snapshots/."""
    d = os.path.join(imaged_root(c), "snapshots")
    return set(os.listdir(d)) if os.path.isdir(d) else set()


@contextlib.contextmanager
def metadata_db(c):
    """imaged's metadata.db. imaged holds it with locking_mode=EXCLUSIVE:
    stop crispd first (c.stop())."""
    assert not c.running(), "stop crispd before reading metadata.db"
    path = os.path.join(imaged_root(c), "metadata.db")
    assert os.path.exists(path), "no %s" % path
    db = sqlite3.connect(path, timeout=5)
    try:
        yield db
    finally:
        db.close()


def snapshot_rows(c):
    """[(id, key, kind)] of the snapshots table."""
    with metadata_db(c) as db:
        return db.execute("SELECT id, key, kind FROM snapshots ORDER BY id").fetchall()


def layer_snapshot_ids(c, image_id):
    """The snapshot ids of an image's layers, bottom first
    (image_layers.chain_id -> snapshots.key -> id); crispd stopped."""
    with metadata_db(c) as db:
        rows = db.execute("SELECT l.idx, l.chain_id, s.id, s.kind FROM image_layers l "
                          "LEFT JOIN snapshots s ON s.key = l.chain_id "
                          "WHERE l.image_id = ? ORDER BY l.idx", (image_id,)).fetchall()
    assert rows, "metadata.db has no layers for image %s" % image_id
    for idx, chain, sid, kind in rows:
        assert sid is not None, "layer %d (chain %s) of %s has no snapshot" % (idx, chain,
                                                                               image_id)
        assert kind == "committed", "layer %d snapshot %d is %s" % (idx, sid, kind)
    return [sid for _, _, sid, _ in rows]


def snapshot_fs(c, sid):
    return os.path.join(imaged_root(c), "snapshots", str(sid), "fs")


@contextlib.contextmanager
def mounted_image(c, image_id):
    """The image's layers as a read-only overlayfs (userxattr: the snapshots
    carry user.overlay.* whiteout xattrs); yields the mount point. crispd
    stopped."""
    lowers = [snapshot_fs(c, sid) for sid in reversed(layer_snapshot_ids(c, image_id))]
    for d in lowers:
        assert os.path.isdir(d), "snapshot directory %s is missing" % d
    # A read-only overlay needs two lower layers: add an empty one.
    empty = tempfile.mkdtemp(prefix="crisp-it-empty-", dir="/tmp") if len(lowers) == 1 else None
    mnt = tempfile.mkdtemp(prefix="crisp-it-mnt-", dir="/tmp")
    try:
        opts = "ro,userxattr,lowerdir=" + ":".join(lowers + ([empty] if empty else []))
        r = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, mnt],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert r.returncode == 0, "mount -t overlay -o %s: %s" % (opts, r.stdout)
        try:
            yield mnt
        finally:
            subprocess.run(["umount", mnt], check=True)
    finally:
        os.rmdir(mnt)
        if empty:
            os.rmdir(empty)


def wait_imaged(c, timeout=10):
    """Until imaged answers: Crispd.start() waits for Version only, and the
    frontend fails image calls UNAVAILABLE ("connecting") until its channel
    to imaged is up, a moment later."""
    def answers():
        try:
            c.call("ListImages", harness.cri.ListImagesRequest(), timeout=2)
            return True
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            return False
    harness.wait_for(answers, timeout, what="imaged to answer ListImages")


def start(c):
    """(Re)start a stopped crispd and wait for imaged."""
    c.start()
    wait_imaged(c)


def ready_crispd(crispd_factory):
    c = crispd_factory()
    wait_imaged(c)
    return c


@pytest.fixture
def crispd(crispd_factory):
    """conftest's crispd, once imaged answers."""
    return ready_crispd(crispd_factory)


def push(registry, image, repo, tag="latest"):
    return registry.push(image, repo, tag)


def imaged_pid(c):
    return c.children()["crisp-imaged"]


def assert_alive(c, imaged_before=None):
    """crispd serves, and imaged did not die (same pid) if its pid is given."""
    assert c.serves(timeout=5), "crispd no longer answers Version"
    if imaged_before is not None:
        assert imaged_pid(c) == imaged_before, "imaged was restarted (it crashed?)"


def repo_of(pushed):
    return "%s/%s" % (pushed.host, pushed.repo)


# --- pull by tag, by digest -------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["oci", "docker"])
def test_pull_by_tag(crispd, registry, fmt):
    img = images.busybox_image(fmt=fmt)
    p = push(registry, img, "pull/tag-" + fmt, "v1")
    ref = pull(crispd, p.ref)
    assert ref == img.id, "image_ref %s, expected the config digest %s" % (ref, img.id)
    assert ref.startswith("sha256:") and len(ref) == 71
    st = image_of(crispd, p.ref)
    assert st.id == img.id
    assert list(st.repo_tags) == [p.ref], st
    assert list(st.repo_digests) == ["%s@%s" % (repo_of(p), p.digest)], st
    assert st.spec.image == img.id
    assert st.size >= sum(b.size for b in img.layer_blobs), st.size
    assert not st.pinned
    # A root image: neither uid nor username (containerd's answer).
    assert not st.HasField("uid") and st.username == "", st
    # The same image by id and by digest.
    for other in (img.id, p.digest_ref):
        assert image_of(crispd, other).id == img.id, other


def test_image_status_by_id_prefix(crispd, registry):
    """Like containerd, an image is also named by its id without "sha256:"
    and by a unique prefix of it (the store takes 12 hex digits or more)."""
    img = images.busybox_image(env=["WHICH=prefix"])
    p = push(registry, img, "pull/prefix", "v1")
    pull(crispd, p.ref)
    hexid = img.id[len("sha256:"):]
    missing = [name for name in (hexid, hexid[:12], "sha256:" + hexid[:12], hexid[:20])
               if not status(crispd, name).HasField("image")]
    assert not missing, "ImageStatus finds nothing by %r" % missing
    assert [i.id for i in list_images(crispd, hexid[:12])] == [img.id]


def test_pull_by_digest(crispd, registry):
    img = images.busybox_image(env=["WHICH=by-digest"])
    p = push(registry, img, "pull/digest", "v1")
    assert pull(crispd, p.digest_ref) == img.id
    st = image_of(crispd, p.digest_ref)
    assert list(st.repo_digests) == [p.digest_ref], st
    assert list(st.repo_tags) == [], "a pull by digest gave tags %r" % list(st.repo_tags)
    # Not known by its tag until pulled by it.
    assert not status(crispd, p.ref).HasField("image")
    assert pull(crispd, p.ref) == img.id
    st = image_of(crispd, p.digest_ref)
    assert list(st.repo_tags) == [p.ref] and list(st.repo_digests) == [p.digest_ref], st
    assert len(list_images(crispd)) == 1


def test_pull_by_tag_and_digest(crispd, registry):
    img = images.busybox_image(env=["WHICH=tag-and-digest"])
    p = push(registry, img, "pull/both", "v2")
    both = "%s@%s" % (p.ref, p.digest)
    assert pull(crispd, both) == img.id
    assert image_of(crispd, both).id == img.id
    assert p.digest_ref in image_of(crispd, p.digest_ref).repo_digests


def test_pull_default_tag_latest(crispd, registry):
    img = images.busybox_image(env=["WHICH=latest"])
    p = push(registry, img, "pull/latest", "latest")
    bare = repo_of(p)
    assert pull(crispd, bare) == img.id
    st = image_of(crispd, bare)
    assert list(st.repo_tags) == [bare + ":latest"], st


def test_pull_twice_is_idempotent(crispd, registry):
    img = images.busybox_image(env=["WHICH=twice"])
    p = push(registry, img, "pull/twice", "v1")
    assert pull(crispd, p.ref) == img.id
    blobs, snaps = set(blob_files(crispd)), snapshot_dirs(crispd)
    assert pull(crispd, p.ref) == img.id
    assert set(blob_files(crispd)) == blobs and snapshot_dirs(crispd) == snaps
    assert len(list_images(crispd)) == 1


def test_concurrent_pulls_share_one_download(crispd, registry, flaky):
    img = images.busybox_image(env=["WHICH=concurrent"])
    p = push(registry, img, "pull/concurrent", "v1")
    layer = img.layer_path(p.repo)
    flaky.throttle(layer, rate=2 << 20)  # about half a second
    mark = crispd.mark()
    with concurrent.futures.ThreadPoolExecutor(3) as ex:
        futs = [ex.submit(pull, crispd, p.via(flaky.host)) for _ in range(3)]
        assert [f.result(timeout=PULL_TIMEOUT) for f in futs] == [img.id] * 3
    assert flaky.count(layer, "GET") == 1, flaky.seen(layer)
    joined = [l for l in crispd.lines(mark) if "joins the one in progress" in l]
    assert len(joined) == 2, crispd.lines(mark)
    assert len(list_images(crispd)) == 1


def test_pull_unknown_tag_and_repo(crispd, registry):
    img = images.busybox_image()
    p = push(registry, img, "pull/exists", "v1")
    for ref in ("%s:no-such-tag" % repo_of(p), "%s/pull/no-such-repo:v1" % p.host,
                "%s@sha256:%s" % (repo_of(p), "0" * 64)):
        e = pull_error(crispd, ref)
        assert e.code() == grpc.StatusCode.NOT_FOUND, (ref, e.code(), e.details())
        assert e.details(), ref
    assert list_images(crispd) == []


# --- platforms ----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["oci", "docker"])
def test_pull_index_selects_host_platform(crispd, registry, fmt):
    idx = images.multiarch_index(fmt)
    host = idx.host_image
    name = images.platform_str(images.host_platform())
    p = push(registry, idx, "pull/multiarch-" + fmt, "v1")
    assert pull(crispd, p.ref) == host.id, "the pull chose another platform's image"
    st = status(crispd, p.ref, verbose=True)
    assert st.image.id == host.id
    cfg = json.loads(st.info["config"])
    assert cfg["config"]["Labels"]["org.crisp.test.platform"] == name, cfg
    assert "PLATFORM=" + name in cfg["config"]["Env"]
    manifest = json.loads(st.info["manifest"])
    assert manifest["config"]["digest"] == host.id, manifest
    # The /platform file the top layer carries.
    crispd.stop()
    top = layer_snapshot_ids(crispd, host.id)[-1]
    with open(os.path.join(snapshot_fs(crispd, top), "platform")) as f:
        assert f.read() == name + "\n"


def test_pull_index_by_digest_is_found_by_that_digest(crispd, registry):
    """The kubelet pulls name@sha256:<index digest> and then asks
    ImageStatus for that same reference: it must be found, or every pod
    start pulls again."""
    idx = images.multiarch_index("oci")
    p = push(registry, idx, "pull/multiarch-digest", "v1")
    assert pull(crispd, p.digest_ref) == idx.host_image.id
    st = status(crispd, p.digest_ref)
    assert st.HasField("image"), (
        "ImageStatus(%s) finds nothing right after pulling it; image has digests %r" % (
            p.digest_ref, [list(i.repo_digests) for i in list_images(crispd)]))
    assert st.image.id == idx.host_image.id


# --- what the layers unpack to -----------------------------------------------------------


@pytest.mark.parametrize("fmt", ["oci", "docker"])
def test_multilayer_whiteouts_rootfs(crispd, registry, fmt):
    img = images.multilayer_with_whiteouts(fmt)
    p = push(registry, img, "pull/whiteouts-" + fmt, "v1")
    assert pull(crispd, p.ref) == img.id
    crispd.stop()  # metadata.db and the snapshots at rest
    assert len(layer_snapshot_ids(crispd, img.id)) == 4
    with mounted_image(crispd, img.id) as root:
        images.assert_tree(root, img.expected_tree())
        # the whiteouts and opaque markers themselves are not visible
        for gone in ("app/remove-me.txt", "app/sub", "opaque/old1", "opaque/olddir",
                     "etc/issue"):
            assert not os.path.lexists(os.path.join(root, gone)), gone
        assert os.listdir(os.path.join(root, "opaque")) == ["new.txt"]
        assert os.listdir(os.path.join(root, "opaque2")) == ["only"]


def test_implicit_parents_keep_lower_attributes(crispd, registry):
    """A layer that adds /root/.profile without a /root entry must not turn
    the lower layer's 0700 /root into 0755 (nor re-own /home/app): as
    containerd's mkparent does, an implicit parent takes its attributes
    from the layers below."""
    img = images.busybox_image(extra_layers=[
        [images.Dir("home/app", 0o750, uid=1000, gid=1000)],
        [images.File("root/.profile", "export X=1\n"),
         images.File("home/app/notes", "n\n", uid=1000, gid=1000)]])
    p = push(registry, img, "pull/implicit-parents", "v1")
    pull(crispd, p.ref)
    crispd.stop()
    with mounted_image(crispd, img.id) as root:
        images.assert_tree(root, img.expected_tree())


def test_whiteouts_stored_in_overlay_form(crispd, registry):
    """.wh.NAME is a 0/0 char device, .wh..wh..opq the user.overlay.opaque
    xattr, and no .wh.* name reaches a snapshot."""
    img = images.multilayer_with_whiteouts()
    p = push(registry, img, "pull/whiteout-form", "v1")
    pull(crispd, p.ref)
    crispd.stop()
    ids = layer_snapshot_ids(crispd, img.id)
    l3 = snapshot_fs(crispd, ids[2])
    st = os.lstat(os.path.join(l3, "app/remove-me.txt"))
    assert stat.S_ISCHR(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == (0, 0)
    assert os.getxattr(os.path.join(l3, "opaque"), "user.overlay.opaque") == b"y"
    for sid in ids:
        for dirpath, dirs, files in os.walk(snapshot_fs(crispd, sid)):
            wh = [n for n in dirs + files if n.startswith(".wh.")]
            assert not wh, "whiteout names left in %s: %r" % (dirpath, wh)


def test_zstd_and_uncompressed_layers(crispd, registry):
    img = images.zstd_image()
    assert [l.compression for l in img.layers] == ["zstd", "zstd", None]
    p = push(registry, img, "pull/zstd", "v1")
    assert pull(crispd, p.ref) == img.id
    st = status(crispd, p.ref, verbose=True)
    types = [l["mediaType"] for l in json.loads(st.info["manifest"])["layers"]]
    assert types == [images.MT_OCI_LAYER + "+zstd"] * 2 + [images.MT_OCI_LAYER], types
    crispd.stop()
    with mounted_image(crispd, img.id) as root:
        images.assert_tree(root, img.expected_tree())


def test_special_files_preserved(crispd, registry):
    img = images.special_files_image()
    p = push(registry, img, "pull/special", "v1")
    assert pull(crispd, p.ref) == img.id
    crispd.stop()
    with mounted_image(crispd, img.id) as root:
        images.assert_tree(root, img.expected_tree())


# --- image config --------------------------------------------------------------------


def test_nonroot_user_and_volumes(crispd, registry):
    img = images.nonroot_user_image()
    p = push(registry, img, "pull/nonroot", "v1")
    pull(crispd, p.ref)
    st = status(crispd, p.ref, verbose=True)
    assert st.image.HasField("uid") and st.image.uid.value == 1000, st.image
    assert st.image.username == ""
    cfg = json.loads(st.info["config"])["config"]
    assert sorted(cfg["Volumes"]) == ["/cache", "/data"], cfg
    assert cfg["User"] == "1000:1000" and cfg["WorkingDir"] == "/home/app"
    assert cfg["StopSignal"] == "SIGINT"
    assert "APP_MODE=test" in cfg["Env"]
    listed = list_images(crispd, p.ref)
    assert len(listed) == 1 and listed[0].uid.value == 1000


@pytest.mark.parametrize("user,uid,username", [("app", None, "app"),
                                               ("app:extra", None, "app"),
                                               ("0", 0, "")])
def test_user_name_or_uid(crispd, registry, user, uid, username):
    img = images.busybox_image(user=user)
    p = push(registry, img, "pull/user", "u-" + user.replace(":", "-"))
    pull(crispd, p.ref)
    st = image_of(crispd, p.ref)
    if uid is None:
        assert not st.HasField("uid"), "USER %s: uid %r" % (user, st.uid)
    else:
        assert st.HasField("uid") and st.uid.value == uid, st
    assert st.username == username, st


# --- list, status, remove, fs info --------------------------------------------------------


def test_list_images_with_and_without_filter(crispd, registry):
    a = images.busybox_image(env=["WHICH=a"])
    b = images.busybox_image(env=["WHICH=b"])
    pa = push(registry, a, "list/a", "v1")
    pb = push(registry, b, "list/b", "v1")
    assert list_images(crispd) == []
    pull(crispd, pa.ref)
    pull(crispd, pb.digest_ref)
    assert sorted(i.id for i in list_images(crispd)) == sorted([a.id, b.id])
    for f, want in ((pa.ref, [a.id]), (a.id, [a.id]), (pb.digest_ref, [b.id]),
                    ("%s/list/a:other" % pa.host, []),
                    ("%s/list/nothing:v1" % pa.host, []), ("sha256:" + "1" * 64, [])):
        got = [i.id for i in list_images(crispd, f)]
        assert got == want, "ListImages(filter=%s): %r, expected %r" % (f, got, want)
    # An empty filter is no filter.
    assert len(list_images(crispd, "")) == 2
    for i in list_images(crispd):
        assert i.size > 0 and i.spec.image == i.id
        assert list(i.repo_tags) == ([pa.ref] if i.id == a.id else []), i


def test_image_status_unknown_is_empty(crispd, registry):
    for ref in ("%s/nothing/here:v1" % registry.host, "sha256:" + "2" * 64, "busybox",
                "docker.io/library/busybox:latest"):
        r = status(crispd, ref, verbose=True)
        assert not r.HasField("image"), (ref, r)
        assert not r.info, (ref, r.info)


def test_image_status_empty_name_is_invalid(crispd):
    e = rpc_error(crispd.call, "ImageStatus", harness.cri.ImageStatusRequest())
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.code(), e.details())


def test_remove_unknown_image_succeeds(crispd, registry):
    for ref in ("%s/nothing/here:v1" % registry.host, "sha256:" + "3" * 64, "busybox:1.0"):
        remove(crispd, ref)
    assert crispd.serves()


def test_image_fs_info(crispd, registry):
    before = fs_info(crispd)
    assert len(before.image_filesystems) == 1
    img = images.busybox_image(env=["WHICH=fsinfo"])
    p = push(registry, img, "fsinfo/busybox", "v1")
    pull(crispd, p.ref)
    after = fs_info(crispd)
    fs = after.image_filesystems[0]
    assert fs.fs_id.mountpoint == imaged_root(crispd)
    busybox_size = os.path.getsize(images.BUSYBOX)
    # at least busybox unpacked plus its compressed layer
    assert fs.used_bytes.value >= busybox_size + img.layer_blobs[0].size, fs
    assert fs.used_bytes.value > before.image_filesystems[0].used_bytes.value
    assert fs.inodes_used.value > before.image_filesystems[0].inodes_used.value
    assert fs.inodes_used.value >= len(img.layers[0].entries), fs
    assert fs.timestamp > 0


# --- per-registry configuration ---------------------------------------------------


def test_pull_through_mirror(crispd_factory, registry):
    """[registry "HOST"] mirrors: a pull of a docker.io image is served by the
    mirror (the local registry), never reaching docker.io (this machine has
    no route there: a miss would fail the pull)."""
    img = images.busybox_image()
    pushed = push(registry, img, "mirrored/busybox", "v1")
    c = crispd_factory(config={
        'registry "docker.io"': {"mirrors": "http://%s" % pushed.host},
    })
    wait_imaged(c)
    ref = "docker.io/mirrored/busybox:v1"
    assert pull(c, ref) == img.id
    st = status(c, ref)
    assert ref in st.image.repo_tags


def test_registry_section_plain_http_required_for_non_loopback_name(crispd_factory, registry):
    """A registry reached by a name other than a loopback address speaks
    HTTPS unless its section says plain_http: localhost is plain HTTP by
    default, and a section can turn that off again."""
    img = images.busybox_image()
    pushed = push(registry, img, "plain/busybox", "v1")
    port = pushed.host.rsplit(":", 1)[1]
    host = "localhost:%s" % port
    c = crispd_factory(config={'registry "%s"' % host: {"plain_http": "false"}})
    wait_imaged(c)
    e = pull_error(c, "%s/plain/busybox:v1" % host)
    assert e.code() != grpc.StatusCode.OK
    c.stop()
    c.update_config({'registry "%s"' % host: {"plain_http": "true"}})
    start(c)
    assert pull(c, "%s/plain/busybox:v1" % host) == img.id


def test_registry_section_bad_key_refused(crispd_factory):
    """An unknown key in a registry section stops crispd before it starts
    anything, naming the file, the line, the section and the key."""
    c = crispd_factory(config={'registry "docker.io"': {"bogus": "1"}}, start=False)
    c.write_config()
    proc = subprocess.run([os.path.join(harness.BUILD, "crispd"), "--config", c.conf,
                           "--print-config"], capture_output=True, text=True)
    assert proc.returncode == 2, proc
    assert "[registry \"docker.io\"] bogus: unknown key 'bogus' in a registry section" in proc.stderr
