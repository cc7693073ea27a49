"""OCI and Docker images built in Python, without docker, for imaged's tests:
deterministic tar layers (PAX, fixed mtime, uid/gid 0 unless asked) with
/bin/busybox of busybox-static, gzip, zstd (the zstd CLI) or uncompressed;
config JSON; OCI and Docker schema 2 manifests; OCI indexes and Docker
manifest lists; pushed with registry.RegistryClient.

    img = busybox_image(user="1000", cmd=["sleep", "60"])
    pushed = reg.push(img, "busybox", "latest")      # registry.Registry.push
    img.expected_tree()          # {path: Entry} the rootfs must have
    assert_tree(rootfs, img.expected_tree())

Ready-made: busybox_image, multilayer_with_whiteouts, nonroot_user_image,
zstd_image, special_files_image, multiarch_index, big_image, the hostile
cases (hostile_cases(target_dir)), malformed_manifests, schema1_manifest.
"""

import functools
import gzip
import hashlib
import io
import json
import os
import platform as platform_mod
import random
import shutil
import stat
import subprocess
import tarfile

BUSYBOX = "/bin/busybox"
EPOCH = 1700000000  # every entry's mtime unless given
CREATED = "2023-11-14T22:13:20Z"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
MT_DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+prettyjws"
ALL_MANIFEST_TYPES = (MT_OCI_MANIFEST, MT_OCI_INDEX, MT_DOCKER_MANIFEST, MT_DOCKER_LIST)

LAYER_SUFFIX = {None: "", "gzip": "+gzip", "zstd": "+zstd"}
DOCKER_LAYER_SUFFIX = {None: "", "gzip": ".gzip", "zstd": ".zstd"}

APPLETS = ("sh ls cat echo sleep true false id stty env mkdir rm rmdir touch ps grep head tail "
           "wc test [ hostname pwd kill printf stat readlink mount umount cp mv ln chmod chown "
           "date sync uname whoami nc wget tee sed awk find seq yes tr cut sort uniq dd du df "
           "sha256sum md5sum timeout xargs which mkfifo basename dirname expr nproc ip top "
           "getopt setsid nsenter").split()


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def host_platform():
    """This node's platform as the OCI spec spells it."""
    m = platform_mod.machine()
    arch, variant = {
        "x86_64": ("amd64", None), "amd64": ("amd64", None),
        "aarch64": ("arm64", "v8"), "arm64": ("arm64", "v8"),
        "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"),
        "i686": ("386", None), "i386": ("386", None),
        "ppc64le": ("ppc64le", None), "s390x": ("s390x", None), "riscv64": ("riscv64", None),
    }.get(m, (m, None))
    p = {"architecture": arch, "os": "linux"}
    if variant:
        p["variant"] = variant
    return p


def platform_str(p):
    return "/".join(x for x in (p["os"], p["architecture"], p.get("variant")) if x)


# --- entries and tar layers ---------------------------------------------------------


class Entry:
    """One tar entry, and one node of an expected file tree. kind: file,
    dir, symlink, hardlink, fifo, char, block. mode None (in an expected
    tree): not checked (a directory no entry made)."""

    def __init__(self, path, kind, mode=None, uid=0, gid=0, data=b"", link=None,
                 mtime=EPOCH, xattrs=None, major=0, minor=0):
        self.path, self.kind, self.mode = path, kind, mode
        self.uid, self.gid, self.data, self.link = uid, gid, data, link
        self.mtime, self.xattrs = mtime, dict(xattrs or {})
        self.major, self.minor = major, minor

    def __repr__(self):
        extra = " -> %s" % self.link if self.link else ""
        mode = "%o" % self.mode if self.mode is not None else "-"
        return "<%s %s %s %s:%s%s>" % (self.kind, self.path, mode, self.uid, self.gid, extra)


def File(path, data=b"", mode=0o644, **kw):
    return Entry(path, "file", mode, data=data if isinstance(data, bytes) else data.encode(),
                 **kw)


def Dir(path, mode=0o755, **kw):
    return Entry(path, "dir", mode, **kw)


def Symlink(path, target, **kw):
    return Entry(path, "symlink", 0o777, link=target, **kw)


def Hardlink(path, target, **kw):
    return Entry(path, "hardlink", None, link=target, **kw)


def Fifo(path, mode=0o644, **kw):
    return Entry(path, "fifo", mode, **kw)


def CharDev(path, major, minor, mode=0o666, **kw):
    return Entry(path, "char", mode, major=major, minor=minor, **kw)


def BlockDev(path, major, minor, mode=0o660, **kw):
    return Entry(path, "block", mode, major=major, minor=minor, **kw)


