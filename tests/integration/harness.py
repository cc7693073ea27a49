"""Test harness for crisp's integration tests: runs a real crispd (as root)
with its own config, sockets and state under a temp dir, finds its children,
reads their /proc status, captures its log, and calls CRI over gRPC.

The CRI Python messages are generated at test time from ipc/cri-api.proto
with protoc (protobuf-compiler; grpc_tools' bundled protoc is too old), see
load_cri(). Every crispd a test starts is stopped and its temp dir removed by
the fixtures in conftest.py, which also show its log when a test fails.
"""

import contextlib
import errno
import glob
import importlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import grpc

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(os.environ.get("CRISP_BUILD_DIR") or os.path.join(TOP, "build-test"))


def _build_defines(name):
    try:
        with open(os.path.join(BUILD, "autoconfig.h")) as f:
            return any(line.startswith("#define %s 1" % name) for line in f)
    except OSError:
        return False


# --enable-seccomp-debug: filters log forbidden syscalls instead of killing
SECCOMP_DEBUG = _build_defines("CRISP_SECCOMP_DEBUG")
CRISPD = os.path.join(BUILD, "crispd")
PROTO = os.path.join(TOP, "ipc", "cri-api.proto")

# crispd's children, by the name in /proc/PID/comm.
FRONTEND = "crisp-frontend"
HELPERS = ("crisp-imaged", "crisp-netd", "crisp-runtimed")
PROCESSES = (FRONTEND,) + HELPERS

FULL_CAPS = 0x000001FFFFFFFFFF

# crispd runs with the environment systemd gives a service, whatever the
# environment of the test run (which may lack /usr/sbin, where runc is).
SERVICE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "LANG": "C.UTF-8"}
SIGSYS = signal.SIGSYS

cri = None  # the generated cri_api_pb2 module, set by load_cri()

# Every Crispd that is running, so a failing test can show their logs.
LIVE = []

# After this many start-ups in a row that failed, the rest fail at once: a
# crispd that cannot start would otherwise cost every test its full timeout.
MAX_START_FAILURES = 3
_start_failures = 0


# --- CRI messages ---------------------------------------------------------------


def load_cri(gen_dir):
    """Generate cri_api_pb2 from the project's proto into gen_dir and import it."""
    global cri
    protoc = shutil.which("protoc") or "/usr/bin/protoc"
    os.makedirs(gen_dir, exist_ok=True)
    subprocess.run([protoc, "--python_out=" + gen_dir, "-I" + os.path.dirname(PROTO), PROTO],
                   check=True)
    if gen_dir not in sys.path:
        sys.path.insert(0, gen_dir)
    cri = importlib.import_module("cri_api_pb2")
    return cri


def method_path(method):
    """'/runtime.v1.<Service>/<method>' for a method of either CRI service."""
    for svc in cri.DESCRIPTOR.services_by_name.values():
        if method in svc.methods_by_name:
            return "/%s/%s" % (svc.full_name, method)
    raise KeyError("no CRI method " + method)


def response_class(method):
    for svc in cri.DESCRIPTOR.services_by_name.values():
        if method in svc.methods_by_name:
            return getattr(cri, svc.methods_by_name[method].output_type.name)
    raise KeyError("no CRI method " + method)


def _identity(b):
    return b


@contextlib.contextmanager
def channel(sock):
    # A local subchannel pool: each channel makes its own connection instead of
    # sharing one (possibly in reconnect backoff) with earlier channels.
    ch = grpc.insecure_channel("unix:" + sock, options=[("grpc.use_local_subchannel_pool", 1)])
    try:
        yield ch
    finally:
        ch.close()


def call(sock, method, request=None, timeout=5.0, raw=None, path=None):
    """One unary CRI call on a fresh connection. raw: bytes to send instead
    of a serialized request; path: a method path of one's own (the reply is
    then returned as bytes)."""
    if path is None:
        path = method_path(method)
        deser = response_class(method).FromString
    else:
        deser = _identity
    if raw is not None:
        payload, ser = raw, _identity
    else:
        if request is None:
            request = getattr(cri, method + "Request")()
        payload, ser = request, lambda m: m.SerializeToString()
    with channel(sock) as ch:
        fn = ch.unary_unary(path, request_serializer=ser, response_deserializer=deser)
        return fn(payload, timeout=timeout)


