#!/usr/bin/python3
"""Soak: crisp under a steady load for a while, to find what grows or is
left behind. Each cycle runs a few pods on a real CNI network (bridge +
host-local + portmap), a container in each (output, an ExecSync, a
ReopenContainerLog), then stops and removes them all; a thread lists and
asks for stats and status meanwhile, as the kubelet does. Every few cycles
it prints the RSS and open fds of each crisp process (the launchers too),
and at the end compares them with the first sample, and checks that no
mount, netns pin, IP allocation or log directory was left behind.

Runs as root. Starts its own crispd (from $CRISP_BUILD_DIR, default
build-test/) and registry in temp dirs, and stops them by pid.

    ./build.sh test                            # once: packages, build-test/
    bench/crisp-soak.py [--minutes 30] [--pods 3] [--sample-every 20]

Exits 1 if anything was left behind, a crisp process was replaced (it died
and crispd restarted it), a call failed, or a process holds more fds at the
end than at the first sample (after the last pods are gone, so the counts
are comparable). RSS is only reported: allocators and gRPC keep freed
memory, and the figure to watch is whether it levels off.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
os.environ.setdefault("CRISP_BUILD_DIR", os.path.join(TOP, "build-test"))

import harness  # noqa: E402
import images  # noqa: E402
import registry  # noqa: E402

# Its own network, bridge and range: a soak may run beside the test suite.
NET_NAME = "crisp-soak"
BRIDGE = "crispsoak0"
NETWORK = {
    "cniVersion": "1.0.0", "name": NET_NAME,
    "plugins": [
        {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.232.0.0/16"}]]}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ],
}
IP_DIR = "/var/lib/cni/networks/" + NET_NAME  # host-local's allocations


def processes(c):
    """{name: pid} of crispd, its children and their launchers."""
    out = {"crispd": c.pid}
    for name, pid in c.children().items():
        out[name] = pid
        for kid, comm in harness.children(pid):
            if comm.endswith("-launch"):
                out[comm] = kid
    return out


def sample(c):
    """{name: (pid, RSS kB, open fds)}"""
    out = {}
    for name, pid in processes(c).items():
        try:
            rss = int(harness.proc_status(pid)["VmRSS"].split()[0])
            out[name] = (pid, rss, len(os.listdir("/proc/%d/fd" % pid)))
        except OSError:
            out[name] = (pid, -1, -1)  # gone: reported as replaced
    return out


def leftovers(c):
    netns_dir = os.path.join(c.dir, "state", "netns")
    return {
        "mounts": len(harness.mounts_under(c.dir)),
        "netns pins": len(os.listdir(netns_dir)) if os.path.isdir(netns_dir) else 0,
        "IPs": len([f for f in os.listdir(IP_DIR) if f[0].isdigit()])
        if os.path.isdir(IP_DIR) else 0,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--pods", type=int, default=3, help="pods per cycle")
    ap.add_argument("--sample-every", type=int, default=20, help="cycles between samples")
    a = ap.parse_args()

    gen = tempfile.TemporaryDirectory(prefix="crisp-soak-")
    cri = harness.load_cri(gen.name)
    reg = registry.Registry().start()
    c = harness.Crispd()
    c.add_conflist(name="10-soak.conflist", body=NETWORK)
    k = harness.CriObjects(c)
    stop = threading.Event()
    # held by the lister through each round of calls: a sample takes it, so
    # that no client connection of the lister's is open in the counts
    calling = threading.Lock()
    errors = []
    problems = []
    try:
        image = reg.push(images.busybox_image(cmd=["sleep", "3600"]), "soak/busybox").ref
        c.start()
        harness.wait_for(lambda: c.call("PullImage", cri.PullImageRequest(
            image=cri.ImageSpec(image=image)), timeout=60), 20, interval=0.3,
            what="pulling the image")
        before = leftovers(c)

        def kubelet():
            calls = (("ListContainers", cri.ListContainersRequest()),
                     ("ListPodSandbox", cri.ListPodSandboxRequest()),
                     ("ListContainerStats", cri.ListContainerStatsRequest()),
                     ("ListPodSandboxStats", cri.ListPodSandboxStatsRequest()),
                     ("ImageFsInfo", cri.ImageFsInfoRequest()),
                     ("Status", cri.StatusRequest(verbose=True)))
            while not stop.is_set():
                with calling:
                    for method, req in calls:
                        try:
                            c.call(method, req)
                        except Exception as e:  # noqa: BLE001 -- any failure is a finding
                            errors.append("%s: %s" % (method, e))
                stop.wait(0.05)

        lister = threading.Thread(target=kubelet, daemon=True)
        lister.start()
        first = None
        cycle = 0
        t_end = time.time() + a.minutes * 60
        while time.time() < t_end:
            cycle += 1
            pods = []
            for i in range(a.pods):
                pod = k.run_pod(harness.pod_config("soak-%d-%d" % (cycle, i), host_network=False))
                cid = k.run(pod, harness.container_config(
                    "main", image, command=["sh", "-c", "echo started; sleep 3600"]))
                pods.append((pod, cid))
            for pod, cid in pods:
                r = k.exec_sync(cid, ["sh", "-c", "echo out; echo err >&2; exit 3"])
                if r.exit_code != 3 or r.stdout != b"out\n" or r.stderr != b"err\n":
                    errors.append("ExecSync: exit %d, %r, %r" % (r.exit_code, r.stdout, r.stderr))
                c.call("ReopenContainerLog", cri.ReopenContainerLogRequest(container_id=cid))
            for pod, cid in pods:
                k.stop(cid, timeout=2)
                k.remove(cid)
                k.stop_pod(pod)
                k.remove_pod(pod)
            for d in k.log_dirs:
                shutil.rmtree(d, ignore_errors=True)
            k.log_dirs.clear()
            if cycle == 1 or cycle % a.sample_every == 0:
                with calling:
                    time.sleep(0.3)  # the frontend sees the last connection close
                    s = sample(c)
                first = first or s
                print("cycle %d, %s: left %s" % (cycle, time.strftime("%H:%M:%S"), leftovers(c)))
                print("  " + "  ".join("%s %d kB %d fds" % (n, v[1], v[2])
                                       for n, v in sorted(s.items())), flush=True)
            if errors:
                problems += errors[:]
                print("errors: " + "; ".join(errors[:5]), flush=True)
                errors.clear()
        stop.set()
        lister.join()
        time.sleep(1)  # the last connection closes, the last removals' helpers exit
        last = sample(c)
        after = leftovers(c)
        print("\n%d cycles, %d pods in %.0f minutes" % (cycle, cycle * a.pods, a.minutes))
        print("%-18s %16s %12s" % ("process", "RSS kB", "fds"))
        for name in sorted(set(first) | set(last)):
            f, l = first.get(name), last.get(name)
            if not f or not l or f[0] != l[0]:
                problems.append("%s was replaced (pid %s, now %s)"
                                % (name, f and f[0], l and l[0]))
                continue
            print("%-18s %7d -> %6d %5d -> %4d" % (name, f[1], l[1], f[2], l[2]))
            if l[2] > f[2]:
                problems.append("%s holds %d fds, %d at the first sample" % (name, l[2], f[2]))
        for what in after:
            if after[what] != before[what]:
                problems.append("%s left: %d (before: %d)" % (what, after[what], before[what]))
    finally:
        stop.set()
        k.cleanup()
        c.cleanup()
        reg.cleanup()
        gen.cleanup()
        subprocess.run(["ip", "link", "del", BRIDGE], stderr=subprocess.DEVNULL)
        shutil.rmtree(IP_DIR, ignore_errors=True)
    for p in problems:
        print("PROBLEM: " + p)
    print("no problem found" if not problems else "%d problems" % len(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