def Whiteout(path):
    """Deletes path (and what is below it) of the lower layers."""
    d, b = os.path.split(path.rstrip("/"))
    return File(os.path.join(d, ".wh." + b), b"", 0o644)


def Opaque(dirpath):
    """Hides everything the lower layers have below dirpath."""
    return File(os.path.join(dirpath.rstrip("/"), ".wh..wh..opq"), b"", 0o644)


TAR_TYPE = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
            "hardlink": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE, "char": tarfile.CHRTYPE,
            "block": tarfile.BLKTYPE}


def make_tar(entries):
    """A deterministic PAX tar of the entries, names as given (hostile ones
    too: tarfile writes them unchanged)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            ti = tarfile.TarInfo(e.path)
            ti.type = TAR_TYPE[e.kind]
            ti.mode = e.mode if e.mode is not None else 0o644
            ti.uid, ti.gid, ti.uname, ti.gname = e.uid, e.gid, "", ""
            ti.mtime = int(e.mtime)
            if e.kind in ("symlink", "hardlink"):
                ti.linkname = e.link
            if e.kind in ("char", "block"):
                ti.devmajor, ti.devminor = e.major, e.minor
            if e.xattrs:
                ti.pax_headers = {"SCHILY.xattr." + k: (v if isinstance(v, str) else
                                                        v.decode("utf-8", "surrogateescape"))
                                  for k, v in sorted(e.xattrs.items())}
            if e.kind == "file":
                ti.size = len(e.data)
                tf.addfile(ti, io.BytesIO(e.data))
            else:
                tf.addfile(ti)
    return buf.getvalue()


def compress(data, compression, level=None):
    if compression is None:
        return data
    if compression == "gzip":
        return gzip.compress(data, compresslevel=level or 6, mtime=0)
    if compression == "zstd":
        zstd = shutil.which("zstd")
        if zstd:
            return subprocess.run([zstd, "-q", "-c", "-%d" % (level or 3)], input=data,
                                  stdout=subprocess.PIPE, check=True).stdout
        import zstandard  # python3-zstandard, if the CLI is missing
        return zstandard.ZstdCompressor(level=level or 3).compress(data)
    raise ValueError("unknown compression %r" % compression)


class Blob:
    def __init__(self, data, media_type, digest=None):
        self.data, self.media_type = data, media_type
        self.digest = digest or sha256_digest(data)
        self.size = len(data)

    def descriptor(self, **extra):
        d = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        d.update(extra)
        return d


class Layer:
    """A layer: its entries, the tar (diff_id = its sha256) and the
    compressed blob. tar: bytes of one's own instead of make_tar(entries)."""

    def __init__(self, entries=(), compression="gzip", level=None, tar=None):
        self.entries = list(entries)
        self.tar = tar if tar is not None else make_tar(self.entries)
        self.diff_id = sha256_digest(self.tar)
        self.compression = compression
        self.data = compress(self.tar, compression, level)
        self.digest = sha256_digest(self.data)
        self.size = len(self.data)

    def media_type(self, fmt):
        if fmt == "docker":
            return MT_DOCKER_LAYER + DOCKER_LAYER_SUFFIX[self.compression]
        return MT_OCI_LAYER + LAYER_SUFFIX[self.compression]

    def blob(self, fmt):
        return Blob(self.data, self.media_type(fmt), self.digest)


# --- manifests, images, indexes -----------------------------------------------------------


class Manifest:
    """An image manifest (OCI or Docker schema 2) over a config blob and
    layer blobs; manifest_bytes is exactly what is pushed."""

    def __init__(self, config_blob, layer_blobs, fmt="oci", annotations=None):
        if fmt not in ("oci", "docker"):
            raise ValueError("fmt must be 'oci' or 'docker'")
        self.fmt = fmt
        self.config_blob = config_blob
        self.layer_blobs = list(layer_blobs)
        self.media_type = MT_OCI_MANIFEST if fmt == "oci" else MT_DOCKER_MANIFEST
        m = {"schemaVersion": 2, "mediaType": self.media_type,
             "config": config_blob.descriptor(),
             "layers": [b.descriptor() for b in self.layer_blobs]}
        if annotations:
            m["annotations"] = annotations
        self.manifest = m
        self.manifest_bytes = json.dumps(m, indent=3).encode()
        self.digest = sha256_digest(self.manifest_bytes)
        self.size = len(self.manifest_bytes)

    @property
    def id(self):
        """The image id CRI reports: the config digest."""
        return self.config_blob.digest

    def blobs(self):
        return [self.config_blob] + self.layer_blobs

    def push(self, client, repo, tag=None):
        """Push blobs and the manifest (by tag, or by digest when tag is None)."""
        for b in self.blobs():
            client.push_blob(repo, b.data, b.digest)
        return client.push_manifest(repo, tag or self.digest, self.manifest_bytes,
                                    self.media_type)

    def blob_path(self, repo, blob):
        return "/v2/%s/blobs/%s" % (repo, blob.digest)

    def layer_path(self, repo, i=0):
        """The URL path of layer i's blob (for FlakyProxy rules)."""
        return self.blob_path(repo, self.layer_blobs[i])

    def config_path(self, repo):
        return self.blob_path(repo, self.config_blob)

    def descriptor(self, platform=None, annotations=None):
        d = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if platform:
            d["platform"] = platform
        if annotations:
            d["annotations"] = annotations
        return d