def rpc_error(fn, *args, **kw):
    """Run a call that must fail; return its grpc.RpcError."""
    try:
        r = fn(*args, **kw)
    except grpc.RpcError as e:
        return e
    raise AssertionError("call succeeded but should have failed: %r" % (r,))


def conditions(status_resp):
    return {c.type: c for c in status_resp.status.conditions}


def short_name(name):
    """'crisp-netd' and 'netd' both name netd."""
    return name[len("crisp-"):] if name.startswith("crisp-") else name


# --- /proc ----------------------------------------------------------------------


def proc_stat(pid):
    """(comm, state, ppid) of pid, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    comm = s[s.index("(") + 1:s.rindex(")")]
    rest = s[s.rindex(")") + 2:].split()
    return comm, rest[0], int(rest[1])


def alive(pid):
    """pid exists and is not a zombie."""
    st = proc_stat(pid)
    return st is not None and st[1] != "Z"


def children(pid):
    """Live (non-zombie) children of pid as [(pid, comm)]."""
    kids = set()
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                    kids.update(int(k) for k in f.read().split())
            except FileNotFoundError:
                pass
    except FileNotFoundError:
        return []
    if not kids and not os.path.exists("/proc/%d/task/%d/children" % (pid, pid)):
        for d in os.listdir("/proc"):  # kernel without CONFIG_PROC_CHILDREN
            if d.isdigit():
                st = proc_stat(int(d))
                if st and st[2] == pid:
                    kids.add(int(d))
    out = []
    for k in sorted(kids):
        st = proc_stat(k)
        if st and st[1] != "Z":
            out.append((k, st[0]))
    return out


def proc_status(pid):
    """/proc/PID/status as a dict of strings."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def proc_limit(pid, name):
    """(soft, hard) of a limit in /proc/PID/limits, e.g. "Max core file size"."""
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith(name):
                soft, hard = line[len(name):].split()[:2]
                return soft, hard
    raise KeyError(name)


def wait_for(pred, timeout, interval=0.05, what="condition"):
    """Poll pred until it returns something true; return that, or raise."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def proc_cmdline(pid):
    """/proc/PID/cmdline as a list of bytes arguments; [] once it is gone."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def processes_naming(path):
    """[(pid, exe, argv)] of the processes with an argument under path (a
    bundle, state or rootfs of a crispd of ours)."""
    mine = path.encode() + b"/"
    out = []
    for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
        try:
            exe = os.readlink("/proc/%d/exe" % pid)
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if any(a.startswith(mine) for a in argv):
            out.append((pid, exe, argv))
    return out


