"""pytest fixtures for crisp's integration tests (see harness.py).

Fixtures:
  cri             the generated CRI messages module (session)
  crispd_factory  make(config=..., cni_conflist=..., start=True) -> Crispd;
                  every crispd made is stopped and its temp dir removed
  crispd          a fresh running crispd for one test (empty CNI conf dir)
  crispd_net      a fresh running crispd with a bridge conflist (NetworkReady)
  shared_crispd   one running crispd per test module, for tests that only read

  ctr_images      (session) busybox images pushed to `registry`: .busybox
                  (CMD sleep 3600) and .nonroot (USER 1000:1000), as references
  pod_env_factory make(config=None, before_start=fn(crispd)) -> a pod_env
  pod_env         a running crispd for pod and container tests (small
                  runtime.log_line_max), the images pulled, and a CriObjects
                  whose pods and containers are all removed after the test:
                  pod_env.c, pod_env.cri, pod_env.images

The registry fixtures (registry, flaky, token_registry, ...) are in
fixtures_registry.py.

A failing test gets the log of every crispd that was running appended to its
report. Each test has a time limit (CRISP_TEST_TIMEOUT, default 120 s).
"""

import os
import pwd
import shutil
import signal
import stat
import tempfile

import types

import grpc
import pytest

import harness
import images
from fixtures_registry import *  # noqa: F401,F403 (registry fixtures, see there)

TEST_TIMEOUT = int(os.environ.get("CRISP_TEST_TIMEOUT", "120"))


def pytest_sessionstart(session):
    problems = []
    if os.geteuid() != 0:
        problems.append("the integration tests run crispd as root; run them as root")
    for name in ("crispd",) + harness.PROCESSES:
        p = os.path.join(harness.BUILD, name)
        if not os.access(p, os.X_OK):
            problems.append("%s is missing: build first (./build.sh test)" % p)
    try:
        pwd.getpwnam("crisp")
    except KeyError:
        problems.append("no 'crisp' user: run scripts/create-user crisp")
    if shutil.which("protoc") is None:
        problems.append("protoc is missing: apt-get install protobuf-compiler")
    session.config._crisp_problems = problems


@pytest.fixture(scope="session", autouse=True)
def _preconditions(request):
    problems = request.config._crisp_problems
    if problems:
        # A test that cannot run is a failure, never a skip: a missing build
        # must not look like a green run.
        pytest.fail("cannot run the integration tests:\n  " + "\n  ".join(problems),
                    pytrace=False)


@pytest.fixture(scope="session")
def cri_gen_dir():
    d = tempfile.mkdtemp(prefix="crisp-it-pb-", dir="/tmp")
    # Readable by the uid-65534 client of the auth tests.
    os.chmod(d, 0o755)
    harness.load_cri(d)
    for f in os.listdir(d):
        os.chmod(os.path.join(d, f), stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def cri(cri_gen_dir):
    return harness.cri


@pytest.fixture
def crispd_factory(cri):
    made = []

    def make(config=None, cni_conflist=False, start=True, **start_kw):
        c = harness.Crispd(config=config, cni_conflist=cni_conflist)
        made.append(c)
        if start:
            c.start(**start_kw)
        return c

    yield make
    for c in made:
        c.cleanup()


@pytest.fixture
def crispd(crispd_factory):
    return crispd_factory()


@pytest.fixture
def crispd_net(crispd_factory):
    return crispd_factory(cni_conflist=True)


@pytest.fixture(scope="module")
def shared_crispd(cri):
    c = harness.Crispd(cni_conflist=True)
    try:
        c.start()
        yield c
    finally:
        c.cleanup()


def _alarm(signum, frame):
    raise TimeoutError("test exceeded its %d s time limit" % TEST_TIMEOUT)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TEST_TIMEOUT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and harness.LIVE:
        for c in harness.LIVE:
            rep.sections.append(("crispd log (%s, pid %s)" % (c.dir, c.pid), c.tail()))


# --- pods and containers ------------------------------------------------------------

POD_LOG_LINE_MAX = 256  # runtime.log_line_max of pod_env: long lines are easy to make


@pytest.fixture(scope="session")
def ctr_images(registry):
    busybox = registry.push(images.busybox_image(cmd=["sleep", "3600"]), "crisp-ctr/busybox")
    nonroot = registry.push(images.nonroot_user_image(), "crisp-ctr/nonroot")
    return types.SimpleNamespace(busybox=busybox.ref, nonroot=nonroot.ref)


def pull_images(c, refs, timeout=60):
    """PullImage each ref; imaged's channel may still be coming up."""
    def pull(ref):
        try:
            return c.call("PullImage", harness.cri.PullImageRequest(
                image=harness.cri.ImageSpec(image=ref)), timeout=timeout).image_ref
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            return None
    for ref in refs:
        harness.wait_for(lambda: pull(ref), 20, interval=0.2, what="pulling " + ref)


@pytest.fixture
def pod_env_factory(crispd_factory, ctr_images):
    made = []

    def make(config=None, before_start=None):
        cfg = {"runtime": {"log_line_max": str(POD_LOG_LINE_MAX)}}
        for section, kv in (config or {}).items():
            cfg.setdefault(section, {}).update(kv)
        c = crispd_factory(config=cfg, start=False)
        if before_start:
            before_start(c)
        c.start()
        pull_images(c, [ctr_images.busybox, ctr_images.nonroot])
        env = types.SimpleNamespace(c=c, cri=harness.CriObjects(c), images=ctr_images,
                                    baseline_mounts=harness.mounts_under(c.dir))
        made.append(env)
        return env

    yield make
    for env in made:
        if env.c.running():
            env.cri.cleanup()
        else:  # the test stopped crisp: its pods go with crispd's cleanup
            for d in env.cri.log_dirs:
                shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def pod_env(pod_env_factory):
    return pod_env_factory()