class Image(Manifest):
    """An image of Layers with a config: cfg is the "config" object (User,
    Env, Entrypoint, Cmd, WorkingDir, Volumes, StopSignal, Labels, ...)."""

    def __init__(self, layers, cfg=None, fmt="oci", platform=None, history=None,
                 annotations=None):
        self.layers = list(layers)
        self.platform = dict(platform or host_platform())
        config = {"created": CREATED, "author": "crisp tests",
                  "architecture": self.platform["architecture"], "os": self.platform["os"]}
        if self.platform.get("variant"):
            config["variant"] = self.platform["variant"]
        if self.platform.get("os.version"):
            config["os.version"] = self.platform["os.version"]
        config["config"] = dict(cfg or {})
        config["rootfs"] = {"type": "layers", "diff_ids": [l.diff_id for l in self.layers]}
        config["history"] = history or [
            {"created": CREATED, "created_by": "crisp tests: layer %d" % i}
            for i in range(len(self.layers))]
        self.config = config
        cmt = MT_OCI_CONFIG if fmt == "oci" else MT_DOCKER_CONFIG
        super().__init__(Blob(canonical_json(config), cmt), [l.blob(fmt) for l in self.layers],
                         fmt, annotations)

    def expected_tree(self):
        return apply_layers(self.layers)


class Index:
    """An OCI image index or a Docker manifest list. entries: [(manifest,
    platform, annotations or None)]; pushed children first, by digest."""

    def __init__(self, entries, fmt="oci", annotations=None):
        self.fmt = fmt
        self.entries = list(entries)
        self.media_type = MT_OCI_INDEX if fmt == "oci" else MT_DOCKER_LIST
        idx = {"schemaVersion": 2, "mediaType": self.media_type,
               "manifests": [m.descriptor(p, a) for m, p, a in self.entries]}
        if annotations:
            idx["annotations"] = annotations
        self.manifest = idx
        self.manifest_bytes = json.dumps(idx, indent=3).encode()
        self.digest = sha256_digest(self.manifest_bytes)
        self.size = len(self.manifest_bytes)

    def push(self, client, repo, tag=None):
        for m, _, _ in self.entries:
            m.push(client, repo, None)
        return client.push_manifest(repo, tag or self.digest, self.manifest_bytes,
                                    self.media_type)

    def image_for(self, platform):
        """The entry an exact match of os/architecture/variant selects."""
        for m, p, _ in self.entries:
            if all(p.get(k) == platform.get(k) for k in ("os", "architecture", "variant")):
                return m
        return None

    @property
    def host_image(self):
        return self.image_for(host_platform())


# --- the expected rootfs and checking one ---------------------------------------------------


def norm(path):
    """A tar entry name as a path relative to the root ("./a/b/" -> "a/b")."""
    while path.startswith("./"):
        path = path[2:]
    p = os.path.normpath("/" + path).lstrip("/")
    return "" if p == "." else p


def apply_layers(layers):
    """The file tree the layers make, OCI whiteout rules applied: each
    layer's whiteouts (.wh.NAME, .wh..wh..opq) remove what the layers below
    have, then its entries are added; a non-directory replaces whatever was
    there, and directories named only as parents appear with mode None."""
    tree = {}
    for layer in layers:
        below = set(tree)
        for e in layer.entries:
            p = norm(e.path)
            d, b = os.path.split(p)
            if b == ".wh..wh..opq":
                _remove(tree, d, only=below, keep_self=True)
            elif b.startswith(".wh."):
                _remove(tree, os.path.join(d, b[4:]), only=below)
        for e in layer.entries:
            p = norm(e.path)
            if os.path.basename(p).startswith(".wh."):
                continue
            old = tree.get(p)
            if old is not None and not (old.kind == "dir" and e.kind == "dir"):
                _remove(tree, p)
            parts = p.split("/")
            for i in range(1, len(parts)):
                anc = "/".join(parts[:i])
                if anc not in tree or tree[anc].kind != "dir":
                    _remove(tree, anc)
                    tree[anc] = Entry(anc, "dir", None, uid=None, gid=None, mtime=None)
            ne = Entry(p, e.kind, e.mode, e.uid, e.gid, e.data, e.link, e.mtime, e.xattrs,
                       e.major, e.minor)
            if e.kind == "hardlink":
                ne.link = norm(e.link)
            tree[p] = ne
    return tree


