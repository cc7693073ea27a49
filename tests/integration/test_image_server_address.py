"""PullImage's AuthConfig.server_address: credentials are sent only to the
registry they are for. A kubelet passes each pull secret with the host it
was given for; as containerd does, a pull whose credentials name another
host goes anonymously (and fails as an anonymous pull does on a registry
that wants credentials), and one whose server_address names the image's
registry, with or without a scheme and a path, uses them."""

import grpc
import pytest

import harness
import images
from test_images_pull import list_images, pull, pull_error, push, ready_crispd

REFUSED = (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)
# A host:port nothing listens on: the credentials are for it, not for the
# registry under test.
OTHER_HOST = "127.0.0.1:9"


@pytest.fixture
def crispd(crispd_factory):
    return ready_crispd(crispd_factory)


def _auth(**kw):
    return harness.cri.AuthConfig(**kw)


def test_credentials_for_another_host_are_not_sent(crispd, basic_registry):
    img = images.busybox_image(env=["WHICH=server-address-other"])
    p = push(basic_registry, img, "scope/other", "v1")
    anonymous = pull_error(crispd, p.ref)
    assert anonymous.code() in REFUSED, (anonymous.code(), anonymous.details())
    e = pull_error(crispd, p.ref, auth=_auth(username="bob", password="builder",
                                             server_address="https://%s/v1/" % OTHER_HOST))
    assert e.code() == anonymous.code(), (e.code(), e.details())
    assert list_images(crispd) == []
    log = crispd.log_text()
    assert "credentials given are for 'https://%s/v1/'" % OTHER_HOST in log, log[-3000:]
    assert "builder" not in log, "a password was logged"


def test_token_server_never_sees_credentials_for_another_host(crispd, token_registry,
                                                              token_server):
    img = images.busybox_image(env=["WHICH=server-address-token"])
    p = push(token_registry, img, "private/scope-other", "v1")
    token_server.reset()
    e = pull_error(crispd, p.ref, auth=_auth(username="alice", password="wonderland",
                                             server_address=OTHER_HOST))
    assert e.code() in REFUSED, (e.code(), e.details())
    assert token_server.requests, "imaged asked the token server for nothing"
    assert not any(r.user for r in token_server.requests), token_server.requests
    # the same credentials for this registry work
    assert pull(crispd, p.ref, auth=_auth(username="alice", password="wonderland",
                                          server_address=token_registry.host)) == img.id


MATCHING = ["%s", "http://%s", "https://%s", "http://%s/", "https://%s/v2/",
            "HTTP://%s/v1/some/path"]


@pytest.mark.parametrize("form", MATCHING)
def test_server_address_naming_the_registry(crispd, basic_registry, form):
    img = images.busybox_image(env=["WHICH=server-address-%s" % form])
    repo = "scope/match-%d" % MATCHING.index(form)
    p = push(basic_registry, img, repo, "v1")
    auth = _auth(username="bob", password="builder", server_address=form % basic_registry.host)
    assert pull(crispd, p.ref, auth=auth) == img.id


def test_empty_server_address_is_any_host(crispd, basic_registry):
    img = images.busybox_image(env=["WHICH=server-address-empty"])
    p = push(basic_registry, img, "scope/empty", "v1")
    assert pull(crispd, p.ref, auth=_auth(username="bob", password="builder")) == img.id
