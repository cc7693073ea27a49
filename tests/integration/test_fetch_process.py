"""crisp-fetch: imaged's registry client runs in an unprivileged child that
exists only while fetches are in progress (imaged/fetch_client.c, fetch/).

imaged must not map libcurl; crisp-fetch runs with no capability under its
own seccomp filter, goes after an idle period (shortened here by the test
hook CRISP_TEST_FETCH_IDLE_MS, which needs --enable-test-hooks), and when
it is killed mid-pull that pull fails naming it, imaged stays up, leaks no
fd, and the next pull starts a new one.
"""
import concurrent.futures
import json
import os
import signal
import time

import grpc
import pytest

import harness
import images
from harness import rpc_error
from test_images_pull import pull, push, imaged_pid

IDLE_MS = 1000
FETCH = "crisp-fetch"
PROXY_VARS = {"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
              "all_proxy", "NO_PROXY", "no_proxy"}

pytestmark = pytest.mark.skipif(not harness._build_defines("CRISP_TEST_HOOKS"),
                                reason="needs a build with --enable-test-hooks")


@pytest.fixture
def crispd_fetch(crispd_factory):
    """crispd whose imaged closes crisp-fetch after IDLE_MS without fetches;
    imaged also gets a proxy variable (for a host nothing pulls from) and
    another variable, to check which ones crisp-fetch inherits."""
    c = crispd_factory(start=False)
    c.start(argv=["/usr/bin/env", "CRISP_TEST_FETCH_IDLE_MS=%d" % IDLE_MS,
                  "NO_PROXY=crisp-test.invalid", "CRISP_TEST_SECRET=not-for-fetch",
                  harness.CRISPD, "--config", c.conf])
    return c


def fetch_children(c):
    return [pid for pid, comm in harness.children(imaged_pid(c)) if comm == FETCH]


def wait_for(what, cond, timeout=10.0):
    return harness.wait_for(cond, timeout, interval=0.02, what=what)


def status_of_layers(c, ref):
    """The layer digests of an image's manifest (ImageStatus verbose)."""
    st = c.call("ImageStatus", harness.cri.ImageStatusRequest(
        image=harness.cri.ImageSpec(image=ref), verbose=True))
    return json.loads(st.info["manifest"])["layers"]


def images_answer(c):
    try:
        c.call("ListImages", harness.cri.ListImagesRequest())
        return True
    except grpc.RpcError:
        return False


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def slow_image(registry, flaky, name, rate=256 << 10):
    """A pushed image whose layer the proxy sends at rate bytes/s: a pull of
    p.via(flaky.host) takes a few seconds."""
    img = images.busybox_image(env=["WHICH=" + name])
    p = push(registry, img, "fetch/" + name, "v1")
    flaky.throttle(img.layer_path(p.repo), rate=rate)
    return img, p


def test_fetch_runs_confined_and_only_while_needed(crispd_fetch, registry, flaky):
    c = crispd_fetch
    assert fetch_children(c) == [], "crisp-fetch runs before any pull"
    img, p = slow_image(registry, flaky, "confined")
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(pull, c, p.via(flaky.host))
        pids = wait_for("crisp-fetch to start", lambda: fetch_children(c))
        assert len(pids) == 1, pids
        st = harness.proc_status(pids[0])
        assert fut.result(timeout=60) == img.id
    # Read while the pull ran: no capability at all, its own filter on top
    # of imaged's (Seccomp 2: filter mode), no_new_privs.
    for k in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert int(st[k], 16) == 0, (k, st[k])
    assert st["Seccomp"] == "2", st["Seccomp"]
    assert st["NoNewPrivs"] == "1"
    assert int(st["PPid"]) == imaged_pid(c)
    # Gone once idle, and started again by the next pull.
    wait_for("crisp-fetch to exit when idle", lambda: fetch_children(c) == [],
             timeout=IDLE_MS / 1000 + 5)
    img2 = images.busybox_image(env=["WHICH=again"])
    p2 = push(registry, img2, "fetch/again", "v1")
    assert pull(c, p2.ref) == img2.id
    wait_for("crisp-fetch to exit when idle", lambda: fetch_children(c) == [],
             timeout=IDLE_MS / 1000 + 5)
    assert "crisp-fetch exited with" not in "".join(
        l for l in c.lines(0) if "<4>" in l or "<3>" in l), "an unclean exit was logged"


