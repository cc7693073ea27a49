"""crispd's command line and configuration: errors stop it before it starts
anything (exit 2, file:line:key named), --print-config shows the effective
configuration with drop-ins, --log-level, SIGHUP reloads log_level, and
config values reach the CRI answers."""

import configparser
import os
import re
import signal
import subprocess
import time

import pytest

import harness


def run_crispd(args, timeout=10):
    p = subprocess.run([harness.CRISPD] + args, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=timeout, start_new_session=True,
                       env=harness.SERVICE_ENV)
    return p.returncode, p.stdout, p.stderr


@pytest.fixture
def unstarted(crispd_factory):
    return crispd_factory(start=False)


def assert_nothing_started(c):
    assert not os.path.exists(c.sock), "crispd created its socket before failing"


def _package_version():
    with open(os.path.join(harness.TOP, "configure.ac")) as f:
        m = re.search(r"AC_INIT\(\[crisp\],\s*\[([^\]]+)\]", f.read())
    return m.group(1) if m else None


def test_help():
    rc, out, err = run_crispd(["--help"])
    assert rc == 0, err
    assert "--config" in out and "--print-config" in out, out


def test_version_flag():
    rc, out, err = run_crispd(["--version"])
    assert rc == 0, err
    v = _package_version()
    assert v and v in out, "--version output %r lacks the package version %r" % (out, v)


@pytest.mark.parametrize("args", [["--no-such-option"], ["--config"], ["--log-level"],
                                  ["unexpected-argument"]])
def test_usage_error(args):
    rc, out, err = run_crispd(args)
    assert rc == 2, "crispd %s: exit %d (want 2) %s" % (" ".join(args), rc, err)
    assert err.strip(), "no message on stderr"


def test_unknown_key(unstarted):
    c = unstarted
    with open(c.conf, "w") as f:
        f.write("[crispd]\nsocket = %s\nbogus = 1\nstate_dir = %s/state\n" % (c.sock, c.dir))
    rc, out, err = run_crispd(["--config", c.conf])
    assert rc == 2, "exit %d: %s" % (rc, err)
    assert re.search(r"%s:3:.*\bbogus\b" % re.escape(c.conf), err), err
    assert_nothing_started(c)


@pytest.mark.parametrize("missing", ["crisp-netd", "crisp-launch"])
def test_missing_helper_program(unstarted, missing):
    """A helper_dir without one of the programs crispd starts, or without
    crisp-launch (netd and runtimed exec it before they confine themselves):
    a configuration error at start (exit 2, the program named), not a crash
    loop of the helpers."""
    c = unstarted
    helpers = os.path.join(c.dir, "helpers")
    os.makedirs(helpers)
    for name in os.listdir(harness.BUILD):
        if name.startswith("crisp-") and name != missing:
            os.symlink(os.path.join(harness.BUILD, name), os.path.join(helpers, name))
    c.config["crispd"]["helper_dir"] = helpers
    c.write_config()
    rc, out, err = run_crispd(["--config", c.conf])
    assert rc == 2, "exit %d: %s" % (rc, err)
    assert "cannot execute %s/%s" % (helpers, missing) in err, err
    assert_nothing_started(c)


def test_unknown_section(unstarted):
    c = unstarted
    with open(c.conf, "a") as f:
        f.write("\n[nosuchsection]\nkey = 1\n")
    n = sum(1 for _ in open(c.conf))
    rc, out, err = run_crispd(["--config", c.conf])
    assert rc == 2, "exit %d: %s" % (rc, err)
    assert re.search(r"%s:%d:" % (re.escape(c.conf), n), err), err
    assert_nothing_started(c)


@pytest.mark.parametrize("key,value", [("log_level", "loud"), ("socket_mode", "rw"),
                                       ("health_interval", "0"), ("socket", "relative/path"),
                                       ("restart_backoff_max", "-1")])
def test_bad_value(unstarted, key, value):
    c = unstarted
    c.update_config({"crispd": {key: value}})
    lines = open(c.conf).read().splitlines()
    lineno = lines.index("%s = %s" % (key, value)) + 1
    rc, out, err = run_crispd(["--config", c.conf])
    assert rc == 2, "exit %d: %s" % (rc, err)
    assert re.search(r"%s:%d:.*%s" % (re.escape(c.conf), lineno, key), err), err
    assert_nothing_started(c)


def test_bad_value_in_other_sections(unstarted):
    c = unstarted
    c.update_config({"runtime": {"cgroup_driver": "cgroupv3"}})
    rc, out, err = run_crispd(["--config", c.conf])
    assert rc == 2, err
    assert "cgroup_driver" in err and c.conf in err, err
    assert_nothing_started(c)


