"""critest (kubernetes-sigs/cri-tools pkg/validate) conformance tests of the
security context, networking and streaming, reproduced against a real crispd.

Each test is named after the critest `It(...)` it mirrors (critest file and
It text in its docstring) and asserts what critest asserts, with the
requests critest sends (a pod config with no namespace options is all POD,
as in critest's defaults). Differences forced by this host are said where
they are made:
  - critest's busybox and nginx images come from the internet; here they are
    built from the host's static busybox (images.py) and pushed to the test
    registry: "nginx" is busybox httpd (its pid file in /var/run/nginx.pid),
    the nonewprivs image a static setuid-root program printing its euid;
  - Debian's busybox has no `ipcs`: the container reads /proc/sysvipc/shm,
    the table ipcs prints;
  - Debian's busybox sh runs applets without exec (standalone shell), so a
    masked /bin/ls would never be exec'd: MaskedPaths masks a non-applet
    executable instead;
  - networking uses a CNI bridge of the test's own (its own name, subnet and
    host-local dir) and ports on this machine only.
Skipped: AppArmor (not enabled on this host: critest skips too), the user
namespace mode POD test and SupplementalGroupsPolicy when crisp does not
advertise them (critest's own skip conditions); the other five user
namespace tests check refusals and the host's namespace, which hold either
way, so they run."""

import os
import random
import re
import shutil
import socket
import subprocess
import tempfile
import time
import types
import urllib.parse

import grpc
import pytest

import harness
import images
import spdy_client as sc
from conftest import pull_images
from harness import rpc_error

POD, CONTAINER, NODE = 0, 1, 2  # runtime.v1.NamespaceMode
PAUSE_CMD = ["sh", "-c", "top"]  # critest's pauseCmd
ECHO_HELLO = ["echo", "-n", "hello"]
EXEC_TIMEOUT = 60  # critest's defaultExecSyncTimeout
HOST_PORT_MAPPING = 12000  # critest's webServerHostPortForPortMapping
HOST_PORT_FORWARD = 12001
HOST_PORT_HOSTNET_FORWARD = 12002
HOSTNET_CONTAINER_PORT = 12003

NNP_C = r"""
#include <stdio.h>
#include <unistd.h>
int main(void)
{
	printf("Effective uid: %d\n", (int)geteuid());
	return 0;
}
"""

SECCOMP_BLOCK_HOSTNAME = """{
  "defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [{"names": ["sethostname"], "action": "SCMP_ACT_ERRNO"}]
}"""
SECCOMP_BLOCK_CHMOD = """{
  "defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [{"names": ["chmod", "fchmodat"], "action": "SCMP_ACT_ERRNO"}]
}"""


# --- images -------------------------------------------------------------------------------

# uid 1000 is default-user's alone, not also the base image's app as in
# images.PASSWD: a uid resolves to the first user that has it, and critest's
# image has no other user 1000.
PREDEFINED_GROUP_PASSWD = (images.PASSWD.replace("app:x:1000:1000:app:/home/app:/bin/sh\n", "")
                           + "default-user:x:1000:1000::/home:/bin/sh\n")
assert PREDEFINED_GROUP_PASSWD.count(":x:1000:") == 1, PREDEFINED_GROUP_PASSWD

EXTRA_APPLETS = ("brctl", "ping", "pidof", "httpd", "netstat")


def critest_layer():
    es = [images.Symlink("bin/" + a, "busybox") for a in EXTRA_APPLETS]
    es += [images.Dir("var/run"), images.Dir("www"),
           images.File("www/index.html", "<html>crisp critest</html>\n"),
           images.File("bin/masked-tool", "#!/bin/sh\necho not masked\n", 0o755)]
    return es


@pytest.fixture(scope="module")
def crit_images(registry, tmp_path_factory):
    d = tmp_path_factory.mktemp("crit-nnp")
    (d / "nnp.c").write_text(NNP_C)
    subprocess.run(["cc", "-static", "-O", "-o", str(d / "nnp"), str(d / "nnp.c")], check=True)
    nnp = (d / "nnp").read_bytes()
    base = critest_layer()
    imgs = {
        "busybox": images.busybox_image(cmd=["sh"], extra_layers=[base]),
        "web": images.busybox_image(cmd=["httpd", "-f", "-p", "80", "-h", "/www"],
                                    extra_layers=[base]),
        "hostnet_web": images.busybox_image(
            cmd=["httpd", "-f", "-p", str(HOSTNET_CONTAINER_PORT), "-h", "/www"],
            extra_layers=[base]),
        "nginx": images.busybox_image(
            cmd=["sh", "-c", "echo $$ > /var/run/nginx.pid; exec httpd -f -p 8080 -h /www"],
            extra_layers=[base]),
        "nonewprivs": images.busybox_image(
            cmd=None, entrypoint=["/usr/local/bin/nnp"],
            extra_layers=[[images.Dir("usr/local"), images.Dir("usr/local/bin"),
                           images.File("usr/local/bin/nnp", nnp, 0o4755)]]),
        "predefined_group": images.busybox_image(
            cmd=["sh"], user="default-user",
            extra_layers=[[images.File("etc/passwd", PREDEFINED_GROUP_PASSWD),
                           images.File("etc/group", "root:x:0:\ndefault-user:x:1000:\n"
                                       "group-defined-in-image:x:50000:default-user\n")]]),
    }
    return types.SimpleNamespace(**{k: registry.push(v, "crisp-critest/" + k).ref
                                    for k, v in imgs.items()})


_subnets = iter(random.sample(range(1, 250), 240))


