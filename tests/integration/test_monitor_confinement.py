"""crisp-monitor confines itself once the container is created
(runtimed/monitor_sandbox.c): no capability, no_new_privs, a seccomp filter
and a Landlock ruleset that lets it write only beneath the exit file's
directory (the container's own <exits>/<id>/, so not another container's
exit record) and remove files beneath the bundle; no path of the log's
directory at all, since runtimed opens the new log of ReopenContainerLog
and hands it over (reopen-fd). Under it the monitor still does its whole
job: the log, ReopenContainerLog, attach, the exit record. The test hooks of a --enable-test-hooks build make it try
what is forbidden: opening a file elsewhere for writing fails with EACCES
and the container goes on; a syscall outside the filter kills the monitor,
and then the container fares as under any dead monitor (PRIVSEP.md, "what
happens when a process dies"): it runs on, and a stop records 137 itself."""

import errno
import json
import os
import shutil
import signal
import socket
import stat
import time

import harness
from harness import container_config, pod_config

LOOP = "i=0; while :; do echo line $i; i=$((i+1)); sleep 0.1; done"


def bundle(env, cid):
    return os.path.join(env.c.config["crispd"]["state_dir"], "runtimed", "bundles", cid)


def exits_dir(env):
    return os.path.join(env.c.config["crispd"]["root_dir"], "runtimed", "exits")


def monitor_pid(cid):
    found = harness.monitor_processes([cid])
    assert len(found) == 1, found
    return found[0][0]


def confined(pid):
    """The monitor writes its sync line, which ends the start, just before
    it confines itself: a check right after a start waits for the filter."""
    harness.wait_for(lambda: harness.proc_status(pid)["Seccomp"] == "2", 5,
                     what="monitor %d confined" % pid)


def connect(env, cid, bundle_dir=None):
    """A connection to the monitor's control socket, through the bundle's
    fd as runtimed makes it (the path may exceed sun_path)."""
    dfd = os.open(bundle_dir or bundle(env, cid), os.O_PATH | os.O_DIRECTORY)
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.settimeout(5)
        s.connect("/proc/self/fd/%d/monitor.sock" % dfd)
    finally:
        os.close(dfd)
    return s


def request(env, cid, req, bundle_dir=None):
    with connect(env, cid, bundle_dir) as s:
        s.send(req.encode())
        return s.recv(512).decode()


def log_lines(path):
    return [t for _, t, _ in harness.cri_log_lines(path)] if os.path.exists(path) else []


def start_loop(env, name):
    k = env.cri
    pod = k.run_pod(pod_config(name))
    cid = k.run(pod, container_config("t", env.images.busybox, command=["sh", "-c", LOOP]))
    log = k.status(cid).log_path
    harness.wait_for(lambda: len(log_lines(log)) >= 2, 10, what="first log lines")
    return pod, cid, log


