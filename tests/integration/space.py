"""What the full-filesystem tests (test_disk_full.py, test_state_full.py)
check of every call: it needed room and failed saying so, or succeeded,
and no crisp process died meanwhile."""

import grpc

import harness

# strerror's texts, SQLite's, and runc's (a Go program: "no space left on
# device"); compared without case
SPACE_WORDS = ("No space left on device", "disk is full", "Disk quota exceeded")

FAILED = object()


def assert_alive(env):
    """No crisp process died or was restarted (env.pids: crispd's children
    when the test began), and crisp still answers."""
    assert env.c.running(), "crispd exited"
    assert env.c.children() == env.pids, "a crisp process was restarted: %r -> %r" % (
        env.pids, env.c.children())
    assert env.c.call("Version", timeout=5).runtime_name == "crisp"
    env.c.status()


def space_error(e, what):
    """e is the RpcError of a call that needed room: it must say so."""
    assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, "%s: %s %s" % (
        what, e.code(), e.details())
    assert any(w.lower() in e.details().lower() for w in SPACE_WORDS), "%s: %s" % (
        what, e.details())


def attempt(what, fn, *args, **kw):
    """fn's result, or FAILED after checking that its failure is about room."""
    try:
        return fn(*args, **kw)
    except grpc.RpcError as e:
        space_error(e, what)
        return FAILED


def ok(x):
    return x is not FAILED


def remove_everything(env, pods, ctrs):
    """Stop and remove the containers and pods once room is back: nothing
    is listed, and nothing of them is left on the host."""
    k = env.cri
    for x in ctrs:
        k.stop(x, timeout=0)
        k.remove(x)
    for p in pods:
        k.stop_pod(p)
        k.remove_pod(p)
    assert not k.list_pods() and not k.list_containers()
    assert not harness.leftovers(env.c, list(pods) + list(ctrs), env.baseline_mounts)


def listed(k):
    """The pods' and containers' ids and states, to compare across a
    restart."""
    return (sorted((p.id, p.state) for p in k.list_pods()),
            sorted((x.id, x.state) for x in k.list_containers()))
