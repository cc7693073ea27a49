"""imaged's store over time: RemoveImage and the garbage collection of
blobs and snapshots (layers shared with another image stay), images that
survive a crispd restart, and a pull interrupted by kill -9 of imaged."""

import concurrent.futures
import os
import signal

import grpc
import pytest

import harness
import images
from test_images_pull import (blob_files, image_of, imaged_pid, imaged_root, layer_snapshot_ids,
                              list_images, pull, push, ready_crispd, remove, snapshot_dirs,
                              snapshot_rows, start, status, unverified_blobs, wait_imaged)


@pytest.fixture
def crispd(crispd_factory):
    return ready_crispd(crispd_factory)


def _blob_set(img):
    """Digests of the manifest, config and layers of an images.Image."""
    return {img.digest, img.id} | {b.digest for b in img.layer_blobs}


def _layer_dirs(c, img):
    """{snapshot dir name} of an image's layers; stops crispd, then starts it
    again."""
    c.stop()
    ids = {str(i) for i in layer_snapshot_ids(c, img.id)}
    start(c)
    return ids


def _settled(c, pred, what):
    """RemoveImage answers before its garbage collection has run: wait."""
    harness.wait_for(pred, 5, what=what)


def _shared_pair():
    """Two images on the same busybox base layer, each with a layer of its
    own."""
    a = images.busybox_image(env=["WHICH=gc-a"],
                             extra_layers=[[images.File("a.txt", "only in a\n")]])
    b = images.busybox_image(env=["WHICH=gc-b"],
                             extra_layers=[[images.File("b.txt", "only in b\n")]])
    assert a.layer_blobs[0].digest == b.layer_blobs[0].digest
    return a, b


def test_remove_and_gc_keeps_shared_layers(crispd, registry):
    a, b = _shared_pair()
    pa = push(registry, a, "gc/a", "v1")
    pb = push(registry, b, "gc/b", "v1")
    pull(crispd, pa.ref)
    pull(crispd, pb.ref)
    assert _blob_set(a) | _blob_set(b) <= set(blob_files(crispd))
    dirs_a, dirs_b = _layer_dirs(crispd, a), _layer_dirs(crispd, b)
    shared = dirs_a & dirs_b
    assert len(shared) == 1 and len(dirs_a) == len(dirs_b) == 2, (dirs_a, dirs_b)
    assert snapshot_dirs(crispd) == dirs_a | dirs_b

    remove(crispd, pa.ref)  # by tag
    gone = _blob_set(a) - _blob_set(b)
    _settled(crispd, lambda: not (gone & set(blob_files(crispd))) and
             snapshot_dirs(crispd) == dirs_b, "the GC of image a")
    assert not status(crispd, pa.ref).HasField("image")
    assert not status(crispd, a.id).HasField("image")
    assert [i.id for i in list_images(crispd)] == [b.id]
    blobs = set(blob_files(crispd))
    assert not (gone & blobs), "blobs of the removed image are still there: %r" % (
        sorted(gone & blobs))
    assert _blob_set(b) <= blobs, "a blob image b needs was removed: %r" % (
        sorted(_blob_set(b) - blobs))
    assert snapshot_dirs(crispd) == dirs_b, (
        "snapshot dirs %r, expected b's %r" % (snapshot_dirs(crispd), dirs_b))
    # b is whole: its layers are still committed and it can be removed too
    assert _layer_dirs(crispd, b) == dirs_b

    remove(crispd, b.id)  # by id
    _settled(crispd, lambda: not blob_files(crispd) and not snapshot_dirs(crispd),
             "the GC of image b")
    assert list_images(crispd) == []
    assert blob_files(crispd) == {}, "blobs left after removing every image: %r" % (
        sorted(blob_files(crispd)))
    assert snapshot_dirs(crispd) == set()
    crispd.stop()
    assert snapshot_rows(crispd) == []


def test_remove_by_digest_removes_every_name(crispd, registry):
    img = images.busybox_image(env=["WHICH=rm-digest"])
    p = push(registry, img, "gc/digest", "v1")
    pull(crispd, p.ref)
    pull(crispd, p.digest_ref)
    st = image_of(crispd, p.ref)
    assert list(st.repo_tags) == [p.ref] and list(st.repo_digests) == [p.digest_ref]
    remove(crispd, p.digest_ref)
    _settled(crispd, lambda: not blob_files(crispd) and not snapshot_dirs(crispd), "the GC")
    assert list_images(crispd) == []
    assert not status(crispd, p.ref).HasField("image")
    assert blob_files(crispd) == {} and snapshot_dirs(crispd) == set()


def test_pull_again_after_remove(crispd, registry):
    img = images.busybox_image(env=["WHICH=again"])
    p = push(registry, img, "gc/again", "v1")
    pull(crispd, p.ref)
    remove(crispd, p.ref)
    _settled(crispd, lambda: not blob_files(crispd) and not snapshot_dirs(crispd), "the GC")
    assert pull(crispd, p.ref) == img.id
    assert _blob_set(img) <= set(blob_files(crispd))
    assert image_of(crispd, p.ref).id == img.id


