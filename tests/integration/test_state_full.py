"""crisp with a full state_dir: /run is a tmpfs sized as a fraction of RAM,
which other programs' files (or many pods) do fill.

What crisp keeps under crispd.state_dir: runtimed's bundles (config.json,
the monitor's control socket, runc's pid file, exec process files), runc's
root, the pods' files (hostname, hosts, resolv.conf, the /dev/shm mount
point), the pause's rootfs, netd's netns and userns pins, the frontend's
empty root and crispd's lock.

Each test mounts a small tmpfs of its own (as /run is) at <crispd dir>/run,
gives crispd a state_dir on it, fills it (a filler file, or empty files
until no inode is left), exercises crisp (pods on a CNI network, on the
host's, with a user namespace, with the pause run by runc; containers,
ExecSync, streaming exec, stop and removal; a restart), deletes the fillers
and checks that crisp recovers. What must hold, as for a full root_dir
(test_disk_full.py):

- a call that needs space fails with RESOURCE_EXHAUSTED and a message that
  says so ("No space left on device"), or succeeds (a streaming exec: the
  status code 429, the kubelet's for RESOURCE_EXHAUSTED);
- nothing is half made: no mount, netns pin, host-local IP, bundle or pod
  directory is left of what failed, and the lists agree with what answered;
  once all is removed the tmpfs holds what it held before, byte and inode;
- no crisp process dies, and Version and Status keep answering;
- once there is room, the same calls succeed, removal leaves nothing, and a
  restart of crispd finds the same pods and containers.
"""

import contextlib
import errno
import functools
import json
import os
import random
import shutil
import subprocess

import grpc
import pytest

import harness
from space import (FAILED, SPACE_WORDS, assert_alive, attempt, listed, ok, remove_everything,
                   space_error)
import spdy_client as sc
from harness import container_config, pod_config

FS_SIZE = "24m"
FS_INODES = 2000


class StateFs:
    """A tmpfs mounted at <crispd dir>/run, crispd's state_dir below it.
    kind "blocks": filled with a filler file; "inodes": with empty files
    (tmpfs's nr_inodes runs out as well, and then mkdir, a socket or a
    netns pin's mount point cannot be made either)."""

    def __init__(self, kind):
        self.kind = kind
        self.mnt = None
        self.fillers = []

    def mount(self, c):
        self.mnt = os.path.join(c.dir, "run")
        os.mkdir(self.mnt)
        opts = "size=%s,mode=0755" % FS_SIZE
        if self.kind == "inodes":
            opts += ",nr_inodes=%d" % FS_INODES
        subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", self.mnt], check=True)
        self.state = os.path.join(self.mnt, "crisp")
        c.update_config({"crispd": {"state_dir": self.state}})

    def used(self):
        st = os.statvfs(self.mnt)
        return ((st.f_blocks - st.f_bfree) * st.f_frsize, st.f_files - st.f_ffree)

    def tree(self):
        """{path: size} of everything in the tmpfs but the fillers."""
        out = {}
        for dirpath, dirnames, filenames in os.walk(self.mnt):
            for n in dirnames + filenames:
                p = os.path.join(dirpath, n)
                if p not in self.fillers:
                    with contextlib.suppress(FileNotFoundError):
                        out[os.path.relpath(p, self.mnt)] = os.lstat(p).st_size
        return out

    def free(self):
        st = os.statvfs(self.mnt)
        return st.f_favail if self.kind == "inodes" else st.f_bavail * st.f_frsize

    def fill(self):
        """Not a byte (or not an inode) left."""
        if self.kind == "inodes":
            while True:
                path = os.path.join(self.mnt, "filler-%d" % len(self.fillers))
                try:
                    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
                except OSError as e:
                    assert e.errno == errno.ENOSPC, e
                    break
                self.fillers.append(path)
        else:
            path = os.path.join(self.mnt, "filler")
            self.fillers.append(path)
            with open(path, "ab", buffering=0) as f:
                for chunk in (1 << 20, 64 << 10, 4 << 10, 512):
                    try:
                        while True:
                            f.write(b"\0" * chunk)
                    except OSError as e:
                        assert e.errno == errno.ENOSPC, e
        assert self.free() == 0, "%d %s free after filling" % (self.free(), self.kind)

    def shrink(self, pages):
        """Give some room back: pages of 4 KiB, or as many inodes."""
        if self.kind == "inodes":
            for _ in range(min(pages, len(self.fillers))):
                os.unlink(self.fillers.pop())
        else:
            p = self.fillers[-1]
            os.truncate(p, max(0, os.path.getsize(p) - pages * 4096))

    def unfill(self):
        for p in self.fillers:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)
        self.fillers = []

    def close(self):
        # crispd's cleanup unmounted it (and what was below it) already,
        # unless the test failed before crispd started.
        if self.mnt and self.mnt in harness.mounts_under(self.mnt):
            for mp in harness.mounts_under(self.mnt):
                subprocess.run(["umount", "-l", mp], check=False)


