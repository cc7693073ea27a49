"""Removing images and containers' writable layers without blocking imaged:
RemoveImage (and SnapshotRemove, when a container goes) only renames what
no longer serves into imaged's trash (<root>/imaged/trash/), and a worker
thread deletes it there. What is checked is behaviour, never timing: image
calls answer right after RemoveImage and show the image gone; blobs and
snapshot directories leave their places, the trash empties, ImageFsInfo
drops; the same image pulled again at once is downloaded and unpacked
afresh and runs; a container's writable layer ends up deleted; and a trash
a crash left full is emptied at the next start, without following its
symlinks."""

import functools
import os

import pytest

import harness
import images
from harness import container_config, pod_config
from test_images_pull import (blob_files, fs_info, image_of, imaged_pid, imaged_root, list_images,
                              pull, push, ready_crispd, remove, snapshot_dirs, start, status,
                              unverified_blobs)

MiB = 1 << 20
BIG_MB = 30
BIG_LAYERS = 4
TRASH_TIMEOUT = 30


@pytest.fixture
def crispd(crispd_factory):
    return ready_crispd(crispd_factory)


@functools.lru_cache(maxsize=None)
def big():
    """busybox and four layers of random data, ~30 MiB in all (built once)."""
    return images.big_image(total_mb=BIG_MB, layers=BIG_LAYERS)


def blob_set(img):
    return {img.digest, img.id} | {b.digest for b in img.layer_blobs}


def trash_dir(c):
    return os.path.join(imaged_root(c), "trash")


def trash_entries(c):
    d = trash_dir(c)
    return os.listdir(d) if os.path.isdir(d) else []


def wait_trash_empty(c):
    harness.wait_for(lambda: not trash_entries(c), TRASH_TIMEOUT, interval=0.1,
                     what="imaged's trash to be emptied (left: %s)" % trash_entries(c))


def fds_into_trash(c):
    """imaged's open fds on the trash or anything in it."""
    pid, top = imaged_pid(c), trash_dir(c)
    out = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except FileNotFoundError:
            continue
        if target == top or target.startswith(top + "/"):
            out.append(target)
    return out


def used_bytes(c):
    return fs_info(c).image_filesystems[0].used_bytes.value


def pull_big(c, registry, repo):
    img = big()
    pushed = push(registry, img, repo, "v1")
    before = snapshot_dirs(c)
    pull(c, pushed.ref)
    layer_dirs = snapshot_dirs(c) - before
    assert len(layer_dirs) == len(img.layer_blobs), \
        "expected a snapshot per layer, got %s" % sorted(layer_dirs)
    assert blob_set(img) <= set(blob_files(c))
    return img, pushed, layer_dirs


def test_remove_image_deletes_through_the_trash(crispd, registry):
    c = crispd
    img, pushed, layer_dirs = pull_big(c, registry, "removal/big")
    used_before = used_bytes(c)

    remove(c, pushed.ref)
    # Image calls answer right away, and the image is gone from them.
    assert img.id not in {i.id for i in list_images(c)}
    assert not status(c, pushed.ref).HasField("image")
    # Its blobs and snapshot directories leave their places (RemoveImage
    # answers just before the collection runs: poll briefly) ...
    harness.wait_for(lambda: not (blob_set(img) & set(blob_files(c))) and
                     not (layer_dirs & snapshot_dirs(c)), 5,
                     what="the image's blobs and snapshots to leave blobs/ and snapshots/")
    # ... and ImageFsInfo, counted from what is stored, drops at once by
    # at least the compressed blobs (the unpacked layers come on top).
    assert used_bytes(c) <= used_before - BIG_MB * MiB, (used_before, used_bytes(c))
    # The worker deletes them from the trash, and keeps no fd of it: only
    # the trash directory's own, which imaged holds for its moves.
    wait_trash_empty(c)
    harness.wait_for(lambda: fds_into_trash(c) == [trash_dir(c)], 5,
                     what="imaged to hold only its trash directory fd (%s)" % fds_into_trash(c))
    assert not unverified_blobs(c)


def test_stop_right_after_remove(crispd, registry):
    """imaged's exit does not wait for the trash; the next start finishes."""
    c = crispd
    img, pushed, layer_dirs = pull_big(c, registry, "removal/stop")
    pid = imaged_pid(c)
    remove(c, pushed.ref)
    assert c.terminate(timeout=20) == 0, "crispd did not stop cleanly"
    assert not os.path.exists("/proc/%d/exe" % pid), "imaged outlived crispd"
    c.stop()
    start(c)
    wait_trash_empty(c)
    assert img.id not in {i.id for i in list_images(c)}
    assert not (blob_set(img) & set(blob_files(c)))
    assert not (layer_dirs & snapshot_dirs(c))