def _remove(tree, path, only=None, keep_self=False):
    prefix = path + "/" if path else ""
    for k in list(tree):
        if (k == path and not keep_self) or k.startswith(prefix) and k != path:
            if only is None or k in only:
                del tree[k]


def _kind_of(st):
    m = st.st_mode
    for test, kind in ((stat.S_ISREG, "file"), (stat.S_ISDIR, "dir"), (stat.S_ISLNK, "symlink"),
                       (stat.S_ISFIFO, "fifo"), (stat.S_ISCHR, "char"), (stat.S_ISBLK, "block")):
        if test(m):
            return kind
    return "other"


def tree_diff(rootfs, expected, check_mtime=True, ignore=()):
    """Differences between the directory rootfs and an expected tree, as a
    list of strings (empty: they agree): missing and extra paths, kind, mode,
    owner, content, link target, device numbers, mtime (not of
    directories), xattrs, and hardlinks sharing an inode with their target."""
    actual = {}
    for dirpath, dirs, files in os.walk(rootfs):
        for n in dirs + files:
            full = os.path.join(dirpath, n)
            actual[os.path.relpath(full, rootfs)] = os.lstat(full)
    ign = lambda p: any(p == i or p.startswith(i.rstrip("/") + "/") for i in ignore)  # noqa
    out = []
    for p in sorted(set(expected) - set(actual)):
        if not ign(p):
            out.append("missing: /%s (%s)" % (p, expected[p].kind))
    for p in sorted(set(actual) - set(expected)):
        if not ign(p):
            out.append("unexpected: /%s (%s)" % (p, _kind_of(actual[p])))
    for p in sorted(set(actual) & set(expected)):
        if not ign(p):
            out.extend(_entry_diff(rootfs, p, expected, actual, check_mtime))
    return out


def _entry_diff(rootfs, p, expected, actual, check_mtime):
    e, st = expected[p], actual[p]
    full = os.path.join(rootfs, p)
    out = []
    kind = _kind_of(st)
    if e.kind == "hardlink":
        target = expected.get(e.link)
        tst = actual.get(e.link)
        if tst is None or (st.st_dev, st.st_ino) != (tst.st_dev, tst.st_ino):
            out.append("/%s: not a hard link of /%s" % (p, e.link))
        e = target or e
        if e.kind == "hardlink":
            return out
    if kind != e.kind:
        return out + ["/%s: a %s, expected a %s" % (p, kind, e.kind)]
    if e.mode is not None and kind != "symlink" and stat.S_IMODE(st.st_mode) != e.mode:
        out.append("/%s: mode %o, expected %o" % (p, stat.S_IMODE(st.st_mode), e.mode))
    if e.uid is not None and (st.st_uid, st.st_gid) != (e.uid, e.gid):
        out.append("/%s: owner %d:%d, expected %d:%d" % (p, st.st_uid, st.st_gid, e.uid, e.gid))
    if kind == "file":
        with open(full, "rb") as f:
            data = f.read()
        if data != e.data:
            out.append("/%s: content differs (%d bytes, expected %d)" % (p, len(data),
                                                                        len(e.data)))
    elif kind == "symlink" and os.readlink(full) != e.link:
        out.append("/%s: links to %r, expected %r" % (p, os.readlink(full), e.link))
    elif kind in ("char", "block") and (os.major(st.st_rdev), os.minor(st.st_rdev)) != (
            e.major, e.minor):
        out.append("/%s: device %d,%d, expected %d,%d" % (
            p, os.major(st.st_rdev), os.minor(st.st_rdev), e.major, e.minor))
    if check_mtime and kind != "dir" and e.mtime is not None and int(st.st_mtime) != e.mtime:
        out.append("/%s: mtime %d, expected %d" % (p, int(st.st_mtime), e.mtime))
    for name, value in e.xattrs.items():
        want = value if isinstance(value, bytes) else value.encode()
        try:
            got = os.getxattr(full, name, follow_symlinks=False)
        except OSError as ex:
            got = "(%s)" % ex.strerror
        if got != want:
            out.append("/%s: xattr %s = %r, expected %r" % (p, name, got, want))
    return out


def assert_tree(rootfs, expected, **kw):
    diff = tree_diff(rootfs, expected, **kw)
    assert not diff, "rootfs %s differs from the image:\n  %s" % (rootfs, "\n  ".join(
        diff[:100]))


# --- the base layer and ready-made images -----------------------------------------------


