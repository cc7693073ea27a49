"""Pod networking through the CRI: netd's network namespaces and CNI plugins
(Debian's containernetworking-plugins), pod IPs in PodSandboxStatus,
hostPort mappings, NetworkReady, failures that leave nothing behind, and
durability across netd kills and crispd restarts.

Every test runs its own crispd whose cni.conf_dir and cni.bin_dirs point at
temp dirs: a conflist with a bridge of its own name and subnet (10.233.N.0/24),
host-local with its own dataDir, and portmap; the bin dir holds symlinks to
/usr/lib/cni and test plugins compiled here (the launcher runs binaries, not
scripts). All traffic stays inside the pods' namespaces, the test bridge and
the host's own addresses. Each test deletes its bridge and checks that no
iptables rule for its subnet is left."""

import itertools
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import grpc
import pytest

import harness
from harness import rpc_error

CNI_BIN = "/usr/lib/cni"
NSENTER = "/usr/bin/nsenter"
PY = "/usr/bin/python3"

# C: print the object that follows "prevResult": in the config held in in[]
# (the test plugins here and in test_netd_records.py pass it on as their result)
PRINT_PREV_C = r"""
static void print_prev(void)
{
	char *p = strstr(in, "\"prevResult\":"), *q;
	int depth = 0, str = 0;

	if (!p)
		return;
	p = strchr(p + 13, '{');
	for (q = p; q && *q; q++) {
		if (str) {
			if (*q == '\\')
				q++;
			else if (*q == '"')
				str = 0;
		} else if (*q == '"')
			str = 1;
		else if (*q == '{')
			depth++;
		else if (*q == '}' && --depth == 0) {
			fwrite(p, 1, (size_t)(q - p + 1), stdout);
			return;
		}
	}
}
"""

# Test plugins. They read their stdin (the network config) first, as a
# plugin must, and act on CNI_COMMAND; DEL and CHECK succeed.
PLUGINS_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char in[1 << 20];

@PRINT_PREV@

