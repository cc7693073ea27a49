"""A runtime handler's program that hangs is killed after runtime_timeout
(crisp.conf(5)), and the CRI call that waited for it fails saying which
call it was; crisp goes on, and the call succeeds once the runtime answers
again.

The handler is runc behind a wrapper script that hangs (exec sleep, so
the kill leaves no process behind) on the subcommand named in a flag file
while that file exists."""
import os
import shutil

import harness
from harness import container_config, pod_config, rpc_error

WRAPPER = """#!/bin/sh
# crisp passes: --root <dir> <subcommand> ...
if [ -f {flag} ] && [ "$3" = "$(cat {flag})" ]; then
    exec sleep 3600
fi
exec {runc} "$@"
"""


def _hanging_handler(tmp_path, hang=None):
    flag = tmp_path / "hang"
    if hang:
        flag.write_text(hang)
    script = tmp_path / "hanging-runc"
    script.write_text(WRAPPER.format(flag=flag, runc=shutil.which("runc") or "/usr/sbin/runc"))
    script.chmod(0o755)
    return script, flag


def test_hanging_kill_is_killed_and_stop_still_works(pod_env_factory, tmp_path):
    """StopContainer asks the runtime to signal the container; when that
    hangs, the runtime is killed and runtimed signals the container's init
    itself (it knows its pid and start time)."""
    script, flag = _hanging_handler(tmp_path)
    env = pod_env_factory(config={"runtime": {"runtime_timeout": "2"},
                                  'runtime_handler "hangs"': {"path": str(script)}})
    k = env.cri
    pod = k.run_pod(pod_config("hang-kill"), handler="hangs")
    cid = k.run(pod, container_config("box", env.images.busybox))
    flag.write_text("kill")
    k.stop(cid, timeout=0)
    k.wait_state(cid, harness.cri.CONTAINER_EXITED)
    env.c.wait_log(r"hangs kill %s did not finish in 2 s: killing it" % cid)
    os.unlink(flag)


def test_hanging_update_fails_the_call_then_recovers(pod_env_factory, tmp_path):
    script, flag = _hanging_handler(tmp_path)
    env = pod_env_factory(config={"runtime": {"runtime_timeout": "1"},
                                  'runtime_handler "hangs"': {"path": str(script)}})
    k = env.cri
    pod = k.run_pod(pod_config("hang-update"), handler="hangs")
    cid = k.run(pod, container_config("box", env.images.busybox))
    req = harness.cri.UpdateContainerResourcesRequest(container_id=cid)
    req.linux.cpu_shares = 512
    flag.write_text("update")
    e = rpc_error(env.c.call, "UpdateContainerResources", req, timeout=30)
    assert "hangs update %s did not finish in 1 s and was killed" % cid in e.details(), \
        (e.code(), e.details())
    assert k.status(cid).state == harness.cri.CONTAINER_RUNNING
    os.unlink(flag)
    env.c.call("UpdateContainerResources", req, timeout=30)
    assert k.status(cid).resources.linux.cpu_shares == 512


def test_hanging_features_probe_reports_no_rro(crispd_factory, cri, tmp_path):
    script, _ = _hanging_handler(tmp_path, hang="features")
    c = crispd_factory(config={"runtime": {"runtime_timeout": "1"},
                               'runtime_handler "hangs"': {"path": str(script)}})
    c.wait_log(r"hangs features did not finish in 1 s: killing it")
    c.wait_log(r"runtime handler 'hangs': recursive read-only mounts no")
    hs = {h.name: h.features.recursive_read_only_mounts
          for h in c.call("Status", cri.StatusRequest()).runtime_handlers}
    assert hs.get("hangs") is False, hs