def mounts_under(path):
    """Mount points at or below path, deepest first."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == path or mp.startswith(path.rstrip("/") + "/"):
                out.append(mp)
    return sorted(out, key=len, reverse=True)


BRIDGE_CONFLIST = {
    "cniVersion": "1.0.0",
    "name": "crisp-test",
    "plugins": [
        {
            "type": "bridge",
            "bridge": "crisptest0",
            "isGateway": True,
            "ipMasq": False,
            "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.231.0.0/16"}]]},
        },
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ],
}


# --- a crispd under test ----------------------------------------------------------


class Crispd:
    """One crispd with its own temp dir:

        T/crisp.conf  T/crisp.conf.d/  T/crisp.sock  T/root/  T/state/  T/cni/
        T/crispd.log (its stdout and stderr)

    config: {section: {key: value}} merged over the test defaults; a value of
    None removes the key."""

    def __init__(self, config=None, cni_conflist=False, name="crispd"):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="crisp-it-", dir="/tmp")
        # The uid-65534 client of the auth tests must reach the socket.
        os.chmod(self.dir, 0o755)
        self.sock = os.path.join(self.dir, "crisp.sock")
        self.conf = os.path.join(self.dir, "crisp.conf")
        self.dropin_dir = os.path.join(self.dir, "crisp.conf.d")
        self.cni_dir = os.path.join(self.dir, "cni")
        self.log_path = os.path.join(self.dir, "crispd.log")
        os.makedirs(self.cni_dir)
        self.config = {
            "crispd": {
                "socket": self.sock,
                "socket_mode": "0666",
                "root_dir": os.path.join(self.dir, "root"),
                "state_dir": os.path.join(self.dir, "state"),
                "helper_dir": BUILD,
                "log_level": "info",
            },
            "cni": {"conf_dir": self.cni_dir},
        }
        self.update_config(config or {})
        if cni_conflist:
            self.add_conflist()
        self.proc = None
        self.pid = None
        self.returncode = None
        self.known_pids = set()  # every child pid seen, for cleanup
        self._log = None

    # config

    def update_config(self, config):
        for section, kv in config.items():
            sec = self.config.setdefault(section, {})
            for k, v in kv.items():
                if v is None:
                    sec.pop(k, None)
                else:
                    sec[k] = str(v)
        self.write_config()

    def write_config(self):
        with open(self.conf, "w") as f:
            f.write(render_ini(self.config))

    def add_dropin(self, name, config):
        os.makedirs(self.dropin_dir, exist_ok=True)
        path = os.path.join(self.dropin_dir, name)
        with open(path, "w") as f:
            f.write(render_ini(config))
        return path

    def add_conflist(self, name="10-crisp-test.conflist", body=None):
        path = os.path.join(self.cni_dir, name)
        with open(path, "w") as f:
            json.dump(body or BRIDGE_CONFLIST, f)
        return path

    # lifecycle

    def start(self, argv=None, wait=True, timeout=10.0, extra_args=(), env=None):
        """Start crispd (or argv, e.g. a wrapper that execs it) in its own
        process group, its output appended to the log; env: variables added
        to its environment (its children inherit them)."""
        if _start_failures >= MAX_START_FAILURES:
            raise AssertionError("not starting crispd: the last %d start-ups failed (see the "
                                 "first failures)" % _start_failures)
        if argv is None:
            argv = [CRISPD, "--config", self.conf] + list(extra_args)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     env=dict(SERVICE_ENV, **(env or {})))
        self.pid = self.proc.pid
        self.returncode = None
        LIVE.append(self)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=10.0):
        """Until the socket answers Version and all four children run."""
        global _start_failures
        try:
            kids = self._wait_ready(timeout)
        except AssertionError:
            _start_failures += 1
            raise
        _start_failures = 0
        return kids

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        last = None
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("crispd exited with status %s during start-up"
                                     % self.proc.returncode)
            if os.path.exists(self.sock):
                try:
                    call(self.sock, "Version", timeout=2)
                    kids = self.children()
                    if all(n in kids for n in PROCESSES):
                        return kids
                    last = "children so far: %r" % kids
                except grpc.RpcError as e:
                    last = "Version: %s %s" % (e.code(), e.details())
            else:
                last = "no socket %s yet" % self.sock
            if time.monotonic() > deadline:
                raise AssertionError("crispd not ready after %.0f s (%s)" % (timeout, last))
            time.sleep(0.05)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        os.kill(self.pid, sig)

    def terminate(self, timeout=5.0):
        """SIGTERM; return crispd's exit status (None if it did not exit in time)."""
        if not self.running():
            self.returncode = self.proc.returncode
            return self.returncode
        self.children()  # remember the pids to check they are gone
        os.kill(self.pid, signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def stop(self):
        """Stop crispd and everything it started, whatever state it is in."""
        if self.proc is not None:
            if self.running():
                self.terminate(timeout=5)
            if self.running():
                # Not reaped yet, so its pid, and the process group we gave
                # it, cannot belong to anyone else.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.proc.wait()
            self.returncode = self.proc.returncode
            # Children that outlived crispd: kill only pids we saw as its
            # children and that still run the same program.
            for pid, comm in list(self.known_pids):
                st = proc_stat(pid)
                if st and st[0] == comm and st[1] != "Z":
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
        if self._log:
            self._log.close()
            self._log = None
        if self in LIVE:
            LIVE.remove(self)

    def remove_all_pods(self):
        """Best effort: stop and remove every pod (and so every container)."""
        if cri is None:
            return
        try:
            pods = self.call("ListPodSandbox", cri.ListPodSandboxRequest(), timeout=10).items
        except grpc.RpcError:
            return
        for p in pods:
            with contextlib.suppress(grpc.RpcError):
                self.call("StopPodSandbox", cri.StopPodSandboxRequest(pod_sandbox_id=p.id),
                          timeout=60)
            with contextlib.suppress(grpc.RpcError):
                self.call("RemovePodSandbox", cri.RemovePodSandboxRequest(pod_sandbox_id=p.id),
                          timeout=60)

    def kill_leftover_containers(self):
        """Container monitors outlive crispd by design: kill the ones whose
        bundle lies in our dir, with the containers they hold, and remove
        those containers' cgroups."""
        cgroups = set()
        for pid, exe, argv in processes_naming(self.dir):
            if argv[0] == b"pause" and b"--rootfs" in argv:
                # a pod's pause started without runc (its --rootfs is ours)
                kids = [pid]
            elif exe.endswith("/crisp-monitor"):
                kids = []
                for t in glob.glob("/proc/%d/task/*/children" % pid):
                    with contextlib.suppress(OSError), open(t) as f:
                        kids += [int(k) for k in f.read().split()]
            else:
                continue
            for k in kids:
                with contextlib.suppress(OSError), open("/proc/%d/cgroup" % k) as f:
                    for line in f:
                        parts = line.rstrip("\n").split(":", 2)
                        if len(parts) == 3 and parts[2] not in ("", "/"):
                            ctrl = parts[1].split(",")[0].replace("name=", "") or "unified"
                            cgroups.add((ctrl, parts[2]))
                            # and the pod's (crisp/pod-<id> when no parent
                            # was given); rmdir leaves it if still in use
                            cgroups.add((ctrl, os.path.dirname(parts[2])))
                with contextlib.suppress(ProcessLookupError):
                    os.kill(k, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2 if cgroups else 0)
        for ctrl, path in sorted(cgroups, key=lambda c: -len(c[1])):
            with contextlib.suppress(OSError):
                os.rmdir("/sys/fs/cgroup/%s%s" % (ctrl, path))

    def forbidden_syscalls(self):
        """With --enable-seccomp-debug, a filter logs what it would have
        killed for; anything but the sandbox tests' deliberate reboot(2)
        is a syscall missing from a policy."""
        try:
            text = open(self.log_path, "rb").read().decode("utf-8", "replace")
        except OSError:
            return []
        return [ln for ln in text.splitlines()
                if "seccomp: forbidden syscall" in ln and "syscall reboot " not in ln]

    def remove_bridges(self):
        """CNI DEL leaves the bridge a bridge plugin made (by design): the
        bridges named in our conf dir's configs go with us."""
        names = set()
        for f in glob.glob(os.path.join(self.cni_dir, "*")):
            try:
                with open(f) as fh:
                    conf = json.load(fh)
            except (OSError, ValueError):
                continue
            plugins = conf.get("plugins", [conf]) if isinstance(conf, dict) else []
            for pl in plugins:
                if isinstance(pl, dict) and pl.get("type") == "bridge":
                    names.add(pl.get("bridge") or "cni0")
        for name in names - {"cni0"}:
            subprocess.run(["ip", "link", "del", name], stderr=subprocess.DEVNULL, check=False)

    def cleanup(self):
        if self.running():
            self.remove_all_pods()
        self.stop()
        self.kill_leftover_containers()
        forbidden = self.forbidden_syscalls()
        self.remove_bridges()
        for mp in mounts_under(self.dir):
            subprocess.run(["umount", "-l", mp], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
        assert not forbidden, "forbidden syscalls (seccomp debug build):\n" + "\n".join(
            forbidden[:20])

    # children

    def children(self):
        """{comm: pid} of crispd's live crisp-* children; raises if a name
        appears twice."""
        out = {}
        for pid, comm in children(self.pid):
            if not comm.startswith("crisp-"):
                continue  # forked but not yet exec'd
            if comm in out:
                raise AssertionError("two live %s children: %d and %d" % (comm, out[comm], pid))
            out[comm] = pid
            self.known_pids.add((pid, comm))
        return out

    def wait_children(self, timeout=5.0):
        return wait_for(lambda: (lambda k: k if all(n in k for n in PROCESSES) else None)(
            self.children()), timeout, what="all four crisp children")

    def wait_new_pid(self, name, old_pid, timeout):
        """Wait until crispd has a live child `name` whose pid is not old_pid."""
        def new():
            pid = self.children().get(name)
            return pid if pid and pid != old_pid else None
        return wait_for(new, timeout, what="a new %s (old pid %d)" % (name, old_pid))

    # log

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def mark(self):
        """An offset into the log; log lines after it: lines(since=mark)."""
        return os.path.getsize(self.log_path)

    def lines(self, since=0):
        with open(self.log_path, "rb") as f:
            f.seek(since)
            return f.read().decode("utf-8", "replace").splitlines()

    def wait_log(self, pattern, since=0, timeout=5.0):
        """Wait for a log line (after `since`) matching the regex; return it."""
        rx = re.compile(pattern)
        def find():
            for line in self.lines(since):
                if rx.search(line):
                    return line
            return None
        return wait_for(find, timeout, what="a log line matching /%s/" % pattern)

    def tail(self, n=200):
        try:
            lines = self.log_text().splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(lines[-n:])

    # CRI

    def call(self, method, request=None, **kw):
        return call(self.sock, method, request, **kw)

    def serves(self, timeout=1.0):
        """Whether Version answers now."""
        try:
            return self.call("Version", timeout=timeout).runtime_name == "crisp"
        except grpc.RpcError:
            return False

    def status(self, verbose=False):
        return self.call("Status", cri.StatusRequest(verbose=verbose))

    def processes(self):
        """Status(verbose).info["processes"] as {short name: entry}."""
        resp = self.status(verbose=True)
        assert "processes" in resp.info, "Status verbose has no info['processes']: %r" % (
            dict(resp.info),)
        entries = json.loads(resp.info["processes"])
        assert isinstance(entries, list), "info['processes'] is not a JSON array"
        return {short_name(e["name"]): e for e in entries}


def render_ini(config):
    out = []
    for section, kv in config.items():
        out.append("[%s]" % section)
        out.extend("%s = %s" % (k, v) for k, v in kv.items())
        out.append("")
    return "\n".join(out)


# --- raw socket helpers -------------------------------------------------------------


def raw_connect(sock, timeout=2.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock)
    return s


def read_until_closed(s, timeout=3.0):
    """Read until EOF or timeout; return (bytes, closed)."""
    s.settimeout(0.2)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        except OSError as e:
            if e.errno in (errno.ECONNRESET, errno.EPIPE):
                return data, True
            raise
        if not chunk:
            return data, True
        data += chunk
    return data, False


# --- docs/PRIVSEP.md -------------------------------------------------------------------


def documented_capeff(name):
    """The CapEff mask docs/PRIVSEP.md gives for a process, or None when the
    document (or a mask for that process) is not there yet.

    It looks, in the section whose heading names the process, for a 16-hex-
    digit mask after "CapEff" (e.g. "CapEff: 00000000a80425fb" or
    "CapEff `0x...`")."""
    path = os.path.join(TOP, "docs", "PRIVSEP.md")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        text = f.read()
    short = short_name(name)
    sections = re.split(r"(?m)^(?=#+ )", text)
    for sec in sections:
        head = sec.splitlines()[0] if sec else ""
        if not head.startswith("#"):
            continue
        if not re.search(r"\b(crisp-)?%s\b" % re.escape(short), head):
            continue
        m = re.search(r"CapEff\W{0,6}(?:0x)?([0-9a-fA-F]{16})\b", sec)
        if m:
            return int(m.group(1), 16)
    # A table row: | crisp-netd | ... | 00000000000010a2 | ...
    for line in text.splitlines():
        if line.lstrip().startswith("|") and re.search(r"\|\s*`?(crisp-)?%s`?\s*\|" % re.escape(short), line):
            m = re.search(r"\b(?:0x)?([0-9a-fA-F]{16})\b", line)
            if m:
                return int(m.group(1), 16)
    return None


# --- pods and containers (test_pods.py, test_containers.py) ----------------------------

CGROUP_ROOT = "/sys/fs/cgroup"


def pod_config(name, namespace="crisp-it", uid=None, attempt=0, host_network=True,
               host_pid=False, host_ipc=False, labels=None, annotations=None,
               log_directory=None, hostname=None, sysctls=None, privileged=False):
    """A PodSandboxConfig. Host network by default: tests that are not about
    networking do not depend on CNI."""
    import uuid
    cfg = cri.PodSandboxConfig()
    cfg.metadata.name = name
    cfg.metadata.namespace = namespace
    cfg.metadata.uid = uid or str(uuid.uuid4())
    cfg.metadata.attempt = attempt
    cfg.hostname = hostname or name[:63]
    if log_directory:
        cfg.log_directory = log_directory
    for k, v in (labels or {}).items():
        cfg.labels[k] = v
    for k, v in (annotations or {}).items():
        cfg.annotations[k] = v
    ns = cfg.linux.security_context.namespace_options
    ns.network = cri.NODE if host_network else cri.POD
    ns.pid = cri.NODE if host_pid else cri.CONTAINER
    ns.ipc = cri.NODE if host_ipc else cri.POD
    for k, v in (sysctls or {}).items():
        cfg.linux.sysctls[k] = v
    if privileged:
        cfg.linux.security_context.privileged = True
    return cfg


def container_config(name, image, command=None, args=None, labels=None, annotations=None,
                     log_path=None, env=None, workdir=None):
    """A ContainerConfig; set cfg.linux.* for resources and security."""
    cfg = cri.ContainerConfig()
    cfg.metadata.name = name
    cfg.image.image = image
    cfg.command.extend(command or [])
    cfg.args.extend(args or [])
    for k, v in (labels or {}).items():
        cfg.labels[k] = v
    for k, v in (annotations or {}).items():
        cfg.annotations[k] = v
    for k, v in (env or {}).items():
        cfg.envs.add(key=k, value=v)
    if workdir:
        cfg.working_dir = workdir
    cfg.log_path = log_path or "%s.log" % name
    return cfg


class CriObjects:
    """The pods and containers one test makes through CRI, and what is needed
    to make sure none of them outlives the test (cleanup())."""

    def __init__(self, crispd):
        self.c = crispd
        self.pods = {}    # id -> PodSandboxConfig
        self.ctrs = {}    # id -> pod id
        self.log_dirs = []

    def log_dir(self):
        d = tempfile.mkdtemp(prefix="crisp-it-logs-", dir="/tmp")
        self.log_dirs.append(d)
        return d

    # pods

    def run_pod(self, cfg, handler="", timeout=60):
        if not cfg.log_directory:
            cfg.log_directory = self.log_dir()
        r = self.c.call("RunPodSandbox", cri.RunPodSandboxRequest(config=cfg,
                                                                  runtime_handler=handler),
                        timeout=timeout)
        self.pods[r.pod_sandbox_id] = cfg
        return r.pod_sandbox_id

    def stop_pod(self, pod_id, timeout=60):
        self.c.call("StopPodSandbox", cri.StopPodSandboxRequest(pod_sandbox_id=pod_id),
                    timeout=timeout)

    def remove_pod(self, pod_id, timeout=60):
        self.c.call("RemovePodSandbox", cri.RemovePodSandboxRequest(pod_sandbox_id=pod_id),
                    timeout=timeout)
        self.pods.pop(pod_id, None)
        for cid in [k for k, v in self.ctrs.items() if v == pod_id]:
            self.ctrs.pop(cid)

    def pod_status(self, pod_id, verbose=False):
        return self.c.call("PodSandboxStatus", cri.PodSandboxStatusRequest(
            pod_sandbox_id=pod_id, verbose=verbose))

    def list_pods(self, id=None, state=None, labels=None):
        req = cri.ListPodSandboxRequest()
        if id is not None or state is not None or labels:
            req.filter.SetInParent()
            if id is not None:
                req.filter.id = id
            if state is not None:
                req.filter.state.state = state
            for k, v in (labels or {}).items():
                req.filter.label_selector[k] = v
        return list(self.c.call("ListPodSandbox", req).items)

    # containers

    def create(self, pod_id, cfg, timeout=60):
        r = self.c.call("CreateContainer", cri.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=cfg, sandbox_config=self.pods[pod_id]),
            timeout=timeout)
        self.ctrs[r.container_id] = pod_id
        return r.container_id

    def start(self, cid, timeout=60):
        self.c.call("StartContainer", cri.StartContainerRequest(container_id=cid),
                    timeout=timeout)

    def run(self, pod_id, cfg):
        cid = self.create(pod_id, cfg)
        self.start(cid)
        return cid

    def stop(self, cid, timeout=10):
        self.c.call("StopContainer", cri.StopContainerRequest(container_id=cid, timeout=timeout),
                    timeout=timeout + 60)

    def remove(self, cid):
        self.c.call("RemoveContainer", cri.RemoveContainerRequest(container_id=cid), timeout=60)
        self.ctrs.pop(cid, None)

    def status(self, cid, verbose=False):
        return self.c.call("ContainerStatus", cri.ContainerStatusRequest(
            container_id=cid, verbose=verbose)).status

    def list_containers(self, id=None, state=None, pod_id=None, labels=None):
        req = cri.ListContainersRequest()
        if id is not None or state is not None or pod_id is not None or labels:
            req.filter.SetInParent()
            if id is not None:
                req.filter.id = id
            if state is not None:
                req.filter.state.state = state
            if pod_id is not None:
                req.filter.pod_sandbox_id = pod_id
            for k, v in (labels or {}).items():
                req.filter.label_selector[k] = v
        return list(self.c.call("ListContainers", req).containers)

    def exec_sync(self, cid, cmd, timeout=10, call_timeout=None):
        return self.c.call("ExecSync", cri.ExecSyncRequest(container_id=cid, cmd=cmd,
                                                           timeout=timeout),
                           timeout=call_timeout or (timeout or 30) + 30)

    def sh(self, cid, script, timeout=10):
        """ExecSync sh -c script: (exit code, stdout, stderr) as text."""
        r = self.exec_sync(cid, ["sh", "-c", script], timeout=timeout)
        return r.exit_code, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")

    def wait_state(self, cid, state, timeout=30):
        return wait_for(lambda: (lambda s: s if s.state == state else None)(self.status(cid)),
                        timeout, interval=0.1,
                        what="container %s in state %s" % (cid[:12], cri.ContainerState.Name(state)))

    def cleanup(self):
        """Best effort: stop and remove every container and pod still known."""
        for cid in list(self.ctrs):
            with contextlib.suppress(grpc.RpcError):
                self.stop(cid, timeout=0)
            with contextlib.suppress(grpc.RpcError):
                self.remove(cid)
        for pid in list(self.pods):
            with contextlib.suppress(grpc.RpcError):
                self.stop_pod(pid)
            with contextlib.suppress(grpc.RpcError):
                self.remove_pod(pid)
        for d in self.log_dirs:
            shutil.rmtree(d, ignore_errors=True)


def cri_log_records(path):
    """A CRI log file as [(timestamp, stream, tag, text)]; every line must
    have the CRI format (RFC 3339 timestamp with nanoseconds, stdout or
    stderr, P or F)."""
    rx = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)) "
                    r"(stdout|stderr) (P|F) (.*)$")
    out = []
    with open(path, "rb") as f:
        data = f.read().decode("utf-8", "replace")
    assert data == "" or data.endswith("\n"), "log does not end with a newline: %r" % data[-80:]
    for line in data.splitlines():
        m = rx.match(line)
        assert m, "not a CRI log line: %r" % line
        out.append(m.groups())
    return out