int main(int argc, char **argv)
{
	const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	const char *cmd = getenv("CNI_COMMAND");
	size_t n = 0;
	ssize_t r;

	while (n < sizeof(in) - 1 && (r = read(0, in + n, sizeof(in) - 1 - n)) > 0)
		n += (size_t)r;
	if (!cmd || strcmp(cmd, "ADD"))
		return 0;
	if (!strcmp(name, "crisp-test-hang"))
		sleep(60);
	if (!strcmp(name, "crisp-test-fail")) {
		puts("{\"cniVersion\":\"1.0.0\",\"code\":7,\"msg\":\"crisp test plugin refuses\","
		     "\"details\":\"on purpose\"}");
		return 1;
	}
	if (!strcmp(name, "crisp-test-late-fail")) {
		sleep(2);
		puts("{\"cniVersion\":\"1.0.0\",\"code\":7,\"msg\":\"crisp test plugin refuses late\"}");
		return 1;
	}
	if (!strcmp(name, "crisp-test-slow")) {
		sleep(atoi(getenv("CRISP_SLOW") ? getenv("CRISP_SLOW") : "4"));
		print_prev();
	}
	return 0;
}
""".replace("@PRINT_PREV@", PRINT_PREV_C)

_subnets = itertools.count(random.randrange(0, 200))


@pytest.fixture(scope="module")
def plugin_bin(tmp_path_factory):
    """A compiled test plugin binary (one program, three names)."""
    d = tmp_path_factory.mktemp("cni-plugins")
    src = d / "plugins.c"
    src.write_text(PLUGINS_C)
    exe = d / "crisp-test-plugin"
    subprocess.run(["cc", "-O", "-o", str(exe), str(src)], check=True)
    return str(exe)


class Net:
    """A crispd with its own CNI set-up."""

    def __init__(self, factory, plugin_bin, plugins=None, timeout=2, start=True):
        n = next(_subnets) % 250
        self.bridge = "crn%05x" % random.randrange(1 << 20)
        self.prefix = "10.233.%d." % n
        self.subnet = self.prefix + "0/24"
        self.c = factory(config={"cni": {"plugin_timeout": timeout}}, start=False)
        self.bin = os.path.join(self.c.dir, "cnibin")
        self.data = os.path.join(self.c.dir, "ipam")
        os.makedirs(self.bin)
        for p in os.listdir(CNI_BIN):
            os.symlink(os.path.join(CNI_BIN, p), os.path.join(self.bin, p))
        for name in ("crisp-test-hang", "crisp-test-fail", "crisp-test-slow",
                     "crisp-test-late-fail"):
            os.symlink(plugin_bin, os.path.join(self.bin, name))
        self.c.update_config({"cni": {"bin_dirs": self.bin}})
        self.write_conf(plugins)
        if start:
            self.start()

    def start(self):
        self.c.start()
        # the frontend's channels come up just after the children start
        harness.wait_for(lambda: harness.conditions(self.c.status())["RuntimeReady"].status,
                         10, what="RuntimeReady")

    def conflist(self, extra=None):
        plugins = [
            {"type": "bridge", "bridge": self.bridge, "isGateway": True, "ipMasq": False,
             "ipam": {"type": "host-local", "dataDir": self.data,
                      "ranges": [[{"subnet": self.subnet}]],
                      "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ]
        return {"cniVersion": "1.0.0", "name": "crisp-net-test",
                "plugins": plugins + [{"type": t} for t in (extra or [])]}

    def write_conf(self, extra=None, body=None):
        path = os.path.join(self.c.cni_dir, "10-net.conflist")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            if isinstance(body, str):
                f.write(body)
            else:
                json.dump(body or self.conflist(extra), f)
        os.rename(tmp, path)
        return path

    def record(self, pod):
        """netd's durable record of the pod's network, or None."""
        path = os.path.join(self.c.config["crispd"]["root_dir"], "netd", "networks",
                            pod + ".json")
        try:
            with open(path) as f:
                return json.load(f)
        except FileNotFoundError:
            return None

    @property
    def netns_dir(self):
        return os.path.join(self.c.config["crispd"]["state_dir"], "netns")

    def pins(self):
        try:
            return sorted(os.listdir(self.netns_dir))
        except FileNotFoundError:
            return []

    def allocated(self):
        """IPs host-local holds (its files named after addresses)."""
        d = os.path.join(self.data, "crisp-net-test")
        try:
            return sorted(f for f in os.listdir(d) if f.startswith(self.prefix))
        except FileNotFoundError:
            return []

    def nat_rules(self):
        out = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True)
        return [l for l in out.stdout.splitlines() if self.prefix in l]

    def cleanup(self):
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


@pytest.fixture
def net_factory(crispd_factory, plugin_bin, cri):
    made = []

    def make(**kw):
        n = Net(crispd_factory, plugin_bin, **kw)
        made.append(n)
        return n

    yield make
    for n in made:
        n.c.stop()
        leftover = n.nat_rules()
        n.cleanup()
        kill_test_plugins(plugin_bin)
        assert not leftover, "iptables rules for %s left: %s" % (n.subnet, leftover)


def kill_test_plugins(plugin_bin):
    """Test plugins orphaned by a killed netd (hang, slow)."""
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.readlink("/proc/%s/exe" % pid) == plugin_bin:
                    os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass


_names = itertools.count()


def pod_config(cri, name=None, port_mappings=(), host_network=False):
    name = name or "net-pod-%d" % next(_names)
    cfg = cri.PodSandboxConfig(
        metadata=cri.PodSandboxMetadata(name=name, namespace="crisp-net-test",
                                        uid="uid-%s-%d" % (name, os.getpid()), attempt=0),
        hostname=name)
    for cp, hp in port_mappings:
        cfg.port_mappings.add(protocol=cri.TCP, container_port=cp, host_port=hp)
    if host_network:
        cfg.linux.security_context.namespace_options.network = cri.NODE
    return cfg


def run_pod(c, cri, cfg, timeout=30):
    return c.call("RunPodSandbox", cri.RunPodSandboxRequest(config=cfg),
                  timeout=timeout).pod_sandbox_id


def pod_ip(c, cri, pod_id):
    st = c.call("PodSandboxStatus", cri.PodSandboxStatusRequest(pod_sandbox_id=pod_id))
    return st.status.network.ip


def stop_pod(c, cri, pod_id):
    c.call("StopPodSandbox", cri.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=30)


def remove_pod(c, cri, pod_id):
    c.call("RemovePodSandbox", cri.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=30)


def in_netns(pin, *argv, **kw):
    return subprocess.run([NSENTER, "--net=" + pin] + list(argv), capture_output=True,
                          text=True, **kw)


LISTENER = r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(4)
print("listening", flush=True)
while True:
    c, _ = s.accept()
    c.sendall(b"hello from the pod\n")
    c.close()
"""