def test_fetch_environment_is_proxy_variables_only(crispd_fetch, registry, flaky):
    c = crispd_fetch
    img, p = slow_image(registry, flaky, "environ")
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(pull, c, p.via(flaky.host))
        pid = wait_for("crisp-fetch to start", lambda: fetch_children(c))[0]
        with open("/proc/%d/environ" % pid, "rb") as f:
            env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if kv)
        fds = sorted(int(fd) for fd in os.listdir("/proc/%d/fd" % pid))
        assert fut.result(timeout=60) == img.id
    assert {k.decode() for k in env} <= PROXY_VARS, env
    assert env.get(b"NO_PROXY") == b"crisp-test.invalid", env
    # stdin, stdout, stderr, its channel; the rest is its own (epoll,
    # sockets, the blob's pipe): nothing else of imaged's.
    assert fds[:4] == [0, 1, 2, 3], fds


def test_many_layers_more_than_sent_at_once(crispd_fetch, registry):
    """100 layers: more blob requests than imaged hands crisp-fetch at once
    (64); the rest wait in imaged, without a pipe each."""
    c = crispd_fetch
    imaged = imaged_pid(c)
    fds_before = fd_count(imaged)
    layers = [[images.File("layer-%d" % i, "layer %d\n" % i)] for i in range(100)]
    img = images.busybox_image(env=["WHICH=many"], extra_layers=layers)
    p = push(registry, img, "fetch/many", "v1")
    assert pull(c, p.ref) == img.id
    assert len(status_of_layers(c, p.ref)) == 101
    wait_for("crisp-fetch to exit when idle", lambda: fetch_children(c) == [],
             timeout=IDLE_MS / 1000 + 5)
    wait_for("imaged's fds back to %d (now %d)" % (fds_before, fd_count(imaged)),
             lambda: fd_count(imaged) == fds_before, timeout=5)


def test_imaged_does_not_map_libcurl(crispd_fetch, registry):
    c = crispd_fetch
    img = images.busybox_image(env=["WHICH=maps"])
    p = push(registry, img, "fetch/maps", "v1")
    assert pull(c, p.ref) == img.id
    with open("/proc/%d/maps" % imaged_pid(c)) as f:
        maps = f.read()
    for lib in ("libcurl", "libssl", "libgnutls", "libkrb5", "libldap", "libnghttp2"):
        assert lib not in maps, "imaged maps %s" % lib


def fail_pull_with(c, img, p, flaky, sig, delay=0.0, timeout=60):
    """Pull p slowly through flaky, send crisp-fetch sig once the layer's
    download started (delay s later), and return the pull's RpcError."""
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(rpc_error, pull, c, p.via(flaky.host))
        pid = wait_for("crisp-fetch to start", lambda: fetch_children(c))[0]
        layer = img.layer_path(p.repo)
        wait_for("the layer download to start", lambda: flaky.count(layer, "GET") > 0)
        time.sleep(delay)
        os.kill(pid, sig)
        return fut.result(timeout=timeout)


def test_fetch_filter_kills_a_write_open(crispd_fetch, registry, flaky):
    """The test hook (SIGUSR2) makes crisp-fetch read /etc/shadow, which uid
    0 owns (Landlock must refuse it), then open a file for writing in its
    working directory, imaged's own, which is writable in imaged's mount
    namespace: its seccomp filter must kill it first."""
    if harness.SECCOMP_DEBUG:
        pytest.skip("a seccomp debug build logs forbidden syscalls instead of killing")
    c = crispd_fetch
    img, p = slow_image(registry, flaky, "filter", rate=128 << 10)
    target = os.path.join(c.config["crispd"]["root_dir"], "imaged", "crisp-fetch-test-hook")
    mark = c.mark()
    err = fail_pull_with(c, img, p, flaky, signal.SIGUSR2, timeout=60)
    assert "crisp-fetch exited with signal %d" % signal.SIGSYS in err.details(), err.details()
    assert any("test hook: reading /etc/shadow: Permission denied" in ln
               for ln in c.lines(mark)), c.lines(mark)
    assert not os.path.exists(target)
    assert pull(c, p.ref) == img.id


