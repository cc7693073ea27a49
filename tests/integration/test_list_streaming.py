"""The Stream* list methods of the CRI (KEP-5825, kubelet feature gate
CRIListStreaming): StreamPodSandboxes, StreamContainers, StreamContainerStats,
StreamPodSandboxStats, StreamPodSandboxMetrics and StreamImages send the
items of their List* twin, each in exactly one message, with the same
filters, then end OK; no item, no message. The test hook
CRISP_TEST_LIST_CHUNK_MAX (a --enable-test-hooks build) lowers the bound on
a message's bytes so that a few pods make several messages, and
CRISP_TEST_LIST_MESSAGE_MAX lowers the limit over which a unary List*
answer is refused RESOURCE_EXHAUSTED, naming its Stream* twin. Also: a
client that goes away mid-stream or before the answer, and a real 17 MiB
pod list (no hook needed)."""

import functools
import os
import signal

import grpc
import pytest

import harness
from harness import container_config, pod_config

HOOKS = harness._build_defines("CRISP_TEST_HOOKS")
# Bytes of items per stream message, with the test hook: a pod's item is
# about 160 bytes, a container's 360, so each goes alone, and a list of six
# pods is more messages than a stream keeps queued (list_reply.c's window).
CHUNK = 200

needs_hooks = pytest.mark.skipif(not HOOKS, reason="needs a build with --enable-test-hooks")

# Stream method -> (List method, the List response's field, the Stream
# response's field, an item's id)
KINDS = {
    "StreamPodSandboxes": ("ListPodSandbox", "items", "pod_sandboxes", lambda i: i.id),
    "StreamContainers": ("ListContainers", "containers", "containers", lambda i: i.id),
    "StreamContainerStats": ("ListContainerStats", "stats", "container_stats",
                             lambda i: i.attributes.id),
    "StreamPodSandboxStats": ("ListPodSandboxStats", "stats", "pod_sandbox_stats",
                              lambda i: i.attributes.id),
    "StreamPodSandboxMetrics": ("ListPodSandboxMetrics", "pod_metrics",
                                "pod_sandbox_metrics", lambda i: i.pod_sandbox_id),
    "StreamImages": ("ListImages", "images", "images", lambda i: i.id),
}


def stream(c, method, request=None, timeout=10):
    """Every message of a Stream* call, as a list (the call ended OK)."""
    cri = harness.cri
    request = request or getattr(cri, method + "Request")()
    with harness.channel(c.sock) as ch:
        fn = ch.unary_stream(harness.method_path(method),
                             request_serializer=lambda m: m.SerializeToString(),
                             response_deserializer=harness.response_class(method).FromString)
        return list(fn(request, timeout=timeout))


def compare(c, method, flt=None):
    """Stream method and its List twin with the same filter: the same item
    ids, none twice, every message within the bound unless it holds one
    item. Returns (ids, messages, the List answer's size)."""
    cri = harness.cri
    list_method, list_field, stream_field, ident = KINDS[method]
    lreq = getattr(cri, list_method + "Request")()
    sreq = getattr(cri, method + "Request")()
    if flt is not None:
        lreq.filter.CopyFrom(flt)
        sreq.filter.CopyFrom(flt)
    msgs = stream(c, method, sreq)
    listed = c.call(list_method, lreq)
    streamed = [ident(i) for m in msgs for i in getattr(m, stream_field)]
    want = [ident(i) for i in getattr(listed, list_field)]
    assert len(streamed) == len(set(streamed)), "%s sent an item twice: %s" % (method, streamed)
    assert sorted(streamed) == sorted(want), "%s %s: streamed %s, listed %s" % (
        method, flt, streamed, want)
    for m in msgs:
        n = len(getattr(m, stream_field))
        assert n >= 1, "%s sent a message without items" % method
        assert n == 1 or m.ByteSize() <= CHUNK, "%s: %d items in %d bytes" % (
            method, n, m.ByteSize())
    return streamed, len(msgs), listed.ByteSize()


def _with_env(c, env):
    c.start = functools.partial(harness.Crispd.start, c, env=env)


