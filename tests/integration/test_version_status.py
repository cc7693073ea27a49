"""Version, Status (conditions, verbose process table), RuntimeConfig and
UpdateRuntimeConfig, and the answers to methods crisp does not implement."""


import grpc
import pytest

import harness
from harness import rpc_error


def test_version(shared_crispd, cri):
    r = shared_crispd.call("Version", cri.VersionRequest(version="0.1.0"))
    assert r.runtime_name == "crisp"
    assert r.runtime_api_version == "v1"
    assert r.runtime_version, "empty runtime_version"


def test_status_ready_with_cni_config(shared_crispd, cri):
    conds = harness.conditions(shared_crispd.status())
    assert "RuntimeReady" in conds and "NetworkReady" in conds, conds
    assert conds["RuntimeReady"].status, conds["RuntimeReady"]
    assert conds["NetworkReady"].status, conds["NetworkReady"]


def test_status_network_not_ready_without_cni_config(crispd, cri):
    conds = harness.conditions(crispd.status())
    assert conds["RuntimeReady"].status, conds["RuntimeReady"]
    net = conds["NetworkReady"]
    assert not net.status, "NetworkReady is true with an empty CNI conf dir"
    assert net.reason, "NetworkReady false without a reason"


def test_status_network_not_ready_with_invalid_cni_config(crispd_factory, cri):
    c = crispd_factory(start=False)
    with open(c.cni_dir + "/10-broken.conflist", "w") as f:
        f.write('{"cniVersion": "1.0.0", "name": "broken", "plugins": [')
    c.start()
    net = harness.conditions(c.status())["NetworkReady"]
    assert not net.status, "NetworkReady is true with only an unparsable conflist"
    assert net.reason


def test_status_runtime_handlers(crispd_factory, cri, tmp_path):
    """Status lists the runtime handlers, the default also as "", with what
    their runtimes support: recursive read-only mounts where `<runtime>
    features` lists "rro" (runc 1.1 on a kernel from 5.12), not for a
    runtime without the subcommand."""
    old = tmp_path / "old-runtime"
    old.write_text("#!/bin/sh\necho 'unknown command' >&2\nexit 1\n")
    old.chmod(0o755)
    c = crispd_factory(config={'runtime_handler "old"': {"path": str(old)}})

    def handlers():
        hs = {h.name: h.features.recursive_read_only_mounts
              for h in c.call("Status", cri.StatusRequest()).runtime_handlers}
        return hs if hs.get("") else None  # the probe runs in the background
    hs = harness.wait_for(handlers, 10, what="the default handler's features")
    assert hs == {"": True, "runc": True, "old": False}, hs
    c.wait_log(r"runtime handler 'old': recursive read-only mounts no \(its runtime's "
               r"features do not list \"rro\"\)")


def test_status_info_only_when_verbose(shared_crispd, cri):
    assert not shared_crispd.status(verbose=False).info


def test_status_verbose_processes(shared_crispd, cri):
    kids = shared_crispd.children()
    procs = shared_crispd.processes()
    for name in harness.PROCESSES:
        short = harness.short_name(name)
        assert short in procs, "no %s in info['processes']: %r" % (short, procs)
        p = procs[short]
        for field in ("name", "pid", "restarts", "state", "last_exit"):
            assert field in p, "process entry lacks %r: %r" % (field, p)
        assert p["pid"] == kids[name], "%s: Status says pid %r, /proc says %d" % (
            name, p["pid"], kids[name])
        assert p["restarts"] == 0, p
        assert p["state"] == "running", p


def test_runtime_config_cgroupfs_by_default(shared_crispd, cri):
    r = shared_crispd.call("RuntimeConfig", cri.RuntimeConfigRequest())
    assert r.HasField("linux"), "RuntimeConfig has no linux part"
    assert r.linux.cgroup_driver == cri.CGROUPFS


def _pod_cidr(cri, cidr):
    return cri.UpdateRuntimeConfigRequest(
        runtime_config=cri.RuntimeConfig(network_config=cri.NetworkConfig(pod_cidr=cidr)))


@pytest.mark.parametrize("cidr", ["10.88.0.0/16", "10.88.0.0/16,fd00::/64"])
def test_update_runtime_config_valid(shared_crispd, cri, cidr):
    shared_crispd.call("UpdateRuntimeConfig", _pod_cidr(cri, cidr))


@pytest.mark.parametrize("cidr", ["10.88.0.0/99", "garbage", "300.1.2.3/16",
                                  "10.88.0.0/16," + "1" * 300])
def test_update_runtime_config_invalid(shared_crispd, cri, cidr):
    e = rpc_error(shared_crispd.call, "UpdateRuntimeConfig", _pod_cidr(cri, cidr))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.code(), e.details())


@pytest.mark.parametrize("method", ["CheckpointContainer", "CheckpointPod", "RestorePod"])
def test_unimplemented_method(shared_crispd, cri, method):
    e = rpc_error(shared_crispd.call, method)
    assert e.code() == grpc.StatusCode.UNIMPLEMENTED, (e.code(), e.details())
    assert method in (e.details() or ""), "message does not name the method: %r" % e.details()


@pytest.mark.parametrize("path", ["/runtime.v1.RuntimeService/NoSuchMethod",
                                  "/runtime.v1alpha2.RuntimeService/Version",
                                  "/no.such.Service/Version"])
def test_unknown_method_path(shared_crispd, cri, path):
    e = rpc_error(harness.call, shared_crispd.sock, None, raw=b"", path=path)
    assert e.code() == grpc.StatusCode.UNIMPLEMENTED, (e.code(), e.details())
    # and it keeps serving
    assert shared_crispd.call("Version").runtime_name == "crisp"