def test_monitor_confined_and_serving(pod_env, tmp_path):
    env, k = pod_env, pod_env.cri
    pod, cid, log = start_loop(env, "mon-conf")
    pid = monitor_pid(cid)

    st = harness.proc_status(pid)
    assert st["Seccomp"] == "2" and st["NoNewPrivs"] == "1", st
    assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0, st
    assert int(st["CapBnd"], 16) == 0, st

    # Landlock: not even its own log by path (the hook opens an existing
    # file for appending; the monitor writes the fd it opened before), a
    # root-owned, owner-writable file outside its directories,
    # and the bundle's config.json (beneath the bundle it may only remove)
    assert request(env, cid, "test-open " + log) == "error Permission denied"
    outside = tmp_path / "root-owned"
    outside.write_text("untouched\n")
    os.chmod(outside, 0o644)
    assert request(env, cid, "test-open %s" % outside) == "error Permission denied"
    config = os.path.join(bundle(env, cid), "config.json")
    assert request(env, cid, "test-open " + config) == "error Permission denied"
    assert outside.read_text() == "untouched\n"
    # the filter: fcntl's F_SETOWN, F_SETSIG and F_SETOWN_EX fail with EPERM
    assert request(env, cid, "test-fcntl") == "%d %d %d" % ((errno.EPERM,) * 3)

    # it goes on: the log grows, attach streams the output
    n = len(log_lines(log))
    harness.wait_for(lambda: len(log_lines(log)) > n + 3, 10, what="the log growing")
    with connect(env, cid) as s:
        s.send(b"attach")
        assert s.recv(512) == b"ok"
        got = b""
        deadline = time.monotonic() + 10
        while b"line" not in got and time.monotonic() < deadline:
            got += s.recv(65536)
        assert got.startswith(b"1") and b"line" in got, got

    # ReopenContainerLog: runtimed creates the log anew and hands it over
    os.rename(log, log + ".1")
    env.c.call("ReopenContainerLog", harness.cri.ReopenContainerLogRequest(container_id=cid))
    harness.wait_for(lambda: len(log_lines(log)) >= 2, 10, what="lines in the reopened log")
    assert harness.proc_status(pid)["Seccomp"] == "2"

    r = k.exec_sync(cid, ["echo", "exec"])
    assert r.exit_code == 0 and r.stdout == b"exec\n", r

    # the exit file, written by the confined monitor: the init's own
    # status (sh as pid 1 ignores SIGTERM: the stop's SIGKILL, 137, with
    # the reason runc's kill gives, not "its monitor recorded no exit")
    k.stop(cid, timeout=1)
    st = k.status(cid)
    assert st.state == harness.cri.CONTAINER_EXITED and st.exit_code == 137, st
    assert "recorded no exit" not in st.message, st
    harness.wait_for(lambda: not harness.alive(pid), 10, what="the monitor's exit")
    assert not os.path.exists(os.path.join(bundle(env, cid), "monitor.sock"))


def test_exit_code_recorded(pod_env):
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("mon-exit"))
    cid = k.run(pod, container_config("t", env.images.busybox,
                                      command=["sh", "-c", "sleep 1; echo bye; exit 3"]))
    pid = monitor_pid(cid)
    confined(pid)
    st = k.wait_state(cid, harness.cri.CONTAINER_EXITED, timeout=20)
    assert st.exit_code == 3 and st.reason == "Error", st
    assert log_lines(st.log_path) == ["bye"]


def test_forbidden_syscall_kills_the_monitor(pod_env):
    env, k = pod_env, pod_env.cri
    pod, cid, log = start_loop(env, "mon-sys")
    pid = monitor_pid(cid)

    with connect(env, cid) as s:
        s.send(b"test-syscall")
        try:
            answer = s.recv(512)
        except ConnectionResetError:
            answer = b""
    assert answer == b"", answer  # no "error still alive after getuid"
    harness.wait_for(lambda: not harness.alive(pid), 10, what="the monitor killed")

    # the container runs on without its monitor
    assert k.status(cid).state == harness.cri.CONTAINER_RUNNING
    r = k.exec_sync(cid, ["echo", "still"])
    assert r.exit_code == 0 and r.stdout == b"still\n", r
    # ... until stopped: runtimed records the exit itself
    k.stop(cid, timeout=1)
    st = k.status(cid)
    assert st.state == harness.cri.CONTAINER_EXITED and st.exit_code == 137, st
    assert "its monitor recorded no exit" in st.message, st


def test_stdin_held_back_while_the_pipe_is_full(pod_env):
    """Stdin the pipe cannot take waits in memory the monitor allocates
    (malloc under the filter), then flows once the container reads."""
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("mon-stdin"))
    cfg = container_config("t", env.images.busybox, command=["sh", "-c", "sleep 3; wc -c"])
    cfg.stdin = cfg.stdin_once = True
    cid = k.run(pod, cfg)
    pid = monitor_pid(cid)
    chunk, count = b"0" + b"x" * 30000, 12
    with connect(env, cid) as s:
        s.settimeout(30)
        s.send(b"attach")
        assert s.recv(512) == b"ok"
        for _ in range(count):
            s.send(chunk)
        # every packet was taken: the last may still wait for the pipe
        harness.wait_for(lambda: harness.proc_status(pid)["State"].startswith("S"), 10,
                         what="monitor idle")
        time.sleep(0.5)
    st = k.wait_state(cid, harness.cri.CONTAINER_EXITED, timeout=20)
    assert st.exit_code == 0, st
    assert harness.alive(pid) is False
    got = int(log_lines(st.log_path)[-1])
    assert count * 30000 - 30000 <= got <= count * 30000, got


