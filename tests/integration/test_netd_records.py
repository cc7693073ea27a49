"""netd's durable record of each pod network (netd/cache.c) is written on
worker threads, off netd's loop; each step that needs the record on disk
goes on only from the write's completion. What that must keep, seen from
outside:

  - the record is on disk before any plugin runs ADD (so a crash during ADD
    leaves a record from which the restarted netd runs DEL): a test plugin
    at the end of the chain reads the record when ADD reaches it and fails
    the ADD when there is none;
  - RunPodSandbox succeeds only once the record says "attached" and holds
    the ADD result, StopPodSandbox only once it says "detached" without
    it, and RemovePodSandbox only once it is gone;
  - the pod CIDR (UpdateRuntimeConfig) is written the same way: the reply
    comes once it is stored, and a restarted netd hands it to the plugins;
  - many pods at once (more than the record writers' thread budget) all get
    their record, none fails for want of a thread, and none of the
    temporary files of the writes is left.
"""

import json
import os
import signal
import subprocess
import threading

import grpc
import pytest

import harness
import test_network
from test_network import pod_config, pod_ip, remove_pod, run_pod, stop_pod

# At the end of the chain: on ADD and DEL it appends "<command> <state of
# the record>" (or "none") to the file its config names in "log", reading
# the record from the directory named in "recordDir"; an ADD without a
# record fails. On ADD it passes the previous result on, as a chained
# plugin must.
RECORD_CHECK_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char in[1 << 20], rec[1 << 20];

/* the string value of "key" in text (no escapes in our paths) */
static int string_of(const char *text, const char *key, char *out, size_t max)
{
	char pat[64];
	const char *p, *q;

	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	p = strstr(text, pat);
	if (!p)
		return -1;
	p += strlen(pat);
	q = strchr(p, '"');
	if (!q || (size_t)(q - p) >= max)
		return -1;
	memcpy(out, p, (size_t)(q - p));
	out[q - p] = '\0';
	return 0;
}

@PRINT_PREV@