@pytest.fixture
def env(pod_env_factory, crit_images, cri):
    """A crispd with a CNI bridge network of its own, the critest images pulled."""
    bridge = "crc2%05x" % random.randrange(1 << 20)

    def before(c):
        conf = {"cniVersion": "1.0.0", "name": "crisp-critest",
                "plugins": [
                    {"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": False,
                     "ipam": {"type": "host-local", "dataDir": os.path.join(c.dir, "ipam"),
                              "ranges": [[{"subnet": "10.237.%d.0/24" % next(_subnets)}]],
                              "routes": [{"dst": "0.0.0.0/0"}]}},
                    {"type": "portmap", "capabilities": {"portMappings": True}}]}
        c.add_conflist(body=conf)

    # critest writes its Localhost seccomp profiles to a temp dir; crisp
    # takes profiles only under seccomp_profile_root (the kubelet's
    # /var/lib/kubelet/seccomp by default), so running critest against
    # crisp needs it set, as crisp.conf(5) says.
    e = pod_env_factory(config={"runtime": {"seccomp_profile_root": tempfile.gettempdir()}},
                        before_start=before)
    pull_images(e.c, list(vars(crit_images).values()))
    e.img = crit_images
    e.cri_mod = cri
    e.bridge = bridge
    harness.wait_for(lambda: harness.conditions(e.c.status())["NetworkReady"].status, 15,
                     what="NetworkReady")
    yield e
    # critest's AfterEach: StopPodSandbox and RemovePodSandbox of the test's
    # pod succeed. The bridge goes with crispd's cleanup
    # (harness.Crispd.remove_bridges: its conflist names it).
    if not e.c.running():
        return
    problems = []
    for pod in list(e.cri.pods):
        for step in (e.cri.stop_pod, e.cri.remove_pod):
            try:
                step(pod)
            except grpc.RpcError as x:
                problems.append("%s %s: %s %s" % (step.__name__, pod[:12], x.code(), x.details()))
    assert not problems, problems


# --- helpers ------------------------------------------------------------------------------

_n = iter(range(1 << 30))


def uid():
    return "%d-%d-%d" % (os.getpid(), next(_n), random.randrange(1 << 30))


def pod_cfg(cri, name="critest-pod", ns=None, log_dir=None, hostname=None, dns=None,
            port_mappings=(), privileged=False, seccomp=None):
    """A PodSandboxConfig as critest builds it: only what the test sets."""
    cfg = cri.PodSandboxConfig()
    cfg.metadata.name = name + "-" + uid()
    cfg.metadata.namespace = "critest-ns-" + uid()
    cfg.metadata.uid = "critest-uid-" + uid()
    cfg.metadata.attempt = 0
    cfg.labels["io.kubernetes.pod.name"] = cfg.metadata.name  # critest's DefaultPodLabels
    if hostname:
        cfg.hostname = hostname
    if log_dir:
        cfg.log_directory = log_dir
    if dns is not None:
        cfg.dns_config.SetInParent()
        cfg.dns_config.servers.extend(dns.get("servers", []))
        cfg.dns_config.searches.extend(dns.get("searches", []))
        cfg.dns_config.options.extend(dns.get("options", []))
    for cp, hp in port_mappings:
        cfg.port_mappings.add(container_port=cp, host_port=hp)
    cfg.linux.SetInParent()
    if ns is not None:
        o = cfg.linux.security_context.namespace_options
        o.SetInParent()
        o.network, o.pid, o.ipc = ns.get("network", POD), ns.get("pid", POD), ns.get("ipc", POD)
    if privileged:
        cfg.linux.security_context.privileged = True
    if seccomp is not None:
        cfg.linux.security_context.seccomp.CopyFrom(seccomp)
    return cfg


def run_pod(e, cfg):
    r = e.c.call("RunPodSandbox", e.cri_mod.RunPodSandboxRequest(config=cfg), timeout=60)
    e.cri.pods[r.pod_sandbox_id] = cfg
    return r.pod_sandbox_id


def ctr_cfg(cri, name, image, command=None, log_path=""):
    cfg = cri.ContainerConfig()
    cfg.metadata.name = name + "-" + uid()
    cfg.image.image = image
    cfg.command.extend(command or [])
    cfg.linux.SetInParent()
    if log_path is True:
        log_path = cfg.metadata.name + ".log"
    cfg.log_path = log_path
    return cfg


def sc_of(cfg):
    return cfg.linux.security_context


def start_running(e, pod, cfg):
    cid = e.cri.create(pod, cfg)
    e.cri.start(cid)
    e.cri.wait_state(cid, e.cri_mod.CONTAINER_RUNNING, timeout=60)
    return cid


def start_exited(e, pod, cfg):
    cid = e.cri.create(pod, cfg)
    e.cri.start(cid)
    e.cri.wait_state(cid, e.cri_mod.CONTAINER_EXITED, timeout=60)
    return cid


def exec_sync(e, cid, cmd):
    return e.cri.exec_sync(cid, cmd, timeout=EXEC_TIMEOUT)


def exec_ok(e, cid, cmd):
    """critest's execSyncContainer: exit 0 and empty stderr expected."""
    r = exec_sync(e, cid, cmd)
    assert r.exit_code == 0, (cmd, r.exit_code, r.stdout, r.stderr)
    return r.stdout.decode()


def log_lines(cfg_pod, log_path, stream=None):
    path = os.path.join(cfg_pod.log_directory, log_path)
    return harness.cri_log_lines(path, stream)


def log_text(cfg_pod, log_path, stream):
    """critest's verifyLogContents: the stream's full lines, each + \\n."""
    return "".join(text + "\n" for _, text, _ in log_lines(cfg_pod, log_path, stream))


# --- Security Context: NamespaceOption ------------------------------------------------------


def test_ns_runtime_should_support_HostPID(env, cri):
    """security_context_linux.go: "runtime should support HostPID"."""
    ns = {"pid": NODE, "ipc": POD, "network": POD}
    pod = run_pod(env, pod_cfg(cri, "NamespaceOption-PodSandbox", ns=ns))
    ng = ctr_cfg(cri, "nginx-container-hostpid", env.img.nginx)
    sc_of(ng).namespace_options.CopyFrom(env.cri.pods[pod].linux.security_context.namespace_options)
    ngid = start_running(env, pod, ng)
    nginx_pid = exec_ok(env, ngid, ["sh", "-c", "while [ ! -f /var/run/nginx.pid ]; do sleep 1; "
                                    "done && cat /var/run/nginx.pid"]).strip()
    bb = ctr_cfg(cri, "container-with-HostPID-test", env.img.busybox, ["sh", "-c", "sleep 1000"])
    sc_of(bb).namespace_options.CopyFrom(sc_of(ng).namespace_options)
    bid = start_running(env, pod, bb)
    # critest runs ["pidof", "nginx", "||", "true"]: pidof of the names given
    pids = exec_sync(env, bid, ["pidof", "httpd"]).stdout.decode().strip()
    assert pids, "nginx's pid should be seen by hostpid containers"
    assert nginx_pid in pids.split(), (nginx_pid, pids)


