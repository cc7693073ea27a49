"""ContainerStatus.user (KEP-3619): the uid, gid and supplementary groups the
container's first process starts with, as crisp put them in its OCI spec;
Status advertising SupplementalGroupsPolicy; the user kept in runtimed's
record across a restart (and left unset for a record that has none); an
unknown policy refused with INVALID_ARGUMENT."""

import os
import signal
import sqlite3
import types

import grpc
import pytest

import harness
import images
from conftest import pull_images
from harness import container_config, pod_config, rpc_error

# The image's USER is a name: uid and gid come from its /etc/passwd, and
# Merge adds the groups of /etc/group that list it ("team"; not "others").
SVC_PASSWD = images.PASSWD + "svc:x:1500:2500::/home:/bin/sh\n"
SVC_GROUP = images.GROUP + "svcgrp:x:2500:\nteam:x:3000:app,svc\nothers:x:3100:app\n"

USER_FIELD = 15  # ContainerInfo.user in ipc/ipc.proto


@pytest.fixture(scope="module")
def user_images(registry):
    svc = images.busybox_image(
        cmd=["sleep", "3600"], user="svc",
        extra_layers=[[images.File("etc/passwd", SVC_PASSWD),
                       images.File("etc/group", SVC_GROUP)]])
    return types.SimpleNamespace(svc=registry.push(svc, "crisp-user/svc").ref)


@pytest.fixture
def env(pod_env, user_images):
    pull_images(pod_env.c, [user_images.svc])
    pod_env.user_images = user_images
    return pod_env


def linux_user(k, cid):
    st = k.status(cid)
    assert st.HasField("user") and st.user.HasField("linux"), st
    u = st.user.linux
    return u.uid, u.gid, list(u.supplemental_groups)


def ids_inside(k, cid):
    """(uid, gid, sorted groups) of a process exec'd in the container, which
    runs with the spec's process.user as the first one does."""
    rc, out, err = k.sh(cid, "id -u; id -g; id -G")
    assert rc == 0, (rc, out, err)
    uid, gid, groups = out.split("\n")[:3]
    return int(uid), int(gid), sorted(int(g) for g in groups.split())


def with_user(cfg, uid=None, gid=None, groups=(), policy=None):
    sc = cfg.linux.security_context
    if uid is not None:
        sc.run_as_user.value = uid
    if gid is not None:
        sc.run_as_group.value = gid
    sc.supplemental_groups.extend(groups)
    if policy is not None:
        sc.supplemental_groups_policy = policy
    return cfg


def test_status_advertises_supplemental_groups_policy(crispd):
    st = crispd.status()
    assert st.HasField("features") and st.features.supplemental_groups_policy, st


def test_run_as_user_group_and_supplemental_groups(env, cri):
    """uid 1000 is app in the image: Merge adds "extra" (2000), which lists
    app, to the request's groups and the primary group 3333."""
    k = env.cri
    pod = k.run_pod(pod_config("user-ids"))
    cfg = with_user(container_config("ids", env.images.busybox), 1000, 3333, [42, 7])
    cid = k.create(pod, cfg)
    want = (1000, 3333, [7, 42, 2000, 3333])
    assert linux_user(k, cid) == want  # already at create: it is the spec's
    k.start(cid)
    assert linux_user(k, cid) == want
    assert ids_inside(k, cid) == want
    # PodSandboxStatus's container statuses carry it as well
    sts = {s.id: s for s in k.pod_status(pod).containers_statuses}
    assert list(sts[cid].user.linux.supplemental_groups) == want[2], sts[cid]


def test_unknown_uid_has_gid_0(env, cri):
    """A uid the image does not know runs with gid 0 and only the groups asked
    for (containerd's WithUserID)."""
    k = env.cri
    pod = k.run_pod(pod_config("user-unknown"))
    cid = k.run(pod, with_user(container_config("unknown", env.images.busybox), 4242,
                               groups=[5]))
    want = (4242, 0, [0, 5])
    assert linux_user(k, cid) == want
    assert ids_inside(k, cid) == want


@pytest.mark.parametrize("strict", [False, True], ids=["Merge", "Strict"])
def test_image_user_by_name(env, cri, strict):
    """USER svc: uid 1500 and gid 2500 from the image's /etc/passwd; Merge
    adds "team" (3000), Strict only the primary group and the request's."""
    k = env.cri
    pod = k.run_pod(pod_config("user-image"))
    cfg = with_user(container_config("svc", env.user_images.svc), groups=[77],
                    policy=cri.Strict if strict else cri.Merge)
    cid = k.run(pod, cfg)
    want = (1500, 2500, [77, 2500] if strict else [77, 2500, 3000])
    assert linux_user(k, cid) == want
    assert ids_inside(k, cid) == want