@pytest.fixture(params=["blocks", "inodes"])
def state_fs(request):
    """Requested before pod_env_factory: unmounted after crispd stopped."""
    fs = StateFs(request.param)
    try:
        yield fs
    finally:
        fs.close()


class Cni:
    """bridge + host-local with a bridge, subnet and dataDir of the test's own."""

    def __init__(self, c):
        n = random.randrange(250)
        self.prefix = "10.238.%d." % n
        self.data = os.path.join(c.dir, "ipam")
        body = {"cniVersion": "1.0.0", "name": "crisp-state-full", "plugins": [
            {"type": "bridge", "bridge": "crs%05x" % random.randrange(1 << 20),
             "isGateway": True, "ipMasq": False,
             "ipam": {"type": "host-local", "dataDir": self.data,
                      "ranges": [[{"subnet": self.prefix + "0/24"}]]}}]}
        c.add_conflist(body=body)

    def allocated(self):
        d = os.path.join(self.data, "crisp-state-full")
        try:
            return sorted(f for f in os.listdir(d) if f.startswith(self.prefix))
        except FileNotFoundError:
            return []


HOOKS = harness._build_defines("CRISP_TEST_HOOKS")


def env_on(fs, pod_env_factory):
    """A pod_env whose state_dir is on fs, with a CNI network, a second
    handler "other" (runc again: its pods' pause runs through runc, with a
    bundle and a monitor) and pods with user namespaces (netd pins those
    too; turned on whatever the host by the test hook, as in
    test_userns_netns.py)."""
    assert HOOKS, "needs a build with --enable-test-hooks (CRISP_TEST_USERNS)"
    holder = {}

    def before_start(c):
        fs.mount(c)
        holder["cni"] = Cni(c)
        c.start = functools.partial(harness.Crispd.start, c, env={"CRISP_TEST_USERNS": "1"})
    env = pod_env_factory(config={'runtime_handler "other"': {"path": shutil.which("runc")}},
                          before_start=before_start)
    env.cni = holder["cni"]
    env.pids = env.c.children()
    harness.wait_for(lambda: harness.conditions(env.c.status())["NetworkReady"].status, 10,
                     what="NetworkReady")
    # runc makes the mount points of the pause's rootfs (dev, proc, sys)
    # the first time it runs a pause: before the baseline
    k = env.cri
    pod = k.run_pod(pod_config("statefull-warm-up"), handler="other")
    k.stop_pod(pod)
    k.remove_pod(pod)
    return env


def net_pod(name):
    return pod_config(name, host_network=False)


def userns_pod(name):
    cfg = net_pod(name)
    u = harness.cri.UserNamespace(mode=harness.cri.POD)
    u.uids.add(container_id=0, host_id=65536 * 11, length=65536)
    u.gids.add(container_id=0, host_id=65536 * 11, length=65536)
    cfg.linux.security_context.namespace_options.userns_options.CopyFrom(u)
    return cfg


# RunPodSandbox's arguments for each kind of pod: config, handler
POD_KINDS = {
    "cni": (net_pod, ""),
    "runc-pause": (net_pod, "other"),
    "userns": (userns_pod, ""),
}


def entries(fs):
    """What lies in state_dir's per-object directories."""
    out = {}
    for d in ("runtimed/bundles", "runtimed/pods", "runtimed/runc", "netns", "userns"):
        p = os.path.join(fs.state, d)
        out[d] = sorted(os.listdir(p)) if os.path.isdir(p) else []
    return out


def check_consistent(env, fs, pods, ctrs):
    """The lists hold exactly what answered OK, and state_dir holds nothing
    of anything else: a pin for each listed CNI pod, an IP for each."""
    k = env.cri
    listed = {p.id for p in k.list_pods()}
    assert listed == set(pods), (listed, pods)
    assert {x.id for x in k.list_containers()} == set(ctrs)
    net = {p for p, hostnet in pods.items() if not hostnet}
    assert set(entries(fs)["netns"]) - env.before["netns"] == net
    assert len(env.cni.allocated()) == len(net), (env.cni.allocated(), net)
    known = set(pods) | set(ctrs)
    for d, ns in entries(fs).items():
        stray = set(ns) - env.before[d] - known
        assert not stray, "%s: %r of nothing listed" % (d, stray)
    stray = [m for m in harness.mounts_under(fs.mnt)
             if m not in env.baseline and not any(i in m for i in known)]
    assert not stray, "mounts of nothing listed: %r" % stray