def _host_ipc(env, cri, mode):
    out = subprocess.run(["ipcmk", "-M", "1048576"], capture_output=True, text=True, check=True)
    seg = out.stdout.strip().rpartition(":")[2].strip()
    try:
        ns = {"pid": POD, "ipc": mode, "network": POD}
        pod = run_pod(env, pod_cfg(cri, "NamespaceOption-PodSandbox", ns=ns))
        c = ctr_cfg(cri, "namespace-container", env.img.busybox, PAUSE_CMD)
        sc_of(c).namespace_options.CopyFrom(env.cri.pods[pod].linux.security_context.namespace_options)
        cid = start_running(env, pod, c)
        # ipcs -m's table
        shmids = [l.split()[1] for l in exec_ok(env, cid, ["cat", "/proc/sysvipc/shm"]).splitlines()[1:]]
        return seg, shmids
    finally:
        subprocess.run(["ipcrm", "-m", seg], capture_output=True)


def test_ns_runtime_should_support_HostIpc_is_true(env, cri):
    """security_context_linux.go: "runtime should support HostIpc is true"."""
    seg, shmids = _host_ipc(env, cri, NODE)
    assert seg in shmids, "The shared memory segment should be included in the container"


def test_ns_runtime_should_support_HostIpc_is_false(env, cri):
    """security_context_linux.go: "runtime should support HostIpc is false"."""
    seg, shmids = _host_ipc(env, cri, POD)
    assert seg not in shmids, "the host's segment is visible in a pod IPC namespace"


def test_ns_runtime_should_support_PodPID(env, cri):
    """security_context_linux.go: "runtime should support PodPID": pid 1 of a
    container in a pod PID namespace is not the container's process."""
    pod = run_pod(env, pod_cfg(cri, "NamespaceOption-PodSandbox", ns={"pid": POD}))
    c = ctr_cfg(cri, "nginx-container-process-namespace", env.img.nginx)
    sc_of(c).namespace_options.CopyFrom(env.cri.pods[pod].linux.security_context.namespace_options)
    cid = start_running(env, pod, c)
    time.sleep(1)
    cmdline = exec_ok(env, cid, ["cat", "/proc/1/cmdline"])
    assert "httpd" not in cmdline, cmdline


def test_ns_runtime_should_support_ContainerPID(env, cri):
    """security_context_linux.go: "runtime should support ContainerPID"."""
    pod = run_pod(env, pod_cfg(cri, "NamespaceOption-PodSandbox", ns={"pid": CONTAINER}))
    c = ctr_cfg(cri, "nginx-container-pid", env.img.nginx)
    sc_of(c).namespace_options.CopyFrom(env.cri.pods[pod].linux.security_context.namespace_options)
    cid = start_running(env, pod, c)
    r = exec_sync(env, cid, ["sh", "-c", "for i in $(seq 30); do grep -q httpd /proc/1/cmdline "
                             "&& exit 0; sleep 1; done; exit 1"])
    assert r.exit_code == 0, exec_ok(env, cid, ["cat", "/proc/1/cmdline"])


def _host_network(env, cri, host_network):
    srv = socket.socket()
    srv.bind(("0.0.0.0", 0))
    srv.listen(4)
    port = srv.getsockname()[1]
    try:
        ns = {"pid": POD, "ipc": POD, "network": NODE if host_network else POD}
        cfg_pod = pod_cfg(cri, "NamespaceOption-PodSandbox", ns=ns, log_dir=env.cri.log_dir())
        pod = run_pod(env, cfg_pod)
        c = ctr_cfg(cri, "container-with-HostNetwork-test", env.img.busybox,
                    ["sh", "-c", "netstat -ln"], log_path=True)
        sc_of(c).namespace_options.CopyFrom(cfg_pod.linux.security_context.namespace_options)
        cid = env.cri.create(pod, c)
        env.cri.start(cid)
        env.cri.wait_state(cid, cri.CONTAINER_EXITED, timeout=60)
        lines = log_lines(cfg_pod, c.log_path)
        assert lines, "netstat printed nothing"
        return any(":%d" % port in text for _, text, _ in lines), lines
    finally:
        srv.close()


def test_ns_runtime_should_support_HostNetwork_is_true(env, cri):
    """security_context_linux.go: "runtime should support HostNetwork is true"."""
    seen, lines = _host_network(env, cri, True)
    assert seen, "host port should be in container's port list: %s" % lines


def test_ns_runtime_should_support_HostNetwork_is_false(env, cri):
    """security_context_linux.go: "runtime should support HostNetwork is false"."""
    seen, lines = _host_network(env, cri, False)
    assert not seen, "host port should not be in container's port list: %s" % lines


# --- Security Context: bucket ---------------------------------------------------------------


def default_pod(env, cri, **kw):
    """critest's CreatePodSandboxForContainer (or createPodSandboxWithLogDirectory)."""
    return run_pod(env, pod_cfg(cri, "create-PodSandbox-for-container", **kw))


def test_bucket_runtime_should_support_SupplementalGroups(env, cri):
    """security_context_linux.go: "runtime should support SupplementalGroups"."""
    pod = default_pod(env, cri)
    c = ctr_cfg(cri, "container-with-SupplementalGroups-test", env.img.busybox, PAUSE_CMD)
    sc_of(c).supplemental_groups.extend([1234, 5678])
    cid = start_running(env, pod, c)
    groups = exec_ok(env, cid, ["id", "-G"]).strip().split(" ")
    assert "1234" in groups and "5678" in groups, groups


def test_bucket_runtime_should_support_RunAsUser(env, cri):
    """security_context_linux.go: "runtime should support RunAsUser"."""
    pod = default_pod(env, cri)
    c = ctr_cfg(cri, "container-with-RunAsUser-test", env.img.busybox, PAUSE_CMD)
    sc_of(c).run_as_user.value = 1001
    cid = start_running(env, pod, c)
    assert exec_ok(env, cid, ["id", "-u"]) == "1001\n"


def test_bucket_runtime_should_support_RunAsUserName(env, cri):
    """security_context_linux.go: "runtime should support RunAsUserName"."""
    pod = default_pod(env, cri)
    c = ctr_cfg(cri, "container-with-RunAsUserName-test", env.img.busybox, PAUSE_CMD)
    sc_of(c).run_as_username = "nobody"
    cid = start_running(env, pod, c)
    assert exec_ok(env, cid, ["id", "-nu"]) == "nobody\n"


