#!/usr/bin/env python3
# Writes the binary seeds of fuzz-stream and fuzz-import (fuzz-cni's are
# plain JSON, kept as they are). Run from anywhere: python3 make-seeds.py
# Sparse and NUL seeds are regression inputs: keep them when regenerating.
import base64, gzip, hashlib, io, json, os, platform, re, struct, subprocess, tarfile, zlib

here = os.path.dirname(os.path.abspath(__file__))
src = open(os.path.join(here, '../../../frontend/stream_spdy.c')).read()
m = re.search(r'spdy_dictionary\[\] = \{(.*?)\};', src, re.S)
dic = bytes(int(x, 16) for x in re.findall(r'0x[0-9a-f]{2}', m.group(1)))
assert len(dic) == 1423, len(dic)
out = os.path.join(here, 'fuzz-stream') + '/'

class Spdy:
    def __init__(self):
        self.z = zlib.compressobj(zdict=dic)
    def block(self, hs):
        raw = struct.pack('>I', len(hs))
        for k, v in hs:
            raw += struct.pack('>I', len(k)) + k.encode() + struct.pack('>I', len(v)) + v.encode()
        return self.z.compress(raw) + self.z.flush(zlib.Z_SYNC_FLUSH)
    def syn(self, sid, hs, fin=False):
        blk = self.block(hs)
        body = struct.pack('>II', sid, 0) + b'\x00\x00' + blk
        return ctrl(1, 1 if fin else 0, body)

def ctrl(typ, flags, body):
    return struct.pack('>HH', 0x8003, typ) + bytes([flags]) + struct.pack('>I', len(body))[1:] + body

def data(sid, payload, fin=False):
    return struct.pack('>I', sid) + bytes([1 if fin else 0]) + struct.pack('>I', len(payload))[1:] + payload

def http_spdy(kind, proto):
    return (f'POST /{kind}/@T@ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n'
            f'Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: {proto}\r\n\r\n').encode()

def http_ws(kind, proto):
    p = f'Sec-WebSocket-Protocol: {proto}\r\n' if proto else ''
    return (f'GET /{kind}/@T@ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n'
            f'Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n'
            f'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{p}\r\n').encode()

def ws(payload, opcode=2, fin=True, mask=b'\x01\x02\x03\x04'):
    h = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126: h += bytes([0x80 | n])
    elif n < 65536: h += bytes([0x80 | 126]) + struct.pack('>H', n)
    else: h += bytes([0x80 | 127]) + struct.pack('>Q', n)
    return h + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))

def w(name, sel, body):
    open(out + name, 'wb').write(bytes([sel]) + body)

# exec over SPDY v4: error, stdin, stdout, stderr; stdin data then FIN; settings, ping, window update
s = Spdy()
b = http_spdy('exec', 'v4.channel.k8s.io')
b += ctrl(4, 0, struct.pack('>I', 1) + struct.pack('>II', 7, 65536 * 4))
b += s.syn(1, [('streamtype', 'error')])
b += s.syn(3, [('streamtype', 'stdin')])
b += s.syn(5, [('streamtype', 'stdout')])
b += s.syn(7, [('streamtype', 'stderr')])
b += data(3, b'echo hello\n') + data(3, b'', fin=True)
b += ctrl(6, 0, struct.pack('>I', 1)) + ctrl(9, 0, struct.pack('>II', 5, 1000))
w('spdy-exec-v4', 0x18 | 0x40, b)

# exec tty over SPDY v3 with resize
s = Spdy()
b = http_spdy('exec', 'v3.channel.k8s.io, v2.channel.k8s.io')
b += s.syn(1, [('streamtype', 'error')])
b += s.syn(3, [('streamtype', 'stdin')])
b += s.syn(5, [('streamtype', 'stdout')])
b += s.syn(7, [('streamtype', 'resize')])
b += data(7, b'{"Width":80,"Height":24}\n') + data(3, b'ls\r') + ctrl(3, 0, struct.pack('>II', 3, 5))
b += ctrl(7, 0, struct.pack('>II', 7, 0))
w('spdy-exec-tty', 0x0c, b)

