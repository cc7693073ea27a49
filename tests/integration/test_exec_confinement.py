"""ExecSync through crisp-exec (runtimed/exec.c) confines the process exactly
as the container's init is confined, and as `runc exec` would: the same
capability sets, no_new_privs, seccomp filter, ids and groups, namespaces and
cgroups; cwd and env of the container's process; the profile's blocked
syscalls blocked; exit codes and signal deaths reported; a missing executable
gives the CRI result runc gave; a timed-out process is killed; an exec into
a stopped container fails; crisp-exec refuses a pid that is not the
container's running init; other runtime handlers keep `runc exec`."""

import json
import os
import shutil
import signal
import subprocess

import grpc

import harness
from harness import container_config, pod_config, rpc_error

STATUS_FIELDS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp",
                 "Seccomp_filters", "Uid", "Gid", "Groups")
NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "uts", "user")


def status_fields(text):
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        if k in STATUS_FIELDS:
            out[k] = " ".join(v.split())
    assert set(out) == set(STATUS_FIELDS), out
    return out


def ok(k, cid, cmd):
    r = k.exec_sync(cid, cmd)
    assert r.exit_code == 0, (cmd, r.exit_code, r.stderr)
    return r.stdout.decode()


def bundle(env, cid):
    return os.path.join(env.c.config["crispd"]["state_dir"], "runtimed", "bundles", cid)


def runc_root(env):
    return os.path.join(env.c.config["crispd"]["state_dir"], "runtimed", "runc")


def runc_exec(env, cid, args):
    """`runc exec` of the container's own process with args, as runtimed ran
    it before crisp-exec: the reference crisp-exec must match."""
    with open(os.path.join(bundle(env, cid), "config.json")) as f:
        proc = json.load(f)["process"]
    proc["args"] = args
    proc["terminal"] = False
    proc.pop("consoleSize", None)
    path = os.path.join(bundle(env, cid), "exec-test-runc.json")
    with open(path, "w") as f:
        json.dump(proc, f)
    try:
        r = subprocess.run([shutil.which("runc") or "/usr/sbin/runc", "--root", runc_root(env),
                            "exec", "--process", path, cid], capture_output=True, timeout=30)
    finally:
        os.unlink(path)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode()


def confined_config(env, cri, name="confined"):
    cfg = container_config(name, env.images.busybox, env={"FOO": b"bar baz"}, workdir="/tmp")
    sc = cfg.linux.security_context
    sc.seccomp.profile_type = cri.SecurityProfile.RuntimeDefault
    sc.run_as_user.value = 1000
    sc.run_as_group.value = 1001
    sc.supplemental_groups.extend([2000, 3000])
    sc.capabilities.drop_capabilities.append("ALL")
    sc.capabilities.add_capabilities.append("CAP_NET_BIND_SERVICE")
    sc.no_new_privs = True
    return cfg


def test_exec_confined_like_init_and_runc(pod_env, cri):
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("exec-conf"))
    cid = k.run(pod, confined_config(env, cri))

    mine = status_fields(ok(k, cid, ["cat", "/proc/self/status"]))
    init = status_fields(ok(k, cid, ["cat", "/proc/1/status"]))
    assert mine == init
    assert mine["Uid"].split()[0] == "1000" and mine["Gid"].split()[0] == "1001", mine
    # the primary gid is among the groups too, as containerd has it
    assert mine["Groups"].split() == ["1001", "2000", "3000"], mine
    assert mine["NoNewPrivs"] == "1" and mine["Seccomp"] == "2", mine
    # CAP_NET_BIND_SERVICE only, and as a non-root uid none effective
    assert int(mine["CapBnd"], 16) == 1 << 10 and int(mine["CapEff"], 16) == 0, mine
    # the reference: what `runc exec` gives the same process
    assert status_fields(runc_exec(env, cid, ["cat", "/proc/self/status"])) == mine

    script = " ".join("echo %s $(readlink /proc/self/ns/%s) $(readlink /proc/1/ns/%s);" %
                      (n, n, n) for n in NAMESPACES)
    for line in ok(k, cid, ["sh", "-c", script]).splitlines():
        kind, a, b = line.split()
        assert a == b and a.startswith(kind + ":["), line
    assert ok(k, cid, ["cat", "/proc/self/cgroup"]) == ok(k, cid, ["cat", "/proc/1/cgroup"])
    assert ok(k, cid, ["pwd"]) == "/tmp\n"
    # the environment of the container's process, HOME included (runc adds
    # it from the container's /etc/passwd when the process has none)
    env_exec = ok(k, cid, ["cat", "/proc/self/environ"]).split("\0")
    assert env_exec == ok(k, cid, ["cat", "/proc/1/environ"]).split("\0")
    assert "FOO=bar baz" in env_exec and any(e.startswith("HOME=") for e in env_exec), env_exec
    assert env_exec == runc_exec(env, cid, ["cat", "/proc/self/environ"]).split("\0")
    # no fd of crisp-exec's or runtimed's reaches the process
    assert ok(k, cid, ["ls", "/proc/self/fd"]).split() == ["0", "1", "2", "3"]
    # the profile's blocked syscalls stay blocked
    r = k.exec_sync(cid, ["/bin/busybox", "unshare", "-U", "true"])
    assert r.exit_code != 0 and b"not permitted" in r.stderr, r


