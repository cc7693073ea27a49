"""User namespaces (hostUsers: false), the filesystem and exec half: a
container of a pod with a user namespace gets an overlay rootfs over
idmapped clones of its lowerdirs, its volumes and pod files through
idmapped clones under its bundle, and ExecSync joins its user namespace
(docs/PRIVSEP.md "Known gaps" 18; runtimed/idmap.c, rootfs.c, exec.c).

The pods come from the namespace half (tests/integration/test_userns_netns.py,
its fixture uenv, which turns the feature on with the test hook
CRISP_TEST_USERNS=1 whatever the host)."""

import os
import subprocess

import grpc

import harness
from harness import container_config, rpc_error
from test_userns_netns import (uenv, userns_cfg, _userns_on, HOST_ID, LENGTH,  # noqa: F401,E402
                               runtimed_searchable)

from test_exec_confinement import (status_fields, runc_exec, NAMESPACES,  # noqa: E402
                                   _crisp_exec, _init_pid, _starttime)


def bundle(env, cid):
    return os.path.join(env.c.config["crispd"]["state_dir"], "runtimed", "bundles", cid)


def bundles(env):
    return os.path.join(env.c.config["crispd"]["state_dir"], "runtimed", "bundles")


def upperdir(env, cid):
    """The overlay's upperdir, from the rootfs mount's options (an absolute
    path for a pod with a user namespace)."""
    target = os.path.join(bundle(env, cid), "rootfs")
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == target:
                for o in fields[fields.index("-") + 3].split(","):
                    if o.startswith("upperdir="):
                        return o[len("upperdir="):]
    raise AssertionError("no overlay at %s" % target)


def pod_and_ctr(env, cri, name, mounts=(), groups=(), user=None, command=None):
    k = env.cri
    runtimed_searchable(env)
    cfg = userns_cfg(cri, name)
    pod = k.run_pod(cfg)
    c = container_config("c", env.images.busybox, command or ["sleep", "3600"])
    c.linux.security_context.namespace_options.CopyFrom(
        cfg.linux.security_context.namespace_options)
    c.linux.security_context.supplemental_groups.extend(groups)
    if user is not None:
        c.linux.security_context.run_as_user.value = user
    for host, ctr in mounts:
        c.mounts.add(host_path=host, container_path=ctr)
    return pod, c


def ok(k, cid, cmd):
    r = k.exec_sync(cid, cmd)
    assert r.exit_code == 0, (cmd, r.exit_code, r.stderr)
    return r.stdout.decode()


def test_userns_rootfs_volumes_and_exec(uenv, cri, tmp_path):
    """Image files are root's inside, the container's root writes / and
    /tmp and its files land in the upper as the pod's host root, a file a
    container uid 1000 writes to a hostPath volume is 1000 on the disk, the
    pod's files are readable, ExecSync runs as the pod's root with the
    mapping, and nothing stays mounted after the removals."""
    k = uenv.cri
    vol = tmp_path / "vol"
    vol.mkdir()
    os.chown(vol, 1000, 1000)
    pod, c = pod_and_ctr(uenv, cri, "uns-fs", mounts=[(str(vol), "/vol")])
    cid = k.run(pod, c)
    wcfg = container_config("w", uenv.images.busybox,
                            ["sh", "-c", "touch /vol/by-1000 && sleep 3600"])
    wcfg.linux.security_context.namespace_options.CopyFrom(
        c.linux.security_context.namespace_options)
    wcfg.linux.security_context.run_as_user.value = 1000
    wcfg.mounts.add(host_path=str(vol), container_path="/vol")
    w = k.run(pod, wcfg)

    # searchable by the pod's root (runc mounts as it), not by everyone:
    # the clones show the container's volumes
    st = os.stat(bundle(uenv, cid))
    assert (st.st_mode & 0o777, st.st_uid, st.st_gid) == (0o710, 0, HOST_ID), st
    idmap = os.path.join(bundle(uenv, cid), "idmap")
    assert harness.mounts_under(idmap), "no idmapped clone under %s" % idmap
    # the image's files are 0-owned on disk, root's inside
    line = ok(k, cid, ["ls", "-ln", "/bin/busybox"]).split()
    assert line[2:4] == ["0", "0"], line
    assert ok(k, cid, ["id", "-u"]) == "0\n"
    assert ok(k, cid, ["cat", "/proc/self/uid_map"]).split() == ["0", str(HOST_ID), str(LENGTH)]
    ok(k, cid, ["sh", "-c", "echo hi > /at-root && echo hi > /tmp/at-tmp"])
    up = upperdir(uenv, cid)
    for f in ("at-root", "tmp/at-tmp"):
        st = os.stat(os.path.join(up, f))
        assert (st.st_uid, st.st_gid) == (HOST_ID, HOST_ID), (f, st)
    st = os.stat(up)
    assert (st.st_uid, st.st_gid) == (HOST_ID, HOST_ID), st
    # a volume: the container's ids on the disk
    harness.wait_for(lambda: (vol / "by-1000").exists(), 15, what="the file of uid 1000")
    assert os.stat(vol / "by-1000").st_uid == 1000
    ok(k, cid, ["touch", "/vol/by-root"])
    assert os.stat(vol / "by-root").st_uid == 0
    assert ok(k, cid, ["ls", "-ln", "/vol/by-1000"]).split()[2] == "1000"
    # the pod's files
    assert "localhost" in ok(k, cid, ["cat", "/etc/hosts"])
    ok(k, cid, ["cat", "/etc/resolv.conf"])
    ok(k, cid, ["cat", "/etc/hostname"])
    ok(k, cid, ["sh", "-c", "echo x > /dev/shm/x && cat /dev/shm/x"])

    for x in (w, cid):
        k.stop(x)
        b = bundle(uenv, x)
        k.remove(x)
        assert not harness.mounts_under(b), harness.mounts_under(b)
        assert not os.path.exists(b)
    k.stop_pod(pod)
    k.remove_pod(pod)
    left = harness.leftovers(uenv.c, [pod, cid, w], uenv.baseline_mounts)
    assert not left, left


