"""What imaged throws away off its event loop: a download that failed its
digest check (deleted at once, unlike a broken one that a retry resumes) and
an import's spool archive go into <root>/imaged/trash (one rename), and the
trash's worker thread deletes them there. The kernel frees a file's pages on
the thread that drops it, which for gigabytes would hold every image call
behind it. Observable: imaged says at debug level what it moved into the
trash and that the trash deleted it; ingest/, the spool and the trash end
empty."""

import os
import re

import grpc

import harness
import images
import registry as registry_mod
from test_images_import import (import_fails, oci_layout, spool_dir, tar_bytes,
                                write_archive)
from test_images_pull import (assert_alive, blob_files, imaged_pid, imaged_root, pull_error,
                              push, wait_imaged)


def _debug_crispd(crispd_factory):
    c = crispd_factory(config={"crispd": {"log_level": "debug"}})
    wait_imaged(c)
    return c


def _trash(c):
    return os.path.join(imaged_root(c), "trash")


def _moved_then_deleted(c, moved, mark):
    """The trash's worker deleted entries after mark, one of them `moved`,
    which imaged said it moved into the trash before; the trash is empty
    again."""
    deleted = re.compile(r"crisp-imaged\[\d+\]: trash: deleted \d+ entries")

    def lines_until_deleted():
        lines = c.lines(mark)
        at = [i for i, ln in enumerate(lines) if deleted.search(ln)]
        return lines[:at[-1]] if at else None
    before = harness.wait_for(lines_until_deleted, 10, what="the trash deleting entries")
    assert [ln for ln in before if "crisp-imaged" in ln and "trash: %s moved in" % moved in ln], (
        "%s was not moved into the trash before it was emptied" % moved)
    harness.wait_for(lambda: os.listdir(_trash(c)) == [], 10, what="an empty trash")


def test_corrupt_download_is_deleted_through_the_trash(crispd_factory, registry, flaky):
    c = _debug_crispd(crispd_factory)
    img = images.big_image(total_mb=8, layers=1, seed=11)
    p = push(registry, img, "trash/corrupt", "v1")
    big = max(img.layer_blobs, key=lambda b: b.size)
    hexd = big.digest.split(":")[1]
    flaky.corrupt(registry_mod.blob_path(p.repo, big.digest), offset=big.size // 2)
    pid = imaged_pid(c)
    mark = c.mark()
    e = pull_error(c, p.via(flaky.host))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.code(), e.details())
    assert big.digest in (e.details() or ""), e.details()
    assert not os.path.exists(os.path.join(imaged_root(c), "ingest", hexd)), (
        "the corrupt download stayed in ingest/")
    assert big.digest not in blob_files(c)
    _moved_then_deleted(c, "ingest-sha256-%s" % hexd[:12], mark)
    assert_alive(c, pid)


def test_failed_import_archive_is_deleted_through_the_trash(crispd_factory):
    c = _debug_crispd(crispd_factory)
    img = images.busybox_image()
    files = oci_layout([(img, {"io.containerd.image.name": "trash/import:1"})])
    layer_name = "blobs/sha256/" + img.layer_blobs[0].digest[7:]
    files = [(n, (d[:-1] + bytes([d[-1] ^ 1])) if n == layer_name else d) for n, d in files]
    mark = c.mark()
    err = import_fails(c, write_archive(c, tar_bytes(files)))
    assert "corrupt or tampered" in err, err
    assert os.listdir(spool_dir(c)) == []
    assert os.listdir(os.path.join(imaged_root(c), "ingest")) == []
    name = re.search(r"import of (crisp-import-\w+\.tar) failed",
                     c.wait_log(r"import of crisp-import-\w+\.tar failed", since=mark)).group(1)
    _moved_then_deleted(c, name, mark)