@functools.lru_cache(maxsize=None)
def busybox_applets():
    out = subprocess.run([BUSYBOX, "--list"], stdout=subprocess.PIPE, check=True,
                         text=True).stdout.split()
    return tuple(a for a in APPLETS if a in out)


PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
          "app:x:1000:1000:app:/home/app:/bin/sh\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
GROUP = ("root:x:0:\ndaemon:x:1:\napp:x:1000:\nextra:x:2000:app\nnogroup:x:65534:\n")


def base_entries():
    """A small root: /bin/busybox (static, of this host) with applet
    symlinks, /etc/passwd and /etc/group (root, app 1000:1000, nobody), /tmp."""
    if not os.path.exists(BUSYBOX):
        raise AssertionError("%s is missing: apt-get install busybox-static" % BUSYBOX)
    with open(BUSYBOX, "rb") as f:
        bb = f.read()
    es = [Dir("bin"), Dir("dev"), Dir("etc"), Dir("home"), Dir("proc"), Dir("root", 0o700),
          Dir("sys"), Dir("tmp", 0o1777), Dir("usr"), Dir("usr/bin"), Dir("var"),
          File("bin/busybox", bb, 0o755)]
    es += [Symlink("bin/" + a, "busybox") for a in busybox_applets()]
    es += [File("etc/passwd", PASSWD), File("etc/group", GROUP),
           File("etc/os-release", 'NAME="crisp test busybox"\nID=crisp-test\n')]
    return es


@functools.lru_cache(maxsize=None)
def base_layer(compression="gzip"):
    return Layer(base_entries(), compression)


def default_cfg(**kw):
    """An image config object: Env PATH and Cmd sh unless given; keys of
    kw in the config's own spelling (User, Entrypoint, ...)."""
    cfg = {"Env": [PATH_ENV], "Cmd": ["sh"]}
    cfg.update({k: v for k, v in kw.items() if v is not None})
    return cfg


def busybox_image(fmt="oci", compression="gzip", user=None, env=None, entrypoint=None,
                  cmd=("sh",), workdir=None, volumes=None, stop_signal=None, labels=None,
                  exposed_ports=None, extra_layers=(), platform=None):
    """busybox as one layer (plus extra_layers: lists of Entries or Layers).
    env: extra "K=V" strings after PATH; volumes: a list of paths."""
    layers = [base_layer(compression)]
    for x in extra_layers:
        layers.append(x if isinstance(x, Layer) else Layer(x, compression))
    cfg = default_cfg(User=user, Env=[PATH_ENV] + list(env or []),
                      Entrypoint=list(entrypoint) if entrypoint else None,
                      Cmd=list(cmd) if cmd else None, WorkingDir=workdir,
                      Volumes={v: {} for v in volumes} if volumes else None,
                      StopSignal=stop_signal, Labels=dict(labels) if labels else None,
                      ExposedPorts={p: {} for p in exposed_ports} if exposed_ports else None)
    if not cmd:
        cfg.pop("Cmd", None)
    return Image(layers, cfg, fmt, platform)


def multilayer_with_whiteouts(fmt="oci"):
    """Four layers: busybox; a layer of files; a layer that deletes a file
    and a directory (.wh.NAME), makes opaque/ opaque (.wh..wh..opq),
    replaces a file by a directory and a directory by a file, overwrites
    and adds; a last layer that deletes a file of layer 2. image.expected_tree()
    is the rootfs file by file (see EXPECTED_WHITEOUT_PATHS in the tests)."""
    l2 = [Dir("app"), File("app/keep.txt", "keep\n"), File("app/remove-me.txt", "gone\n"),
          Dir("app/sub"), File("app/sub/a.txt", "a\n"), Dir("app/sub/deeper"),
          File("app/sub/deeper/b.txt", "b\n"), Symlink("app/link", "keep.txt"),
          File("app/type-change", "a file, then a dir\n"), Dir("app/dir-to-file"),
          File("app/dir-to-file/inner", "inner\n"),
          Dir("opaque", 0o750), File("opaque/old1", "old1\n"), Dir("opaque/olddir"),
          File("opaque/olddir/deep", "deep\n"), File("etc/motd", "layer 2\n"),
          File("etc/issue", "crisp test\n")]
    l3 = [Dir("app"), Whiteout("app/remove-me.txt"), Whiteout("app/sub"),
          Opaque("opaque"), File("opaque/new.txt", "new\n"),
          File("etc/motd", "layer 3\n", 0o600),
          Dir("app/type-change", 0o711), File("app/type-change/now-a-dir", "dir\n"),
          Whiteout("app/dir-to-file"), File("app/dir-to-file", "now a file\n"),
          File("app/added.txt", "added\n", 0o640, uid=1000, gid=1000),
          File("newdir/nested/file", "made with implicit parents\n")]
    l4 = [Whiteout("etc/issue"), Dir("opaque2"), Opaque("opaque2"), File("opaque2/only", "x\n")]
    return busybox_image(fmt=fmt, extra_layers=[l2, l3, l4], cmd=["cat", "/etc/motd"])