@pytest.fixture
def node(pod_env_factory):
    """Six pods (two labelled app=a, one app=b and stopped, three app=c),
    three containers (two running, one created). Debug log: a stream's end
    is logged there."""
    env = pod_env_factory(config={"crispd": {"log_level": "debug"}}, before_start=lambda c:
                          _with_env(c, {"CRISP_TEST_LIST_CHUNK_MAX": str(CHUNK)}))
    k = env.cri
    p1 = k.run_pod(pod_config("stream-1", labels={"app": "a"}))
    p2 = k.run_pod(pod_config("stream-2", labels={"app": "a"}))
    p3 = k.run_pod(pod_config("stream-3", labels={"app": "b"}))
    others = [k.run_pod(pod_config("stream-%d" % i, labels={"app": "c"})) for i in (4, 5, 6)]
    c1 = k.run(p1, container_config("one", env.images.busybox, labels={"tier": "x"}))
    c2 = k.create(p1, container_config("two", env.images.busybox, labels={"tier": "y"}))
    c3 = k.run(p2, container_config("three", env.images.busybox, labels={"tier": "x"}))
    k.stop_pod(p3)
    env.pods, env.others, env.ctrs = (p1, p2, p3), others, (c1, c2, c3)
    return env


@needs_hooks
def test_streams_equal_lists(node):
    c, cri = node.c, harness.cri
    p1, p2, p3 = node.pods
    c1, c2, c3 = node.ctrs
    for method in KINDS:
        ids, messages, size = compare(c, method)
        assert len(ids) >= 2 and size > CHUNK, "%s: too little to cut (%d items, %d bytes)" % (
            method, len(ids), size)
        assert messages > 1, "%s: %d items in one message" % (method, len(ids))
    ids, messages, _ = compare(c, "StreamPodSandboxes")
    assert set(ids) == {p1, p2, p3, *node.others} and messages == 6
    assert set(compare(c, "StreamContainers")[0]) == {c1, c2, c3}

    # the filters of each List* method, with the same meaning
    F = cri.PodSandboxFilter
    assert compare(c, "StreamPodSandboxes", F(id=p2))[0] == [p2]
    assert compare(c, "StreamPodSandboxes", F(id=p2[:12]))[0] == [p2]
    assert set(compare(c, "StreamPodSandboxes", F(
        state=cri.PodSandboxStateValue(state=cri.SANDBOX_READY)))[0]) == {p1, p2, *node.others}
    assert compare(c, "StreamPodSandboxes", F(
        state=cri.PodSandboxStateValue(state=cri.SANDBOX_NOTREADY)))[0] == [p3]
    assert set(compare(c, "StreamPodSandboxes", F(label_selector={"app": "a"}))[0]) == {p1, p2}

    F = cri.ContainerFilter
    assert compare(c, "StreamContainers", F(id=c3))[0] == [c3]
    assert set(compare(c, "StreamContainers", F(
        state=cri.ContainerStateValue(state=cri.CONTAINER_RUNNING)))[0]) == {c1, c3}
    assert compare(c, "StreamContainers", F(
        state=cri.ContainerStateValue(state=cri.CONTAINER_CREATED)))[0] == [c2]
    assert set(compare(c, "StreamContainers", F(pod_sandbox_id=p1))[0]) == {c1, c2}
    assert set(compare(c, "StreamContainers", F(label_selector={"tier": "x"}))[0]) == {c1, c3}

    F = cri.ContainerStatsFilter
    assert compare(c, "StreamContainerStats", F(id=c1))[0] == [c1]
    compare(c, "StreamContainerStats", F(pod_sandbox_id=p1))
    compare(c, "StreamContainerStats", F(label_selector={"tier": "x"}))

    F = cri.PodSandboxStatsFilter
    assert compare(c, "StreamPodSandboxStats", F(id=p1))[0] == [p1]
    compare(c, "StreamPodSandboxStats", F(label_selector={"app": "a"}))

    images = compare(c, "StreamImages")[0]
    busybox = c.call("ImageStatus", cri.ImageStatusRequest(
        image=cri.ImageSpec(image=node.images.busybox))).image.id
    assert compare(c, "StreamImages", cri.ImageFilter(
        image=cri.ImageSpec(image=node.images.busybox)))[0] == [busybox]
    assert len(images) >= 2


@needs_hooks
def test_empty_stream_ends_ok(node):
    """No item: no message, and the stream ends OK (the CRI's messages hold
    "at least one item")."""
    c, cri = node.c, harness.cri
    nobody = "f" * 64
    assert stream(c, "StreamPodSandboxes", cri.StreamPodSandboxesRequest(
        filter=cri.PodSandboxFilter(id=nobody))) == []
    assert stream(c, "StreamPodSandboxes", cri.StreamPodSandboxesRequest(
        filter=cri.PodSandboxFilter(label_selector={"app": "none"}))) == []
    assert stream(c, "StreamContainers", cri.StreamContainersRequest(
        filter=cri.ContainerFilter(id=nobody))) == []
    assert stream(c, "StreamContainerStats", cri.StreamContainerStatsRequest(
        filter=cri.ContainerStatsFilter(id=nobody))) == []
    assert stream(c, "StreamPodSandboxStats", cri.StreamPodSandboxStatsRequest(
        filter=cri.PodSandboxStatsFilter(id=nobody))) == []
    assert stream(c, "StreamImages", cri.StreamImagesRequest(
        filter=cri.ImageFilter(image=cri.ImageSpec(image="crisp-test/none:1")))) == []


