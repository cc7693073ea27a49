"""An ExecSync whose client goes away takes its command with it, as
containerd does: the frontend sees the call cancelled and asks runtimed
(IPC_RUNTIMED_EXEC_CANCEL) to kill the exec'd process, whether crisp-exec
or the handler's `runc exec` started it. Without a timeout the command
would otherwise run for ever, holding one of the container's exec slots.
A normal ExecSync is unchanged, and a client that gives up around the
moment its command ends harms nothing."""

import os
import shutil
import threading

import grpc

import harness
from harness import container_config, pod_config, rpc_error


def _cmdline(pid):
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            return f.read()
    except OSError:
        return b""


def _exec_helpers(cid):
    """Host pids of crisp-exec or `runc exec` still running for cid."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        argv = _cmdline(p).split(b"\0")
        if cid.encode() in argv and (b"crisp-exec" in argv[0] or b"exec" in argv[1:4]):
            out.append(int(p))
    return out


def _running(k, cid, marker):
    """Whether a process with marker among its arguments runs in cid."""
    r = k.exec_sync(cid, ["ps", "-o", "pid,args"])
    assert r.exit_code == 0, r
    return [line for line in r.stdout.decode().splitlines() if marker in line.split()[1:]]


def _cancel_kills(k, cid, marker):
    script = "echo $$ > /tmp/execpid; exec sleep %s" % marker
    e = rpc_error(k.exec_sync, cid, ["sh", "-c", script], timeout=0, call_timeout=1.5)
    assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, (e.code(), e.details())
    r = k.exec_sync(cid, ["cat", "/tmp/execpid"])
    pid = r.stdout.decode().strip()
    assert r.exit_code == 0 and pid.isdigit(), r
    harness.wait_for(lambda: k.exec_sync(cid, ["kill", "-0", pid]).exit_code != 0, 10,
                     what="the cancelled command killed")
    assert not _running(k, cid, marker)
    # what ran it is gone too: the exec's slot is free again
    harness.wait_for(lambda: not _exec_helpers(cid), 10, what="no exec helper left")


def test_cancel_kills_crisp_exec_command(pod_env, cri):
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("exec-cancel"))
    cid = k.run(pod, container_config("box", env.images.busybox))
    runtimed = env.c.children()["crisp-runtimed"]
    _cancel_kills(k, cid, "3601")
    # a cancel before the command could even start leaves nothing either
    for _ in range(5):
        try:
            k.exec_sync(cid, ["sleep", "3602"], timeout=0, call_timeout=0.05)
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, (e.code(), e.details())
    harness.wait_for(lambda: not _running(k, cid, "3602"), 10,
                     what="commands cancelled at their start killed")
    # an ordinary ExecSync is unchanged, with and without a timeout
    r = k.exec_sync(cid, ["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=0)
    assert (r.stdout, r.stderr, r.exit_code) == (b"out\n", b"err\n", 3), r
    r = k.exec_sync(cid, ["echo", "hi"], timeout=5)
    assert (r.stdout, r.exit_code) == (b"hi\n", 0), r
    assert env.c.children()["crisp-runtimed"] == runtimed


def test_cancel_kills_runc_exec_command(pod_env_factory, cri):
    env = pod_env_factory(config={'runtime_handler "alt"': {"path": shutil.which("runc") or
                                                             "/usr/sbin/runc"}})
    k = env.cri
    pod = k.run_pod(pod_config("exec-cancel-alt"), handler="alt")
    cid = k.run(pod, container_config("box", env.images.busybox))
    # killing `runc exec` would not reach this process: the pid file does
    _cancel_kills(k, cid, "3603")
    r = k.exec_sync(cid, ["sh", "-c", "exit 7"], timeout=0)
    assert r.exit_code == 7, r


def test_cancel_around_the_end_is_harmless(pod_env, cri):
    """Clients that give up about when their command ends: whether the
    cancel comes before the end, after it, or not at all, each call ends,
    no command is left and runtimed keeps serving."""
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("exec-cancel-end"))
    cid = k.run(pod, container_config("box", env.images.busybox))
    runtimed = env.c.children()["crisp-runtimed"]
    for i in range(12):
        try:
            r = k.exec_sync(cid, ["sleep", "0.%d" % (3 + i % 4)], timeout=0,
                            call_timeout=0.35 + 0.05 * (i % 3))
            assert r.exit_code == 0, r
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, (e.code(), e.details())
    harness.wait_for(lambda: not _exec_helpers(cid), 10, what="no exec helper left")
    assert not _running(k, cid, "0.3") and not _running(k, cid, "0.6")
    assert env.c.children()["crisp-runtimed"] == runtimed
    r = k.exec_sync(cid, ["echo", "still"], timeout=0)
    assert (r.stdout, r.exit_code) == (b"still\n", 0), r


def test_restarted_frontend_never_reuses_a_running_exec_id(pod_env, cri):
    """An exec whose frontend died is killed (test_exec_orphaned.py), but
    runtimed holds its id until the command is reaped; the next frontend's
    first exec must not collide with it ("already running"), which random
    starting ids (7df7c90) see to. Here the orphan is the first exec of its
    frontend, and the probe the first of the next one. Since runtimed kills
    orphans at once, the window this covers is short."""
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("exec-ids"))
    cid = k.run(pod, container_config("box", env.images.busybox))
    t = threading.Thread(target=lambda: rpc_error(k.exec_sync, cid, ["sleep", "3602"],
                                                  timeout=0, call_timeout=60))
    t.start()
    harness.wait_for(lambda: _exec_helpers(cid), 10, what="the exec to start")
    old = env.c.children()["crisp-frontend"]
    os.kill(old, 9)
    t.join()
    env.c.wait_new_pid("crisp-frontend", old, 20)
    r = harness.wait_for(lambda: _try_exec(k, cid), 20, what="an exec on the new frontend")
    assert r.exit_code == 0 and r.stdout == b"ok\n", r


def _try_exec(k, cid):
    try:
        return k.exec_sync(cid, ["echo", "ok"])
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.UNAVAILABLE, (e.code(), e.details())
        return None
