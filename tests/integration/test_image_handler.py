"""ImageSpec.runtime_handler in the ImageService. crisp keeps one image
store for every runtime handler, so a handler of this node (the default,
by its runtime's name, or a [runtime_handler] section) changes nothing;
a handler the node does not have is refused with INVALID_ARGUMENT, as the
CRI asks, before imaged does anything."""

import shutil

import grpc
import pytest

import harness
import images
from harness import rpc_error
from test_images_pull import list_images, push, ready_crispd

BAD = "image.runtime_handler 'no-such' is not a runtime handler"


@pytest.fixture
def crispd(crispd_factory):
    runc = shutil.which("runc") or "/usr/sbin/runc"
    return ready_crispd(lambda: crispd_factory(config={'runtime_handler "alt"': {"path": runc}}))


def spec(ref, handler):
    return harness.cri.ImageSpec(image=ref, runtime_handler=handler)


def pull(c, ref, handler):
    return c.call("PullImage", harness.cri.PullImageRequest(image=spec(ref, handler)),
                  timeout=60).image_ref


def status(c, ref, handler):
    return c.call("ImageStatus", harness.cri.ImageStatusRequest(image=spec(ref, handler)))


def remove(c, ref, handler):
    c.call("RemoveImage", harness.cri.RemoveImageRequest(image=spec(ref, handler)), timeout=30)


def list_filtered(c, ref, handler):
    req = harness.cri.ListImagesRequest()
    req.filter.image.CopyFrom(spec(ref, handler))
    return list(c.call("ListImages", req).images)


def assert_refused(e):
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.code(), e.details())
    assert BAD in e.details(), e.details()


def test_unknown_handler_refused_before_any_pull(crispd, registry):
    img = images.busybox_image(env=["WHICH=handler-unknown"])
    p = push(registry, img, "handler/unknown", "v1")
    assert_refused(rpc_error(pull, crispd, p.ref, "no-such"))
    assert list_images(crispd) == [], "a refused pull stored an image"


@pytest.mark.parametrize("handler", ["", "runc", "alt"])
def test_known_handlers_share_one_store(crispd, registry, handler):
    img = images.busybox_image(env=["WHICH=handler-%s" % handler])
    p = push(registry, img, "handler/known", "v1")
    assert pull(crispd, p.ref, handler) == img.id
    # every handler sees the one store: the image pulled for this handler
    # is there for the others too
    for other in ("", "runc", "alt"):
        r = status(crispd, p.ref, other)
        assert r.HasField("image") and r.image.id == img.id, (other, r)
        assert [i.id for i in list_filtered(crispd, p.ref, other)] == [img.id], other
    assert_refused(rpc_error(status, crispd, p.ref, "no-such"))
    assert_refused(rpc_error(list_filtered, crispd, p.ref, "no-such"))
    assert_refused(rpc_error(remove, crispd, p.ref, "no-such"))
    assert status(crispd, p.ref, "").image.id == img.id, "a refused RemoveImage removed it"
    remove(crispd, p.ref, handler)
    assert not status(crispd, p.ref, "").HasField("image")


def test_status_of_unknown_handler_refused_even_without_image(crispd):
    assert_refused(rpc_error(status, crispd, "busybox:latest", "no-such"))


def test_create_container_refuses_an_unknown_image_handler(crispd):
    """CreateContainer's config.image is an ImageSpec too: the same rule, before
    anything is made (the pod id is never looked at)."""
    cfg = harness.container_config("box", "busybox:whatever")
    cfg.image.runtime_handler = "no-such"
    sc = harness.pod_config("handler-ctr")
    e = rpc_error(crispd.call, "CreateContainer", harness.cri.CreateContainerRequest(
        pod_sandbox_id="0" * 64, config=cfg, sandbox_config=sc))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.code(), e.details())
    assert "config.image.runtime_handler 'no-such' is not a runtime handler" in e.details()