def nonroot_user_image(fmt="oci"):
    """USER 1000:1000, volumes /data and /cache, WorkingDir /home/app owned
    by the user, Env, StopSignal SIGINT, Labels."""
    extra = [Dir("home/app", 0o750, uid=1000, gid=1000),
             File("home/app/.profile", "export APP=1\n", 0o644, uid=1000, gid=1000),
             Dir("data", 0o755, uid=1000, gid=1000), Dir("cache", 0o700, uid=1000, gid=1000)]
    return busybox_image(fmt=fmt, user="1000:1000", env=["APP_MODE=test", "HOME=/home/app"],
                         cmd=["sleep", "3600"], workdir="/home/app",
                         volumes=["/data", "/cache"], stop_signal="SIGINT",
                         labels={"org.crisp.test": "nonroot", "maintainer": "crisp"},
                         extra_layers=[extra])


def zstd_image():
    """OCI: busybox in a zstd layer, a second zstd layer, an uncompressed
    third layer."""
    l2 = Layer([Dir("zstd"), File("zstd/hello", "compressed with zstd\n")], "zstd")
    l3 = Layer([File("zstd/plain", "an uncompressed layer\n")], None)
    return Image([base_layer("zstd"), l2, l3], default_cfg(Cmd=["cat", "/zstd/hello"]), "oci")


def vfs_cap(*caps):
    """A security.capability value (VFS_CAP_REVISION_2, effective) for caps."""
    bits = 0
    for c in caps:
        bits |= 1 << c
    import struct
    return struct.pack("<IIIII", 0x02000001, bits & 0xFFFFFFFF, 0, bits >> 32, 0)


CAP_NET_BIND_SERVICE = 10


def special_files_image(fmt="oci"):
    """busybox plus what extraction must preserve: setuid/setgid/sticky
    modes, owners, an old mtime, a hard link, relative, absolute and
    dangling symlinks, a fifo, char and block devices, user and
    security.capability xattrs, a long (PAX) and a non-ASCII name."""
    es = [Dir("special"), File("special/file", "the file\n", 0o644),
          Hardlink("special/hardlink", "special/file"),
          File("special/setuid", "#!/bin/sh\n", 0o4755), Dir("special/sgid", 0o2775, gid=2000),
          Dir("special/sticky", 0o1777), File("special/owned", "mine\n", 0o640, uid=1000,
                                                gid=2000),
          File("special/old", "old\n", mtime=1234567890),
          Symlink("special/symlink", "file"), Symlink("special/abs-symlink", "/etc/passwd"),
          Symlink("special/dangling", "does-not-exist"), Fifo("special/fifo", 0o600),
          CharDev("special/null", 1, 3), BlockDev("special/loop9", 7, 9),
          File("special/xattr", "xattrs\n", xattrs={"user.crisp.test": b"hello"}),
          File("special/cap", "caps\n", 0o755,
               xattrs={"security.capability": vfs_cap(CAP_NET_BIND_SERVICE)}),
          File("special/" + "long-name-" * 15 + "end", "long\n"),
          File("special/ünïcödé", "unicode\n")]
    return busybox_image(fmt=fmt, extra_layers=[es])


def multiarch_index(fmt="oci"):
    """An index (OCI) or manifest list (Docker) of this host's platform and
    others, each with its own config (Label org.crisp.test.platform, Env
    PLATFORM) and a /platform file; only this host's has busybox. Others:
    windows on this architecture, linux/arm/v7 and another 64-bit
    architecture; the OCI one also has a buildkit-style attestation
    manifest (unknown/unknown). The host's entry is neither first nor last."""
    host = host_platform()
    other_arch = ({"architecture": "arm64", "os": "linux", "variant": "v8"}
                  if host["architecture"] != "arm64" else {"architecture": "amd64",
                                                           "os": "linux"})
    plats = [{"architecture": host["architecture"], "os": "windows",
              "os.version": "10.0.17763.5329"},
             {"architecture": "arm", "os": "linux", "variant": "v7"}, host, other_arch]
    entries = []
    images = {}
    for p in plats:
        name = platform_str(p)
        marker = [File("platform", name + "\n")]
        cfg = {"Env": [PATH_ENV, "PLATFORM=" + name], "Cmd": ["cat", "/platform"],
               "Labels": {"org.crisp.test.platform": name}}
        layers = ([base_layer(), Layer(marker)] if p == host else [Layer(marker)])
        img = Image(layers, cfg, fmt, p)
        images[name] = img
        entries.append((img, p, None))
    if fmt == "oci":
        host_img = images[platform_str(host)]
        entries.append((attestation_manifest(host_img),
                        {"architecture": "unknown", "os": "unknown"},
                        {"vnd.docker.reference.type": "attestation-manifest",
                         "vnd.docker.reference.digest": host_img.digest}))
    idx = Index(entries, fmt)
    idx.images = images
    return idx