def test_bucket_runtime_should_support_RunAsGroup(env, cri):
    """security_context_linux.go: "runtime should support RunAsGroup"."""
    cfg_pod = pod_cfg(cri, "create-PodSandbox-for-container", log_dir=env.cri.log_dir())
    pod = run_pod(env, cfg_pod)
    c = ctr_cfg(cri, "container-with-RunAsGroup-test", env.img.busybox,
                ["sh", "-c", "echo $(id -u):$(id -g)"], log_path=True)
    sc_of(c).run_as_user.value = 1001
    sc_of(c).run_as_group.value = 1002
    start_exited(env, pod, c)
    assert log_text(cfg_pod, c.log_path, "stdout") == "1001:1002\n"


def test_bucket_runtime_should_return_error_if_RunAsGroup_is_set_without_RunAsUser(env, cri):
    """security_context_linux.go: "runtime should return error if RunAsGroup is
    set without RunAsUser"."""
    pod = default_pod(env, cri)
    c = ctr_cfg(cri, "container-with-RunAsGroup-without-RunAsUser-test", env.img.busybox,
                ["sh", "-c", "echo $(id -u):$(id -g)"])
    sc_of(c).run_as_group.value = 1002
    e = rpc_error(env.cri.create, pod, c)
    assert e is not None, "CreateContainer accepted run_as_group without run_as_user"


def _readonly_rootfs(env, cri, readonly):
    cfg_pod = pod_cfg(cri, "create-PodSandbox-for-container", log_dir=env.cri.log_dir())
    pod = run_pod(env, cfg_pod)
    c = ctr_cfg(cri, "container-with-ReadOnlyRootfs-%s-test" % str(readonly).lower(),
                env.img.busybox, ["sh", "-c", "touch test.go && [ -f test.go ] && echo 'Found'"],
                log_path=True)
    sc_of(c).readonly_rootfs = readonly
    start_exited(env, pod, c)
    return cfg_pod, c.log_path


def test_bucket_runtime_should_support_that_ReadOnlyRootfs_is_false(env, cri):
    """security_context_linux.go: "runtime should support that ReadOnlyRootfs is false"."""
    cfg_pod, lp = _readonly_rootfs(env, cri, False)
    assert log_text(cfg_pod, lp, "stdout") == "Found\n"


def test_bucket_runtime_should_support_that_ReadOnlyRootfs_is_true(env, cri):
    """security_context_linux.go: "runtime should support that ReadOnlyRootfs is true"."""
    cfg_pod, lp = _readonly_rootfs(env, cri, True)
    assert log_text(cfg_pod, lp, "stderr") == "touch: test.go: Read-only file system\n"


def check_network_management(env, cid, manageable):
    """critest's checkNetworkManagement: brctl addbr foobar (in the pod's own
    network namespace: nothing reaches the host)."""
    r = exec_sync(env, cid, ["brctl", "addbr", "foobar"])
    msg = (r.exit_code, r.stdout, r.stderr)
    if manageable:
        assert r.exit_code == 0, msg
    else:
        assert r.exit_code != 0, msg


def _privileged(env, cri, privileged):
    pod = run_pod(env, pod_cfg(cri, "create-Privileged-PodSandbox-for-container",
                               privileged=privileged))
    c = ctr_cfg(cri, "container-with-isPrivileged-test", env.img.busybox, PAUSE_CMD)
    sc_of(c).privileged = privileged
    cid = start_running(env, pod, c)
    check_network_management(env, cid, privileged)


def test_bucket_runtime_should_support_Privileged_is_true(env, cri):
    """security_context_linux.go: "runtime should support Privileged is true"."""
    _privileged(env, cri, True)


def test_bucket_runtime_should_support_Privileged_is_false(env, cri):
    """security_context_linux.go: "runtime should support Privileged is false"."""
    _privileged(env, cri, False)


def capability_ctr(env, cri, pod, add=(), drop=()):
    c = ctr_cfg(cri, "container-with-capability-test", env.img.busybox, PAUSE_CMD)
    caps = sc_of(c).capabilities
    caps.SetInParent()
    caps.add_capabilities.extend(add)
    caps.drop_capabilities.extend(drop)
    return start_running(env, pod, c)


def test_bucket_runtime_should_support_adding_capability(env, cri):
    """security_context_linux.go: "runtime should support adding capability"."""
    pod = default_pod(env, cri)
    cid = capability_ctr(env, cri, pod, add=["NET_ADMIN"])
    check_network_management(env, cid, True)
    # framework.CreateDefaultContainer: the default image, pauseCmd, no security context
    cid = start_running(env, pod, ctr_cfg(cri, "container-with-notCapability-test",
                                          env.img.busybox, PAUSE_CMD))
    check_network_management(env, cid, False)


def test_bucket_runtime_should_support_dropping_capability(env, cri):
    """security_context_linux.go: "runtime should support dropping capability"."""
    pod = default_pod(env, cri)
    cid = capability_ctr(env, cri, pod, drop=["NET_RAW"])
    r = exec_sync(env, cid, ["ping", "127.0.0.1"])
    assert r.exit_code != 0, r
    assert r.stdout, "stdout should not be empty: %r" % r.stdout
    assert b"permission denied" in r.stderr, r.stderr


def test_bucket_runtime_should_support_adding_ALL_capabilities(env, cri):
    """security_context_linux.go: "runtime should support adding ALL capabilities"."""
    pod = default_pod(env, cri)
    cid = capability_ctr(env, cri, pod, add=["ALL"])
    r = exec_sync(env, cid, ["cat", "/proc/self/status"])
    assert r.exit_code == 0 and r.stderr == b"", r
    assert not re.search(r"CapBnd:\s0000000000000000", r.stdout.decode())


def test_bucket_runtime_should_support_dropping_ALL_capabilities(env, cri):
    """security_context_linux.go: "runtime should support dropping ALL capabilities"."""
    pod = default_pod(env, cri)
    cid = capability_ctr(env, cri, pod, drop=["ALL"])
    r = exec_sync(env, cid, ["cat", "/proc/self/status"])
    assert r.exit_code == 0 and r.stderr == b"", r
    assert re.search(r"CapBnd:\s0000000000000000", r.stdout.decode()), r.stdout


def test_bucket_runtime_should_support_MaskedPaths(env, cri):
    """security_context_linux.go: "runtime should support MaskedPaths" (an
    executable masked, then run through sh: see the module docstring)."""
    pod = default_pod(env, cri)
    c = ctr_cfg(cri, "container-with-maskedpaths", env.img.busybox, PAUSE_CMD)
    sc_of(c).masked_paths.append("/bin/masked-tool")
    cid = start_running(env, pod, c)
    r = exec_sync(env, cid, ["/bin/sh", "-c", "masked-tool"])
    assert r.exit_code != 0, r
    assert r.stderr == b"/bin/sh: masked-tool: Permission denied\n", r.stderr