# port-forward over SPDY
s = Spdy()
b = http_spdy('portforward', 'portforward.k8s.io')
b += s.syn(1, [('streamtype', 'error'), ('port', '80'), ('requestid', '0')])
b += s.syn(3, [('streamtype', 'data'), ('port', '80'), ('requestid', '0')])
b += data(3, b'GET / HTTP/1.0\r\n\r\n')
b += s.syn(5, [('streamtype', 'error'), ('port', '1'), ('requestid', '1')])
b += s.syn(7, [('streamtype', 'data'), ('port', '1'), ('requestid', '1')])
b += data(3, b'', fin=True)
w('spdy-portforward', 0x02, b)

# exec over WebSocket v5, tty: stdin, resize, close stdin, close
b = http_ws('exec', 'v5.channel.k8s.io, v4.channel.k8s.io')
b += ws(b'\x00ls\r') + ws(b'\x04{"Width":100,"Height":40}') + ws(b'\x00part', fin=False) + ws(b' two', opcode=0)
b += ws(b'ping', opcode=9) + ws(b'\xff\x00') + ws(b'\x03\xe8', opcode=8)
w('ws-exec-v5-tty', 0x0c, b)

# attach over WebSocket base64
b = http_ws('attach', 'base64.channel.k8s.io')
b += ws(b'0' + base64.b64encode(b'hello\n'), opcode=1) + ws(b'0' + base64.b64encode(b'x'), opcode=1)
w('ws-attach-base64', 0x19 | 0x40, b)

# exec over WebSocket v4, no stdin
b = http_ws('exec', 'v4.channel.k8s.io')
w('ws-exec-v4', 0x10 | 0x40, b)

# port-forward over WebSocket
b = http_ws('portforward', 'v4.channel.k8s.io') + ws(b'\x00GET / HTTP/1.0\r\n\r\n') + ws(b'\x02abc') + ws(b'', opcode=8)
w('ws-portforward', 0x02, b)

# refused requests: bad token, bad method, no upgrade
w('http-404', 0x00, b'GET /exec/nope HTTP/1.1\r\nHost: x\r\n\r\n')
w('http-no-upgrade', 0x00, b'GET /exec/@T@ HTTP/1.1\r\nHost: x\r\n\r\n')
w('http-open-fails', 0x20, http_spdy('exec', 'v4.channel.k8s.io'))

# regression: PINGs from a client that does not read (bit 7: slow client)
b = http_ws('exec', 'v5.channel.k8s.io') + ws(b'p' * 125, opcode=9) * 1000
w('ws-ping-flood-slow', 0x80 | 0x10, b)
b = http_spdy('exec', 'v4.channel.k8s.io') + ctrl(6, 0, struct.pack(">I", 1)) * 10000
w('spdy-ping-flood-slow', 0x80 | 0x10, b)

# ---- fuzz-import ----
out = os.path.join(here, 'fuzz-import') + '/'
arch = {'x86_64':'amd64','aarch64':'arm64'}.get(platform.machine(), platform.machine())
def sha(b): return 'sha256:'+hashlib.sha256(b).hexdigest()
def layer():
    bio=io.BytesIO()
    with tarfile.open(fileobj=bio, mode='w', format=tarfile.PAX_FORMAT) as t:
        ti=tarfile.TarInfo('hello.txt'); d=b'hello\n'; ti.size=len(d); t.addfile(ti, io.BytesIO(d))
    return bio.getvalue()