@needs_hooks
def test_client_cancels_mid_stream(node):
    """A client that reads one message and goes away, while the rest of the
    stream waits for its flow-control window (a small one, that it does not
    grow), leaves crispd serving, its frontend the same process, and no
    error in the log; the frontend ends the call when it learns of it."""
    c, cri = node.c, harness.cri
    frontend = c.children().get(harness.FRONTEND)
    mark = c.mark()
    small_window = [("grpc.http2.lookahead_bytes", 1024), ("grpc.http2.bdp_probe", 0),
                    ("grpc.use_local_subchannel_pool", 1)]
    for method in ("StreamPodSandboxMetrics", "StreamPodSandboxes", "StreamContainers"):
        ch = grpc.insecure_channel("unix:" + c.sock, options=small_window)
        try:
            fn = ch.unary_stream(
                harness.method_path(method),
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=harness.response_class(method).FromString)
            it = fn(getattr(cri, method + "Request")(), timeout=10)
            next(it)
            it.cancel()
        finally:
            ch.close()
    c.wait_log(r"StreamPodSandboxMetrics from pid \d+: the client went away after", since=mark)
    assert c.serves()
    assert c.children().get(harness.FRONTEND) == frontend, "the frontend restarted"
    bad = [l for l in c.lines(mark) if "bug:" in l or " crit" in l.lower()]
    assert not bad, "\n".join(bad)
    # and the streams still answer in full
    assert len(compare(c, "StreamContainers")[0]) == 3


@needs_hooks
def test_client_gone_before_the_answer(node):
    """A client that gives up while runtimed is slow to answer: its stream
    is ended when the answer comes, not left open for ever."""
    c, cri = node.c, harness.cri
    runtimed = c.children()["crisp-runtimed"]
    mark = c.mark()
    os.kill(runtimed, signal.SIGSTOP)
    try:
        with pytest.raises(grpc.RpcError) as e:
            stream(c, "StreamContainerStats", timeout=0.5)
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        os.kill(runtimed, signal.SIGCONT)
    c.wait_log(r"StreamContainerStats from pid \d+: the client went away before the answer",
               since=mark)
    compare(c, "StreamContainerStats")


@needs_hooks
def test_unary_over_limit_names_stream(crispd_factory, cri):
    """A List* answer over the message limit (lowered by the test hook) is
    refused RESOURCE_EXHAUSTED with its size and its Stream* twin; the
    stream sends the same items, two pods a message."""
    c = crispd_factory(start=False)
    c.start(env={"CRISP_TEST_LIST_MESSAGE_MAX": "1500", "CRISP_TEST_LIST_CHUNK_MAX": "1000"})
    k = harness.CriObjects(c)
    try:
        pods = [k.run_pod(pod_config("big-%d" % i, annotations={"a": "x" * 300}))
                for i in range(4)]
        with pytest.raises(grpc.RpcError) as e:
            k.list_pods()
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "StreamPodSandboxes" in e.value.details() and "bytes" in e.value.details()
        msgs = stream(c, "StreamPodSandboxes")
        assert sorted(p.id for m in msgs for p in m.pod_sandboxes) == sorted(pods)
        assert [len(m.pod_sandboxes) for m in msgs] == [2, 2]
        # under the limit, the unary answer is as before
        assert [p.id for p in k.list_pods(id=pods[0])] == [pods[0]]
    finally:
        k.cleanup()


def test_list_over_16_mib(crispd, cri):
    """A pod list of 17 MiB: ListPodSandbox is refused RESOURCE_EXHAUSTED
    (gRPC itself would only say "Sent message larger than max"), and
    StreamPodSandboxes sends it in messages of at most 1 MiB of items,
    more of them than a stream keeps queued at once."""
    k = harness.CriObjects(crispd)
    try:
        pods = [k.run_pod(pod_config("huge-%d" % i, annotations={"a": "x" * (190 << 10)}))
                for i in range(90)]
        with pytest.raises(grpc.RpcError) as e:
            k.list_pods()
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "StreamPodSandboxes" in e.value.details(), e.value.details()
        msgs = stream(crispd, "StreamPodSandboxes", timeout=30)
        ids = [p.id for m in msgs for p in m.pod_sandboxes]
        assert len(ids) == len(set(ids)) and sorted(ids) == sorted(pods)
        assert 17 <= len(msgs) <= 20 and max(m.ByteSize() for m in msgs) <= (1 << 20)
        assert crispd.serves()
    finally:
        k.cleanup()