PROBE_C = r"""
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
/* errno of each syscall number given, as the filter answers it */
int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		long r = syscall(atol(argv[i]), -1L, -1L, -1L, -1L, -1L, -1L);
		printf("%s %s\n", argv[i], r < 0 ? strerrorname_np(errno) : "ok");
	}
	return 0;
}
"""


def test_exec_seccomp_answers_like_runc(pod_env, cri, tmp_path):
    """The same filter as runc's, -ENOSYS stub included: a syscall above the
    profile's highest fails with ENOSYS (libc falls back), one the profile
    leaves out below it with the default EPERM, an allowed one reaches the
    kernel."""
    env, k = pod_env, pod_env.cri
    src = tmp_path / "probe.c"
    src.write_text(PROBE_C)
    subprocess.run(["cc", "-static", "-O", "-o", str(tmp_path / "probe"), str(src)], check=True)
    pod = k.run_pod(pod_config("exec-scmp"))
    cid = k.run(pod, confined_config(env, cri))
    init = _init_pid(env, cid)
    shutil.copy(tmp_path / "probe", "/proc/%d/root/tmp/probe" % init)
    # 39 getpid (allowed), 246 kexec_load and 272 unshare (not in the
    # profile, below its highest), 1000 and 0x3fffffff (above it)
    nrs = ["39", "246", "272", "1000", str(0x3fffffff)]
    cache = os.path.join(bundle(env, cid), "exec-seccomp.bpf")
    assert not os.path.exists(cache)
    mine = ok(k, cid, ["/tmp/probe"] + nrs)
    assert mine == runc_exec(env, cid, ["/tmp/probe"] + nrs), mine
    got = dict(line.split() for line in mine.splitlines())
    assert got == {"39": "ok", "246": "EPERM", "272": "EPERM", "1000": "ENOSYS",
                   str(0x3fffffff): "ENOSYS"}, got
    # the compiled filter is kept for the next exec, and gives the same
    assert os.path.getsize(cache) > 0
    with open(cache, "rb") as f:
        compiled = f.read()
    assert ok(k, cid, ["/tmp/probe"] + nrs) == mine
    # a cache for another profile (or a damaged one) is not used: the
    # filter is compiled again and the file replaced
    for bad in (compiled.replace(b"SCMP_ACT_ERRNO", b"SCMP_ACT_ALLOW", 1), compiled[:-8],
                b"garbage"):
        with open(cache, "wb") as f:
            f.write(bad)
        assert ok(k, cid, ["/tmp/probe"] + nrs) == mine
        with open(cache, "rb") as f:
            assert f.read() == compiled


def test_exec_exit_codes_and_errors(pod_env, cri):
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("exec-codes"))
    cid = k.run(pod, container_config("box", env.images.busybox))
    assert k.exec_sync(cid, ["true"]).exit_code == 0
    r = k.exec_sync(cid, ["sh", "-c", "echo out; echo err >&2; exit 7"])
    assert (r.stdout, r.stderr, r.exit_code) == (b"out\n", b"err\n", 7)
    assert k.exec_sync(cid, ["sh", "-c", "kill -TERM $$"]).exit_code == 128 + 15
    assert k.exec_sync(cid, ["sh", "-c", "kill -KILL $$"]).exit_code == 128 + 9
    # as with runc: status 255 and runc's words on stderr
    r = k.exec_sync(cid, ["no-such-program"])
    assert r.exit_code == 255 and r.stdout == b"", r
    assert b'exec: "no-such-program": executable file not found in $PATH' in r.stderr, r
    r = k.exec_sync(cid, ["/etc"])
    assert r.exit_code == 255 and b'exec: "/etc": permission denied' in r.stderr, r