def test_bucket_runtime_should_support_ReadonlyPaths(env, cri):
    """security_context_linux.go: "runtime should support ReadonlyPaths"."""
    pod = default_pod(env, cri)
    c = ctr_cfg(cri, "container-with-readonlypaths", env.img.busybox, PAUSE_CMD)
    sc_of(c).readonly_paths.append("/tmp")
    cid = start_running(env, pod, c)
    r = exec_sync(env, cid, ["touch", "/tmp/test"])
    assert r.exit_code != 0, r
    assert r.stderr == b"touch: /tmp/test: Read-only file system\n", r.stderr


# --- Security Context: SupplementalGroupsPolicy ------------------------------------------


def _sgp(env, cri, strict):
    st = env.c.call("Status", cri.StatusRequest())
    if not (st.HasField("features") and st.features.supplemental_groups_policy):
        pytest.skip("crisp does not advertise SupplementalGroupsPolicy (critest skips)")
    cfg_pod = pod_cfg(cri, "create-PodSandbox-for-container", log_dir=env.cri.log_dir())
    pod = run_pod(env, cfg_pod)
    c = ctr_cfg(cri, "container-with-SupplementalGroupsPolicy", env.img.predefined_group,
                ["sh", "-c", "id -G; sleep infinity"], log_path=True)
    sc_of(c).run_as_user.value = 1000
    sc_of(c).supplemental_groups.append(1234)
    if strict:
        sc_of(c).supplemental_groups_policy = cri.Strict
    cid = start_running(env, pod, c)
    want = [1000, 1234] if strict else [1000, 1234, 50000]
    harness.wait_for(lambda: log_lines(cfg_pod, c.log_path), 30, what="id -G output")
    user = env.cri.status(cid).user.linux
    assert (user.uid, user.gid, sorted(user.supplemental_groups)) == (1000, 1000, want), user
    expected = " ".join(map(str, want)) + "\n"
    assert log_text(cfg_pod, c.log_path, "stdout") == expected
    assert exec_ok(env, cid, ["id", "-G"]) == expected


def test_sgp_Merge_runtime_should_add_SupplementalGroups_to_image_groups(env, cri):
    """security_context_linux.go: SupplementalGroupsPolicy=Merge "if the
    container's primary UID belongs to some groups in the image, runtime
    should add SupplementalGroups to them"."""
    _sgp(env, cri, False)


def test_sgp_Strict_runtime_should_not_add_image_groups(env, cri):
    """security_context_linux.go: SupplementalGroupsPolicy=Strict "even if the
    container's primary UID belongs to some groups in the image, runtime
    should not add SupplementalGroups to them"."""
    _sgp(env, cri, True)


# --- Security Context: SeccompProfilePath --------------------------------------------------


@pytest.fixture
def seccomp_profiles():
    """critest's createSeccompProfileDir: os.MkdirTemp("", "seccomp-tests")."""
    d = tempfile.mkdtemp(prefix="seccomp-tests")
    paths = {}
    for name, body in (("block-host-name.json", SECCOMP_BLOCK_HOSTNAME),
                       ("block-chmod.json", SECCOMP_BLOCK_CHMOD)):
        p = os.path.join(d, name)
        with open(p, "w") as f:
            f.write(body)
        os.chmod(p, 0o644)
        paths[name] = p
    os.chmod(d, 0o755)
    yield paths
    shutil.rmtree(d, ignore_errors=True)


def seccomp_test_container(env, cri, profile):
    """critest's seccompTestContainer: the profile on the pod and the container."""
    pod = run_pod(env, pod_cfg(cri, "seccomp-sandbox", seccomp=profile))
    c = ctr_cfg(cri, "seccomp-container", env.img.busybox, PAUSE_CMD)
    if profile is not None:
        sc_of(c).seccomp.CopyFrom(profile)
    return start_running(env, pod, c)


def verify_seccomp(env, cid, cmd, expect_error, output):
    r = exec_sync(env, cid, cmd)
    if expect_error:
        assert r.exit_code != 0, r
        assert output in r.stderr.decode(), r
    else:
        assert r.exit_code == 0, r
        assert output in r.stdout.decode(), r


def profile(cri, ptype=None, ref=None):
    p = cri.SecurityProfile()
    if ptype is not None:
        p.profile_type = ptype
    if ref:
        p.localhost_ref = ref
    return p


SECCOMP_GREP = ["grep", "Seccomp:", "/proc/self/status"]


def test_seccomp_should_support_seccomp_unconfined_on_the_container(env, cri):
    """security_context_linux.go: "should support seccomp unconfined on the container"."""
    cid = seccomp_test_container(env, cri, profile(cri, cri.SecurityProfile.Unconfined))
    verify_seccomp(env, cid, SECCOMP_GREP, False, "0")


def test_seccomp_should_support_seccomp_localhost_profile_on_the_container(env, cri,
                                                                          seccomp_profiles):
    """security_context_linux.go: "should support seccomp localhost profile on
    the container" (the profile in a temp dir, as critest makes it)."""
    p = profile(cri, cri.SecurityProfile.Localhost, seccomp_profiles["block-chmod.json"])
    cid = seccomp_test_container(env, cri, p)
    verify_seccomp(env, cid, ["chmod", "400", "/"], True, "Operation not permitted")


def test_seccomp_should_support_seccomp_default_on_the_container(env, cri):
    """security_context_linux.go: "should support seccomp default on the container"."""
    cid = seccomp_test_container(env, cri, profile(cri))
    verify_seccomp(env, cid, SECCOMP_GREP, False, "2")


def test_seccomp_should_support_nil_profile_which_is_unconfined(env, cri):
    """security_context_linux.go: "should support nil profile, which is unconfined"."""
    cid = seccomp_test_container(env, cri, None)
    verify_seccomp(env, cid, SECCOMP_GREP, False, "0")


def seccomp_container(env, cri, pod, p, caps, privileged):
    """critest's createSeccompContainer (sleep 60, user-specified image set)."""
    c = ctr_cfg(cri, "container-with-block-hostname-seccomp-profile-test", env.img.busybox,
                ["sleep", "60"])
    c.image.user_specified_image = env.img.busybox
    sc_of(c).privileged = privileged
    sc_of(c).capabilities.SetInParent()
    sc_of(c).capabilities.add_capabilities.extend(caps or [])
    sc_of(c).seccomp.CopyFrom(p)
    return start_running(env, pod, c)


