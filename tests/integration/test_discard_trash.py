"""What imaged throws away off its event loop: a download that failed its
digest check (deleted at once, unlike a broken one that a retry resumes) and
an import's spool archive go into <root>/imaged/trash (one rename), and the
trash's worker thread deletes them there. The kernel frees a file's pages on
the thread that drops it, which for gigabytes would hold every image call
behind it. Observable: imaged says at debug level what it moved into the
trash and that the trash deleted it; ingest/, the spool and the trash end
empty."""

import concurrent.futures
import os
import random
import re

import grpc

import harness
import images
import registry as registry_mod
from test_images_import import (import_fails, oci_layout, spool_dir, tar_bytes,
                                write_archive)
from test_images_pull import (assert_alive, blob_files, imaged_pid, imaged_root, pull, pull_error,
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


def test_pull_failing_while_a_layer_waits_to_be_committed(crispd_factory, registry, flaky):
    """A layer whose blob is complete waits for a worker thread to commit
    it (both are busy: two other pulls unpack, each held back by the test
    hook) when another layer of its pull fails its digest check. The
    failure ends the pull; the waiting commit runs later all the same, and
    the blob it commits was the job's to keep: imaged once freed it at the
    failure, and the commit then crashed it (SIGSEGV)."""
    c = crispd_factory(config={"crispd": {"log_level": "debug"}}, start=False)
    c.start(argv=["/usr/bin/env", "CRISP_TEST_UNPACK_DELAY_MS=4000", harness.CRISPD,
                  "--config", c.conf])
    wait_imaged(c)
    pid = imaged_pid(c)
    blockers = []
    for name in ("one", "two"):
        img = images.Image([images.Layer([images.File("blocker", name)])], images.default_cfg())
        blockers.append((img, push(registry, img, "trash/blocker-" + name, "v1")))
    rnd = random.Random(12)
    small = images.Layer([images.File("small", "waits for its commit\n")])
    big = images.Layer([images.Dir("data"), images.File("data/big.bin", rnd.randbytes(8 << 20))],
                       level=1)
    img = images.Image([small, big], images.default_cfg())
    p = push(registry, img, "trash/uncommitted", "v1")
    big_blob, small_blob = img.layer_blobs[1], img.layer_blobs[0]
    big_path = registry_mod.blob_path(p.repo, big_blob.digest)
    flaky.corrupt(big_path, offset=big_blob.size // 2)
    # The big blob comes late (through a second proxy), so the small one
    # is surely complete and waiting for its commit when the big one fails.
    front = registry_mod.FlakyProxy(flaky.url).start()
    front.delay(big_path, 1.0)
    try:
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            futs = [ex.submit(pull, c, bp.ref) for _, bp in blockers]
            # Both worker threads (UNPACK_THREADS) hold a blocker's layer now.
            harness.wait_for(lambda: len([1 for _, comm in harness.children(pid)
                                          if comm == "crisp-unpack"]) == 2, 20,
                             interval=0.02, what="both blockers to unpack")
            mark = c.mark()
            e = pull_error(c, p.via(front.host))
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.code(), e.details())
            assert big_blob.digest in (e.details() or ""), e.details()
            assert [f.result(timeout=60) for f in futs] == [b.id for b, _ in blockers]
    finally:
        front.stop()
    # The small layer's commit ran once a worker was free: its blob is
    # stored (it is sound), the corrupt one is not.
    harness.wait_for(lambda: small_blob.digest in blob_files(c) or
                     c.children().get("crisp-imaged") != pid, 10,
                     what="the waiting commit to store its blob")
    assert_alive(c, pid)
    assert small_blob.digest in blob_files(c)
    assert big_blob.digest not in blob_files(c)
    _moved_then_deleted(c, "ingest-sha256-%s" % big_blob.digest[7:19], mark)
    assert_alive(c, pid)