def test_exec_timeout_kills_the_process(pod_env, cri):
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("exec-timeout"))
    cid = k.run(pod, container_config("box", env.images.busybox))
    e = rpc_error(k.exec_sync, cid, ["sh", "-c", "echo $$ > /tmp/pid; exec sleep 60"],
                  timeout=1)
    assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, (e.code(), e.details())
    pid = ok(k, cid, ["cat", "/tmp/pid"]).strip()
    assert pid.isdigit()
    harness.wait_for(lambda: k.exec_sync(cid, ["test", "-e", "/proc/" + pid]).exit_code != 0,
                     10, what="the timed-out process killed")
    # and crisp-exec, its parent, is gone too
    harness.wait_for(lambda: not [p for p in os.listdir("/proc") if p.isdigit() and
                                  cid.encode() in _cmdline(p) and b"crisp-exec" in _cmdline(p)],
                     10, what="crisp-exec gone")


def _cmdline(pid):
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            return f.read()
    except OSError:
        return b""


def test_exec_into_stopped_container_fails(pod_env, cri):
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("exec-stopped"))
    cid = k.run(pod, container_config("box", env.images.busybox))
    k.stop(cid, timeout=0)
    e = rpc_error(k.exec_sync, cid, ["true"])
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION, (e.code(), e.details())
    assert "not running" in e.details()


def test_exec_privileged(pod_env, cri):
    env, k = pod_env, pod_env.cri
    dev = next(d for d in ("kmsg", "loop-control", "mem") if os.path.exists("/dev/" + d))
    pod = k.run_pod(pod_config("exec-priv", privileged=True))
    cfg = container_config("priv", env.images.busybox)
    cfg.linux.security_context.privileged = True
    cid = k.run(pod, cfg)
    mine = status_fields(ok(k, cid, ["cat", "/proc/self/status"]))
    assert mine == status_fields(ok(k, cid, ["cat", "/proc/1/status"]))
    assert int(mine["CapEff"], 16) & (1 << 21) and mine["Seccomp"] == "0", mine
    assert k.exec_sync(cid, ["test", "-e", "/dev/" + dev]).exit_code == 0


def _crisp_exec(env, cid, pid, start, change=None):
    """crisp-exec run by hand, as the launcher would, with the given init
    (and change(process) applied to the process file)."""
    b = bundle(env, cid)
    proc_path = os.path.join(b, "exec-990.json")
    pid_path = os.path.join(b, "exec-990.pid")
    with open(os.path.join(b, "config.json")) as f:
        proc = json.load(f)["process"]
    proc["args"] = ["true"]
    if change:
        change(proc)
    with open(proc_path, "w") as f:
        json.dump(proc, f)
    try:
        r = subprocess.run([os.path.join(harness.BUILD, "crisp-exec"), "--id", cid,
                            "--bundle", b, "--process", proc_path, "--pid-file", pid_path,
                            "--init-pid", str(pid), "--init-start", str(start)],
                           capture_output=True, timeout=30,
                           env={"PATH": harness.SERVICE_ENV["PATH"]})
        return r.returncode, r.stderr.decode(), os.path.exists(pid_path)
    finally:
        for p in (proc_path, pid_path):
            if os.path.exists(p):
                os.unlink(p)


def _starttime(pid):
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    return int(s[s.rindex(")") + 2:].split()[19])


def _init_pid(env, cid):
    with open(os.path.join(runc_root(env), cid, "state.json")) as f:
        return json.load(f)["init_process_pid"]


