"""An ExecSync whose frontend dies takes its command with it. The client's
call dies with the frontend, so nobody is left to cancel the command: runtimed
sees that the channel the request came on is gone and kills the command as a
cancel (IPC_RUNTIMED_EXEC_CANCEL) or the exec's timeout would, whether
crisp-exec or the handler's `runc exec` started it. Without that the command
runs until it ends (here: ten minutes), holding one of the container's exec
slots."""

import os
import shutil
import threading

import grpc

import harness
from harness import container_config, pod_config, rpc_error
from test_exec_cancel import _exec_helpers, _try_exec


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def _commands(cid, marker):
    """Host pids of `sleep <marker>` processes inside container cid's cgroup."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        if _read("/proc/%s/cmdline" % p).split(b"\0")[:2] != [b"sleep", marker.encode()]:
            continue
        if cid.encode() in _read("/proc/%s/cgroup" % p):
            out.append(int(p))
    return out


def _frontend_death_kills(env, cid, marker):
    k = env.cri
    runtimed = env.c.children()["crisp-runtimed"]
    errors = []
    t = threading.Thread(target=lambda: errors.append(
        rpc_error(k.exec_sync, cid, ["sleep", marker], timeout=0, call_timeout=60)))
    t.start()
    pids = harness.wait_for(lambda: _commands(cid, marker), 10, what="the exec'd command")
    assert _exec_helpers(cid), "no exec helper runs the command"
    old = env.c.children()["crisp-frontend"]
    os.kill(old, 9)
    t.join(30)
    assert not t.is_alive() and errors[0].code() == grpc.StatusCode.UNAVAILABLE, errors
    harness.wait_for(lambda: not any(harness.alive(p) for p in pids), 5,
                     what="the orphaned command (pids %s) killed" % pids)
    harness.wait_for(lambda: not _exec_helpers(cid), 5, what="no exec helper left")
    assert env.c.children()["crisp-runtimed"] == runtimed, "runtimed restarted"
    env.c.wait_new_pid("crisp-frontend", old, 20)
    r = harness.wait_for(lambda: _try_exec(k, cid), 20, what="an exec on the new frontend")
    assert (r.exit_code, r.stdout) == (0, b"ok\n"), r


def test_frontend_death_kills_crisp_exec_command(pod_env, cri):
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("exec-orphan"))
    cid = k.run(pod, container_config("box", env.images.busybox))
    _frontend_death_kills(env, cid, "6011")


def test_frontend_death_kills_runc_exec_command(pod_env_factory, cri):
    env = pod_env_factory(config={'runtime_handler "alt"': {"path": shutil.which("runc") or
                                                             "/usr/sbin/runc"}})
    k = env.cri
    pod = k.run_pod(pod_config("exec-orphan-alt"), handler="alt")
    cid = k.run(pod, container_config("box", env.images.busybox))
    _frontend_death_kills(env, cid, "6012")