def check_set_hostname(env, cid, settable):
    r = exec_sync(env, cid, ["hostname", "ANewHostName"])
    if settable:
        assert r.exit_code == 0, r
    else:
        assert r.exit_code != 0, r


def test_seccomp_runtime_should_not_block_setting_host_name_with_unconfined_seccomp_and_SYS_ADMIN(
        env, cri):
    """security_context_linux.go: "runtime should not block setting host name
    with unconfined seccomp and SYS_ADMIN"."""
    pod = default_pod(env, cri)
    cid = seccomp_container(env, cri, pod, profile(cri, cri.SecurityProfile.Unconfined),
                            ["SYS_ADMIN"], False)
    check_set_hostname(env, cid, True)


def test_seccomp_runtime_should_support_a_profile_that_blocks_setting_hostname_with_SYS_ADMIN(
        env, cri, seccomp_profiles):
    """security_context_linux.go: "runtime should support an seccomp profile
    that blocks setting hostname with SYS_ADMIN"."""
    pod = default_pod(env, cri)
    p = profile(cri, cri.SecurityProfile.Localhost, seccomp_profiles["block-host-name.json"])
    cid = seccomp_container(env, cri, pod, p, ["SYS_ADMIN"], False)
    check_set_hostname(env, cid, False)


def test_seccomp_runtime_should_ignore_a_profile_that_blocks_setting_hostname_when_privileged(
        env, cri, seccomp_profiles):
    """security_context_linux.go: "runtime should ignore a seccomp profile that
    blocks setting hostname when privileged"."""
    pod = run_pod(env, pod_cfg(cri, "create-Privileged-PodSandbox-for-container",
                               privileged=True))
    p = profile(cri, cri.SecurityProfile.Localhost, seccomp_profiles["block-host-name.json"])
    cid = seccomp_container(env, cri, pod, p, None, True)
    check_set_hostname(env, cid, True)


# --- Security Context: NoNewPrivs ----------------------------------------------------------


def _nnp(env, cri, nnp):
    cfg_pod = pod_cfg(cri, "create-PodSandbox-for-container", log_dir=env.cri.log_dir())
    pod = run_pod(env, cfg_pod)
    c = ctr_cfg(cri, "alpine-nnp-%s" % str(nnp).lower(), env.img.nonewprivs, log_path=True)
    sc_of(c).no_new_privs = nnp
    sc_of(c).run_as_user.value = 1000
    start_exited(env, pod, c)
    return log_text(cfg_pod, c.log_path, "stdout")


def test_nnp_should_not_allow_privilege_escalation_when_true(env, cri):
    """security_context_linux.go: NoNewPrivs "should not allow privilege escalation when true"."""
    assert _nnp(env, cri, True) == "Effective uid: 1000\n"


def test_nnp_should_allow_privilege_escalation_when_false(env, cri):
    """security_context_linux.go: NoNewPrivs "should allow privilege escalation when false"."""
    assert _nnp(env, cri, False) == "Effective uid: 0\n"


# --- Security Context: UserNamespaces ------------------------------------------------------


def userns_supported(env, cri):
    st = env.c.call("Status", cri.StatusRequest(verbose=True))
    return any(h.name == "" and h.features.user_namespaces for h in st.runtime_handlers)


# critest's defaultMapping: container 0 at host 1000, 100000 ids
USERNS_DEFAULT_MAPPING = [(0, 1000, 100000)]


def userns_options(cri, mode, uids=(), gids=()):
    u = cri.UserNamespace(mode=mode)
    for cid, hid, n in uids:
        u.uids.add(container_id=cid, host_id=hid, length=n)
    for cid, hid, n in gids:
        u.gids.add(container_id=cid, host_id=hid, length=n)
    return u


def userns_pod_cfg(env, cri, u):
    """critest's createNamespacePodSandbox: only userns_options set (so
    network, pid and ipc are POD), an empty DNS config, a log directory."""
    cfg = pod_cfg(cri, "user-namespaces-pod", log_dir=env.cri.log_dir(), dns={})
    cfg.linux.security_context.namespace_options.userns_options.CopyFrom(u)
    return cfg


def run_userns_container(env, cri, pod, cfg_pod):
    """critest's runUserNamespaceContainer: `cat /proc/self/uid_map` with the
    pod's namespace options, run to its exit; its log text."""
    c = ctr_cfg(cri, "user-namespaces-container", env.img.busybox, ["cat", "/proc/self/uid_map"],
                log_path=True)
    sc_of(c).namespace_options.CopyFrom(cfg_pod.linux.security_context.namespace_options)
    start_exited(env, pod, c)
    return log_text(cfg_pod, c.log_path, "stdout")


def run_userns_pod_with_error(env, cri, u):
    """critest's runUserNamespacePodWithError: RunPodSandbox must fail. Here
    also: with INVALID_ARGUMENT, and no sandbox left behind."""
    cfg = pod_cfg(cri, "user-namespaces-pod")
    cfg.linux.security_context.namespace_options.userns_options.CopyFrom(u)
    e = rpc_error(env.c.call, "RunPodSandbox", cri.RunPodSandboxRequest(config=cfg), timeout=60)
    listed = env.c.call("ListPodSandbox", cri.ListPodSandboxRequest()).items
    assert not [p for p in listed if p.metadata.name == cfg.metadata.name], listed
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.code(), e.details())
    return e.details()


def test_userns_runtime_should_support_NamespaceMode_POD(env, cri):
    """security_context_linux.go: UserNamespaces "runtime should support
    NamespaceMode_POD"; critest skips it unless the handler advertises
    user_namespaces (and the host supports idmapped mounts)."""
    if not userns_supported(env, cri):
        pytest.skip("crisp's default handler does not advertise user_namespaces: "
                    "critest skips \"runtime should support NamespaceMode_POD\"")
    u = userns_options(cri, POD, USERNS_DEFAULT_MAPPING, USERNS_DEFAULT_MAPPING)
    cfg_pod = userns_pod_cfg(env, cri, u)
    pod = run_pod(env, cfg_pod)
    out = run_userns_container(env, cri, pod, cfg_pod)
    assert re.search(r"\s+0\s+1000\s+100000\n", out), out


