"""The frontend survives hostile bytes on the CRI socket: garbage, truncated
HTTP/2, malformed protobuf; and it keeps serving everyone else meanwhile."""

import os
import random

import grpc
import pytest

import harness

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def _frontend(c):
    return c.children()[harness.FRONTEND]


def _still_same_frontend(c, pid):
    assert c.call("Version").runtime_name == "crisp"
    assert _frontend(c) == pid, "the frontend was restarted (it crashed?)"
    assert c.processes()["frontend"]["restarts"] == 0


def test_random_bytes(crispd):
    fe = _frontend(crispd)
    rnd = random.Random(1234)
    for n in (1, 7, 24, 100, 4096, 70000):
        s = harness.raw_connect(crispd.sock)
        try:
            s.sendall(bytes(rnd.getrandbits(8) for _ in range(n)))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may hang up before it has read it all
        harness.read_until_closed(s, timeout=0.5)
        s.close()
    _still_same_frontend(crispd, fe)


def test_half_preface_then_valid_call(crispd):
    fe = _frontend(crispd)
    s = harness.raw_connect(crispd.sock)
    s.sendall(PREFACE[:10])  # and then nothing: the connection stays open
    try:
        # Another client is served while that one hangs.
        assert crispd.call("Version").runtime_name == "crisp"
    finally:
        s.close()
    _still_same_frontend(crispd, fe)


def test_preface_then_garbage_frames(crispd):
    fe = _frontend(crispd)
    s = harness.raw_connect(crispd.sock)
    try:
        # Full preface, then a frame header announcing a huge frame of an
        # unknown type, then junk.
        s.sendall(PREFACE + b"\xff\xff\xff\xee\x00\x00\x00\x00\x01" + os.urandom(512))
    except (BrokenPipeError, ConnectionResetError):
        pass
    harness.read_until_closed(s, timeout=1)
    s.close()
    _still_same_frontend(crispd, fe)


def test_many_idle_connections(crispd):
    fe = _frontend(crispd)
    socks = [harness.raw_connect(crispd.sock) for _ in range(64)]
    try:
        assert crispd.call("Version").runtime_name == "crisp"
    finally:
        for s in socks:
            s.close()
    _still_same_frontend(crispd, fe)


@pytest.mark.parametrize("method", ["Version", "Status", "UpdateRuntimeConfig", "RuntimeConfig"])
def test_malformed_protobuf(crispd, method):
    fe = _frontend(crispd)
    e = harness.rpc_error(crispd.call, method, raw=b"\xff\xff\xff")
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.code(), e.details())
    _still_same_frontend(crispd, fe)


def test_deeply_wrong_field_types(crispd, cri):
    """Field 1 of UpdateRuntimeConfigRequest sent as a varint instead of a
    message: wrong wire type, must be INVALID_ARGUMENT."""
    fe = _frontend(crispd)
    e = harness.rpc_error(crispd.call, "UpdateRuntimeConfig", raw=b"\x08\x01")
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.code(), e.details())
    _still_same_frontend(crispd, fe)


def test_many_calls(crispd, cri):
    """A burst of calls on one channel, all answered."""
    fe = _frontend(crispd)
    with harness.channel(crispd.sock) as ch:
        fn = ch.unary_unary(harness.method_path("Version"),
                            request_serializer=lambda m: m.SerializeToString(),
                            response_deserializer=cri.VersionResponse.FromString)
        futs = [fn.future(cri.VersionRequest(), timeout=10) for _ in range(500)]
        for f in futs:
            assert f.result().runtime_name == "crisp"
    _still_same_frontend(crispd, fe)


def test_oversized_message(crispd):
    """Requests are limited to 16 MiB."""
    fe = _frontend(crispd)
    e = harness.rpc_error(crispd.call, "Version", raw=b"\x00" * (17 << 20), timeout=20)
    assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, (e.code(), e.details())
    _still_same_frontend(crispd, fe)


def test_large_message_within_limit(crispd, cri):
    """A 15 MiB request is read and judged on its content."""
    fe = _frontend(crispd)
    req = cri.UpdateRuntimeConfigRequest(runtime_config=cri.RuntimeConfig(
        network_config=cri.NetworkConfig(pod_cidr="1" * (15 << 20))))
    e = harness.rpc_error(crispd.call, "UpdateRuntimeConfig", req, timeout=20)
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.code(), e.details())
    _still_same_frontend(crispd, fe)
