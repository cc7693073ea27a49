"""crisp-unpack's archive mode: imaged parses no import archive itself.
crisp-import's archive is read by "crisp-unpack archive", a child of imaged
with no capability, no file access (Landlock grants nothing, seccomp has no
open) and its own filter, which streams the entries back; imaged bounds
what it says. A child that dies halfway through the archive, or sends what
the protocol does not allow, fails the import with nothing left behind, and
the next import works.

Test hooks (--enable-test-hooks), from crispd's environment:
CRISP_TEST_UNPACK_DELAY_MS holds the child back once sandboxed,
CRISP_TEST_UNPACK_ARCHIVE=die<pass>|longname<pass> makes it die halfway
through the first entry of 1 MiB or more, or send a name longer than the
protocol allows, on reading <pass> (1: hashing, 2: copying into the content
store).
"""
import concurrent.futures
import os

import pytest

import harness
import images
from test_images_import import (import_fails, import_ok,
                                oci_layout, spool_dir, tar_bytes, write_archive)
from test_images_pull import (blob_files, imaged_pid, imaged_root, list_images, snapshot_dirs,
                              unverified_blobs, wait_imaged)
from test_unpack_process import crispd_with, unpack_children, wait_for

pytestmark = pytest.mark.skipif(not harness._build_defines("CRISP_TEST_HOOKS"),
                                reason="needs a build with --enable-test-hooks")


def archive_children(c):
    return [p for p in unpack_children(c) if harness.proc_cmdline(p)[1:2] == [b"archive"]]


def big_archive(name):
    """An OCI layout whose layer (2 MiB of random data) is too big to be kept
    in memory after the first reading: the second one copies it."""
    img = images.big_image(total_mb=6, layers=1, seed=7)
    return img, tar_bytes(oci_layout([(img, {"io.containerd.image.name": name})]))


def test_archive_read_by_a_child_without_capabilities(crispd_factory):
    c = crispd_with(crispd_factory, CRISP_TEST_UNPACK_DELAY_MS=1500)
    imaged = imaged_pid(c)
    img = images.busybox_image()
    path = write_archive(c, tar_bytes(oci_layout(
        [(img, {"io.containerd.image.name": "example.com/confined/archive:1"})])))
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(import_ok, c, path)
        pid = wait_for("crisp-unpack archive to start", lambda: archive_children(c))[0]
        wait_for("its own seccomp filter",
                 lambda: int(harness.proc_status(pid).get("Seccomp_filters", "0")) >
                 int(harness.proc_status(imaged)["Seccomp_filters"]))
        st = harness.proc_status(pid)
        fds = sorted(int(fd) for fd in os.listdir("/proc/%d/fd" % pid))
        out = fut.result(timeout=60)
    assert img.id in out, out
    assert int(st["PPid"]) == imaged
    for k in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert int(st[k], 16) == 0, (k, st[k])
    assert st["Seccomp"] == "2" and st["NoNewPrivs"] == "1", st
    # stdin, stdout, stderr, its socket and the archive: nothing else.
    assert fds == [0, 1, 2, 3, 4], fds
    wait_for("crisp-unpack to be reaped", lambda: unpack_children(c) == [], timeout=5)
    # imaged itself has no tar reader mapped.
    with open("/proc/%d/maps" % imaged) as f:
        maps = f.read()
    for lib in ("libarchive", "libxml2", "libicu", "libstdc++"):
        assert lib not in maps, lib


@pytest.mark.parametrize("hook,want", [
    ("die1", "crisp-unpack stopped in the middle of the archive"),
    ("die2", "crisp-unpack stopped in the middle of the archive"),
    ("longname1", "crisp-unpack broke the archive protocol: a name of 4097 bytes"),
    ("longname2", "crisp-unpack broke the archive protocol: a name of 4097 bytes"),
])
def test_child_that_breaks_off_or_lies_fails_the_import(crispd_factory, hook, want):
    c = crispd_with(crispd_factory, CRISP_TEST_UNPACK_ARCHIVE=hook)
    imaged = imaged_pid(c)
    name = "example.com/broken/" + hook + ":1"
    img, data = big_archive(name)
    path = write_archive(c, data)
    err = import_fails(c, path)
    assert want in err, err
    # The second reading copies the layer into the content store: the
    # hook hit the reading it names.
    assert ("rereading the archive" in err) == hook.endswith("2"), err
    assert imaged_pid(c) == imaged, "imaged was restarted"
    wait_for("crisp-unpack to be reaped", lambda: unpack_children(c) == [], timeout=5)
    # No image, no snapshot, no spool file, no partial blob: at most the
    # verified small blobs the second reading stored before it failed, as
    # for any import failing there (GC removes them).
    big = [b.digest for b in img.layer_blobs if b.size > (1 << 20)]
    assert big, "the archive has no big blob"
    assert list_images(c) == []
    assert snapshot_dirs(c) == set()
    assert os.listdir(spool_dir(c)) == []
    assert os.listdir(os.path.join(imaged_root(c), "ingest")) == []
    assert unverified_blobs(c) == []
    if hook.endswith("1"):
        assert blob_files(c) == {}, sorted(blob_files(c))
    assert not set(big) & set(blob_files(c)), sorted(blob_files(c))
    # The same archive, without the hook, imports.
    c.stop()
    c.start()
    wait_imaged(c)
    out = import_ok(c, write_archive(c, data))
    assert img.id in out, out
    assert os.listdir(spool_dir(c)) == []




def test_sparse_entry_read_through(crispd_factory):
    """A sparse entry (GNU 1.0, in pax headers whose names libarchive
    converts with iconv) is read through by the child: the fuzz seed has no
    image, so the import fails where import.c looks for one, after the
    whole archive was read, not in the reader."""
    c = crispd_with(crispd_factory)
    seed = os.path.join(harness.TOP, "tests", "fuzz", "seeds", "fuzz-import", "sparse-hole.tar")
    with open(seed, "rb") as f:
        err = import_fails(c, write_archive(c, f.read()))
    assert "neither an OCI image layout" in err, err
    assert os.listdir(spool_dir(c)) == []
    wait_for("crisp-unpack to be reaped", lambda: unpack_children(c) == [], timeout=5)