def cri_log_lines(path, stream=None):
    """The log's lines reassembled from P/F records: [(stream, text, complete)]."""
    out, partial = [], {}
    for _, s, tag, text in cri_log_records(path):
        partial[s] = partial.get(s, "") + text
        if tag == "F":
            out.append((s, partial.pop(s), True))
    for s, text in partial.items():
        out.append((s, text, False))
    return [x for x in out if stream is None or x[0] == stream]


def monitor_processes(needles):
    """[(pid, cmdline)] of live crisp-monitor processes whose command line
    names one of needles (ids, a test's temp dir)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = proc_stat(int(d))
        if not st or st[1] == "Z" or not st[0].startswith("crisp-monitor"):
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(n in cmd for n in needles):
            out.append((int(d), cmd))
    return out


def cgroups_named(ids, root=CGROUP_ROOT, max_depth=6):
    """cgroup directories whose name contains one of ids."""
    found = []
    root_depth = root.rstrip("/").count("/")
    for dirpath, dirnames, _ in os.walk(root):
        if dirpath.count("/") - root_depth >= max_depth:
            dirnames[:] = []
        for d in dirnames:
            if any(i in d for i in ids):
                found.append(os.path.join(dirpath, d))
    return found


def leftovers(crispd, ids, baseline_mounts=()):
    """What crisp left behind for these sandbox/container ids: mounts under
    its dirs that name one (beyond baseline_mounts), netns pins, cgroups,
    monitors."""
    out = []
    mounts = [m for m in mounts_under(crispd.dir)
              if m not in set(baseline_mounts) and any(i in m for i in ids)]
    out += ["mount %s" % m for m in mounts]
    netns_dir = os.path.join(crispd.config["crispd"]["state_dir"], "netns")
    if os.path.isdir(netns_dir):
        out += ["netns %s" % n for n in os.listdir(netns_dir) if any(i in n for i in ids)]
    out += ["cgroup %s" % g for g in cgroups_named(ids)]
    out += ["monitor %d: %s" % m for m in monitor_processes(list(ids))]
    return out