def test_userns_runtime_should_support_NamespaceMode_NODE(env, cri):
    """security_context_linux.go: UserNamespaces "runtime should support
    NamespaceMode_NODE": the container's uid_map is the host's, line by line.
    critest skips it without user_namespaces advertised; it holds either
    way, so it runs here."""
    cfg_pod = userns_pod_cfg(env, cri, userns_options(cri, NODE))
    pod = run_pod(env, cfg_pod)
    out = run_userns_container(env, cri, pod, cfg_pod)
    with open("/proc/self/uid_map") as f:
        host = f.read()
    lines = [line.split() for line in host.splitlines() if line.strip()]
    assert lines, host
    for m in lines:
        assert len(m) == 3, "unexpected host mapping line: %r" % m
        assert re.search(r"\s+%s\s+%s\s+%s" % tuple(m), out), (m, out)


def test_userns_runtime_should_fail_if_more_than_one_mapping_provided(env, cri):
    """security_context_linux.go: UserNamespaces "runtime should fail if more
    than one mapping provided" (runs whether or not crisp advertises user
    namespaces: the refusal comes first)."""
    wrong = [(0, 1000, 100000), (0, 2000, 100000)]
    msg = run_userns_pod_with_error(env, cri, userns_options(cri, POD, wrong, wrong))
    assert "mode POD needs exactly one uid mapping, got 2" in msg, msg


def test_userns_runtime_should_fail_if_container_ID_0_is_not_mapped(env, cri):
    """security_context_linux.go: UserNamespaces "runtime should fail if
    container ID 0 is not mapped"."""
    m = [(1, 1000, 100000)]
    msg = run_userns_pod_with_error(env, cri, userns_options(cri, POD, m, m))
    assert "container uid 0 is not mapped" in msg, msg


def test_userns_runtime_should_fail_with_NamespaceMode_CONTAINER(env, cri):
    """security_context_linux.go: UserNamespaces "runtime should fail with
    NamespaceMode_CONTAINER"."""
    msg = run_userns_pod_with_error(env, cri, userns_options(cri, CONTAINER))
    assert "mode CONTAINER is not supported for a user namespace" in msg, msg


def test_userns_runtime_should_fail_with_NamespaceMode_TARGET(env, cri):
    """security_context_linux.go: UserNamespaces "runtime should fail with
    NamespaceMode_TARGET"."""
    msg = run_userns_pod_with_error(env, cri, userns_options(cri, 3))  # TARGET
    assert "mode TARGET is not supported for a user namespace" in msg, msg


# --- AppArmor ------------------------------------------------------------------------------


def apparmor_enabled():
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            return f.read(1) == "Y"
    except OSError:
        return False


APPARMOR_ITS = [
    "deprecated apparmor_profile field: should fail with an unloaded apparmor_profile",
    "deprecated apparmor_profile field: should enforce a apparmor_profile blocking writes",
    "deprecated apparmor_profile field: should enforce a permissive deprecated profile",
    "apparmor field: should fail with an unloaded apparmor_profile",
    "apparmor field: should enforce a apparmor_profile blocking writes",
    "apparmor field: should enforce a permissive deprecated profile",
    "prefer new apparmor field: should fail with an unloaded apparmor_profile",
    "prefer new apparmor field: should enforce a apparmor_profile blocking writes",
    "prefer new apparmor field: should work with apparmor profile",
]


@pytest.mark.parametrize("it", APPARMOR_ITS)
def test_apparmor(it):
    """apparmor_linux.go: every It needs AppArmor loaded (apparmor_parser)."""
    if not apparmor_enabled():
        pytest.skip("AppArmor is not enabled on this host (critest skips too)")
    pytest.fail("AppArmor is enabled here: mirror \"%s\"" % it)


# --- Networking ----------------------------------------------------------------------------


def test_networking_runtime_should_support_DNS_config(env, cri):
    """networking.go: "runtime should support DNS config [Conformance]"."""
    pod = run_pod(env, pod_cfg(cri, "create-PodSandbox-with-DNS-config",
                               dns={"servers": ["10.10.10.10"], "searches": ["google.com"],
                                    "options": ["ndots:8"]}))
    c = ctr_cfg(cri, "container-for-DNS-config-test", env.img.busybox, PAUSE_CMD)
    cid = env.cri.create(pod, c)
    env.cri.start(cid)
    r = exec_sync(env, cid, ["cat", "/etc/resolv.conf"])
    assert r.exit_code == 0, r
    for want in ("nameserver 10.10.10.10", "search google.com", "options ndots:8"):
        assert want in r.stdout.decode(), r.stdout
    assert r.stderr == b""


def test_networking_runtime_should_support_set_hostname(env, cri):
    """networking.go: "runtime should support set hostname [Conformance]"."""
    pod = run_pod(env, pod_cfg(cri, "create-PodSandbox-with-hostname", hostname="test-hostname"))
    cid = env.cri.create(pod, ctr_cfg(cri, "container-for-hostname-test", env.img.busybox,
                                      PAUSE_CMD))
    env.cri.start(cid)
    r = exec_sync(env, cid, ["hostname"])
    assert r.exit_code == 0, r
    assert r.stdout.decode().strip().lower() == "test-hostname"
    assert r.stderr == b""


def http_get(url, timeout=60):
    """critest's checkMainPage: retried for a minute; status 200."""
    import urllib.request
    last = None
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.status, resp.read()
        except OSError as e:
            last = e
            time.sleep(1)
    raise AssertionError("GET %s: %s" % (url, last))


def web_server(env, cri, pod, image=None, prefix="container-for-web"):
    c = ctr_cfg(cri, prefix, image or env.img.web)
    cid = env.cri.create(pod, c)
    env.cri.start(cid)
    return cid


def test_networking_runtime_should_support_port_mapping_with_only_container_port(env, cri):
    """networking.go: "runtime should support port mapping with only container
    port [Conformance]": the pod IP's port 80 serves."""
    pod = run_pod(env, pod_cfg(cri, "create-PodSandbox-with-port-mapping",
                               port_mappings=[(80, 0)]))
    web_server(env, cri, pod, prefix="container-for-container-port")
    ip = env.cri.pod_status(pod).status.network.ip
    assert ip, "The IP should not be nil."
    status, _ = http_get("http://%s:80" % ip)
    assert status == 200


def test_networking_runtime_should_support_port_mapping_with_host_port_and_container_port(env,
                                                                                         cri):
    """networking.go: "runtime should support port mapping with host port and
    container port [Conformance]": http://127.0.0.1:12000 serves."""
    pod = run_pod(env, pod_cfg(cri, "create-PodSandbox-with-port-mapping",
                               port_mappings=[(80, HOST_PORT_MAPPING)]))
    web_server(env, cri, pod, prefix="container-for-host-port")
    status, _ = http_get("http://127.0.0.1:%d" % HOST_PORT_MAPPING)
    assert status == 200