def test_failed_confinement_kills_the_container(pod_env):
    """A monitor that cannot confine itself does not serve the container
    unconfined: it SIGKILLs the init, and records that exit itself."""
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("mon-fail"))
    cid = k.create(pod, container_config("t", env.images.busybox, command=["sleep", "1000"]))
    with open(os.path.join(bundle(env, cid), "test-confine-fail"), "w"):
        pass
    k.start(cid)
    st = k.wait_state(cid, harness.cri.CONTAINER_EXITED, timeout=20)
    assert st.exit_code == 137, st
    assert "recorded no exit" not in st.message, st


def test_without_log_path_only_dev_null(pod_env):
    """A container without a log path logs to /dev/null, opened before the
    confinement: the monitor writes that fd and may open no path of /dev,
    /dev/null included. ReopenContainerLog has nothing to reopen."""
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("mon-nolog"))
    cfg = container_config("t", env.images.busybox,
                           command=["sh", "-c", "sleep 1; echo out; echo err >&2; sleep 1; exit 4"])
    cfg.log_path = ""
    cid = k.run(pod, cfg)
    pid = monitor_pid(cid)
    confined(pid)
    assert request(env, cid, "test-open /dev/null") == "error Permission denied"
    assert request(env, cid, "test-open /dev/zero") == "error Permission denied"
    env.c.call("ReopenContainerLog", harness.cri.ReopenContainerLogRequest(container_id=cid))
    st = k.wait_state(cid, harness.cri.CONTAINER_EXITED, timeout=20)
    assert st.exit_code == 4, st
    # both records written to /dev/null, none dropped
    with open(os.path.join(exits_dir(env), cid, "exit.json")) as f:
        assert json.load(f)["log_dropped"] == 0


def test_pause_monitor_of_another_handler(pod_env_factory, tmp_path):
    """With a handler other than the default the pod's pause runs under a
    monitor too, its log /dev/null: confined the same way."""
    script = tmp_path / "other-runc"
    script.write_text("#!/bin/sh\nexec %s \"$@\"\n" % shutil.which("runc"))
    script.chmod(0o755)
    env = pod_env_factory(config={'runtime_handler "other"': {"path": str(script)}})
    pod = env.cri.run_pod(pod_config("mon-pause"), handler="other")
    pid, cmd = harness.wait_for(lambda: (harness.monitor_processes([pod]) or [None])[0], 10,
                                what="the pause's monitor")
    args = cmd.split()
    assert args[args.index("--log") + 1] == "/dev/null", cmd
    pause_bundle = args[args.index("--bundle") + 1]
    confined(pid)
    assert request(env, pod, "test-open /dev/zero", pause_bundle) == "error Permission denied"
    assert request(env, pod, "test-open /dev/null", pause_bundle) == "error Permission denied"
    exit_dir = os.path.join(exits_dir(env), pod)
    assert args[args.index("--exit-file") + 1] == os.path.join(exit_dir, "exit.json"), cmd
    env.cri.stop_pod(pod)
    harness.wait_for(lambda: not harness.alive(pid), 10, what="the pause's monitor exiting")
    # the pause's record, in the pod's own exit directory, which goes with the pod
    assert os.path.exists(os.path.join(exit_dir, "exit.json"))
    env.cri.remove_pod(pod)
    assert not os.path.exists(exit_dir)