def remove_all(env, fs, pods, ctrs):
    remove_everything(env, pods, ctrs)
    assert set(harness.mounts_under(fs.mnt)) == env.baseline
    assert {d: set(v) for d, v in entries(fs).items()} == env.before
    assert env.cni.allocated() == []
    # Nothing else either: the tmpfs holds what it held before (what a
    # removal frees, a monitor's socket, may go a moment after it).
    try:
        harness.wait_for(lambda: fs.used() == env.used, 10, what="the tmpfs's use as before")
    except AssertionError:
        raise AssertionError("(bytes, inodes) used: %r, before: %r; %r" % (
            fs.used(), env.used, changes(env.tree, fs.tree())))


def exec_stream(env, cid):
    """A streaming exec (SPDY): its output, or FAILED for want of space."""
    try:
        url = env.c.call("Exec", harness.cri.ExecRequest(container_id=cid, cmd=["echo", "hi"],
                                                         stdout=True, stderr=True)).url
    except grpc.RpcError as e:
        space_error(e, "Exec")
        return FAILED
    r = sc.remote_command(url)
    if r.status == {"status": "Success"}:
        assert r.stdout == b"hi\n", r
        return r.stdout
    # RESOURCE_EXHAUSTED, as the kubelet's streaming server says it
    msg = json.dumps(r.status)
    assert r.status.get("code") == 429, "exec: %s" % msg
    assert any(w.lower() in msg.lower() for w in SPACE_WORDS), "exec: %s" % msg
    return FAILED


def update(env, cid, shares):
    """UpdateContainerResources (runtimed writes the update to the bundle)."""
    up = harness.cri.UpdateContainerResourcesRequest(container_id=cid)
    up.linux.cpu_shares = shares
    env.c.call("UpdateContainerResources", up)


def exec_sync(env, cid):
    rc, out, err = env.cri.sh(cid, "echo hi")
    assert rc == 0 and out == "hi\n", (rc, out, err)
    return out


def baseline(env, fs):
    # Every inode in use is a file or directory in sight (and the root):
    # what a removal just before freed may take the kernel a moment
    # (a mount point of a namespace on its way out).
    harness.wait_for(lambda: fs.used()[1] == 1 + len(fs.tree()), 10,
                     what="no inode of the tmpfs in use out of sight")
    env.before = {d: set(v) for d, v in entries(fs).items()}
    env.baseline = set(harness.mounts_under(fs.mnt))
    env.used = fs.used()
    env.tree = fs.tree()


def changes(before, after):
    return {"added": sorted(set(after) - set(before))[:20],
            "gone": sorted(set(before) - set(after))[:20],
            "resized": sorted(p for p in set(before) & set(after) if before[p] != after[p])[:20]}


def test_calls_on_full_state_dir(state_fs, pod_env_factory):
    """Every call that writes to state_dir, on a full one; stopping and
    removing; then the same with room again, and a restart."""
    env = env_on(state_fs, pod_env_factory)
    c, k, busybox = env.c, env.cri, env.images.busybox
    baseline(env, state_fs)
    pods = {}  # id -> host network
    pod_a = k.run_pod(net_pod("statefull-a"))
    pod_h = k.run_pod(pod_config("statefull-h"))
    pod_s = k.run_pod(net_pod("statefull-stop"))
    pods.update({pod_a: False, pod_h: True, pod_s: False})
    running = k.run(pod_a, container_config("running", busybox))
    pending = k.create(pod_a, container_config("pending", busybox))
    victim = k.run(pod_h, container_config("victim", busybox))
    ctrs = {running, pending, victim}
    env.pids = c.children()

    state_fs.fill()
    for name, hostnet in (("statefull-b", False), ("statefull-hb", True)):
        p = attempt("RunPodSandbox", k.run_pod, pod_config(name, host_network=hostnet))
        if ok(p):
            pods[p] = hostnet
    for p in (pod_a, pod_h):
        cid = attempt("CreateContainer", k.create, p, container_config("new-" + p[:6], busybox))
        if ok(cid):
            ctrs.add(cid)
            attempt("StartContainer", k.start, cid)
    attempt("StartContainer", k.start, pending)
    attempt("ExecSync", exec_sync, env, running)
    exec_stream(env, running)
    attempt("UpdateContainerResources", update, env, running, 512)
    # Stopping and removing take no room: they work while full.
    k.stop(victim, timeout=0)
    k.remove(victim)
    ctrs.discard(victim)
    k.stop_pod(pod_s)
    k.remove_pod(pod_s)
    del pods[pod_s]
    assert_alive(env)
    check_consistent(env, state_fs, pods, ctrs)
    assert k.status(running).state == harness.cri.CONTAINER_RUNNING
    st = k.status(pending).state
    assert st in (harness.cri.CONTAINER_CREATED, harness.cri.CONTAINER_EXITED,
                  harness.cri.CONTAINER_RUNNING), st

    # Room again: the same calls succeed.
    state_fs.unfill()
    for name, hostnet in (("statefull-c", False), ("statefull-hc", True)):
        p = k.run_pod(pod_config(name, host_network=hostnet))
        pods[p] = hostnet
        ctrs.add(k.run(p, container_config("after", busybox)))
    assert exec_sync(env, running) == "hi\n"
    assert exec_stream(env, running) == b"hi\n"
    update(env, running, 256)
    check_consistent(env, state_fs, pods, ctrs)
    assert_alive(env)

    # A restart finds the same.
    lists = listed(k)
    c.stop()
    c.start()
    env.pids = c.children()
    harness.wait_for(lambda: listed(k) == lists or None, 10,
                     what="the same pods and containers after a restart")
    assert exec_sync(env, running) == "hi\n"
    remove_all(env, state_fs, pods, ctrs)
    assert_alive(env)