def test_pull_again_right_after_remove(crispd, registry):
    c = crispd
    img, pushed, layer_dirs = pull_big(c, registry, "removal/again")
    remove(c, pushed.ref)
    # At once, while the trash may still hold the old content: a new pull
    # must download and unpack afresh, never find content being deleted.
    before = snapshot_dirs(c)
    assert pull(c, pushed.ref) == img.id
    new_dirs = snapshot_dirs(c) - before
    assert image_of(c, pushed.ref).id == img.id
    wait_trash_empty(c)
    # Once the trash is empty, everything the image needs is still there:
    # new snapshot directories (ids are never reused) and verified blobs.
    assert blob_set(img) <= set(blob_files(c))
    assert not unverified_blobs(c)
    assert not (layer_dirs & snapshot_dirs(c)), "old snapshot directories came back"
    assert len(new_dirs) == len(img.layer_blobs) and new_dirs <= snapshot_dirs(c)
    for d in new_dirs:
        assert os.path.isdir(os.path.join(imaged_root(c), "snapshots", d, "fs"))

    # And it runs: every data file has its full size in the container.
    per = (BIG_MB * MiB) // BIG_LAYERS
    script = " && ".join("test $(wc -c < /data/blob-%d.bin) -eq %d" % (i, per)
                         for i in range(BIG_LAYERS))
    k = harness.CriObjects(c)
    try:
        pod = k.run_pod(pod_config("removal-again"))
        cid = k.run(pod, container_config("check", pushed.ref, command=["sh", "-c", script]))
        st = k.wait_state(cid, harness.cri.CONTAINER_EXITED, timeout=60)
        assert st.exit_code == 0, "the re-pulled image's files are not whole"
    finally:
        k.cleanup()


def test_removed_container_layer_is_deleted(crispd, registry):
    c = crispd
    pushed = push(registry, images.busybox_image(), "removal/ctr", "v1")
    pull(c, pushed.ref)
    k = harness.CriObjects(c)
    try:
        pod = k.run_pod(pod_config("removal-ctr"))
        before = snapshot_dirs(c)
        cid = k.run(pod, container_config(
            "writer", pushed.ref,
            command=["sh", "-c", "dd if=/dev/zero of=/written bs=1M count=20 2>/dev/null"]))
        st = k.wait_state(cid, harness.cri.CONTAINER_EXITED, timeout=60)
        assert st.exit_code == 0
        mine = snapshot_dirs(c) - before
        assert len(mine) == 1, "expected one writable snapshot, got %s" % sorted(mine)
        sid = mine.pop()
        written = os.path.join(imaged_root(c), "snapshots", sid, "fs", "written")
        assert os.path.getsize(written) == 20 * MiB

        k.remove(cid)
        harness.wait_for(lambda: sid not in snapshot_dirs(c), 5,
                         what="the writable layer to leave snapshots/")
        wait_trash_empty(c)
        # The image stays and still serves a new container.
        cid2 = k.run(pod, container_config("again", pushed.ref, command=["true"]))
        assert k.wait_state(cid2, harness.cri.CONTAINER_EXITED).exit_code == 0
    finally:
        k.cleanup()


def _make_tree(top, victim):
    """A tree like a snapshot's, read-only parts included, with symlinks
    out to victim."""
    os.makedirs(os.path.join(top, "fs", "a", "b"))
    with open(os.path.join(top, "fs", "a", "b", "data"), "wb") as f:
        f.write(os.urandom(MiB))
    os.symlink(victim, os.path.join(top, "fs", "a", "to-victim"))
    os.symlink(os.path.join(victim, "keep"), os.path.join(top, "fs", "keep-link"))
    os.chmod(os.path.join(top, "fs", "a", "b"), 0o555)
    os.chmod(os.path.join(top, "fs", "a"), 0o500)


def test_trash_left_by_a_crash_is_emptied_at_start(crispd, registry):
    c = crispd
    img, pushed, layer_dirs = pull_big(c, registry, "removal/crash")
    c.stop()
    victim = os.path.join(c.dir, "victim")
    os.makedirs(victim)
    with open(os.path.join(victim, "keep"), "w") as f:
        f.write("precious\n")
    # What a crash can leave: trash entries, a snapshot directory whose
    # record was already removed, a symlink in the trash itself.
    trash = trash_dir(c)
    assert os.path.isdir(trash), "imaged has no trash directory"
    _make_tree(os.path.join(trash, "snapshot-77.1.000000001.1"), victim)
    os.symlink(victim, os.path.join(trash, "link-to-victim"))
    orphan = os.path.join(imaged_root(c), "snapshots", "987654")
    _make_tree(orphan, victim)

    start(c)
    wait_trash_empty(c)
    assert not os.path.exists(orphan), "a snapshot directory no record owns is kept"
    with open(os.path.join(victim, "keep")) as f:
        assert f.read() == "precious\n", "deleting the trash followed a symlink"
    # The live image lost nothing.
    assert image_of(c, pushed.ref).id == img.id
    assert layer_dirs <= snapshot_dirs(c)
    assert blob_set(img) <= set(blob_files(c))
    assert not unverified_blobs(c)