def start_listener(pin, port):
    p = subprocess.Popen([NSENTER, "--net=" + pin, PY, "-c", LISTENER, str(port)],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "listening"
    return p


def netns_inode(pin):
    """The pin's netns inode, once netd has mounted the netns on it: the
    pin exists as an empty file for a moment before, whose inode no
    process's netns has."""
    nsfs = os.stat("/proc/self/ns/net").st_dev

    def mounted():
        st = os.stat(pin)
        return st if st.st_dev == nsfs else None
    return harness.wait_for(mounted, 10, what="the netns mounted on %s" % pin).st_ino


def netns_pids(inode):
    """The processes in the network namespace with this inode."""
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.readlink("/proc/%s/ns/net" % pid) == "net:[%d]" % inode:
                    out.append(int(pid))
            except OSError:
                pass
    return out


def run_pod_in_thread(c, cri, cfg, handler="", timeout=60):
    """RunPodSandbox on a thread; the dict gets "id" or "err" once it ends."""
    result = {}

    def run():
        try:
            result["id"] = c.call("RunPodSandbox", cri.RunPodSandboxRequest(
                config=cfg, runtime_handler=handler), timeout=timeout).pod_sandbox_id
        except grpc.RpcError as e:
            result["err"] = e

    t = threading.Thread(target=run)
    t.start()
    return t, result


def first_pin(n):
    """The sandbox id of the first netns pin, once there is one."""
    return harness.wait_for(lambda: (n.pins() or [None])[0], 15, what="a netns pin")


def network_ready(c):
    return harness.conditions(c.status())["NetworkReady"]


# --- the happy path -------------------------------------------------------------


def test_pod_gets_ip_stop_frees_remove_unpins(net_factory, cri):
    n = net_factory()
    pod = run_pod(n.c, cri, pod_config(cri))
    ip = pod_ip(n.c, cri, pod)
    assert ip.startswith(n.prefix), "pod IP %r not in %s" % (ip, n.subnet)
    assert n.allocated() == [ip], n.allocated()
    pin = os.path.join(n.netns_dir, pod)
    assert n.pins() == [pod]
    assert pin in harness.mounts_under(n.netns_dir), "the netns pin is not a mount"
    r = in_netns(pin, "ip", "-o", "addr", "show")
    assert re.search(r"\beth0\b.*inet %s/24" % re.escape(ip), r.stdout), r.stdout
    assert re.search(r"\blo\b.*inet 127\.0\.0\.1/8", r.stdout), "lo is not up: " + r.stdout

    stop_pod(n.c, cri, pod)
    assert n.allocated() == [], "host-local still holds %s after StopPodSandbox" % n.allocated()
    stop_pod(n.c, cri, pod)  # idempotent
    assert n.pins() == [pod], "the netns must stay until RemovePodSandbox"
    remove_pod(n.c, cri, pod)
    assert n.pins() == [], n.pins()
    assert pin not in harness.mounts_under(n.netns_dir)
    assert not n.nat_rules()


def test_two_pods_reach_each_other(net_factory, cri):
    n = net_factory()
    a = run_pod(n.c, cri, pod_config(cri))
    b = run_pod(n.c, cri, pod_config(cri))
    ip_a, ip_b = pod_ip(n.c, cri, a), pod_ip(n.c, cri, b)
    assert ip_a != ip_b and ip_a.startswith(n.prefix) and ip_b.startswith(n.prefix)
    listener = start_listener(os.path.join(n.netns_dir, a), 7777)
    try:
        r = in_netns(os.path.join(n.netns_dir, b), PY, "-c",
                     "import socket; s = socket.create_connection(('%s', 7777), timeout=5); "
                     "print(s.recv(100).decode(), end='')" % ip_a, timeout=15)
        assert r.stdout == "hello from the pod\n", (r.stdout, r.stderr)
    finally:
        listener.kill()
        listener.wait()
    for p in (a, b):
        stop_pod(n.c, cri, p)
        remove_pod(n.c, cri, p)
    assert n.allocated() == [] and n.pins() == []


def test_host_port_reaches_the_pod(net_factory, cri):
    n = net_factory()
    host_port = random.randrange(20000, 30000)
    pod = run_pod(n.c, cri, pod_config(cri, port_mappings=[(8080, host_port)]))
    rules = n.nat_rules()
    assert any("--dport %d" % host_port in l for l in
               subprocess.run(["iptables-save", "-t", "nat"], capture_output=True,
                              text=True).stdout.splitlines()), "no DNAT rule for the hostPort"
    listener = start_listener(os.path.join(n.netns_dir, pod), 8080)
    try:
        # The host's address on the test bridge: a local address, so the
        # OUTPUT chain's DNAT applies (127.0.0.1 would need route_localnet).
        gateway = n.prefix + "1"
        with socket.create_connection((gateway, host_port), timeout=5) as s:
            assert s.recv(100) == b"hello from the pod\n"
    finally:
        listener.kill()
        listener.wait()
    assert rules, "portmap made no rule for the pod"
    stop_pod(n.c, cri, pod)
    assert not [l for l in subprocess.run(["iptables-save", "-t", "nat"], capture_output=True,
                                          text=True).stdout.splitlines()
                if "--dport %d" % host_port in l], "the hostPort rule outlived StopPodSandbox"
    remove_pod(n.c, cri, pod)


def test_host_network_pod_gets_no_netns(net_factory, cri):
    n = net_factory()
    pod = run_pod(n.c, cri, pod_config(cri, host_network=True))
    assert n.pins() == [], "a host-network pod got a netns: %s" % n.pins()
    assert n.allocated() == []
    stop_pod(n.c, cri, pod)
    remove_pod(n.c, cri, pod)


# --- failures leave nothing behind ------------------------------------------------


def assert_nothing_left(n):
    assert n.pins() == [], "netns left: %s" % n.pins()
    assert harness.mounts_under(n.netns_dir) == []
    assert n.allocated() == [], "IPs still held: %s" % n.allocated()
    assert not n.nat_rules()


@pytest.mark.parametrize("plugin,expect", [
    ("crisp-test-hang", r"crisp-test-hang.*timed out after 2 s"),
    ("crisp-test-fail", r"crisp-test-fail.*crisp test plugin refuses"),
])
def test_failing_plugin_fails_run_and_cleans_up(net_factory, cri, plugin, expect):
    n = net_factory(plugins=[plugin])
    t0 = time.monotonic()
    e = rpc_error(run_pod, n.c, cri, pod_config(cri))
    assert re.search(expect, e.details()), e.details()
    assert time.monotonic() - t0 < 20
    harness.wait_for(lambda: n.pins() == [] and n.allocated() == [], 10,
                     what="the failed pod's netns and IP to go")
    assert_nothing_left(n)


def test_plugin_failing_after_the_pause_started(net_factory, cri):
    """CNI ADD and the pause start run at the same time: a plugin that fails
    after the pause is up in the netns takes the pause, its cgroup, the
    netns and the IP with it."""
    n = net_factory(plugins=["crisp-test-late-fail"], timeout=10)
    t, result = run_pod_in_thread(n.c, cri, pod_config(cri))
    pod = first_pin(n)
    inode = netns_inode(os.path.join(n.netns_dir, pod))
    pids = harness.wait_for(lambda: netns_pids(inode), 10,
                            what="the pause to start in the netns while ADD runs")
    # the pause and the plugins race: bridge's host-local may allocate just
    # after the pause is up (the late plugin fails only 2 s into its ADD)
    harness.wait_for(n.allocated, 10, what="host-local's allocation before the late plugin")
    # started, but RunPodSandbox has not answered: not listed yet
    assert len(n.c.call("ListPodSandbox", cri.ListPodSandboxRequest()).items) == 0
    t.join(30)
    assert "err" in result, "RunPodSandbox succeeded although a plugin failed"
    e = result["err"]
    assert re.search(r"^pod network.*crisp-test-late-fail.*refuses late", e.details()), \
        e.details()
    assert netns_pids(inode) == [], "left in the pod's netns: %s (were %s)" % (
        netns_pids(inode), pids)
    assert_nothing_left(n)
    assert n.record(pod) is None, n.record(pod)
    assert harness.leftovers(n.c, [pod]) == []
    assert len(n.c.call("ListPodSandbox", cri.ListPodSandboxRequest()).items) == 0


REFUSING_RUNC = """#!/bin/sh
# the pause never starts; everything else is runc's
case " $* " in *" run "*|*" create "*)
    echo "crisp test runtime refuses to start the pause" >&2; exit 1 ;;
esac
exec %s "$@"
"""


def test_pause_failing_while_add_succeeds(net_factory, cri, tmp_path):
    """The pause fails to start while ADD is still running (a slow plugin,
    4 s): the rollback waits for ADD, then DELs, so the IP is released and
    the netns goes."""
    script = tmp_path / "refusing-runc"
    script.write_text(REFUSING_RUNC % shutil.which("runc"))
    script.chmod(0o755)
    n = net_factory(plugins=["crisp-test-slow"], timeout=10, start=False)
    n.c.update_config({'runtime_handler "refusing"': {"path": str(script)}})
    n.start()
    mark = n.c.mark()
    t, result = run_pod_in_thread(n.c, cri, pod_config(cri), handler="refusing")
    pod = first_pin(n)
    t.join(30)
    assert "err" in result, "RunPodSandbox succeeded although the pause did not start"
    e = result["err"]
    assert e.details().startswith("start sandbox"), e.details()
    # ADD did succeed (it was still running when the start failed), and was
    # undone after it
    n.c.wait_log(r"pod %s: network 'crisp-net-test' attached" % pod[:12], mark, 5)
    n.c.wait_log(r"pod %s: network removed" % pod[:12], mark, 5)
    assert_nothing_left(n)
    assert n.record(pod) is None, n.record(pod)
    assert harness.leftovers(n.c, [pod]) == []
    assert len(n.c.call("ListPodSandbox", cri.ListPodSandboxRequest()).items) == 0


def test_sandbox_in_flight_is_in_no_list(net_factory, cri):
    """While RunPodSandbox still waits for ADD (a slow plugin, 4 s) its pause
    already runs, but the CRI does not know the pod yet: neither
    ListPodSandbox nor ListPodSandboxStats shows it. Once RunPodSandbox has
    answered, both do."""
    n = net_factory(plugins=["crisp-test-slow"], timeout=10)
    t, result = run_pod_in_thread(n.c, cri, pod_config(cri))
    pod = first_pin(n)
    inode = netns_inode(os.path.join(n.netns_dir, pod))
    harness.wait_for(lambda: netns_pids(inode), 10, what="the pause to start")
    assert "id" not in result and "err" not in result, result  # still in flight
    listed = [p.id for p in n.c.call("ListPodSandbox", cri.ListPodSandboxRequest()).items]
    stats = [s.attributes.id for s in n.c.call(
        "ListPodSandboxStats", cri.ListPodSandboxStatsRequest()).stats]
    assert "id" not in result, "RunPodSandbox answered while the lists were read"
    assert pod not in listed and pod not in stats, (listed, stats)
    t.join(30)
    assert result.get("id") == pod, result
    listed = [p.id for p in n.c.call("ListPodSandbox", cri.ListPodSandboxRequest()).items]
    stats = [s.attributes.id for s in n.c.call(
        "ListPodSandboxStats", cri.ListPodSandboxStatsRequest()).stats]
    assert listed == [pod] and stats == [pod], (listed, stats)
    stop_pod(n.c, cri, pod)
    remove_pod(n.c, cri, pod)
    assert_nothing_left(n)


def test_missing_plugin(net_factory, cri):
    n = net_factory(plugins=["crisp-no-such-plugin"])
    net = harness.wait_for(lambda: (lambda r: r if not r.status else None)(network_ready(n.c)),
                           5, what="NetworkReady false")
    assert net.reason == "CNIPluginMissing", net
    assert "crisp-no-such-plugin" in net.message, net.message
    e = rpc_error(run_pod, n.c, cri, pod_config(cri))
    assert "crisp-no-such-plugin" in e.details() or "CNIPluginMissing" in e.details(), \
        e.details()
    assert_nothing_left(n)
    # installing it (a binary in the bin dir) makes the network ready
    os.symlink(os.path.join(CNI_BIN, "loopback"), os.path.join(n.bin, "crisp-no-such-plugin"))
    harness.wait_for(lambda: network_ready(n.c).status, 10, what="NetworkReady true")


def test_network_ready_follows_the_conf_dir(net_factory, cri):
    n = net_factory(start=False)
    os.unlink(os.path.join(n.c.cni_dir, "10-net.conflist"))
    n.start()
    net = network_ready(n.c)
    assert not net.status and net.reason == "NoCNIConfig", net
    e = rpc_error(run_pod, n.c, cri, pod_config(cri))
    assert "NoCNIConfig" in e.details() or "not ready" in e.details(), e.details()

    n.write_conf(body='{"cniVersion": "1.0.0", "name": "x", "plugins": [')
    net = harness.wait_for(
        lambda: (lambda r: r if r.reason == "InvalidCNIConfig" else None)(network_ready(n.c)),
        5, what="NetworkReady InvalidCNIConfig")
    assert not net.status and "10-net.conflist" in net.message, net
    e = rpc_error(run_pod, n.c, cri, pod_config(cri))
    assert_nothing_left(n)

    n.write_conf()
    harness.wait_for(lambda: network_ready(n.c).status, 5, what="NetworkReady true")
    pod = run_pod(n.c, cri, pod_config(cri))
    assert pod_ip(n.c, cri, pod).startswith(n.prefix)
    stop_pod(n.c, cri, pod)
    remove_pod(n.c, cri, pod)
    assert_nothing_left(n)


# --- durability --------------------------------------------------------------------


def test_kill_netd_mid_add(net_factory, cri):
    """netd dies while a plugin runs (after bridge and host-local allocated
    an IP, with the pause already started in the netns): its record, still
    in the state POD_NETNS_CREATE left, makes the restarted netd DEL what
    ran; the frontend's rollback (or its reconcile) removes the pause, the
    netns and the record."""
    n = net_factory(plugins=["crisp-test-hang"], timeout=30)
    netd = n.c.children()["crisp-netd"]
    t, result = run_pod_in_thread(n.c, cri, pod_config(cri))
    pod = first_pin(n)
    inode = netns_inode(os.path.join(n.netns_dir, pod))
    harness.wait_for(lambda: n.allocated(), 15, what="host-local to allocate an IP")
    harness.wait_for(lambda: netns_pids(inode), 10, what="the pause to start")
    assert n.record(pod)["state"] == "netns", n.record(pod)
    os.kill(netd, signal.SIGKILL)
    t.join(60)
    assert "err" in result, "RunPodSandbox succeeded although netd was killed mid-ADD"
    n.c.wait_new_pid("crisp-netd", netd, 15)
    harness.wait_for(lambda: n.allocated() == [], 20,
                     what="the IP of the interrupted ADD to be freed")
    harness.wait_for(lambda: n.pins() == [], 30, what="the orphan netns to be removed")
    harness.wait_for(lambda: n.record(pod) is None, 10, what="the record to be removed")
    assert netns_pids(inode) == []
    assert_nothing_left(n)
    assert harness.leftovers(n.c, [pod]) == []


def test_crispd_restart_mid_add(net_factory, cri):
    """crispd stops while ADD runs on the netns POD_NETNS_CREATE made: at
    the next start netd DELs what ran (the IP is freed) and whatever of the
    pod is left is removed through the CRI, or by the reconcile when
    runtimed does not know the sandbox."""
    n = net_factory(plugins=["crisp-test-hang"], timeout=30)
    t, result = run_pod_in_thread(n.c, cri, pod_config(cri))
    pod = first_pin(n)
    harness.wait_for(lambda: n.allocated(), 15, what="host-local to allocate an IP")
    assert n.record(pod)["state"] == "netns", n.record(pod)
    assert n.c.terminate(15) == 0
    t.join(60)
    assert "err" in result, "RunPodSandbox succeeded although crispd stopped mid-ADD"
    n.start()
    harness.wait_for(lambda: n.allocated() == [], 20,
                     what="the IP of the interrupted ADD to be freed")
    listed = [p.id for p in n.c.call("ListPodSandbox", cri.ListPodSandboxRequest()).items]
    assert listed in ([], [pod]), listed
    if listed:
        # the pause was started, and runtimed keeps a started sandbox: it
        # has no IP, the kubelet stops and removes it
        assert not pod_ip(n.c, cri, pod)
        stop_pod(n.c, cri, pod)
        remove_pod(n.c, cri, pod)
    harness.wait_for(lambda: n.pins() == [], 30, what="the netns to be removed")
    harness.wait_for(lambda: n.record(pod) is None, 10, what="the record to be removed")
    assert_nothing_left(n)
    assert harness.leftovers(n.c, [pod]) == []


def test_pods_survive_netd_kill_and_crispd_restart(net_factory, cri):
    n = net_factory()
    pods = [run_pod(n.c, cri, pod_config(cri)) for _ in range(2)]
    ips = {p: pod_ip(n.c, cri, p) for p in pods}
    assert sorted(ips.values()) == n.allocated()

    netd = n.c.children()["crisp-netd"]
    os.kill(netd, signal.SIGKILL)
    n.c.wait_new_pid("crisp-netd", netd, 15)
    for p in pods:
        assert harness.wait_for(lambda: (lambda ip: ip or None)(pod_ip(n.c, cri, p)), 10,
                                what="the IP after netd's restart") == ips[p]

    assert n.c.terminate(10) == 0
    n.start()
    for p in pods:
        assert pod_ip(n.c, cri, p) == ips[p], "IP changed across a crispd restart"
    assert sorted(n.pins()) == sorted(pods)

    stop_pod(n.c, cri, pods[0])
    assert n.allocated() == [ips[pods[1]]], "DEL after the restart did not free the IP"
    for p in pods:
        stop_pod(n.c, cri, p)
        remove_pod(n.c, cri, p)
    assert_nothing_left(n)


def test_node_reboot_frees_ips(net_factory, cri):
    """After a node restart the netns pins are gone with the tmpfs, but the
    IPs host-local handed out are still recorded on disk: removing the pods
    runs DEL with the stored config and result, and frees them."""
    n = net_factory()
    pods = [run_pod(n.c, cri, pod_config(cri)) for _ in range(2)]
    ips = sorted(pod_ip(n.c, cri, p) for p in pods)
    assert ips == n.allocated()
    assert n.c.terminate(10) == 0
    n.c.kill_leftover_containers()
    state = n.c.config["crispd"]["state_dir"]
    for mp in reversed(harness.mounts_under(state)):
        subprocess.run(["umount", "-l", mp], check=False)
    shutil.rmtree(state)
    n.start()
    assert n.pins() == []
    for p in pods:
        stop_pod(n.c, cri, p)
        remove_pod(n.c, cri, p)
    assert n.allocated() == [], "DEL after the reboot did not free the IPs"
    assert_nothing_left(n)