def attestation_manifest(subject):
    stmt = canonical_json({"_type": "https://in-toto.io/Statement/v0.1",
                           "predicateType": "https://slsa.dev/provenance/v0.2",
                           "subject": [{"name": "crisp-test", "digest": {
                               "sha256": subject.digest.split(":")[1]}}],
                           "predicate": {}})
    layer = Blob(stmt, "application/vnd.in-toto+json")
    cfg = Blob(canonical_json({"architecture": "unknown", "os": "unknown", "config": {},
                               "rootfs": {"type": "layers",
                                          "diff_ids": [layer.digest]}}), MT_OCI_CONFIG)
    return Manifest(cfg, [layer], "oci")


def big_image(total_mb=100, layers=4, compression="gzip", level=1, seed=1, fmt="oci"):
    """busybox plus `layers` layers of random (incompressible) data, total_mb
    MiB in all, for benchmarks; ~3 s to build with gzip level 1."""
    rnd = random.Random(seed)
    per = (total_mb << 20) // layers
    ls = [Layer([Dir("data"), File("data/blob-%d.bin" % i, rnd.randbytes(per))], compression,
                level) for i in range(layers)]
    return busybox_image(fmt=fmt, extra_layers=ls, cmd=["ls", "-l", "/data"])


# --- hostile input -----------------------------------------------------------------------


class HostileCase:
    """A hostile image and what it must not do. outside: host paths the
    pull must not create; victims: {host path: content} to plant() before
    the pull, which must stay as they are (and not gain a hard link).
    target_dir should be a directory imaged could write to if it escaped
    (under its root, outside the snapshots): imaged's mount namespace makes
    the rest of the host read-only anyway."""

    def __init__(self, name, image, outside=(), victims=None, what=""):
        self.name, self.image, self.what = name, image, what
        self.outside = list(outside)
        self.victims = dict(victims or {})

    def plant(self):
        for p, data in self.victims.items():
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(data)

    def problems(self):
        out = ["%s was created outside the snapshot" % p for p in self.outside
               if os.path.lexists(p)]
        for p, data in self.victims.items():
            try:
                st = os.lstat(p)
                with open(p, "rb") as f:
                    got = f.read()
            except FileNotFoundError:
                out.append("victim %s was removed" % p)
                continue
            if not stat.S_ISREG(st.st_mode) or got != data:
                out.append("victim %s was modified" % p)
            if st.st_nlink != 1:
                out.append("victim %s gained a hard link (nlink %d)" % (p, st.st_nlink))
        return out

    def assert_untouched(self):
        pr = self.problems()
        assert not pr, "hostile image %s (%s):\n  %s" % (self.name, self.what, "\n  ".join(pr))

    def __repr__(self):
        return "<HostileCase %s>" % self.name


def _up(target):
    """A relative path that reaches target from any depth below 32."""
    return "../" * 32 + target.lstrip("/")


def _hostile(layers_entries):
    ls = [Layer([Dir("ok"), File("ok/file", "benign\n")])]
    ls += [Layer(es) for es in layers_entries]
    return Image(ls, default_cfg(), "oci")


