"""The benchmark must not rot: a short run of bench/cri-bench.py (crisp only,
a few pods, a small image) completes and writes every figure."""
import json
import os
import subprocess
import sys

import harness

BENCH = os.path.join(harness.TOP, "bench", "cri-bench.py")


def test_bench_smoke(tmp_path):
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, BENCH, "--smoke", "--json", str(out)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600,
                       env=dict(os.environ, CRISP_BUILD_DIR=harness.BUILD))
    text = r.stdout.decode(errors="replace")
    assert r.returncode == 0, text[-4000:]
    data = json.loads(out.read_text())
    assert data["runtimes"] == ["crisp"]
    res = data["results"]
    for key in ("pod start p50", "pod start p99", "pod stop+remove p50", "memory idle",
                "memory per pod", "ExecSync true p50", "pull+unpack 8 MB (median)"):
        assert key in res, (key, sorted(res))
        assert res[key]["crisp"] > 0, (key, res[key])
    assert "ListContainers p50 (3)" in res and "ListPodSandbox p50 (5)" in res, sorted(res)
    # the gRPC core floor (bench/grpc-floor), crisp's rows alone: an empty
    # call, and one that carries crisp's own reply listing 5 containers
    for key in ("gRPC core floor: unary call p50, C client",
                "gRPC core floor: 5-container list reply p50, C client"):
        assert key in res, (key, sorted(res))
        assert res[key]["crisp"] > 0 and "containerd" not in res[key], (key, res[key])
    # five container ids of 64 hex digits at least
    assert res["gRPC core floor: 5-container list reply p50, C client"]["reply bytes"] > 5 * 64


SOAK = os.path.join(harness.TOP, "bench", "crisp-soak.py")


def test_soak_smoke():
    """bench/crisp-soak.py must not rot either: a few cycles, and its own
    checks (nothing left behind, no process replaced, no call failed, no fd
    more at the end than after the first cycle) find nothing."""
    r = subprocess.run([sys.executable, SOAK, "--minutes", "0.2", "--pods", "2",
                        "--sample-every", "2"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300,
                       env=dict(os.environ, CRISP_BUILD_DIR=harness.BUILD))
    text = r.stdout.decode(errors="replace")
    assert r.returncode == 0 and "no problem found" in text, text[-4000:]
    assert "crisp-frontend" in text and "runtimed-launch" in text, text[-4000:]