def test_userns_exec_like_runc(uenv, cri):
    """crisp-exec in a user namespace: uid 0 with the request's groups, the
    init's namespaces (the user one included), and what `runc exec` gives."""
    k = uenv.cri
    pod, c = pod_and_ctr(uenv, cri, "uns-exec", groups=[2000, 3000])
    cid = k.run(pod, c)
    mine = status_fields(ok(k, cid, ["cat", "/proc/self/status"]))
    assert mine["Uid"].split() == ["0"] * 4, mine
    assert mine["Groups"].split() == ["0", "2000", "3000"], mine
    assert mine == status_fields(ok(k, cid, ["cat", "/proc/1/status"]))
    assert status_fields(runc_exec(uenv, cid, ["cat", "/proc/self/status"])) == mine
    script = " ".join("echo %s $(readlink /proc/self/ns/%s) $(readlink /proc/1/ns/%s);" %
                      (n, n, n) for n in NAMESPACES)
    for line in ok(k, cid, ["sh", "-c", script]).splitlines():
        kind, a, b = line.split()
        assert a == b and a.startswith(kind + ":["), line
    assert ok(k, cid, ["cat", "/proc/self/uid_map"]) == runc_exec(
        uenv, cid, ["cat", "/proc/self/uid_map"])
    assert ok(k, cid, ["ls", "/proc/self/fd"]).split() == ["0", "1", "2", "3"]
    k.stop(cid)
    k.remove(cid)
    k.stop_pod(pod)
    k.remove_pod(pod)


def test_userns_failed_create_leaves_no_mount(uenv, cri, tmp_path):
    """A create that fails after the rootfs and a volume's clone were made
    (a volume on procfs, which cannot be idmapped) unmounts them all."""
    k = uenv.cri
    vol = tmp_path / "vol"
    vol.mkdir()
    pod, c = pod_and_ctr(uenv, cri, "uns-fail",
                         mounts=[(str(vol), "/vol"), ("/proc/sys/kernel", "/k")])
    before = set(os.listdir(bundles(uenv)))
    e = rpc_error(k.create, pod, c)
    assert e.code() != grpc.StatusCode.OK
    assert "idmapping the mount of /proc/sys/kernel" in e.details(), e.details()
    assert set(os.listdir(bundles(uenv))) == before
    left = [m for m in harness.mounts_under(bundles(uenv))]
    assert not left, left
    # a missing host path: refused, nothing left either
    c.ClearField("mounts")
    c.mounts.add(host_path=str(tmp_path / "missing"), container_path="/m")
    e = rpc_error(k.create, pod, c)
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
    assert not harness.mounts_under(bundles(uenv))
    # a mount's own mappings: the pod's are honoured, others refused
    c.ClearField("mounts")
    m = c.mounts.add(host_path=str(vol), container_path="/vol")
    m.uidMappings.add(container_id=0, host_id=HOST_ID + 65536, length=LENGTH)
    m.gidMappings.add(container_id=0, host_id=HOST_ID, length=LENGTH)
    e = rpc_error(k.create, pod, c)
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
    assert "must be the pod's" in e.details(), e.details()
    assert not harness.mounts_under(bundles(uenv))
    m.uidMappings[0].host_id = HOST_ID
    cid = k.create(pod, c)
    assert harness.mounts_under(os.path.join(bundle(uenv, cid), "idmap"))
    k.remove(cid)
    assert not harness.mounts_under(bundles(uenv))
    k.stop_pod(pod)
    k.remove_pod(pod)
    left = harness.leftovers(uenv.c, [pod], uenv.baseline_mounts)
    assert not left, left