def test_without_landlock_the_filter_alone(pod_env):
    """A kernel without Landlock (built without it, or disabled at boot),
    played by the test-no-landlock hook: the monitor confines itself with
    its filter alone instead of killing the container, says so on its sync
    line, and runtimed warns once, not once per container."""
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("mon-nolandlock"))
    mark = env.c.mark()
    cids = []
    for name in ("a", "b"):
        cid = k.create(pod, container_config(name, env.images.busybox,
                                             command=["sh", "-c", LOOP]))
        with open(os.path.join(bundle(env, cid), "test-no-landlock"), "w"):
            pass
        k.start(cid)
        cids.append(cid)
    env.c.wait_log(r"crisp-runtimed\[\d+\]: crisp-monitor: the kernel has no Landlock",
                   since=mark)
    for cid in cids:
        confined(monitor_pid(cid))
        st = harness.proc_status(monitor_pid(cid))
        assert st["Seccomp"] == "2" and st["NoNewPrivs"] == "1", st
        assert int(st["CapEff"], 16) == 0, st
        # no Landlock: a file outside its directories opens (for appending;
        # the hook writes nothing), while the filter still refuses
        config = os.path.join(bundle(env, cid), "config.json")
        assert request(env, cid, "test-open " + config) == "ok"
        assert request(env, cid, "test-fcntl") == "%d %d %d" % ((errno.EPERM,) * 3)
        log = k.status(cid).log_path
        harness.wait_for(lambda: len(log_lines(log)) >= 2, 10, what="log lines")
    warned = [line for line in env.c.lines(mark) if "the kernel has no Landlock" in line]
    assert len(warned) == 1, warned
    k.stop(cids[0], timeout=1)
    st = k.wait_state(cids[0], harness.cri.CONTAINER_EXITED, timeout=20)
    assert st.exit_code == 137 and "recorded no exit" not in st.message, st


EACCES = "error Permission denied"


def test_exit_records_confined_to_the_own_directory(pod_env):
    """Each monitor writes its exit record in its container's own
    <exits>/<id>/: taken over, it can neither forge nor remove another
    container's record, in <exits>/ itself (the flat layout of an older
    crisp) or in the other's directory."""
    env, k = pod_env, pod_env.cri
    exits = exits_dir(env)
    pod, a, _ = start_loop(env, "mon-exits")
    b = k.run(pod, container_config("b", env.images.busybox, command=["sh", "-c", LOOP]))
    pid_a = monitor_pid(a)
    dir_a, dir_b = os.path.join(exits, a), os.path.join(exits, b)

    # runtimed made each directory, 0700, and the monitor's exit file is in it
    for d in (dir_a, dir_b):
        st = os.lstat(d)
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700, d
    args = harness.monitor_processes([a])[0][1].split()
    assert args[args.index("--exit-file") + 1] == os.path.join(dir_a, "exit.json"), args

    # B's directory and <exits>/ hold a root-owned file each, as a record would
    probes = [os.path.join(dir_b, "probe"), os.path.join(exits, "probe-" + b[:12])]
    for path in probes:
        with open(path, "w") as f:
            f.write("untouched\n")
    try:
        for path in probes:
            assert request(env, a, "test-open " + path) == EACCES, path
            assert request(env, a, "test-unlink " + path) == EACCES, path
        for path in (os.path.join(exits, b + ".json"), os.path.join(exits, "forged"),
                     os.path.join(dir_b, "exit.json"), os.path.join(dir_b, "exit.json.tmp")):
            assert request(env, a, "test-create " + path) == EACCES, path
            assert not os.path.exists(path), path
        for path in probes:
            with open(path) as f:
                assert f.read() == "untouched\n", path
        # its own directory: it may create and remove there
        own = os.path.join(dir_a, "probe")
        assert request(env, a, "test-create " + own) == "ok"
        assert os.path.exists(own)
        assert request(env, a, "test-unlink " + own) == "ok"
        assert not os.path.exists(own)
    finally:
        for path in probes:
            if os.path.exists(path):
                os.unlink(path)

    # exit codes still come through: a stop's 137 from A's own record ...
    k.stop(a, timeout=1)
    st = k.status(a)
    assert st.state == harness.cri.CONTAINER_EXITED and st.exit_code == 137, st
    assert "recorded no exit" not in st.message, st
    harness.wait_for(lambda: not harness.alive(pid_a), 10, what="A's monitor exiting")
    with open(os.path.join(dir_a, "exit.json")) as f:
        assert json.load(f)["exit_code"] == 137
    assert not os.path.exists(os.path.join(exits, a + ".json"))
    assert k.status(b).state == harness.cri.CONTAINER_RUNNING
    # ... and a container's own exit code 3
    c = k.run(pod, container_config("c", env.images.busybox,
                                    command=["sh", "-c", "sleep 1; exit 3"]))
    st = k.wait_state(c, harness.cri.CONTAINER_EXITED, timeout=20)
    assert st.exit_code == 3 and st.reason == "Error", st
    assert os.path.exists(os.path.join(exits, c, "exit.json"))

    # each directory goes with its record
    for cid in (a, c):
        k.remove(cid)
        assert not os.path.exists(os.path.join(exits, cid)), cid
    k.stop(b, timeout=1)
    k.remove(b)
    assert not os.path.exists(dir_b)


