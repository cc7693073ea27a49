"""What the full-filesystem tests (test_disk_full.py, test_state_full.py)
check of every call: it needed room and failed saying so, or succeeded,
and no crisp process died meanwhile."""

import grpc

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
