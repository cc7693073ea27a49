#!/usr/bin/python3
"""crisp side by side with Debian's containerd (its CRI plugin, overlayfs,
runc), measured through the CRI with the gRPC client library, alternating
between the two runtimes in one run so both see the same machine.

Runs as root. Starts, in a temp dir, a local docker-registry with a busybox
image, a pause image (crisp's own crisp-pause, for containerd's sandboxes)
and a ~100 MB multi-layer image, one crispd (from $CRISP_BUILD_DIR, default
build-test/) and one containerd with its own root, state, socket and a
registry mirror to the local registry, both on the same CNI config (bridge +
host-local + portmap). Stops what it started, by pid.

    ./build.sh test                        # once: packages and build-test/
    apt-get install containerd             # Debian's (the script checks)
    bench/cri-bench.py [--pods 30] [--concurrent 20] [--json out.json]
    bench/cri-bench.py --smoke             # a few pods, crisp only (the test suite runs this)

Prints a table, each figure for both runtimes and the ratio crisp/containerd,
and writes the same as JSON. Some rows are crisp's alone: runc's part of its
pod start, and the gRPC core floor: the same C client against bench/grpc-floor,
a gRPC C core server that does no work, answering with no payload and with the
bytes of crisp's own ListContainers replies (what gRPC costs crisp per call).
"""
import argparse
import contextlib
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
os.environ.setdefault("CRISP_BUILD_DIR", os.path.join(TOP, "build-test"))

import grpc  # noqa: E402

import harness  # noqa: E402
import images  # noqa: E402
import registry  # noqa: E402

cri = None  # the generated CRI module, loaded in main()

BRIDGE = "crbench0"
SUBNET = "10.231.0.0/16"


