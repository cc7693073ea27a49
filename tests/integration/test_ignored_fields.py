"""CRI fields crisp cannot apply are refused with a status that says which
and why, never silently dropped: CDI devices, an image_sub_path without an
image volume, sandbox namespace modes outside what a sandbox can have, bad
pod resources and overhead, a stop signal outside the enum. The stop
signal a container asks for is the one StopContainer sends, and
ContainerStatus reports it. SELinux labels are ignored on a host without
SELinux (this one), as containerd and CRI-O do, and runtimed's log says so;
the refusal where SELinux is enabled is covered by tests/unit/test-spec.c."""

import json
import os
import time

import grpc
import pytest

import harness
from harness import container_config, pod_config, rpc_error


def sh_config(name, image, script):
    return container_config(name, image, command=["sh", "-c", script])


def assert_refused(err, code, needle):
    assert err.code() == code, (err.code(), err.details())
    assert needle in err.details(), err.details()


def test_cdi_devices_refused(pod_env, cri):
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("ign-cdi"))
    cfg = container_config("gpu", env.images.busybox)
    cfg.CDI_devices.add(name="nvidia.com/gpu=0")
    assert_refused(rpc_error(k.create, pod, cfg), grpc.StatusCode.UNIMPLEMENTED,
                   "CDI_devices: CDI devices are not supported")
    cfg = container_config("gpu", env.images.busybox,
                           annotations={"cdi.k8s.io/device-plugin_x": "nvidia.com/gpu=0"})
    assert_refused(rpc_error(k.create, pod, cfg), grpc.StatusCode.UNIMPLEMENTED,
                   "CDI devices are not supported")
    assert k.list_containers(pod_id=pod) == []


def test_image_sub_path_without_image_refused(pod_env, cri):
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("ign-subpath"))
    cfg = container_config("sub", env.images.busybox)
    m = cfg.mounts.add()
    m.container_path = "/data"
    m.host_path = k.log_dir()
    m.image_sub_path = "etc"
    assert_refused(rpc_error(k.create, pod, cfg), grpc.StatusCode.INVALID_ARGUMENT,
                   "mounts[0].image_sub_path 'etc' is set without an image")


def test_sandbox_namespace_modes(pod_env, cri):
    k = pod_env.cri
    cfg = pod_config("ign-ns-pid7")
    cfg.linux.security_context.namespace_options.pid = 7
    assert_refused(rpc_error(k.run_pod, cfg), grpc.StatusCode.INVALID_ARGUMENT,
                   "namespace_options.pid 7 is not a namespace mode")
    cfg = pod_config("ign-ns-target")
    cfg.linux.security_context.namespace_options.ipc = cri.TARGET
    assert_refused(rpc_error(k.run_pod, cfg), grpc.StatusCode.INVALID_ARGUMENT,
                   "namespace_options.ipc TARGET is not a mode for a sandbox")
    assert [p for p in k.list_pods() if p.metadata.name.startswith("ign-ns-")] == []
    # What the kubelet sends for shareProcessNamespace: pid POD.
    cfg = pod_config("ign-ns-pod")
    cfg.linux.security_context.namespace_options.pid = cri.POD
    k.run_pod(cfg)


def test_negative_pod_resources_refused(pod_env, cri):
    k = pod_env.cri
    cfg = pod_config("ign-overhead")
    cfg.linux.overhead.memory_limit_in_bytes = -1
    assert_refused(rpc_error(k.run_pod, cfg), grpc.StatusCode.INVALID_ARGUMENT,
                   "linux.overhead.memory_limit_in_bytes -1 is negative")
    cfg = pod_config("ign-resources")
    cfg.linux.resources.cpu_shares = -5
    assert_refused(rpc_error(k.run_pod, cfg), grpc.StatusCode.INVALID_ARGUMENT,
                   "linux.resources.cpu_shares -5 is out of range")
    cfg = pod_config("ign-resources-ok")
    cfg.linux.resources.cpu_shares = 2
    cfg.linux.resources.memory_limit_in_bytes = 256 << 20
    pod = k.run_pod(cfg)
    # UpdatePodSandboxResources takes the same rules, and records nothing
    # it refuses.
    req = cri.UpdatePodSandboxResourcesRequest(pod_sandbox_id=pod)
    req.overhead.memory_limit_in_bytes = -3
    assert_refused(rpc_error(pod_env.c.call, "UpdatePodSandboxResources", req),
                   grpc.StatusCode.INVALID_ARGUMENT,
                   "linux.overhead.memory_limit_in_bytes -3 is negative")
    info = json.loads(k.pod_status(pod, verbose=True).info["info"])
    assert "overhead" not in info["config"]["linux"], info["config"]["linux"]


def test_stop_signal(pod_env, cri):
    env, k = pod_env, pod_env.cri
    pod = k.run_pod(pod_config("ign-stopsig"))
    bad = container_config("bad", env.images.busybox)
    bad.stop_signal = 66
    assert_refused(rpc_error(k.create, pod, bad), grpc.StatusCode.INVALID_ARGUMENT,
                   "stop_signal 66 is not a signal")

    cfg = sh_config("usr1", env.images.busybox,
                    'trap "echo got-usr1; exit 0" USR1; while :; do sleep 0.1; done')
    cfg.stop_signal = cri.SIGNAL_SIGUSR1
    cid = k.create(pod, cfg)
    assert k.status(cid).stop_signal == cri.SIGNAL_SIGUSR1
    k.start(cid)
    time.sleep(0.5)  # let the trap be set
    t = time.monotonic()
    k.stop(cid, timeout=30)
    assert time.monotonic() - t < 10, "SIGUSR1 did not stop the container"
    st = k.status(cid)
    assert st.state == cri.CONTAINER_EXITED and st.exit_code == 0, st
    assert st.stop_signal == cri.SIGNAL_SIGUSR1
    with open(st.log_path, "rb") as f:
        assert b"got-usr1" in f.read()

    # Unset: the image's STOPSIGNAL (busybox has none), else SIGTERM.
    plain = k.create(pod, container_config("plain", env.images.busybox))
    assert k.status(plain).stop_signal == cri.SIGNAL_SIGTERM


def test_selinux_options_ignored_without_selinux(pod_env, cri):
    env, k = pod_env, pod_env.cri
    if os.path.exists("/sys/fs/selinux/enforce"):
        pytest.skip("SELinux is enabled here: the refusal is unit-tested")
    assert "selinux no (SELinux labels are ignored)" in env.c.log_text()
    cfg = pod_config("ign-selinux")
    cfg.linux.security_context.selinux_options.type = "spc_t"
    pod = k.run_pod(cfg)
    ccfg = sh_config("se", env.images.busybox, "echo ok")
    ccfg.linux.security_context.selinux_options.level = "s0:c1,c2"
    m = ccfg.mounts.add()
    m.container_path = "/data"
    m.host_path = k.log_dir()
    m.selinux_relabel = True
    cid = k.run(pod, ccfg)
    st = k.wait_state(cid, cri.CONTAINER_EXITED)
    assert st.exit_code == 0, st