def test_images_survive_restart(crispd, registry):
    a = images.nonroot_user_image()
    b = images.busybox_image(env=["WHICH=restart"])
    pa = push(registry, a, "restart/a", "v1")
    pb = push(registry, b, "restart/b", "v1")
    pull(crispd, pa.ref)
    pull(crispd, pb.digest_ref)
    before = {i.id: i for i in list_images(crispd)}
    blobs, dirs = set(blob_files(crispd)), snapshot_dirs(crispd)
    crispd.stop()
    start(crispd)
    after = {i.id: i for i in list_images(crispd)}
    assert set(after) == {a.id, b.id} == set(before)
    for i in before:
        assert after[i] == before[i], "image %s changed across a restart:\n%s\n%s" % (
            i, before[i], after[i])
    assert image_of(crispd, pa.ref).uid.value == 1000
    assert image_of(crispd, pb.digest_ref).id == b.id
    assert set(blob_files(crispd)) == blobs and snapshot_dirs(crispd) == dirs
    # and the store still works: remove, GC, pull again (the layer is reused)
    remove(crispd, pa.ref)
    assert [i.id for i in list_images(crispd)] == [b.id]
    assert pull(crispd, pb.ref) == b.id


# --- kill -9 imaged in the middle of a pull ---------------------------------------------------


def test_kill_imaged_mid_pull(crispd, registry, flaky):
    img = images.big_image(total_mb=8, layers=2, seed=7)
    p = push(registry, img, "kill/big", "v1")
    ref = p.via(flaky.host)
    # Every layer stalls half way (test_completed_download_after_crash
    # covers a layer that was complete when imaged died).
    stalls = [flaky.stall(img.layer_path(p.repo, i), after=0.5, seconds=60)
              for i in range(len(img.layer_blobs))]
    ingest = os.path.join(imaged_root(crispd), "ingest")
    old = imaged_pid(crispd)
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(pull, crispd, ref, None, 60)

        def downloading():
            sent = [r.sent for r in flaky.seen(img.layer_path(p.repo, 1), "GET")]
            return any(sent) and os.path.isdir(ingest) and any(
                os.path.getsize(os.path.join(ingest, f)) > 0 for f in os.listdir(ingest))
        harness.wait_for(downloading, 20, what="the big layer's download to start")
        assert not fut.done(), "the pull ended before imaged was killed"
        os.kill(old, signal.SIGKILL)
        try:
            r = fut.result(timeout=20)
            raise AssertionError("the pull succeeded though imaged was killed: %s" % r)
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNAVAILABLE, (e.code(), e.details())
    assert stalls[0].hits >= 1
    crispd.wait_new_pid("crisp-imaged", old, timeout=10)
    wait_imaged(crispd)
    # Nothing of the interrupted pull is visible.
    assert list_images(crispd) == []
    assert not unverified_blobs(crispd), unverified_blobs(crispd)
    for l in img.layer_blobs:
        assert l.digest not in blob_files(crispd), "a partial layer became a blob"
    _assert_no_stray_snapshots(crispd)
    start(crispd)
    # A new pull succeeds (the stall rules fired once each: it goes through).
    flaky.clear()
    assert pull(crispd, ref, timeout=60) == img.id
    assert image_of(crispd, ref).id == img.id
    assert not unverified_blobs(crispd)
    _assert_no_stray_snapshots(crispd)


def _assert_no_stray_snapshots(c):
    """Stops crispd: no interrupted-unpack rows, every snapshot directory
    owned by a snapshot row."""
    dirs = snapshot_dirs(c)
    c.stop()
    rows = snapshot_rows(c)
    extract = [r for r in rows if r[1].startswith("extract-")]
    assert not extract, "interrupted unpacks left in metadata.db: %r" % extract
    owned = {str(r[0]) for r in rows}
    assert dirs <= owned, "snapshot directories no snapshot owns: %r" % sorted(dirs - owned)
    assert all(r[2] == "committed" for r in rows), rows


def test_completed_download_after_crash(crispd, registry, flaky):
    """imaged died after a layer's download was complete but before it was
    committed (the file is whole in ingest/): the next pull uses it."""
    img = images.busybox_image(env=["WHICH=complete-ingest"],
                               extra_layers=[[images.File("half", "x" * 100000)]])
    p = push(registry, img, "kill/complete", "v1")
    whole, half = img.layer_blobs
    crispd.stop()
    ingest = os.path.join(imaged_root(crispd), "ingest")
    with open(os.path.join(ingest, whole.digest.split(":")[1]), "wb") as f:
        f.write(whole.data)
    with open(os.path.join(ingest, half.digest.split(":")[1]), "wb") as f:
        f.write(half.data[:half.size // 2])
    start(crispd)
    assert pull(crispd, p.via(flaky.host)) == img.id
    for l in (whole, half):
        assert l.digest in blob_files(crispd)
    assert not unverified_blobs(crispd)
    ranges = [r.headers.get("range") for r in flaky.seen(img.layer_path(p.repo, 1), "GET")]
    assert ranges == ["bytes=%d-" % (half.size // 2)], ranges
    assert flaky.count(img.layer_path(p.repo, 0), "GET") == 0, "a complete layer was fetched"