L=layer()
cfg=json.dumps({"architecture":arch,"os":"linux","config":{"Cmd":["/hello"]},"rootfs":{"type":"layers","diff_ids":[sha(L)]}}).encode()
def mktar(files, fmt=tarfile.USTAR_FORMAT):
    bio=io.BytesIO()
    with tarfile.open(fileobj=bio, mode='w', format=fmt) as t:
        for name, data in files:
            ti=tarfile.TarInfo(name)
            if isinstance(data, tuple):
                ti.type=tarfile.SYMTYPE if data[0]=='sym' else tarfile.LNKTYPE; ti.linkname=data[1]
                t.addfile(ti)
            else:
                ti.size=len(data); t.addfile(ti, io.BytesIO(data))
    return bio.getvalue()
man=json.dumps({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":sha(cfg),"size":len(cfg)},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":sha(L),"size":len(L)}]}).encode()
idx=json.dumps({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":sha(man),"size":len(man),"platform":{"os":"linux","architecture":arch},"annotations":{"io.containerd.image.name":"docker.io/library/hello:1","org.opencontainers.image.ref.name":"1"}}]}).encode()
b=lambda d: 'blobs/sha256/'+sha(d)[7:]
oci=[('oci-layout', b'{"imageLayoutVersion":"1.0.0"}'),('index.json',idx),(b(man),man),(b(cfg),cfg),(b(L),L)]
open(out+'oci-layout.tar','wb').write(mktar(oci))
open(out+'oci-layout.tar.gz','wb').write(gzip.compress(mktar(oci, tarfile.PAX_FORMAT)))
# nested index
sub=json.dumps({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":sha(man),"size":len(man),"platform":{"os":"linux","architecture":arch}}]}).encode()
idx2=json.dumps({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":sha(sub),"size":len(sub),"annotations":{"org.opencontainers.image.ref.name":"example.com/app:2"}}]}).encode()
open(out+'oci-nested-index.tar','wb').write(mktar([('./oci-layout', b'{"imageLayoutVersion":"1.0.0"}'),('./index.json',idx2),('./'+b(sub),sub),('./'+b(man),man),('./'+b(cfg),cfg),('./'+b(L),L)]))
# docker-archive with a linked repeated layer
cfg2=json.dumps({"architecture":arch,"os":"linux","rootfs":{"type":"layers","diff_ids":[sha(L),sha(L)]}}).encode()
dm=json.dumps([{"Config":"cfg.json","RepoTags":["hello:latest","bad name"],"Layers":["aaa/layer.tar","bbb/layer.tar"]}]).encode()
open(out+'docker-archive.tar','wb').write(mktar([('manifest.json',dm),('cfg.json',cfg2),('aaa/layer.tar',L),('bbb/layer.tar',('sym','../aaa/layer.tar')),('ccc/layer.tar',('hard','aaa/layer.tar'))]))
subprocess.run(['zstd', '-q', '-f', '-19', '-o', out + 'docker-archive.tar.zst', out + 'docker-archive.tar'], check=True)

# Sparse entries: data placed past the entry's size (imaged/import.c filled
# the hole past its buffer), and a valid hole.
def sparse(path, name, data, off, realsize, ver):
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode='w', format=tarfile.PAX_FORMAT) as t:
        ti = tarfile.TarInfo(name)
        ti.size = len(data)
        if ver == '0.0':
            ti.pax_headers = {'GNU.sparse.size': str(realsize), 'GNU.sparse.numblocks': '1',
                              'GNU.sparse.offset': str(off), 'GNU.sparse.numbytes': str(len(data))}
        else:
            ti.pax_headers = {'GNU.sparse.size': str(realsize), 'GNU.sparse.numblocks': '1',
                              'GNU.sparse.map': '%d,%d' % (off, len(data))}
        t.addfile(ti, io.BytesIO(data))
    open(out + path, 'wb').write(bio.getvalue())
sparse('sparse-0.0-past-size.tar', 'index.json', b'{', 100000, 100, '0.0')
sparse('sparse-0.1-past-size.tar', 'index.json', b'{', 100000, 100, '0.1')
layout = b'{"imageLayoutVersion":"1.0.0"}'
sparse('sparse-hole.tar', 'oci-layout', layout, 100, 100 + len(layout), '0.1')
