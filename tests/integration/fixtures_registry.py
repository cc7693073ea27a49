"""pytest fixtures for the tests that need an OCI registry (registry.py,
tokenserver.py, images.py); conftest.py imports them.

  registry          (session) a plain-HTTP docker-registry, no auth
  registry_factory  make(**Registry kwargs) -> a started Registry of the
                    test's own (e.g. to stop it mid-pull); cleaned up after
  flaky             a FlakyProxy in front of `registry`, no rules; stopped
                    after the test (which also ends any stalled answer)
  token_registry    (session) a registry behind a TokenServer
                    (token_registry.token_server): TOKEN_USERS may pull, the
                    admin may do anything, anonymous clients are denied
  token_server      that TokenServer, its requests forgotten before the test
                    and its settings restored after it
  basic_registry    (session) htpasswd basic auth, BASIC_USERS
  tls_registry      (session) HTTPS with a CA of its own: tls_registry.ca_file

Every registry keeps its log in registry.log_path (registry.tail() shows it).
"""

import pytest

from registry import FlakyProxy, Registry
from tokenserver import TokenServer

__all__ = ["registry", "registry_factory", "flaky", "token_registry", "token_server",
           "basic_registry", "tls_registry", "TOKEN_USERS", "BASIC_USERS"]

TOKEN_USERS = {"alice": "wonderland"}
BASIC_USERS = {"bob": "builder"}


@pytest.fixture(scope="session")
def registry():
    r = Registry()
    try:
        yield r.start()
    finally:
        r.cleanup()


@pytest.fixture
def registry_factory():
    made = []

    def make(start=True, **kw):
        r = Registry(**kw)
        made.append(r)
        return r.start() if start else r

    yield make
    for r in made:
        r.cleanup()


@pytest.fixture
def flaky(registry):
    p = FlakyProxy(registry).start()
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture(scope="session")
def token_registry():
    ts = TokenServer(users=TOKEN_USERS).start()
    r = Registry(auth="token", token_server=ts)
    try:
        yield r.start()
    finally:
        r.cleanup()
        ts.cleanup()


@pytest.fixture
def token_server(token_registry):
    ts = token_registry.token_server
    saved = (ts.anonymous, list(ts.public), ts.grants, ts.expires_in, dict(ts.users))
    ts.reset()
    try:
        yield ts
    finally:
        ts.anonymous, ts.public, ts.grants, ts.expires_in, ts.users = saved
        ts.reset()


@pytest.fixture(scope="session")
def basic_registry():
    r = Registry(auth="htpasswd", users=BASIC_USERS)
    try:
        yield r.start()
    finally:
        r.cleanup()


@pytest.fixture(scope="session")
def tls_registry():
    r = Registry(tls=True)
    try:
        yield r.start()
    finally:
        r.cleanup()
