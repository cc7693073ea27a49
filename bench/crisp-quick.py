#!/usr/bin/python3
"""Quick figures for crisp alone (the side-by-side benchmark with containerd
is issue 7's): CRI round-trip latency of Version and Status, pull + unpack
time of a ~100 MB three-layer image from a local docker-registry, and the
RSS of every crisp process. Runs as root, starts its own crispd (from
$CRISP_BUILD_DIR, default build-test/) and registry in temp dirs, and stops
them by pid.

    ./build.sh test            # once: packages, build-test/
    bench/crisp-quick.py [--calls N] [--pulls N] [--size-mb N]
"""
import argparse
import os
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
os.environ.setdefault("CRISP_BUILD_DIR", os.path.join(TOP, "build-test"))

import harness  # noqa: E402
import images  # noqa: E402
import registry  # noqa: E402


def latency(c, cri, method, req, n):
    c.call(method, req)
    ts = []
    with harness.channel(c.sock) as ch:
        fn = ch.unary_unary(harness.method_path(method),
                            request_serializer=lambda m: m.SerializeToString(),
                            response_deserializer=harness.response_class(method).FromString)
        for _ in range(n):
            t = time.perf_counter()
            fn(req, timeout=5)
            ts.append(time.perf_counter() - t)
    ts.sort()
    return ts[len(ts) // 2] * 1e6, ts[int(len(ts) * 0.99)] * 1e6, n / sum(ts)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--pulls", type=int, default=3)
    ap.add_argument("--size-mb", type=int, default=100)
    a = ap.parse_args()
    gen = tempfile.TemporaryDirectory(prefix="crisp-bench-")
    cri = harness.load_cri(gen.name)
    reg = registry.Registry().start()
    c = harness.Crispd()
    try:
        img = images.big_image(total_mb=a.size_mb)
        pushed = reg.push(img, "bench/big", "v1")
        c.start()
        time.sleep(1)
        print("process          RSS idle")
        for name, pid in sorted(c.children().items()):
            print("%-16s %6d kB" % (name, rss_kb(pid)))
            # netd's and runtimed's launchers (crisp-launch), their children
            for kid, comm in harness.children(pid):
                if comm.endswith("-launch"):
                    print("  %-14s %6d kB" % (comm, rss_kb(kid)))
        print("crispd           %6d kB" % rss_kb(c.proc.pid) if hasattr(c, "proc") else "")
        for method, req in (("Version", cri.VersionRequest()), ("Status", cri.StatusRequest())):
            p50, p99, rate = latency(c, cri, method, req, a.calls)
            print("%-8s p50 %5.0f us  p99 %5.0f us  %6.0f calls/s (%d calls, one connection)"
                  % (method, p50, p99, rate, a.calls))
        spec = cri.ImageSpec(image=pushed.ref)
        for i in range(a.pulls):
            t = time.perf_counter()
            c.call("PullImage", cri.PullImageRequest(image=spec), timeout=600)
            d = time.perf_counter() - t
            print("pull + unpack of %d MB (%d layers): %.2f s" % (a.size_mb, len(img.layers), d)
                  if hasattr(img, "layers") else "pull + unpack of %d MB: %.2f s" % (a.size_mb, d))
            c.call("RemoveImage", cri.RemoveImageRequest(image=spec))
            time.sleep(0.3)
        print("imaged RSS after the pulls: %d kB" % rss_kb(c.children()["crisp-imaged"]))
    finally:
        c.cleanup()
        reg.cleanup()
        gen.cleanup()


if __name__ == "__main__":
    main()