@pytest.mark.parametrize("kind", list(POD_KINDS))
def test_space_coming_back_page_by_page(state_fs, pod_env_factory, kind):
    """From a full state_dir, a page (or an inode) comes back at each
    step, then more: each step's RunPodSandbox (of the kind), CreateContainer,
    StartContainer, ExecSync and streaming exec fail for want of room
    wherever they are, or succeed, and leave nothing of what failed."""
    env = env_on(state_fs, pod_env_factory)
    k, busybox = env.cri, env.images.busybox
    baseline(env, state_fs)
    home = k.run_pod(pod_config("statefull-home"))
    pods, ctrs, failures = {home: True}, set(), 0
    env.pids = env.c.children()
    state_fs.fill()
    for step in range(100):
        make, handler = POD_KINDS[kind]
        cfg = make("statefull-ramp-%d" % step)
        pod = attempt("RunPodSandbox", k.run_pod, cfg, handler=handler)
        ccfg = container_config("ramp-%d" % step, busybox)
        if ok(pod):
            pods[pod] = False
            # a pod's user namespace is its containers' too
            ccfg.linux.security_context.namespace_options.CopyFrom(
                cfg.linux.security_context.namespace_options)
        cid = attempt("CreateContainer", k.create, pod if ok(pod) else home, ccfg)
        started = ok(cid) and ok(attempt("StartContainer", k.start, cid))
        if ok(cid):
            ctrs.add(cid)
        # ExecSync and a streaming exec, each first at every other step
        execs = [lambda: attempt("ExecSync", exec_sync, env, cid),
                 lambda: exec_stream(env, cid)][::1 if step % 2 else -1]
        execd = started and ok(execs[0]()) and ok(execs[1]())
        failures += (not ok(pod)) + (not ok(cid)) + (ok(cid) and not started) + (
            started and not execd)
        check_consistent(env, state_fs, pods, ctrs)
        if ok(pod) and execd:
            break
        # Each container kept takes some (its bundle): more comes back
        # as the steps go on.
        state_fs.shrink(1 + step // 3)
    assert failures >= 3, "only %d failures: state_dir was not full" % failures
    assert ok(pod) and execd, "still failing after %d steps" % step
    assert_alive(env)
    state_fs.unfill()
    remove_all(env, state_fs, pods, ctrs)
    assert_alive(env)


@pytest.mark.parametrize("state_fs", ["blocks"], indirect=True)
def test_restart_while_full(state_fs, pod_env_factory):
    """crispd restarted while state_dir is full (a node under pressure, an
    upgrade): it starts, finds its pods and containers, and answers; what
    needs space fails for want of it until there is room again."""
    env = env_on(state_fs, pod_env_factory)
    c, k, busybox = env.c, env.cri, env.images.busybox
    baseline(env, state_fs)
    pod = k.run_pod(net_pod("statefull-restart"))
    running = k.run(pod, container_config("running", busybox))
    pods, ctrs = {pod: False}, {running}
    lists = listed(k)
    state_fs.fill()
    c.stop()
    c.start()
    env.pids = c.children()
    harness.wait_for(lambda: listed(k) == lists or None, 10,
                     what="the same pods and containers after a restart")
    p = attempt("RunPodSandbox", k.run_pod, net_pod("statefull-restart-b"))
    if ok(p):
        pods[p] = False
    cid = attempt("CreateContainer", k.create, pod, container_config("new", busybox))
    if ok(cid):
        ctrs.add(cid)
        attempt("StartContainer", k.start, cid)
    attempt("ExecSync", exec_sync, env, running)
    check_consistent(env, state_fs, pods, ctrs)
    assert_alive(env)

    state_fs.unfill()
    assert exec_sync(env, running) == "hi\n"
    p = k.run_pod(net_pod("statefull-restart-c"))
    pods[p] = False
    ctrs.add(k.run(p, container_config("after", busybox)))
    check_consistent(env, state_fs, pods, ctrs)
    remove_all(env, state_fs, pods, ctrs)
    assert_alive(env)
