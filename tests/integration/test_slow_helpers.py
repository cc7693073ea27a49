"""Calls a helper finishes after the frontend would have given up on it,
and undo steps that fail: nothing may be left behind that the kubelet
cannot see or remove.

- A pod start takes longer than [frontend] ipc_timeout: runtimed bounds it
  itself, so the frontend waits for it rather than fail RunPodSandbox
  while runtimed goes on and leaves a READY pod behind.
- A RemovePodSandbox whose network removal fails after runtimed's record
  went: a retried RemovePodSandbox finds no sandbox and succeeds, so the
  reconciler finishes the removal a few seconds later (reconcile_soon),
  not at the next helper restart."""
import os
import shutil
import time

import harness
from harness import pod_config, rpc_error

SLOW_RUN = """#!/bin/sh
# runc, but `run` (the pause's, in its monitor) waits 4 s first
for a in "$@"; do [ "$a" = run ] && sleep 4 && break; done
exec {runc} "$@"
"""


def test_pod_start_longer_than_ipc_timeout(crispd_factory, cri, tmp_path):
    script = tmp_path / "slow-runc"
    script.write_text(SLOW_RUN.format(runc=shutil.which("runc") or "/usr/sbin/runc"))
    script.chmod(0o755)
    c = crispd_factory(config={"frontend": {"ipc_timeout": "2"},
                               'runtime_handler "slow"': {"path": str(script)}})
    t = time.monotonic()
    r = c.call("RunPodSandbox", cri.RunPodSandboxRequest(config=pod_config("slow-start"),
                                                          runtime_handler="slow"), timeout=60)
    assert time.monotonic() - t > 3, "the start was not slow: the test tests nothing"
    pods = c.call("ListPodSandbox", cri.ListPodSandboxRequest()).items
    assert [(p.id, p.state) for p in pods] == [(r.pod_sandbox_id, cri.SANDBOX_READY)], pods
    c.call("StopPodSandbox", cri.StopPodSandboxRequest(pod_sandbox_id=r.pod_sandbox_id),
           timeout=60)
    c.call("RemovePodSandbox", cri.RemovePodSandboxRequest(pod_sandbox_id=r.pod_sandbox_id),
           timeout=60)
    assert not c.call("ListPodSandbox", cri.ListPodSandboxRequest()).items


FAIL_DEL = """#!/bin/sh
# chained plugin: passes prevResult on at ADD; DEL fails while {flag} exists
in=$(cat)
case "$CNI_COMMAND" in
ADD) printf '%s' "$in" | /usr/bin/python3 -c 'import json, sys; c = json.load(sys.stdin); print(json.dumps(c.get("prevResult", {{"cniVersion": c["cniVersion"]}})))' ;;
DEL) if [ -f {flag} ]; then echo '{{"cniVersion":"1.0.0","code":11,"msg":"test: DEL fails"}}'; exit 1; fi ;;
VERSION) echo '{{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}}' ;;
esac
exit 0
"""


def test_failed_network_removal_is_finished_by_the_reconciler(crispd_factory, cri, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    flag = tmp_path / "fail-del"
    (bindir / "faildel").write_text(FAIL_DEL.format(flag=flag))
    (bindir / "faildel").chmod(0o755)
    ipam = tmp_path / "ipam"
    c = crispd_factory(config={"cni": {"bin_dirs": "%s:/usr/lib/cni" % bindir}}, start=False)
    c.add_conflist(body={"cniVersion": "1.0.0", "name": "crisp-faildel", "plugins": [
        {"type": "bridge", "bridge": "crispfdel0", "isGateway": True, "ipMasq": False,
         "ipam": {"type": "host-local", "dataDir": str(ipam),
                  "ranges": [[{"subnet": "10.238.0.0/16"}]]}},
        {"type": "faildel"}]})
    c.start()
    # the pass every start makes: the one this test waits for comes later
    c.wait_log(r"reconcile: .* orphans removed", timeout=15)
    harness.wait_for(lambda: harness.conditions(c.status()).get("NetworkReady") and
                     harness.conditions(c.status())["NetworkReady"].status, 15,
                     what="NetworkReady")
    pid = c.call("RunPodSandbox", cri.RunPodSandboxRequest(
        config=pod_config("fail-del", host_network=False)),
                 timeout=60).pod_sandbox_id

    def ips():
        d = ipam / "crisp-faildel"
        return [f for f in os.listdir(d) if f[0].isdigit()] if d.is_dir() else []
    assert ips(), "the pod got no IP"
    flag.write_text("x")
    rpc_error(c.call, "StopPodSandbox", cri.StopPodSandboxRequest(pod_sandbox_id=pid),
              timeout=60)
    mark = c.mark()
    rpc_error(c.call, "RemovePodSandbox", cri.RemovePodSandboxRequest(pod_sandbox_id=pid),
              timeout=60)
    # the record is gone: a retry succeeds, and nothing the kubelet sees is left
    c.call("RemovePodSandbox", cri.RemovePodSandboxRequest(pod_sandbox_id=pid), timeout=60)
    pins = os.path.join(c.config["crispd"]["state_dir"], "netns")
    assert pid in os.listdir(pins), "the netns went although DEL failed"
    os.unlink(flag)
    c.wait_log(r"reconcile: removing the network namespace of sandbox %s" % pid, since=mark,
               timeout=20)
    harness.wait_for(lambda: pid not in os.listdir(pins), 10, what="the netns pin to go")
    harness.wait_for(lambda: not ips(), 10, what="the pod's IP to be released")