def test_userns_copy_snapshot(pod_env_factory, cri, tmp_path):
    """Where imaged makes copy snapshots, the rootfs is an idmapped clone of
    the copy (nodev): the image's files are root's inside, and what the
    container's root writes is stored as 0, its container id, on the disk."""
    env = pod_env_factory(config={"images": {"snapshotter": "copy"}},
                          before_start=lambda c: _userns_on(c, str(tmp_path / "ipam")))
    harness.wait_for(lambda: harness.conditions(env.c.status())["NetworkReady"].status, 15,
                     what="NetworkReady")
    k = env.cri
    pod, c = pod_and_ctr(env, cri, "uns-copy")
    cid = k.run(pod, c)
    rootfs = os.path.join(bundle(env, cid), "rootfs")
    with open("/proc/self/mountinfo") as f:
        mine = [line.split() for line in f if line.split()[4] == rootfs]
    assert len(mine) == 1, mine
    opts = mine[0][5].split(",")
    assert "idmapped" in opts and "nodev" in opts, mine[0]
    copy = mine[0][3]
    assert ok(k, cid, ["ls", "-ln", "/bin/busybox"]).split()[2:4] == ["0", "0"]
    assert ok(k, cid, ["id", "-u"]) == "0\n"
    ok(k, cid, ["sh", "-c", "echo hi > /written"])
    st = os.stat(os.path.join(copy, "written"))
    assert (st.st_uid, st.st_gid) == (0, 0), st
    k.stop(cid)
    k.remove(cid)
    assert not harness.mounts_under(bundle(env, cid))
    k.stop_pod(pod)
    k.remove_pod(pod)
    left = harness.leftovers(env.c, [pod, cid], env.baseline_mounts)
    assert not left, left


def test_crisp_exec_refuses_a_user_namespace_the_init_made(uenv, cri):
    """An init that made itself a user namespace (unshare -U, as the
    container's root may when its seccomp profile allows it) is not joined:
    not in a pod without a user namespace, not in a pod with one (a nested
    namespace is not the pod's)."""
    k = uenv.cri
    # the pod's own user namespace, then one the init nests in it
    nest = ["/bin/busybox", "unshare", "-U", "-r", "sleep", "3600"]
    pod, c = pod_and_ctr(uenv, cri, "uns-nest", command=nest)
    c.linux.security_context.seccomp.profile_type = cri.SecurityProfile.Unconfined
    cid = k.run(pod, c)
    init = _init_pid(uenv, cid)
    harness.wait_for(lambda: "sleep" in open("/proc/%d/comm" % init).read(), 10,
                     what="unshare exec'd sleep")
    code, err, pidfile = _crisp_exec(uenv, cid, init, _starttime(init))
    assert (code, pidfile) == (255, False), (code, err)
    assert "not in the user namespace of its spec" in err, err
    k.stop(cid, timeout=0)
    k.remove(cid)
    # a pod of the host's user namespace
    pod2 = k.run_pod(harness.pod_config("uns-nest-host"))
    c = container_config("n", uenv.images.busybox, nest)
    c.linux.security_context.seccomp.profile_type = cri.SecurityProfile.Unconfined
    cid = k.run(pod2, c)
    init = _init_pid(uenv, cid)
    harness.wait_for(lambda: "sleep" in open("/proc/%d/comm" % init).read(), 10,
                     what="unshare exec'd sleep")
    code, err, pidfile = _crisp_exec(uenv, cid, init, _starttime(init))
    assert (code, pidfile) == (255, False), (code, err)
    assert "a user namespace its spec does not give it" in err, err
    for p in (pod, pod2):
        k.stop_pod(p)
        k.remove_pod(p)


def test_userns_host_to_container_propagation(uenv, cri, tmp_path):
    """A HOST_TO_CONTAINER volume's clone stays in its source's peer group:
    a mount made on the host under the source after the start reaches the
    container (not idmapped: its files are the overflow id inside), and the
    removal detaches the clone, never the host's own mounts."""
    k = uenv.cri
    src = tmp_path / "prop"
    src.mkdir()
    subprocess.check_call(["mount", "-t", "tmpfs", "tmpfs", str(src)])
    try:
        subprocess.check_call(["mount", "--make-shared", str(src)])
        pod, c = pod_and_ctr(uenv, cri, "uns-prop")
        m = c.mounts.add(host_path=str(src), container_path="/vol")
        m.propagation = cri.PROPAGATION_HOST_TO_CONTAINER
        cid = k.run(pod, c)
        (src / "sub").mkdir()
        subprocess.check_call(["mount", "-t", "tmpfs", "tmpfs", str(src / "sub")])
        (src / "sub" / "hello").touch()
        assert ok(k, cid, ["ls", "-ln", "/vol/sub/hello"]).split()[2] == "65534"
        assert ok(k, cid, ["ls", "-lnd", "/vol"]).split()[2] == "0"
        k.stop(cid, timeout=0)
        k.remove(cid)
        assert not harness.mounts_under(bundles(uenv))
        assert harness.mounts_under(str(src)) == [str(src / "sub"), str(src)]
        k.stop_pod(pod)
        k.remove_pod(pod)
    finally:
        subprocess.call(["umount", "-R", str(src)])