def write_legacy_record(exits, cid, code):
    """The exit record as a monitor of an older crisp writes it: the flat
    <exits>/<id>.json, atomically (a temporary file renamed over it)."""
    path = os.path.join(exits, cid + ".json")
    with open(path + ".tmp", "w") as f:
        json.dump({"exit_code": code, "signal": 0, "finished_at": time.time_ns(),
                   "oom_killed": False, "log_dropped": 0}, f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(path + ".tmp", path)
    return path


def legacy_container(env, pod, name):
    """A running container made to look as one an older crisp started: its
    monitor gone (SIGKILL, before it could record anything), and no
    directory of its own in <exits>/; its init killed after, so that only
    the legacy record can tell runtimed the exit."""
    k = env.cri
    cid = k.run(pod, container_config(name, env.images.busybox, command=["sleep", "1000"]))
    pid = monitor_pid(cid)
    init = harness.wait_for(lambda: harness.children(pid), 10, what="the init")[0][0]
    os.kill(pid, signal.SIGKILL)
    harness.wait_for(lambda: not harness.alive(pid), 10, what="the monitor killed")
    shutil.rmtree(os.path.join(exits_dir(env), cid))
    os.kill(init, signal.SIGKILL)
    harness.wait_for(lambda: not harness.alive(init), 10, what="the init killed")
    return cid


def test_exit_record_of_an_older_monitor(pod_env):
    """Upgrade: monitors started by the previous crisp run on and write
    the flat <exits>/<id>.json. runtimed records that exit, whether it sees
    the file written (its watch on <exits>/) or finds it at start."""
    env, k = pod_env, pod_env.cri
    exits = exits_dir(env)
    pod = k.run_pod(pod_config("mon-legacy"))

    cid = legacy_container(env, pod, "live")
    time.sleep(0.5)
    assert k.status(cid).state == harness.cri.CONTAINER_RUNNING  # nothing recorded yet
    flat = write_legacy_record(exits, cid, 42)
    st = k.wait_state(cid, harness.cri.CONTAINER_EXITED, timeout=10)
    assert st.exit_code == 42 and st.reason == "Error", st
    assert "recorded no exit" not in st.message, st

    # written while runtimed is down: found by its recovery
    cid2 = legacy_container(env, pod, "down")
    old = env.c.children()["crisp-runtimed"]
    os.kill(old, signal.SIGSTOP)
    try:
        write_legacy_record(exits, cid2, 5)
        os.kill(old, signal.SIGKILL)
    finally:
        try:
            os.kill(old, signal.SIGCONT)
        except ProcessLookupError:
            pass
    env.c.wait_new_pid("crisp-runtimed", old, 10)
    st = k.wait_state(cid2, harness.cri.CONTAINER_EXITED, timeout=20)
    assert st.exit_code == 5, st

    # the flat record goes with its container's record
    k.remove(cid)
    assert not os.path.exists(flat)
    k.remove(cid2)
    assert not os.path.exists(os.path.join(exits, cid2 + ".json"))


def reopen_log(env, cid):
    env.c.call("ReopenContainerLog", harness.cri.ReopenContainerLogRequest(container_id=cid))


def line_numbers(path):
    """The counters of LOOP's "line <n>" in a log."""
    return [int(t.split()[1]) for t in log_lines(path) if t.startswith("line ")]


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def request_fds(env, cid, req, fds):
    """A request with fds in SCM_RIGHTS, as runtimed sends reopen-fd."""
    with connect(env, cid) as s:
        socket.send_fds(s, [req.encode()], fds)
        return s.recv(512).decode()


def test_log_directory_out_of_reach(pod_env):
    """The monitor has no right on its log's directory, the pod's log
    directory: taken over, it can create no file there and open none of
    the other containers' logs of the pod (nor its own by path)."""
    env, k = pod_env, pod_env.cri
    pod, a, log_a = start_loop(env, "mon-logdir")
    b = k.run(pod, container_config("b", env.images.busybox, command=["sh", "-c", LOOP]))
    log_b = k.status(b).log_path
    harness.wait_for(lambda: len(log_lines(log_b)) >= 2, 10, what="B's first log lines")
    logdir = os.path.dirname(log_a)
    assert os.path.dirname(log_b) == logdir, (log_a, log_b)
    confined(monitor_pid(a))

    forged = os.path.join(logdir, "forged.log")
    assert request(env, a, "test-create " + forged) == EACCES
    assert not os.path.exists(forged)
    assert request(env, a, "test-open " + log_b) == EACCES
    assert request(env, a, "test-open " + log_a) == EACCES
    # B's log moved away by a rotation: A cannot put a file in its place
    os.rename(log_b, log_b + ".1")
    assert request(env, a, "test-create " + log_b) == EACCES
    assert not os.path.exists(log_b)
    # ... while runtimed re-creates it for B, and both go on logging
    reopen_log(env, b)
    harness.wait_for(lambda: len(log_lines(log_b)) >= 2, 10, what="B's reopened log")
    n = len(log_lines(log_a))
    harness.wait_for(lambda: len(log_lines(log_a)) > n + 2, 10, what="A's log growing")


def test_reopen_after_rotation(pod_env):
    """The kubelet's rotation: the log renamed, ReopenContainerLog, and the
    next lines go to a new file at the original path, the old file keeps
    the lines before, none lost or written twice."""
    env, k = pod_env, pod_env.cri
    pod, cid, log = start_loop(env, "mon-rotate")
    pid = monitor_pid(cid)
    confined(pid)
    old = log + ".1"
    os.rename(log, old)
    reopen_log(env, cid)
    st = os.lstat(log)
    assert stat.S_ISREG(st.st_mode) and st.st_uid == 0, st
    assert stat.S_IMODE(st.st_mode) & ~0o640 == 0, oct(st.st_mode)
    harness.wait_for(lambda: len(line_numbers(log)) >= 3, 10, what="lines in the new log")
    before = line_numbers(old)
    time.sleep(0.5)
    assert line_numbers(old) == before  # the old file no longer grows
    new = line_numbers(log)
    assert before == list(range(before[0], before[-1] + 1)), before
    assert new[0] == before[-1] + 1, (before[-3:], new[:3])
    assert harness.proc_status(pid)["Seccomp"] == "2"


def test_reopen_refuses_a_symlink(pod_env, tmp_path):
    """A symlink where the log was is not followed (O_NOFOLLOW): the reopen
    fails saying so, nothing is written through it, and the monitor keeps
    writing the file it had."""
    env, k = pod_env, pod_env.cri
    pod, cid, log = start_loop(env, "mon-symlink")
    confined(monitor_pid(cid))
    target = tmp_path / "target"
    target.write_text("")
    old = log + ".1"
    os.rename(log, old)
    os.symlink(target, log)
    e = harness.rpc_error(reopen_log, env, cid)
    assert "is a symbolic link, not followed" in e.details(), e.details()
    assert target.read_text() == ""
    assert os.path.islink(log)
    n = len(log_lines(old))
    harness.wait_for(lambda: len(log_lines(old)) > n + 2, 10, what="the old file still written")
    os.unlink(log)
    reopen_log(env, cid)
    harness.wait_for(lambda: len(log_lines(log)) >= 2, 10, what="lines in the reopened log")
    assert target.read_text() == ""


def test_reopen_fds_checked_and_never_kept(pod_env, tmp_path):
    """20 reopens, and fds handed with bad or other requests: each refused
    one is closed, the monitor's fds stay as many as before (it runs for
    the container's life); runtimed keeps no copy either."""
    env, k = pod_env, pod_env.cri
    pod, cid, log = start_loop(env, "mon-fds")
    pid = monitor_pid(cid)
    confined(pid)
    runtimed = env.c.children()["crisp-runtimed"]
    time.sleep(0.3)
    before, before_rt = fd_count(pid), fd_count(runtimed)
    for i in range(20):
        if i % 2 == 0:
            os.rename(log, "%s.%d" % (log, i))
        reopen_log(env, cid)
    harness.wait_for(lambda: len(log_lines(log)) >= 2, 10, what="lines in the last log")

    r, w = os.pipe()
    ro = os.open(tmp_path / "ro", os.O_RDONLY | os.O_CREAT, 0o600)
    plain = os.open(tmp_path / "plain", os.O_WRONLY | os.O_CREAT, 0o600)
    path_fd = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    good = os.open(tmp_path / "good", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        for req, fds, answer in [
                ("reopen-fd", [], "error reopen-fd wants exactly one fd, got 0"),
                ("reopen-fd", [good, good], "error reopen-fd wants exactly one fd, got 2"),
                ("reopen-fd", [good] * 6,
                 "error reopen-fd wants exactly one fd, got more than 4"),
                ("reopen-fd", [w], "error reopen-fd: the fd is not a regular file"),
                ("reopen-fd", [path_fd], "error reopen-fd: the fd is not a regular file"),
                ("reopen-fd", [ro], "error reopen-fd: the file is not open for writing"),
                ("reopen-fd", [plain], "error reopen-fd: the file is not open with O_APPEND"),
                ("reopen", [good], "error unknown request 'reopen'"),
                ("resize 10 10", [good], "error resize: the container has no terminal"),
                ("nonsense", [good, w], "error unknown request 'nonsense'")]:
            assert request_fds(env, cid, req, fds) == answer, (req, fds)
        # fds with an attach session's packets: closed as well
        with connect(env, cid) as s:
            s.send(b"attach")
            assert s.recv(512) == b"ok"
            socket.send_fds(s, [b"0x"], [good])
            socket.send_fds(s, [b"resize 5 5"], [good, ro])
        harness.wait_for(lambda: fd_count(pid) == before, 5,
                         what="the monitor back at %d fds" % before)
        # and a good one is taken: the output goes there
        assert request_fds(env, cid, "reopen-fd", [good]) == "ok"
        harness.wait_for(lambda: len(log_lines(str(tmp_path / "good"))) >= 2, 10,
                         what="lines in the handed file")
        harness.wait_for(lambda: fd_count(pid) == before, 5,
                         what="the monitor back at %d fds" % before)
    finally:
        for fd in (r, w, ro, plain, path_fd, good):
            os.close(fd)
    harness.wait_for(lambda: fd_count(runtimed) == before_rt, 5,
                     what="runtimed back at %d fds" % before_rt)


def test_reopen_with_a_monitor_of_an_older_crisp(pod_env):
    """Upgrade: a monitor started by an older crisp knows only "reopen" (it
    opens the path itself, under its rule on the log's directory). Played
    by the test-monitor-v1 hook: runtimed's reopen-fd gets "unknown
    request", and it falls back to "reopen" on the same connection."""
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("mon-v1"))
    cid = k.create(pod, container_config("t", env.images.busybox, command=["sh", "-c", LOOP]))
    with open(os.path.join(bundle(env, cid), "test-monitor-v1"), "w"):
        pass
    k.start(cid)
    log = k.status(cid).log_path
    harness.wait_for(lambda: len(log_lines(log)) >= 2, 10, what="first log lines")
    pid = monitor_pid(cid)
    confined(pid)
    before = fd_count(pid)  # no client connected yet
    # the old ways: its rule on the log's directory, no reopen-fd
    probe = os.path.join(os.path.dirname(log), "probe-v1")
    assert request(env, cid, "test-create " + probe) == "ok"
    os.unlink(probe)
    assert request(env, cid, "reopen-fd") == "error unknown request 'reopen-fd'"

    old = log + ".1"
    os.rename(log, old)
    reopen_log(env, cid)
    harness.wait_for(lambda: len(line_numbers(log)) >= 3, 10, what="lines in the new log")
    last = line_numbers(old)
    assert line_numbers(log)[0] == last[-1] + 1
    harness.wait_for(lambda: fd_count(pid) == before, 5, what="the monitor back at its fds")