int main(void)
{
	const char *cmd = getenv("CNI_COMMAND"), *id = getenv("CNI_CONTAINERID");
	char dir[4096], log[4096], path[8192], state[32] = "none";
	size_t n = 0;
	ssize_t r;
	FILE *f;

	while (n < sizeof(in) - 1 && (r = read(0, in + n, sizeof(in) - 1 - n)) > 0)
		n += (size_t)r;
	if (!cmd || (strcmp(cmd, "ADD") && strcmp(cmd, "DEL")))
		return 0;
	if (!id || string_of(in, "recordDir", dir, sizeof(dir)) < 0 ||
	    string_of(in, "log", log, sizeof(log)) < 0) {
		puts("{\"cniVersion\":\"1.0.0\",\"code\":7,\"msg\":\"record-check: bad config\"}");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/%s.json", dir, id);
	f = fopen(path, "r");
	if (f) {
		n = fread(rec, 1, sizeof(rec) - 1, f);
		rec[n] = '\0';
		fclose(f);
		if (string_of(rec, "state", state, sizeof(state)) < 0)
			snprintf(state, sizeof(state), "unreadable");
	}
	f = fopen(log, "a");
	if (f) {
		fprintf(f, "%s %s %s\n", cmd, id, state);
		fclose(f);
	}
	if (!strcmp(cmd, "ADD")) {
		if (!strcmp(state, "none")) {
			puts("{\"cniVersion\":\"1.0.0\",\"code\":7,"
			     "\"msg\":\"record-check: no record when ADD ran\"}");
			return 1;
		}
		print_prev();
	}
	return 0;
}
""".replace("@PRINT_PREV@", test_network.PRINT_PREV_C)

PLUGIN = "crisp-test-record-check"


@pytest.fixture(scope="module")
def record_check_bin(tmp_path_factory):
    d = tmp_path_factory.mktemp("cni-record-check")
    src = d / "record-check.c"
    src.write_text(RECORD_CHECK_C)
    exe = d / PLUGIN
    subprocess.run(["cc", "-O", "-o", str(exe), str(src)], check=True)
    return str(exe)


class RecordNet:
    """A crispd whose chain is bridge + host-local, then the record check."""

    def __init__(self, factory, plugin_bin, subnet=None):
        self.n = test_network.Net(factory, plugin_bin, start=False)
        self.c = self.n.c
        self.records = os.path.join(self.c.config["crispd"]["root_dir"], "netd", "networks")
        self.log = os.path.join(self.c.dir, "record-check.log")
        os.symlink(plugin_bin, os.path.join(self.n.bin, PLUGIN))
        body = self.n.conflist()
        body["plugins"] = [body["plugins"][0],
                           {"type": PLUGIN, "recordDir": self.records, "log": self.log}]
        if subnet:
            body["plugins"][0]["ipam"]["ranges"] = [[{"subnet": subnet}]]
        self.n.write_conf(body=json.dumps(body))
        self.n.start()

    def seen(self):
        """(command, sandbox id, record state) as the plugin saw them."""
        try:
            with open(self.log) as f:
                return [tuple(line.split()) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def leftover_files(self):
        """Temporary files in the records' directory: each would be a write
        that was not finished."""
        try:
            return sorted(f for f in os.listdir(self.records) if f.endswith(".tmp"))
        except FileNotFoundError:
            return []


@pytest.fixture
def record_net(crispd_factory, record_check_bin, cri):
    made = []

    def make(**kw):
        r = RecordNet(crispd_factory, record_check_bin, **kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.c.remove_all_pods()
        r.c.stop()
        leftover = r.n.nat_rules()
        r.n.cleanup()
        assert not leftover, "iptables rules for %s left: %s" % (r.n.subnet, leftover)


def test_record_on_disk_before_add_and_before_each_reply(record_net, cri):
    r = record_net()
    pod = run_pod(r.c, cri, pod_config(cri))
    # the frontend makes the netns first (POD_NETNS_CREATE): ADD runs on
    # that record, which says "netns" until ADD succeeded
    assert r.seen() == [("ADD", pod, "netns")], r.seen()
    ip = pod_ip(r.c, cri, pod)
    rec = r.n.record(pod)
    assert rec["state"] == "attached", rec
    addrs = [a["address"].split("/")[0] for a in rec["result"]["ips"]]
    assert ip in addrs, (ip, rec["result"])

    stop_pod(r.c, cri, pod)
    # DEL ran on the record as ADD left it; the reply came once it said
    # "detached", without the result
    assert r.seen()[1:] == [("DEL", pod, "attached")], r.seen()
    rec = r.n.record(pod)
    assert rec["state"] == "detached" and "result" not in rec, rec
    stop_pod(r.c, cri, pod)  # idempotent: no plugin runs again
    assert len(r.seen()) == 2, r.seen()

    remove_pod(r.c, cri, pod)
    assert r.n.record(pod) is None, r.n.record(pod)
    assert len(r.seen()) == 2, "REMOVE of a detached pod ran a plugin: %s" % r.seen()
    assert r.leftover_files() == []
    assert r.n.allocated() == []
    assert "cannot store the record" not in r.c.log_text()


def test_many_pods_at_once_all_get_their_record(record_net, cri):
    # more than the record writers' budget (WORK_QUEUE_MAX, 16) at once
    count = 24
    r = record_net()
    ids, errors = [], []
    lock = threading.Lock()

    def run_one(i):
        try:
            pod = run_pod(r.c, cri, pod_config(cri, name="records-%d" % i), timeout=120)
            with lock:
                ids.append(pod)
        except Exception as e:  # noqa: BLE001 -- reported below
            with lock:
                errors.append(repr(e))

    threads = [threading.Thread(target=run_one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not errors, errors
    assert len(ids) == count
    adds = {pod: state for cmd, pod, state in r.seen() if cmd == "ADD"}
    assert sorted(adds) == sorted(ids), (sorted(adds), sorted(ids))
    assert set(adds.values()) == {"netns"}, adds
    for pod in ids:
        assert r.n.record(pod)["state"] == "attached", r.n.record(pod)
    assert len(set(r.n.allocated())) == count, r.n.allocated()

    def remove_one(pod):
        try:
            stop_pod(r.c, cri, pod)
            remove_pod(r.c, cri, pod)
        except Exception as e:  # noqa: BLE001 -- reported below
            with lock:
                errors.append(repr(e))

    threads = [threading.Thread(target=remove_one, args=(p,)) for p in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not errors, errors
    assert all(r.n.record(p) is None for p in ids)
    assert r.leftover_files() == []
    assert r.n.allocated() == []
    assert r.n.pins() == []
    assert harness.leftovers(r.c, ids) == []


def test_pod_cidr_stored_before_the_reply(record_net, cri):
    r = record_net(subnet="usePodCidr")
    path = os.path.join(r.c.config["crispd"]["root_dir"], "netd", "pod_cidr")
    for cidr in ("10.234.0.0/16", r.n.subnet):
        r.c.call("UpdateRuntimeConfig", cri.UpdateRuntimeConfigRequest(
            runtime_config=cri.RuntimeConfig(network_config=cri.NetworkConfig(pod_cidr=cidr))))
        with open(path) as f:
            assert f.read() == cidr
    assert not [f for f in os.listdir(os.path.dirname(path)) if f.endswith(".tmp")]
    netd = r.c.children()["crisp-netd"]
    os.kill(netd, signal.SIGKILL)
    r.c.wait_new_pid("crisp-netd", netd, 15)
    harness.wait_for(lambda: "pod CIDR %s (stored)" % r.n.subnet in r.c.log_text(), 15,
                     what="the restarted netd to load the stored pod CIDR")
    cfg = pod_config(cri)

    def run_once_netd_serves():
        try:
            return run_pod(r.c, cri, cfg, timeout=60)
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            return None
    pod = harness.wait_for(run_once_netd_serves, 20, interval=0.5,
                           what="RunPodSandbox with the restarted netd")
    ip = pod_ip(r.c, cri, pod)
    assert ip.startswith(r.n.prefix), "pod IP %r not in the pod CIDR %s" % (ip, r.n.subnet)
    stop_pod(r.c, cri, pod)
    remove_pod(r.c, cri, pod)
    assert r.n.allocated() == []