# --- Streaming -----------------------------------------------------------------------------


def default_ctr(env, cri, pod, prefix):
    """framework.CreateDefaultContainer: the default image running pauseCmd."""
    return env.cri.create(pod, ctr_cfg(cri, prefix, env.img.busybox, PAUSE_CMD))


def parse_url(url):
    u = urllib.parse.urlsplit(url)
    assert u.netloc, "The host of URL should not be empty: %r" % url
    return url


def test_streaming_runtime_should_support_exec_with_tty_false_and_stdin_false(env, cri):
    """streaming.go: "runtime should support exec with tty=false and stdin=false [Conformance]"."""
    pod = default_pod(env, cri)
    cid = default_ctr(env, cri, pod, "container-for-exec-test")
    env.cri.start(cid)
    url = env.c.call("Exec", cri.ExecRequest(container_id=cid, cmd=ECHO_HELLO, stdout=True,
                                             stderr=True)).url
    r = sc.remote_command(parse_url(url))
    assert r.stdout == b"hello"
    assert r.stderr == b"", "The stderr of exec should be empty"


def test_streaming_runtime_should_support_exec_with_tty_true_and_stdin_true(env, cri):
    """streaming.go: "runtime should support exec with tty=true and stdin=true [Conformance]"."""
    pod = default_pod(env, cri)
    cid = default_ctr(env, cri, pod, "container-for-exec-test")
    env.cri.start(cid)
    url = env.c.call("Exec", cri.ExecRequest(container_id=cid, cmd=ECHO_HELLO, stdout=True,
                                             tty=True, stdin=True)).url
    # client-go keeps stdin open (critest closes it after the output or 20 s)
    r = sc.remote_command(parse_url(url), stdin=b"", tty=True, stdin_close=False)
    assert b"hello" in r.stdout, r.stdout
    assert r.stderr == b""


def test_streaming_runtime_should_support_attach(env, cri):
    """streaming.go: "runtime should support attach [Conformance]"."""
    pod = default_pod(env, cri)
    # critest's createShellContainer: /bin/sh with stdin (once), no tty
    c = ctr_cfg(cri, "container-for-attach-test", env.img.busybox, ["/bin/sh"])
    c.stdin = True
    c.stdin_once = True
    cid = env.cri.create(pod, c)
    env.cri.start(cid)
    url = env.c.call("Attach", cri.AttachRequest(container_id=cid, stdin=True, stdout=True,
                                                 stderr=True, tty=False)).url
    with sc.SpdyConn.connect(parse_url(url), ["v4.channel.k8s.io"]) as conn:
        err = conn.open_stream({"streamtype": "error"}, fin=True)
        stdin = conn.open_stream({"streamtype": "stdin"})
        out = conn.open_stream({"streamtype": "stdout"}, fin=True)
        serr = conn.open_stream({"streamtype": "stderr"}, fin=True)
        # the container stops output when there is no input
        conn.pump(1.0)
        header = bytes(out.data)
        conn.pump(1.0)
        assert bytes(out.data) == header, "The container should stop output with no input"
        stdin.write(b" ".join(x.encode() for x in ECHO_HELLO) + b"\n")
        conn.run_until(lambda: bytes(out.data)[len(header):] == b"hello", 60)
        conn.pump(3.0)
        assert bytes(out.data)[len(header):] == b"hello", "The stdout should not contain other things"
        # critest closes its stdin pipe; client-go then half-closes the stdin
        # stream: with StdinOnce the container's stdin ends, sh exits and the
        # session ends (StreamWithContext returns).
        stdin.close()
        try:
            conn.run_until(lambda: err.closed, 30)
        except TimeoutError:
            state = cri.ContainerState.Name(env.cri.status(cid).state)
            raise AssertionError("attach session still open 30 s after the client closed "
                                 "stdin (stdin_once container: %s)" % state) from None
        assert bytes(serr.data) == b"", "The stderr of attach should be empty"
        assert bytes(err.data) in (b"", b'{"status":"Success"}') or b"Success" in bytes(err.data), \
            bytes(err.data)


def port_forward_http(url, port):
    """checkPortForward, with the HTTP GET sent on the forwarded stream itself
    (critest listens on a local port and GETs through it; it needs the
    response only, not the end of the forwarded connection)."""
    with sc.SpdyConn.connect(parse_url(url), ["portforward.k8s.io"]) as conn:
        err = conn.open_stream({"streamtype": "error", "port": str(port), "requestid": "0"},
                               fin=True)
        dat = conn.open_stream({"streamtype": "data", "port": str(port), "requestid": "0"})
        dat.write(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        conn.run_until(lambda: b"crisp critest" in bytes(dat.data) or err.data or err.closed
                       or dat.closed, 30)
        data = bytes(dat.data)
        assert bytes(err.data) == b"", bytes(err.data)
    assert data.split(b"\r\n")[0].startswith(b"HTTP/1.") and b" 200 " in data.split(b"\r\n")[0], \
        data[:200]


def test_streaming_runtime_should_support_portforward(env, cri):
    """streaming.go: "runtime should support portforward [Conformance]"."""
    pod = run_pod(env, pod_cfg(cri, "create-PodSandbox-with-port-mapping",
                               port_mappings=[(80, 0)]))
    web_server(env, cri, pod, prefix="container-for-portforward-test")
    ip = env.cri.pod_status(pod).status.network.ip
    assert http_get("http://%s:80" % ip)[0] == 200
    url = env.c.call("PortForward", cri.PortForwardRequest(pod_sandbox_id=pod)).url
    port_forward_http(url, 80)


def test_streaming_runtime_should_support_portforward_in_host_network(env, cri):
    """streaming_linux.go: "runtime should support portforward in host network"."""
    pod = run_pod(env, pod_cfg(cri, "create-PodSandbox-with-port-mapping",
                               port_mappings=[(HOSTNET_CONTAINER_PORT, 0)],
                               ns={"network": NODE}))
    web_server(env, cri, pod, image=env.img.hostnet_web,
               prefix="container-for-host-net-portforward-test")
    assert http_get("http://127.0.0.1:%d" % HOSTNET_CONTAINER_PORT)[0] == 200
    url = env.c.call("PortForward", cri.PortForwardRequest(pod_sandbox_id=pod)).url
    port_forward_http(url, HOSTNET_CONTAINER_PORT)