def conflist(data_dir):
    return {
        "cniVersion": "1.0.0",
        "name": "crisp-bench",
        "plugins": [
            {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False,
             "ipam": {"type": "host-local", "dataDir": data_dir,
                      "ranges": [[{"subnet": SUBNET}]]}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def percentile(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid):
    """Proportional set size: shared pages divided among their users, so a
    sum over processes counts a shared library once."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def mount_tmpfs(path):
    """Each runtime's state dir goes on a tmpfs of its own, where both expect
    it (/run/crisp, /run/containerd): on a systemd host /run is a tmpfs. On
    this machine it is not, and every file a pod start creates there would
    cost an inode allocation on the root ext4, which has no journal and so
    scans for recently freed inodes at each one."""
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755,nosuid,nodev", "tmpfs", path],
                   check=True)


class Runtime:
    """A CRI endpoint with persistent stubs."""

    # a GrpcFloor measured next to this runtime's short calls, or None
    floor = None

    def __init__(self, name, sock):
        self.name, self.sock = name, sock
        self.ch = grpc.insecure_channel("unix:" + sock,
                                        options=[("grpc.use_local_subchannel_pool", 1)])
        self.stubs = {}

    def call(self, method, req, timeout=120):
        fn = self.stubs.get(method)
        if fn is None:
            fn = self.ch.unary_unary(harness.method_path(method),
                                     request_serializer=lambda m: m.SerializeToString(),
                                     response_deserializer=harness.response_class(method).FromString)
            self.stubs[method] = fn
        return fn(req, timeout=timeout)

    def call_raw(self, method, req, timeout=120):
        """The reply's bytes as the runtime sent them, not parsed."""
        fn = self.stubs.get((method, "raw"))
        if fn is None:
            fn = self.ch.unary_unary(harness.method_path(method),
                                     request_serializer=lambda m: m.SerializeToString())
            self.stubs[(method, "raw")] = fn
        return fn(req, timeout=timeout)

    def close(self):
        self.ch.close()

    # what "all of the runtime's processes" means, per runtime
    def pids(self):
        raise NotImplementedError

    def settle(self):
        """Wait for what the runtime runs only while it works to go;
        returns what it waited for, as text, or None."""
        return None

    def rss_total(self):
        return sum(rss_kb(p) for p in self.pids())

    def pss_total(self):
        return sum(pss_kb(p) for p in self.pids())

    def by_process(self):
        """{command name: {"count", "rss kB", "pss kB"}} over pids()."""
        out = {}
        for p in self.pids():
            try:
                with open("/proc/%d/comm" % p) as f:
                    comm = f.read().strip()
            except OSError:
                continue
            row = out.setdefault(comm, {"count": 0, "rss kB": 0, "pss kB": 0})
            row["count"] += 1
            row["rss kB"] += rss_kb(p)
            row["pss kB"] += pss_kb(p)
        return out


class Crisp(Runtime):
    def settle(self, timeout=45):
        """crisp-fetch, imaged's registry client, runs only while images
        are fetched and exits 30 s after the last fetch: idle memory is
        measured without it (its size is in the line this returns)."""
        imaged = self.d.children()["crisp-imaged"]
        fetch = [p for p, comm in harness.children(imaged) if comm == "crisp-fetch"]
        if not fetch:
            return None
        rss = sum(rss_kb(p) for p in fetch)
        t = time.monotonic()
        harness.wait_for(lambda: not [p for p, comm in harness.children(imaged)
                                      if comm == "crisp-fetch"], timeout, interval=0.2,
                         what="crisp-fetch to exit")
        return "crisp-fetch (%d kB RSS) exited %.1f s later" % (rss, time.monotonic() - t)

    def __init__(self, cni_dir):
        self.d = harness.Crispd(config={"cni": {"conf_dir": cni_dir, "bin_dirs": "/usr/lib/cni"},
                                        "crispd": {"log_level": "notice"}})
        # harness.Crispd.cleanup() unmounts it with the rest of its dir
        try:
            mount_tmpfs(self.d.config["crispd"]["state_dir"])
            self.d.start()
        except BaseException:
            self.d.cleanup()
            raise
        super().__init__("crisp", self.d.sock)

    def pids(self):
        # crispd, its four processes, every child of theirs (the launchers
        # runtimed and netd fork at start, named "<helper>-launch"; imaged's
        # crisp-fetch while it runs; a CNI plugin or runc caught mid-run),
        # and the per-container monitors (detached: found by their bundle
        # paths under this crispd's state dir)
        helpers = list(self.d.children().values())
        ps = [self.d.pid] + helpers
        for h in helpers:
            ps += [pid for pid, comm in harness.children(h)]
        state = os.path.join(self.d.dir, "state").encode()
        for p in all_pids():
            try:
                exe = os.readlink("/proc/%d/exe" % p)
            except OSError:
                continue
            if exe.endswith("/crisp-monitor") and any(a.startswith(state)
                                                      for a in harness.proc_cmdline(p)):
                ps.append(p)
        return ps

    def stop(self):
        self.close()
        self.d.cleanup()  # removes what pods are left, stops crispd


class Containerd(Runtime):
    def __init__(self, tmp, cni_dir, reg_host, pause_ref):
        self.dir = os.path.join(tmp, "containerd")
        os.makedirs(self.dir)
        mount_tmpfs(os.path.join(self.dir, "state"))  # stop() unmounts it
        sock = os.path.join(self.dir, "containerd.sock")
        conf = os.path.join(self.dir, "config.toml")
        with open(conf, "w") as f:
            f.write(CONTAINERD_CONFIG.format(d=self.dir, sock=sock, cni=cni_dir, reg=reg_host,
                                             pause=pause_ref))
        self.log = open(os.path.join(self.dir, "containerd.log"), "ab")
        self.proc = subprocess.Popen(["containerd", "--config", conf], stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        harness.wait_for(lambda: os.path.exists(sock), 20, what="containerd socket")
        super().__init__("containerd", sock)
        harness.wait_for(self._serves, 20, what="containerd CRI")

    def _serves(self):
        try:
            self.call("Version", cri.VersionRequest(), timeout=2)
            return True
        except grpc.RpcError:
            return False

    def pids(self):
        ps = [self.proc.pid]
        sock = self.dir.encode()
        for p in all_pids():
            c = harness.proc_cmdline(p)
            if c and c[0].endswith(b"containerd-shim-runc-v2") and any(sock in a for a in c):
                ps.append(p)
        return ps

    def stop(self):
        # what a failed run left: pods hold netns under /run/netns and shm
        # mounts under our dir, and their shims outlive containerd
        try:
            for p in self.call("ListPodSandbox", cri.ListPodSandboxRequest(), timeout=10).items:
                self.call("StopPodSandbox", cri.StopPodSandboxRequest(pod_sandbox_id=p.id))
                self.call("RemovePodSandbox", cri.RemovePodSandboxRequest(pod_sandbox_id=p.id))
        except grpc.RpcError as e:
            print("containerd: removing pods: %s" % e.details(), file=sys.stderr)
        self.close()
        shims = self.pids()[1:]
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for p in shims:  # only the shims this containerd started
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for mp in reversed(harness.mounts_under(self.dir)):
            subprocess.run(["umount", "-l", mp], stderr=subprocess.DEVNULL)
        self.log.close()


CONTAINERD_CONFIG = """version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  level = "warn"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  # this host's bounding set lacks CAP_SYS_RESOURCE (DESIGN.md): as crisp does
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # runc's state beside the rest of the state, on the tmpfs (by
        # default it is /run/containerd/runc, whatever `state` says)
        Root = "{d}/state/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni}"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."{reg}"]
    endpoint = ["http://{reg}"]
"""


class Pods:
    """Pod and container requests the same for both runtimes."""

    def __init__(self, tmp, image):
        self.tmp, self.image = tmp, image

    def sandbox_config(self, name):
        uid = uuid.uuid4().hex
        logdir = os.path.join(self.tmp, "logs", uid)
        os.makedirs(logdir)
        return cri.PodSandboxConfig(
            metadata=cri.PodSandboxMetadata(name=name, uid=uid, namespace="bench", attempt=0),
            hostname=name, log_directory=logdir, linux=cri.LinuxPodSandboxConfig())

    def container_config(self, name="sleep"):
        return cri.ContainerConfig(metadata=cri.ContainerMetadata(name=name),
                                   image=cri.ImageSpec(image=self.image),
                                   command=["sleep", "3600"], log_path=name + ".log",
                                   linux=cri.LinuxContainerConfig())

    # set to {} to have start() keep each call's duration, per runtime
    phases = None

    def _timed(self, rt, method, req):
        t = time.perf_counter()
        r = rt.call(method, req)
        if self.phases is not None:
            self.phases.setdefault(rt.name, {}).setdefault(method, []).append(
                time.perf_counter() - t)
        return r

    def start(self, rt, name, containers=1):
        sc = self.sandbox_config(name)
        t = time.perf_counter()
        pod = self._timed(rt, "RunPodSandbox",
                          cri.RunPodSandboxRequest(config=sc)).pod_sandbox_id
        ids = []
        for i in range(containers):
            c = self._timed(rt, "CreateContainer", cri.CreateContainerRequest(
                pod_sandbox_id=pod, config=self.container_config("c%d" % i),
                sandbox_config=sc)).container_id
            self._timed(rt, "StartContainer", cri.StartContainerRequest(container_id=c))
            ids.append(c)
        return pod, ids, time.perf_counter() - t, sc

    @staticmethod
    def remove(rt, pod):
        t = time.perf_counter()
        rt.call("StopPodSandbox", cri.StopPodSandboxRequest(pod_sandbox_id=pod))
        rt.call("RemovePodSandbox", cri.RemovePodSandboxRequest(pod_sandbox_id=pod))
        return time.perf_counter() - t


def latency(rt, method, req, n):
    rt.call(method, req)
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        rt.call(method, req)
        ts.append(time.perf_counter() - t)
    return ts


CRI_PING = os.path.join(harness.BUILD, "bench", "cri-ping")


def ping(sock, method, req, n):
    """The same calls from C (bench/cri-ping): what the runtime takes, without
    the ~150 us the Python client adds to every call; [] if it is not built."""
    if not os.access(CRI_PING, os.X_OK):
        return []
    out = subprocess.run([CRI_PING, sock, harness.method_path(method), str(n)],
                         input=req.SerializeToString(), capture_output=True, check=True)
    return [float(x) / 1e6 for x in out.stdout.split()]


GRPC_FLOOR = os.path.join(harness.BUILD, "bench", "grpc-floor")


class GrpcFloor:
    """What gRPC core costs per unary call by itself: cri-ping against
    bench/grpc-floor, a server that answers each call on its completion-queue
    thread with fixed bytes, no work, no thread hop. Its socket is in
    workdir; it is stopped by pid."""

    def __init__(self, workdir):
        self.dir = workdir
        os.makedirs(workdir)

    @contextlib.contextmanager
    def serving(self, method, reply):
        """A grpc-floor answering method with the bytes reply for the
        duration of the block, which gets its socket."""
        sock = os.path.join(self.dir, "floor.sock")
        log_path = os.path.join(self.dir, "grpc-floor.log")
        with tempfile.TemporaryFile(dir=self.dir) as f, open(log_path, "ab") as log:
            f.write(reply)
            f.seek(0)
            proc = subprocess.Popen([GRPC_FLOOR, sock, harness.method_path(method)], stdin=f,
                                    stdout=subprocess.PIPE, stderr=log)
        try:
            ready, _, _ = select.select([proc.stdout], [], [], 20)
            if not ready or proc.stdout.readline() != b"ready\n":
                raise RuntimeError("grpc-floor did not start; its log: %s" % log_path)
            yield sock
        finally:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                rc = proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                rc = proc.wait()
            proc.stdout.close()
            if rc != 0:
                # the figures stand; the server's exit is a bug to look at
                print("grpc-floor exited with status %d; its log: %s" % (rc, log_path),
                      file=sys.stderr)


def ping_with_floor(rt, method, req, n, reply=None):
    """ping() rt; if rt has a floor and reply is given, then the floor
    answering the same calls with reply, right after: on this shared 2-core
    VM the same calls take 55 us one second and 100 us a few seconds later.
    (Not in turns of fewer calls each: crisp's first few dozen calls on a
    new connection are slower than the rest, the floor's are not.) Returns
    the runtime's latencies and the floor's ([] where not measured)."""
    if reply is None or rt.floor is None or not os.access(GRPC_FLOOR, os.X_OK):
        return ping(rt.sock, method, req, n), []
    with rt.floor.serving(method, reply) as sock:
        ts = ping(rt.sock, method, req, n)
        return ts, ping(sock, method, req, n)


def in_parallel(fn, args):
    out, errs = [None] * len(args), []

    def run(i, a):
        try:
            out[i] = fn(*a)
        except Exception as e:  # noqa: BLE001 - reported after the join
            errs.append(e)

    ths = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(args)]
    t = time.perf_counter()
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    if errs:
        raise errs[0]
    return out, time.perf_counter() - t


def measure(rts, pods, a, results):
    def record(key, name, value, unit):
        row = results.setdefault(key, {"unit": unit})
        row[name] = value
        return row

    def alternate():
        # the order flips each round so neither runtime always goes first
        alternate.flip = not getattr(alternate, "flip", False)
        return rts if alternate.flip else list(reversed(rts))

    for rt in rts:
        settled = None if a.smoke else rt.settle()
        if settled:
            print("%s idle: %s" % (rt.name, settled), flush=True)
        record("memory idle", rt.name, rt.rss_total(), "kB")
        record("memory idle (PSS)", rt.name, rt.pss_total(), "kB")
        ts, fs = ping_with_floor(rt, "Version", cri.VersionRequest(), a.calls, reply=b"")
        if ts:
            record("Version p50, C client", rt.name, percentile(ts, 50) * 1e6, "us")
        if fs:
            record("gRPC core floor: unary call p50, C client", rt.name,
                   percentile(fs, 50) * 1e6, "us")

    # 1. pod start latency, one pod at a time
    started = {rt.name: [] for rt in rts}
    times = {rt.name: [] for rt in rts}
    pods.phases = {}
    for i in range(a.pods):
        for rt in alternate():
            pod, _, d, _ = pods.start(rt, "seq-%d" % i)
            started[rt.name].append(pod)
            times[rt.name].append(d)
    for rt in rts:
        record("pod start p50", rt.name, percentile(times[rt.name], 50) * 1e3, "ms")
        record("pod start p99", rt.name, percentile(times[rt.name], 99) * 1e3, "ms")
        # where pod start goes, call by call
        for method in ("RunPodSandbox", "CreateContainer", "StartContainer"):
            record("pod start: %s p50" % method, rt.name,
                   percentile(pods.phases[rt.name][method], 50) * 1e3, "ms")
    pods.phases = None
    times = {rt.name: [] for rt in rts}
    for i in range(a.pods):
        for rt in alternate():
            times[rt.name].append(pods.remove(rt, started[rt.name][i]))
    for rt in rts:
        record("pod stop+remove p50", rt.name, percentile(times[rt.name], 50) * 1e3, "ms")

    # 2-4. concurrent pods, memory with them running, list latency. On a
    # shared 2-core machine one burst of 20 moves by 10-15% from run to run,
    # so the bursts are repeated (alternating runtimes) and the medians kept;
    # memory, lists and ExecSync are measured in the last round.
    starts = {rt.name: [] for rt in rts}
    stops = {rt.name: [] for rt in rts}
    memory = {}  # by process, with the pods running
    start_key = "%d pods concurrently (median)" % a.concurrent
    stop_key = "%d pods stop+rm concurrently (median)" % a.concurrent
    results[start_key] = {"unit": "ms"}  # first in the table, filled below
    for rnd in range(a.rounds):
        for rt in alternate():
            out, wall = in_parallel(lambda n: pods.start(rt, n),
                                    [("par%d-%d" % (rnd, i),) for i in range(a.concurrent)])
            starts[rt.name].append(wall)
            if rnd == a.rounds - 1:
                memory[rt.name] = measure_running(rt, pods, out, a, record, results)
            _, wall = in_parallel(lambda p: pods.remove(rt, p), [(o[0],) for o in out])
            stops[rt.name].append(wall)
    for rt in rts:
        record(start_key, rt.name, percentile(starts[rt.name], 50) * 1e3, "ms")
        record(stop_key, rt.name, percentile(stops[rt.name], 50) * 1e3, "ms")
    # every burst, and memory by process, for the JSON
    rounds = {rt.name: {"start ms": [round(w * 1e3, 1) for w in starts[rt.name]],
                        "stop+remove ms": [round(w * 1e3, 1) for w in stops[rt.name]]}
              for rt in rts}
    return rounds, memory


def measure_running(rt, pods, out, a, record, results):
    """Memory, lists and ExecSync with a.concurrent pods running (out: what
    their starts returned); then up to a.list_containers containers. Returns
    the memory by process."""
    time.sleep(1)
    settled = None if a.smoke else rt.settle()
    if settled:
        print("%s with the pods: %s" % (rt.name, settled), flush=True)
    rss, pss = rt.rss_total(), rt.pss_total()
    by_process = rt.by_process()
    record("memory with %d pods" % a.concurrent, rt.name, rss, "kB")
    record("memory per pod", rt.name,
           (rss - results["memory idle"][rt.name]) / a.concurrent, "kB")
    record("memory with %d pods (PSS)" % a.concurrent, rt.name, pss, "kB")
    record("memory per pod (PSS)", rt.name,
           (pss - results["memory idle (PSS)"][rt.name]) / a.concurrent, "kB")
    lists(rt, a.concurrent, a.calls, record)
    # ExecSync of `true`
    ctr = out[0][1][0]
    ts = latency(rt, "ExecSync", cri.ExecSyncRequest(container_id=ctr, cmd=["true"],
                                                     timeout=10), a.execs)
    record("ExecSync true p50", rt.name, percentile(ts, 50) * 1e3, "ms")
    # up to 100 containers: more in the running pods
    extra = max(0, a.list_containers - a.concurrent)
    if extra:
        for k in range(extra):
            pod, _, _, sc = out[k % len(out)]
            rt.call("CreateContainer", cri.CreateContainerRequest(
                pod_sandbox_id=pod, config=pods.container_config("x%d" % k),
                sandbox_config=sc))
        lists(rt, a.list_containers, a.calls, record)
    return by_process


def lists(rt, n, calls, record):
    # the runtime's own ListContainers reply, byte for byte, for its floor
    reply = rt.call_raw("ListContainers", cri.ListContainersRequest()) if rt.floor else None
    for method, req in (("ListContainers", cri.ListContainersRequest()),
                        ("ListPodSandbox", cri.ListPodSandboxRequest())):
        ts = latency(rt, method, req, calls)
        record("%s p50 (%d)" % (method, n), rt.name, percentile(ts, 50) * 1e6, "us")
        ts, fs = ping_with_floor(rt, method, req, calls,
                                 reply=reply if method == "ListContainers" else None)
        if ts:
            record("%s p50 (%d), C client" % (method, n), rt.name,
                   percentile(ts, 50) * 1e6, "us")
        if fs:
            listed = len(cri.ListContainersResponse.FromString(reply).containers)
            record("gRPC core floor: %d-container list reply p50, C client" % listed,
                   rt.name, percentile(fs, 50) * 1e6, "us")["reply bytes"] = len(reply)


# "runc run <id>: 27.8 ms (in its monitor, ...)": runc alone, the first figure
RUNC_LINE = re.compile(r"runc (run|create|start) ([0-9a-f]{64})[^:]*: ([0-9.]+) ms")


def measure_runc_floor(crisp, pods, n, results):
    """crisp's pod start against the runc invocations it makes for it: with
    log_level debug (a SIGHUP applies it), runtimed logs how long each runc
    call took: the container's monitor runs one `runc run --detach` at
    StartContainer. The pause needs no runc with the cgroupfs driver."""
    d = crisp.d
    d.update_config({"crispd": {"log_level": "debug"}})
    d.signal(signal.SIGHUP)
    time.sleep(0.5)
    mark = d.mark()
    starts, ctrs = [], []
    for i in range(n):
        pod, ids, t, _ = pods.start(crisp, "floor-%d" % i)
        starts.append(t)
        ctrs.append(ids[0])
        Pods.remove(crisp, pod)
    d.update_config({"crispd": {"log_level": "notice"}})
    d.signal(signal.SIGHUP)
    runc = {}
    for line in d.lines(mark):
        m = RUNC_LINE.search(line)
        if m:
            runc[m.group(2)] = runc.get(m.group(2), 0.0) + float(m.group(3))
    used = [runc[c] for c in ctrs if c in runc]
    if len(used) == len(ctrs):
        floor, total = percentile(used, 50), percentile(starts, 50) * 1e3
        results["pod start: runc's part (p50)"] = {"unit": "ms", "crisp": floor}
        results["pod start: all (p50, debug log)"] = {"unit": "ms", "crisp": total}
        print("runc run takes %.1f ms of crisp's %.1f ms pod start (p50 of %d)"
              % (floor, total, n))


def measure_pull(rts, ref, a, results):
    spec = cri.ImageSpec(image=ref)
    times = {rt.name: [] for rt in rts}
    for i in range(a.pulls):
        for rt in (rts if i % 2 == 0 else list(reversed(rts))):
            try:
                rt.call("RemoveImage", cri.RemoveImageRequest(image=spec))
            except grpc.RpcError:
                pass
            # crisp syncs each unpacked layer's filesystem before it records
            # the layer (syncfs), containerd 1.6 does not: without this sync,
            # crisp's would also write back the 100 MB the other runtime
            # just left dirty on the same disk
            os.sync()
            t = time.perf_counter()
            rt.call("PullImage", cri.PullImageRequest(image=spec), timeout=900)
            times[rt.name].append(time.perf_counter() - t)
    for rt in rts:
        results.setdefault("pull+unpack %d MB (median)" % a.size_mb,
                           {"unit": "ms"})[rt.name] = percentile(times[rt.name], 50) * 1e3


def print_table(results, names):
    width = max([38] + [len(k) for k in results])
    print("%-*s %14s %14s %8s" % (width, "figure", names[0], names[1] if len(names) > 1 else "",
                                  "ratio" if len(names) > 1 else ""))
    for key, row in results.items():
        unit = row["unit"]
        a = row.get(names[0])
        b = row.get(names[1]) if len(names) > 1 else None
        ratio = (a / b) if (a is not None and b) else None
        if ratio is not None:
            row["ratio"] = ratio
        print("%-*s %11.1f %-2s %11s %-2s %8s" % (
            width, key, a, unit, "%.1f" % b if b is not None else "", unit if b is not None else "",
            "%.2f" % ratio if ratio is not None else ""))


def print_memory(memory):
    """Where the memory with the pods running goes, process by process."""
    for name, rows in memory.items():
        print("\n%s, with the pods running: %-22s %5s %10s %10s" % (
            name, "process", "count", "RSS kB", "PSS kB"))
        for comm, r in sorted(rows.items(), key=lambda kv: -kv[1]["rss kB"]):
            print("%s  %-22s %5d %10d %10d" % (" " * len(name), comm, r["count"], r["rss kB"],
                                                r["pss kB"]))


def main():
    global cri
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pods", type=int, default=30)
    ap.add_argument("--concurrent", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3,
                    help="bursts of --concurrent pods per runtime (the median is kept)")
    ap.add_argument("--list-containers", type=int, default=100)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--execs", type=int, default=50)
    ap.add_argument("--pulls", type=int, default=3)
    ap.add_argument("--size-mb", type=int, default=100)
    ap.add_argument("--floor-pods", type=int, default=10,
                    help="pods started with debug logs to time crisp's runc calls")
    ap.add_argument("--json", default="bench-results.json")
    ap.add_argument("--smoke", action="store_true",
                    help="crisp only, a few pods, a small image: proves the script runs")
    ap.add_argument("--crisp-only", action="store_true")
    a = ap.parse_args()
    if a.smoke:
        a.crisp_only = True
        a.pods, a.concurrent, a.list_containers, a.calls, a.execs, a.pulls, a.size_mb = \
            3, 3, 5, 20, 5, 1, 8
        a.rounds = 2
        a.floor_pods = 2
    if os.geteuid() != 0:
        sys.exit("cri-bench: run as root (it starts crispd and containerd)")
    if not a.crisp_only and not shutil.which("containerd"):
        sys.exit("cri-bench: containerd is not installed (apt-get install containerd), "
                 "or use --crisp-only")

    tmp = tempfile.mkdtemp(prefix="crisp-bench-")
    reg = None
    rts = []
    results = {}
    try:
        cri = harness.load_cri(os.path.join(tmp, "gen"))
        cni_dir = os.path.join(tmp, "cni")
        os.makedirs(cni_dir)
        with open(os.path.join(cni_dir, "10-bench.conflist"), "w") as f:
            json.dump(conflist(os.path.join(tmp, "ipam")), f)
        reg = registry.Registry().start()
        busybox = reg.push(images.busybox_image(), "bench/busybox", "v1")
        big = reg.push(images.big_image(total_mb=a.size_mb), "bench/big", "v1")
        rts.append(Crisp(cni_dir))
        rts[0].floor = GrpcFloor(os.path.join(tmp, "floor"))
        if not a.crisp_only:
            with open(os.path.join(harness.BUILD, "crisp-pause"), "rb") as f:
                pause_bin = f.read()
            pause = reg.push(images.Image([images.Layer([images.File("pause", pause_bin,
                                                                     mode=0o755)])],
                                          images.default_cfg(Entrypoint=["/pause"], Cmd=None)),
                             "bench/pause", "v1")
            rts.append(Containerd(tmp, cni_dir, reg.host, pause.ref))
        for rt in rts:
            rt.call("PullImage", cri.PullImageRequest(image=cri.ImageSpec(image=busybox.ref)),
                    timeout=300)
        pods = Pods(tmp, busybox.ref)
        rounds, memory = measure(rts, pods, a, results)
        measure_pull(rts, big.ref, a, results)
        measure_runc_floor(rts[0], pods, a.floor_pods, results)
        names = [rt.name for rt in rts]
        print_table(results, names)
        print_memory(memory)
        with open(a.json, "w") as f:
            json.dump({"runtimes": names, "args": vars(a), "results": results,
                       "concurrent rounds": rounds, "memory by process": memory}, f,
                      indent=2)
        print("written to %s" % a.json)
    finally:
        for rt in rts:
            try:
                rt.stop()
            except Exception as e:  # noqa: BLE001 - keep stopping the others
                print("stopping %s: %s" % (rt.name, e), file=sys.stderr)
        if reg:
            reg.cleanup()
        subprocess.run(["ip", "link", "del", BRIDGE], stderr=subprocess.DEVNULL)
        for mp in harness.mounts_under(tmp):  # a runtime that failed to start
            subprocess.run(["umount", "-l", mp], stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