def hostile_cases(target_dir):
    """{name: HostileCase} of images that try to write at or through
    target_dir (an absolute path): dotdot, absolute, symlink-dir,
    symlink-file, hardlink, planted-parent."""
    t = target_dir.rstrip("/")
    j = lambda n: os.path.join(t, n)  # noqa: E731
    cases = [
        HostileCase("dotdot", _hostile([[File(_up(j("escape-dotdot")), "pwned\n")]]),
                    [j("escape-dotdot")], what="an entry named ../../…/target"),
        HostileCase("absolute", _hostile([[File(j("escape-abs"), "pwned\n"),
                                           Dir(j("escape-abs-dir"))]]),
                    [j("escape-abs"), j("escape-abs-dir")], what="entries with absolute paths"),
        HostileCase("symlink-dir", _hostile([[
            Symlink("evil", t), File("evil/escape-symlink", "pwned\n"),
            Dir("evil/escape-symlink-dir"), Symlink("evil-rel", _up(t)),
            File("evil-rel/escape-symlink-rel", "pwned\n")]]),
            [j("escape-symlink"), j("escape-symlink-dir"), j("escape-symlink-rel")],
            what="a symlink to a directory outside, then entries through it"),
        HostileCase("symlink-file", _hostile([[
            Symlink("innocent", j("victim-symlink")), File("innocent", "pwned\n"),
            Symlink("innocent-rel", _up(j("victim-symlink-rel"))),
            File("innocent-rel", "pwned\n")]]), [],
            {j("victim-symlink"): b"victim\n", j("victim-symlink-rel"): b"victim\n"},
            what="a symlink to a file outside, then a file entry written over it"),
        HostileCase("hardlink", _hostile([[
            Hardlink("hl-abs", j("victim-hardlink")), File("hl-abs", "pwned\n"),
            Hardlink("hl-rel", _up(j("victim-hardlink-rel"))), File("hl-rel", "pwned\n")]]),
            [], {j("victim-hardlink"): b"victim\n", j("victim-hardlink-rel"): b"victim\n"},
            what="hard links to files outside, then file entries written over them"),
        HostileCase("planted-parent", _hostile([
            [Symlink("plant", t), Symlink("plant-rel", _up(t))],
            [File("plant/escape-planted", "pwned\n"), Dir("plant/escape-planted-dir"),
             File("plant-rel/escape-planted-rel", "pwned\n")]]),
            [j("escape-planted"), j("escape-planted-dir"), j("escape-planted-rel")],
            what="a lower layer's symlink used as a parent directory by the next layer"),
    ]
    return {c.name: c for c in cases}


def schema1_manifest(name="test", tag="latest"):
    """(media type, body) of a Docker schema 1 signed manifest, which imaged
    refuses. Serve it with FlakyProxy.serve: the registry will not take it."""
    body = {"schemaVersion": 1, "name": name, "tag": tag, "architecture": "amd64",
            "fsLayers": [{"blobSum": sha256_digest(b"")}],
            "history": [{"v1Compatibility": json.dumps({"id": "0" * 64, "created": CREATED})}],
            "signatures": [{"header": {"alg": "ES256"}, "signature": "AAAA", "protected": "e30"}]}
    return MT_DOCKER_SCHEMA1, json.dumps(body, indent=3).encode()


def malformed_manifests(image):
    """{name: (media type, body)}: broken variants of image's manifest, to
    serve with FlakyProxy.serve at the manifest path (the registry would
    refuse most of them on push). Each must give INVALID_ARGUMENT or a clear
    pull error, and leave imaged alive."""
    m = json.loads(image.manifest_bytes)
    mt = image.media_type

    def variant(f):
        x = json.loads(json.dumps(m))
        f(x)
        return mt, json.dumps(x).encode()

    first = lambda x: x["layers"][0]  # noqa: E731
    out = {
        "not-json": (mt, b'{"schemaVersion": 2, "layers": [ {'),
        "empty": (mt, b""),
        "json-array": (mt, b"[1, 2, 3]"),
        "schema-version-3": variant(lambda x: x.update(schemaVersion=3)),
        "no-config": variant(lambda x: x.pop("config")),
        "layers-not-array": variant(lambda x: x.update(layers={"a": 1})),
        "bad-digest-syntax": variant(lambda x: first(x).update(digest="sha256:zzzz")),
        "short-digest": variant(lambda x: first(x).update(digest="sha256:abcd")),
        "unknown-digest-algorithm": variant(lambda x: first(x).update(
            digest="md5:d41d8cd98f00b204e9800998ecf8427e")),
        "digest-path-traversal": variant(lambda x: first(x).update(
            digest="sha256:../../../../etc/passwd")),
        "negative-size": variant(lambda x: first(x).update(size=-1)),
        "wrong-size": variant(lambda x: first(x).update(size=first(x)["size"] + 1)),
        "huge-size": variant(lambda x: first(x).update(size=1 << 62)),
        "size-is-string": variant(lambda x: first(x).update(size="12")),
        "unknown-layer-media-type": variant(lambda x: first(x).update(
            mediaType="application/vnd.example.unknown")),
        "unknown-content-type": ("application/vnd.example.unknown+json", image.manifest_bytes),
        "deeply-nested": (mt, b"[" * 100000 + b"]" * 100000),
        "too-big": (mt, image.manifest_bytes[:-1] + b" " * (5 << 20) + b"}"),
        "index-empty": (MT_OCI_INDEX, json.dumps({"schemaVersion": 2, "mediaType": MT_OCI_INDEX,
                                                  "manifests": []}).encode()),
        "index-no-match": (MT_OCI_INDEX, json.dumps({
            "schemaVersion": 2, "mediaType": MT_OCI_INDEX,
            "manifests": [image.descriptor({"architecture": "s390x", "os": "zos"})]}).encode()),
    }
    out["schema1"] = schema1_manifest()
    return out