def test_fetch_breaking_the_protocol_is_killed(crispd_fetch, registry, flaky):
    """The test hook (SIGUSR1) makes crisp-fetch send imaged a message imaged
    never asked for: imaged kills it (SIGKILL), the pull fails, imaged stays."""
    c = crispd_fetch
    imaged = imaged_pid(c)
    img, p = slow_image(registry, flaky, "violation", rate=128 << 10)
    mark = c.mark()
    err = fail_pull_with(c, img, p, flaky, signal.SIGUSR1, timeout=60)
    assert "crisp-fetch exited with signal 9" in err.details(), err.details()
    assert any("protocol violation by fetch" in l for l in c.lines(mark)), c.lines(mark)
    assert imaged_pid(c) == imaged
    assert pull(c, p.ref) == img.id


def test_fetch_that_stops_progressing_is_killed(crispd_factory, registry, flaky):
    """A crisp-fetch that leaves its requests without a reply or a byte (here
    stopped with SIGSTOP; a hang or a compromised one alike) is killed by
    imaged's watchdog, so no pull waits for ever; the next pull works."""
    c = crispd_factory(start=False)
    c.start(argv=["/usr/bin/env", "CRISP_TEST_FETCH_IDLE_MS=%d" % IDLE_MS,
                  "CRISP_TEST_FETCH_SILENCE_MS=1500", harness.CRISPD, "--config", c.conf])
    imaged = imaged_pid(c)
    img, p = slow_image(registry, flaky, "stopped", rate=128 << 10)
    err = fail_pull_with(c, img, p, flaky, signal.SIGSTOP, timeout=30)
    assert "crisp-fetch made no progress on its requests: killed" in err.details(), \
        err.details()
    assert imaged_pid(c) == imaged
    assert pull(c, p.ref) == img.id


def test_fetch_killed_mid_pull_fails_that_pull_only(crispd_fetch, registry, flaky):
    c = crispd_fetch
    imaged = imaged_pid(c)
    fds_before = fd_count(imaged)
    img, p = slow_image(registry, flaky, "killed", rate=128 << 10)
    err = fail_pull_with(c, img, p, flaky, signal.SIGKILL, delay=0.3, timeout=60)
    assert "crisp-fetch exited with signal 9" in err.details(), err.details()
    assert imaged_pid(c) == imaged, "imaged was restarted"
    assert c.serves(timeout=5)
    # The next pull starts a new crisp-fetch and succeeds (the same image,
    # straight from the registry, resuming what the first one stored).
    assert pull(c, p.ref) == img.id
    assert imaged_pid(c) == imaged
    wait_for("crisp-fetch to exit when idle", lambda: fetch_children(c) == [],
             timeout=IDLE_MS / 1000 + 5)
    # Pipes, the channel and the pidfd all closed again.
    wait_for("imaged's fds back to %d (now %d)" % (fds_before, fd_count(imaged)),
             lambda: fd_count(imaged) == fds_before, timeout=5)


def test_fetch_dies_with_imaged(crispd_fetch, registry, flaky):
    """imaged killed mid-pull: its crisp-fetch goes too (parent-death
    signal), and the restarted imaged pulls with a new one."""
    c = crispd_fetch
    imaged = imaged_pid(c)
    img, p = slow_image(registry, flaky, "orphan", rate=128 << 10)
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(rpc_error, pull, c, p.via(flaky.host))
        pid = wait_for("crisp-fetch to start", lambda: fetch_children(c))[0]
        os.kill(imaged, signal.SIGKILL)
        fut.result(timeout=60)
    wait_for("crisp-fetch %d to die with imaged" % pid, lambda: not harness.alive(pid))
    wait_for("imaged to be restarted",
             lambda: c.children().get("crisp-imaged") not in (None, imaged), timeout=30)
    wait_for("the new imaged to answer", lambda: images_answer(c), timeout=30)
    assert pull(c, p.ref, timeout=60) == img.id