def test_user_survives_runtimed_restart(env, cri):
    """The user is part of runtimed's durable record: a runtimed killed and
    restarted reports the same, for a running and a created container."""
    k = env.cri
    pod = k.run_pod(pod_config("user-restart"))
    running = k.run(pod, with_user(container_config("running", env.images.busybox),
                                   1000, 1000, [9]))
    created = k.create(pod, container_config("created", env.user_images.svc))
    before = {cid: linux_user(k, cid) for cid in (running, created)}
    assert before[running] == (1000, 1000, [9, 1000, 2000])
    assert before[created] == (1500, 2500, [2500, 3000])
    old = env.c.children()["crisp-runtimed"]
    os.kill(old, signal.SIGKILL)
    env.c.wait_new_pid("crisp-runtimed", old, 15)

    def answers():
        try:
            return {cid: linux_user(k, cid) for cid in (running, created)}
        except grpc.RpcError:
            return None
    assert harness.wait_for(answers, 30, interval=0.2, what="ContainerStatus again") == before
    assert k.status(running).state == cri.CONTAINER_RUNNING
    assert ids_inside(k, running) == before[running]


def drop_field(msg, number):
    """msg (protobuf wire format) without its top-level fields `number`."""
    def varint(i):
        v, shift = 0, 0
        while True:
            b = msg[i]
            i += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return v, i
    out, i, dropped = bytearray(), 0, 0
    while i < len(msg):
        start = i
        key, i = varint(i)
        wire = key & 7
        if wire == 0:
            _, i = varint(i)
        elif wire == 1:
            i += 8
        elif wire == 2:
            n, i = varint(i)
            i += n
        elif wire == 5:
            i += 4
        else:
            raise AssertionError("wire type %d in a ContainerInfo" % wire)
        if key >> 3 == number:
            dropped += 1
        else:
            out += msg[start:i]
    assert i == len(msg), "truncated ContainerInfo"
    return bytes(out), dropped


def test_user_unset_for_a_record_without_it(env, cri):
    """A container recorded by a runtimed that did not keep the user (its
    record rewritten here without the field) has no user in its status,
    rather than a guess; the rest of its status is intact."""
    k = env.cri
    pod = k.run_pod(pod_config("user-old-record"))
    cid = k.run(pod, with_user(container_config("old", env.images.busybox), 1000))
    assert linux_user(k, cid)[0] == 1000
    assert env.c.terminate(timeout=15) == 0
    db = os.path.join(env.c.config["crispd"]["root_dir"], "runtimed", "state.db")
    with sqlite3.connect(db) as con:
        (info,) = con.execute("SELECT info FROM containers WHERE id = ?", (cid,)).fetchone()
        stripped, dropped = drop_field(info, USER_FIELD)
        assert dropped == 1, "the record has no user field to drop"
        con.execute("UPDATE containers SET info = ? WHERE id = ?", (stripped, cid))
    con.close()
    env.c.start(timeout=30)
    harness.wait_for(lambda: env.c.serves(), 30, what="crisp serving again")

    def status():
        try:
            return k.status(cid)
        except grpc.RpcError:
            return None
    st = harness.wait_for(status, 30, interval=0.2, what="ContainerStatus again")
    assert not st.HasField("user"), st.user
    assert st.state == cri.CONTAINER_RUNNING, st


def test_unknown_policy_is_invalid_argument(env, cri):
    k, c = env.cri, env.c
    pod = k.run_pod(pod_config("user-bad-policy"))
    cfg = with_user(container_config("bad", env.images.busybox), 1000, policy=5)
    e = rpc_error(k.create, pod, cfg)
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.code(), e.details())
    assert ("linux.security_context.supplemental_groups_policy 5 is not Merge (0) or "
            "Strict (1)") in e.details(), e.details()
    assert k.list_containers(pod_id=pod) == []
    # the pod's own policy is checked at RunPodSandbox
    pcfg = pod_config("user-bad-pod-policy")
    pcfg.linux.security_context.supplemental_groups_policy = 9
    e = rpc_error(k.run_pod, pcfg)
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.code(), e.details())
    assert "supplemental_groups_policy 9 is not Merge (0) or Strict (1)" in e.details(), \
        e.details()
    # a valid policy still works in the same pod
    cid = k.run(pod, with_user(container_config("good", env.images.busybox), 1000,
                               policy=cri.Strict))
    assert linux_user(k, cid) == (1000, 1000, [1000])
    assert c.serves()