def test_unknown_key_in_dropin(unstarted):
    c = unstarted
    path = c.add_dropin("50-local.conf", {"runtime": {"no_such_key": "1"}})
    rc, out, err = run_crispd(["--config", c.conf])
    assert rc == 2, err
    assert re.search(r"%s:2:.*no_such_key" % re.escape(path), err), err
    assert_nothing_started(c)


def test_missing_config_file(unstarted):
    rc, out, err = run_crispd(["--config", os.path.join(unstarted.dir, "nonexistent.conf")])
    assert rc == 2, "exit %d: %s" % (rc, err)
    assert "nonexistent.conf" in err, err


def _printed(out):
    cp = configparser.ConfigParser(interpolation=None, comment_prefixes=("#", ";"))
    cp.read_string(out)
    return cp


def test_print_config_effective(unstarted):
    c = unstarted
    c.update_config({"crispd": {"health_interval": "3"}, "runtime": {"cgroup_driver": "cgroupfs"}})
    c.add_dropin("10-first.conf", {"crispd": {"log_level": "debug", "health_interval": "7"}})
    c.add_dropin("20-second.conf", {"crispd": {"health_interval": "9"},
                                    "runtime": {"cgroup_driver": "systemd"}})
    # Not a *.conf: ignored.
    c.add_dropin("30-ignored.conf.disabled", {"crispd": {"no_such_key": "1"}})
    rc, out, err = run_crispd(["--config", c.conf, "--print-config"])
    assert rc == 0, err
    cp = _printed(out)
    assert cp["crispd"]["socket"] == c.sock
    assert cp["crispd"]["log_level"] == "debug"
    assert cp["crispd"]["health_interval"] == "9", "drop-ins not applied in lexical order"
    assert cp["runtime"]["cgroup_driver"] == "systemd"
    assert cp["cni"]["conf_dir"] == c.cni_dir
    # Defaults are printed too.
    assert cp["frontend"]["user"] == "crisp"
    assert_nothing_started(c)


def test_print_config_round_trips(unstarted):
    """What --print-config prints is a valid config giving the same result."""
    c = unstarted
    c.add_dropin("10-x.conf", {"crispd": {"log_level": "notice"}})
    rc, out, err = run_crispd(["--config", c.conf, "--print-config"])
    assert rc == 0, err
    path = os.path.join(c.dir, "printed.conf")
    with open(path, "w") as f:
        f.write(out)
    rc, out2, err = run_crispd(["--config", path, "--print-config"])
    assert rc == 0, err
    assert _printed(out2)["crispd"]["log_level"] == "notice"
    assert {s: dict(_printed(out)[s]) for s in _printed(out).sections()} == \
        {s: dict(_printed(out2)[s]) for s in _printed(out2).sections()}


def test_print_config_log_level_flag(unstarted):
    rc, out, err = run_crispd(["--config", unstarted.conf, "--log-level", "debug",
                               "--print-config"])
    assert rc == 0, err
    assert _printed(out)["crispd"]["log_level"] == "debug"


def test_bad_log_level_flag(unstarted):
    rc, out, err = run_crispd(["--config", unstarted.conf, "--log-level", "loud"])
    assert rc == 2, err
    assert_nothing_started(unstarted)


DEBUG_LINE = re.compile(r"^<7>crisp[-a-z]*\[\d+\]: ")
# netd's and runtimed's launchers log as crisp-netd-launch, crisp-runtimed-launch
LOG_LINE = re.compile(r"^<[0-7]>(crispd|crisp-frontend|crisp-imaged|crisp-netd|crisp-runtimed)"
                      r"(?:-launch)?\[(\d+)\]: ")


def _debug_lines(c, since=0):
    return [l for l in c.lines(since) if DEBUG_LINE.match(l)]


def _activity(c, cri):
    for _ in range(3):
        c.call("Version")
        c.status(verbose=True)
        c.call("UpdateRuntimeConfig", cri.UpdateRuntimeConfigRequest(
            runtime_config=cri.RuntimeConfig(network_config=cri.NetworkConfig(
                pod_cidr="10.88.0.0/16"))))


def test_log_format(crispd, cri):
    _activity(crispd, cri)
    lines = [l for l in crispd.lines() if l.strip()]
    assert lines, "crispd logged nothing"
    bad = [l for l in lines if not LOG_LINE.match(l)]
    assert not bad, "log lines without '<prio>program[pid]: ': %r" % bad[:5]
    # The pid in each line is the pid of that program.
    pids = {"crispd": crispd.pid}
    pids.update(crispd.children())
    for l in lines:
        m = LOG_LINE.match(l)
        if m.group(1) in pids and m.group(1) != "crispd":
            continue  # a child may have logged under an earlier pid
        if m.group(1) == "crispd":
            assert int(m.group(2)) == crispd.pid, l


