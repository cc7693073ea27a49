"""runtimed mounts only the snapshots imaged prepared for the container it
creates (docs/PRIVSEP.md, Known gaps 9, closed): imaged puts an HMAC-SHA256
on each SnapshotMount, keyed by a secret crispd gives imaged and runtimed
only, over the container id and every field runtimed mounts by.

A frontend taken over is played by the test hook CRISP_TEST_SNAPSHOT_TAMPER
(a --enable-test-hooks build): for containers named tamper-upper*,
tamper-nomac* and tamper-lower* it changes imaged's answer before passing it
on. Each CreateContainer fails with PERMISSION_DENIED and a message saying
why; the running container A is unaffected; B leaves no mount, no bundle, no
record and no snapshot; an untampered CreateContainer then works. The key
survives restarts of imaged and runtimed (crispd keeps it) and a restarted
crispd draws a new one for imaged and runtimed alike."""

import functools
import os
import signal

import grpc
import pytest

import harness
from harness import container_config, pod_config, rpc_error

HOOKS = harness._build_defines("CRISP_TEST_HOOKS")


def _tampering(c):
    c.start = functools.partial(harness.Crispd.start, c, argv=[
        "/usr/bin/env", "CRISP_TEST_SNAPSHOT_TAMPER=1", harness.CRISPD, "--config", c.conf])


@pytest.fixture
def env(pod_env_factory):
    if not HOOKS:
        pytest.skip("needs a build with --enable-test-hooks (CRISP_TEST_SNAPSHOT_TAMPER)")
    return pod_env_factory(before_start=_tampering)


def _bundles(env):
    d = os.path.join(env.c.config["crispd"]["state_dir"], "runtimed", "bundles")
    return set(os.listdir(d)) if os.path.isdir(d) else set()


def _snapshot_dirs(env):
    d = os.path.join(env.c.config["crispd"]["root_dir"], "imaged", "snapshots")
    return set(os.listdir(d))


def _sleeper(name, image):
    return container_config(name, image, command=["sleep", "3600"])


def _refused(env, pod, name, image):
    """CreateContainer of a tampered mount: refused, nothing left behind."""
    k = env.cri
    mounts, bundles = harness.mounts_under(env.c.dir), _bundles(env)
    snaps = _snapshot_dirs(env)
    mark = env.c.mark()
    e = rpc_error(k.create, pod, _sleeper(name, image))
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED, (e.code(), e.details())
    assert "rootfs" in e.details() and "MAC" in e.details(), e.details()
    env.c.wait_log(r"crisp-runtimed.*security: CreateContainer .* refused", since=mark)
    assert harness.mounts_under(env.c.dir) == mounts
    assert _bundles(env) == bundles
    assert [c.metadata.name for c in k.list_containers()] == ["a"]
    # the frontend's rollback removed B's snapshot from imaged
    harness.wait_for(lambda: _snapshot_dirs(env) == snaps, 10, what="B's snapshot removed")
    return e.details()


def _a_unaffected(env, cri, a):
    k = env.cri
    assert k.status(a).state == cri.CONTAINER_RUNNING
    assert k.sh(a, "cat /a-was-here")[:2] == (0, "a\n")


def test_tampered_mounts_refused(env, cri):
    k = env.cri
    pod = k.run_pod(pod_config("snap-auth"))
    a = k.create(pod, _sleeper("a", env.images.busybox))
    k.start(a)
    assert k.sh(a, "echo a > /a-was-here")[0] == 0

    msg = _refused(env, pod, "tamper-upper", env.images.busybox)
    assert "not the one imaged prepared" in msg, msg
    _a_unaffected(env, cri, a)
    msg = _refused(env, pod, "tamper-nomac", env.images.busybox)
    assert "no MAC" in msg, msg
    _a_unaffected(env, cri, a)
    # another image: its first lowerdir replaced with busybox's
    msg = _refused(env, pod, "tamper-lower", env.images.nonroot)
    assert "not the one imaged prepared" in msg, msg
    _a_unaffected(env, cri, a)

    b = k.create(pod, _sleeper("b", env.images.nonroot))
    k.start(b)
    assert k.status(b).state == cri.CONTAINER_RUNNING
    assert k.sh(b, "test -e /a-was-here || echo clean")[:2] == (0, "clean\n")


def _create_runs(env, cri, pod, name):
    k = env.cri
    cid = k.create(pod, _sleeper(name, env.images.busybox))
    k.start(cid)
    assert k.status(cid).state == cri.CONTAINER_RUNNING
    return cid


def test_key_across_restarts(env, cri):
    """imaged and runtimed restarted: the same key from crispd, creates
    work; crispd restarted: a new key for both, creates work."""
    k = env.cri
    pod = k.run_pod(pod_config("snap-auth-restart"))
    _create_runs(env, cri, pod, "before")
    for name in ("crisp-imaged", "crisp-runtimed"):
        old = env.c.children()[name]
        os.kill(old, signal.SIGKILL)
        env.c.wait_new_pid(name, old, 15)
        harness.wait_for(lambda: _try_create(env, cri, pod, "after-" + name[6:]), 30,
                         interval=0.2, what="a create after %s restarted" % name)
    assert env.c.terminate(timeout=15) == 0
    env.c.start(timeout=30)
    pod2 = k.run_pod(pod_config("snap-auth-after-crispd"))
    harness.wait_for(lambda: _try_create(env, cri, pod2, "after-crispd"), 30, interval=0.2,
                     what="a create after crispd restarted")
    # the untampered path is never refused
    assert "security: CreateContainer" not in env.c.log_text()


def _try_create(env, cri, pod, name):
    try:
        return _create_runs(env, cri, pod, name)
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.UNAVAILABLE:
            raise
        return None
