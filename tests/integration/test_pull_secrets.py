"""A pull's registry credentials leave no copy in the memory of the frontend
or imaged (docs/PRIVSEP.md, Known gaps 7): each wipes its decoded copies,
the ipc transport the frames that carried them (ipc_type_secret: the
IMAGE_PULL, the FETCH_MANIFEST and FETCH_BLOB requests imaged sends
crisp-fetch), and the frontend the bytes of the CRI request gRPC handed it
(frontend/grpc_server.c).

The check reads the processes' writable private mappings through
/proc/<pid>/mem (root with CAP_SYS_PTRACE may, although they are not
dumpable) once the pull has returned and looks for the password, alone and
as the base64 "user:password" of basic auth. crisp-fetch is not checked:
libcurl's copies are freed as they are, and it exits when idle."""

import base64
import os
import re
import uuid

import pytest

import harness
import images
from test_images_pull import imaged_pid, pull, push, ready_crispd

USER = "carol"


@pytest.fixture
def crispd(crispd_factory):
    return ready_crispd(crispd_factory)


def writable_private_memory(pid):
    """(name, bytes) of every rw-p mapping of pid: heap, anonymous memory,
    stacks and the data of the binary and its libraries."""
    out = []
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            if fields[1] != "rw-p":
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            name = fields[5] if len(fields) > 5 else "[anon]"
            if name == "[vvar]":
                continue
            try:
                mem.seek(start)
                out.append(("%s %s" % (fields[0], name), mem.read(end - start)))
            except OSError:
                pass  # unmapped since maps was read
    return out


def where(memory, needle):
    return ["%s+0x%x" % (name, m.start()) for name, data in memory
            for m in re.finditer(re.escape(needle), data)]


def test_proc_mem_is_readable(crispd):
    """The scan below sees imaged's memory at all (not dumpable does not
    stop root)."""
    memory = writable_private_memory(imaged_pid(crispd))
    assert sum(len(d) for _, d in memory) > 1 << 20, "little of imaged's memory was read"
    assert where(memory, b"crisp-imaged") or where(memory, b"imaged"), \
        "imaged's own name is not in its memory: the scan reads nothing real"


def test_pull_credentials_leave_no_copy_in_imaged(crispd, registry_factory):
    password = "crisp-memscan-%s" % uuid.uuid4().hex  # 46 bytes: bcrypt takes 72
    reg = registry_factory(auth="htpasswd", users={USER: password})
    img = images.busybox_image(env=["WHICH=pull-secrets"])
    p = push(reg, img, "secrets/basic", "v1")
    auth = harness.cri.AuthConfig(username=USER, password=password)
    assert pull(crispd, p.ref, auth=auth) == img.id

    marker = password.encode()
    basic = base64.b64encode(("%s:%s" % (USER, password)).encode())
    held = {}
    for name in ("crisp-imaged", "crisp-frontend"):
        pid = crispd.children()[name]
        memory = writable_private_memory(pid)
        # The scan sees what the process keeps: the image's repository,
        # which both log and imaged records.
        assert where(memory, p.repo.encode()), "no %s in %s's memory" % (p.repo, name)
        found = where(memory, marker) + where(memory, basic)
        if found:
            held[name] = (pid, found[:8])
    assert not held, "the password is still in memory: %s" % held
    assert password not in crispd.log_text(), "the password was logged"