def test_log_level_flag_debug(crispd_factory, cri):
    c = crispd_factory(extra_args=["--log-level", "debug"])
    _activity(c, cri)
    assert _debug_lines(c), "no debug lines with --log-level debug"


def test_sighup_reloads_log_level(crispd, cri):
    c = crispd
    _activity(c, cri)
    time.sleep(0.5)
    assert not _debug_lines(c), "debug lines at log_level=info: %r" % _debug_lines(c)[:3]
    kids = c.children()

    c.update_config({"crispd": {"log_level": "debug"}})
    mark = c.mark()
    c.signal(signal.SIGHUP)

    def some_debug():
        _activity(c, cri)
        return _debug_lines(c, mark)
    harness.wait_for(some_debug, 5, interval=0.3, what="debug lines after SIGHUP")
    assert c.running()
    assert c.children() == kids, "SIGHUP restarted processes"

    # And back.
    c.update_config({"crispd": {"log_level": "info"}})
    c.signal(signal.SIGHUP)
    time.sleep(1.5)
    mark = c.mark()
    _activity(c, cri)
    time.sleep(1)
    assert not _debug_lines(c, mark), "debug lines after reloading log_level=info: %r" % (
        _debug_lines(c, mark)[:3],)


def test_sighup_bad_config_keeps_running(crispd, cri):
    """A reload that fails keeps the running configuration."""
    c = crispd
    kids = c.children()
    with open(c.conf, "a") as f:
        f.write("\n[crispd]\nbogus = 1\n")
    mark = c.mark()
    c.signal(signal.SIGHUP)
    c.wait_log(r"bogus", since=mark, timeout=3)
    time.sleep(0.5)
    assert c.running(), "crispd exited on a bad reload"
    assert c.call("Version").runtime_name == "crisp"
    assert c.children() == kids


def test_cgroup_driver_systemd(crispd_factory, cri):
    c = crispd_factory(config={"runtime": {"cgroup_driver": "systemd"}})
    r = c.call("RuntimeConfig", cri.RuntimeConfigRequest())
    assert r.linux.cgroup_driver == cri.SYSTEMD


def test_frontend_user_from_config(crispd_factory):
    """[frontend] user: the frontend runs as that user."""
    import pwd
    nobody = pwd.getpwuid(65534)
    c = crispd_factory(config={"frontend": {"user": nobody.pw_name}})
    st = harness.proc_status(c.children()[harness.FRONTEND])
    assert [int(x) for x in st["Uid"].split()] == [65534] * 4, st["Uid"]


# streaming.address off loopback without TLS: the URLs, the only credential
# of a stream, would cross the network in clear (crisp.conf(5) [streaming]).
@pytest.mark.parametrize("address", ["0.0.0.0", "::", "10.1.2.3", "::ffff:10.0.0.1"])
def test_streaming_plaintext_off_loopback_refused(unstarted, address):
    c = unstarted
    c.update_config({"streaming": {"address": address}})
    rc, out, err = run_crispd(["--config", c.conf, "--print-config"])
    assert rc == 2, "exit %d: %s" % (rc, err)
    assert "streaming.address %s is not a loopback address" % address in err, err
    assert "allow_insecure_address" in err, err
    rc, out, err = run_crispd(["--config", c.conf])
    assert rc == 2, "exit %d: %s" % (rc, err)
    assert_nothing_started(c)


@pytest.mark.parametrize("streaming", [
    {"address": "127.0.0.2"}, {"address": "::1"}, {"address": "::ffff:127.0.0.1"},
    {"address": "10.1.2.3", "tls_cert": "/etc/crisp/s.pem", "tls_key": "/etc/crisp/s.key"},
    {"address": "0.0.0.0", "allow_insecure_address": "true"},
])
def test_streaming_address_accepted(unstarted, streaming):
    c = unstarted
    c.update_config({"streaming": streaming})
    rc, out, err = run_crispd(["--config", c.conf, "--print-config"])
    assert rc == 0, err
    assert _printed(out)["streaming"]["address"] == streaming["address"]


def test_streaming_allow_insecure_address_serves(crispd_factory):
    """Asked for by name, a plain-HTTP listener on all addresses starts."""
    c = crispd_factory(config={"streaming": {"address": "0.0.0.0",
                                             "allow_insecure_address": "yes"}})
    c.wait_log(r"streaming server listening on http://0\.0\.0\.0:\d+", timeout=5)


def test_sighup_plaintext_off_loopback_keeps_running(crispd):
    c = crispd
    kids = c.children()
    c.update_config({"streaming": {"address": "0.0.0.0"}})
    mark = c.mark()
    c.signal(signal.SIGHUP)
    c.wait_log(r"reload failed, keeping the running configuration: streaming\.address 0\.0\.0\.0",
               since=mark, timeout=3)
    assert c.running()
    assert c.call("Version").runtime_name == "crisp"
    assert c.children() == kids