def test_crisp_exec_refuses_other_processes(pod_env, cri):
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("exec-refuse"))
    cid = k.run(pod, container_config("box", env.images.busybox))
    other = k.run(pod, container_config("other", env.images.busybox))
    init = _init_pid(env, cid)
    assert _crisp_exec(env, cid, init, _starttime(init)) == (0, "", True)
    # the right pid with another starttime: a reused pid
    code, err, pidfile = _crisp_exec(env, cid, init, _starttime(init) + 1)
    assert (code, pidfile) == (254, False) and "is not its running init" in err, err
    # a live process of the host (this test) with its own starttime
    me = os.getpid()
    code, err, pidfile = _crisp_exec(env, cid, me, _starttime(me))
    assert (code, pidfile) == (254, False) and "root is not the container's rootfs" in err, err
    # another container's init: not this bundle's rootfs either
    o = _init_pid(env, other)
    code, err, _ = _crisp_exec(env, cid, o, _starttime(o))
    assert code == 254 and "root is not the container's rootfs" in err, err
    code, err, _ = _crisp_exec(env, cid, 4194304 + 1, 1)
    assert code == 254 and "gone" in err, err


def test_crisp_exec_forwards_signals_and_takes_its_child_along(pod_env, cri):
    """SIGTERM to crisp-exec reaches the process (exit 143); SIGKILL to
    crisp-exec kills the process too (its parent-death signal)."""
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("exec-signals"))
    cid = k.run(pod, container_config("box", env.images.busybox))
    init = _init_pid(env, cid)
    b = bundle(env, cid)
    proc_path, pid_path = os.path.join(b, "exec-992.json"), os.path.join(b, "exec-992.pid")
    with open(os.path.join(b, "config.json")) as f:
        proc = json.load(f)["process"]
    proc["args"] = ["sleep", "30"]
    with open(proc_path, "w") as f:
        json.dump(proc, f)
    argv = [os.path.join(harness.BUILD, "crisp-exec"), "--id", cid, "--bundle", b,
            "--process", proc_path, "--pid-file", pid_path, "--init-pid", str(init),
            "--init-start", str(_starttime(init))]
    try:
        for sig, code in ((signal.SIGTERM, 128 + signal.SIGTERM),
                          (signal.SIGKILL, -signal.SIGKILL)):
            p = subprocess.Popen(argv, env={"PATH": harness.SERVICE_ENV["PATH"]})
            harness.wait_for(lambda: os.path.exists(pid_path), 10, what="the pid file")
            with open(pid_path) as f:
                child = int(f.read())
            assert harness.proc_stat(child)[0] == "sleep"
            p.send_signal(sig)
            assert p.wait(10) == code
            harness.wait_for(lambda: not harness.alive(child), 10, what="the process gone")
            os.unlink(pid_path)
    finally:
        for f in (proc_path, pid_path):
            if os.path.exists(f):
                os.unlink(f)


def test_crisp_exec_refuses_what_it_cannot_apply(pod_env, cri):
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("exec-cannot"))
    cid = k.run(pod, container_config("box", env.images.busybox))
    init = _init_pid(env, cid)
    start = _starttime(init)
    for change, words in (
            (lambda p: p.update(terminal=True), "crisp-exec runs no terminal"),
            (lambda p: p.update(apparmorProfile="crisp-x"), "apparmorProfile is set"),
            (lambda p: p.update(selinuxLabel="system_u:system_r:x"), "selinuxLabel is set"),
            (lambda p: p.update(scheduler={"policy": "SCHED_FIFO"}), "'scheduler' is not"),
            (lambda p: p["user"].update(username="x"), "'username' is not"),
            (lambda p: p["capabilities"]["bounding"].append("CAP_NO_SUCH"), "CAP_NO_SUCH"),
            (lambda p: p.update(cwd="relative"), "cwd must be an absolute path"),
            (lambda p: p.update(args=[]), "args must be a non-empty"),
            (lambda p: p.update(rlimits=[{"type": "RLIMIT_NOPE", "hard": 1, "soft": 1}]),
             "unknown type")):
        code, err, pidfile = _crisp_exec(env, cid, init, start, change)
        assert (code, pidfile) == (255, False) and words in err, (words, code, err)


def test_other_handlers_keep_runc_exec(pod_env_factory, cri):
    env = pod_env_factory(config={'runtime_handler "alt"': {"path": shutil.which("runc") or
                                                             "/usr/sbin/runc"}})
    k = env.cri
    pod = k.run_pod(pod_config("exec-alt"), handler="alt")
    cid = k.run(pod, container_config("box", env.images.busybox))
    r = k.exec_sync(cid, ["no-such-program"])
    assert r.exit_code == 255 and b"crisp-exec" not in r.stderr, r
    assert b"executable file not found" in r.stderr, r
    assert k.exec_sync(cid, ["sh", "-c", "exit 7"]).exit_code == 7
