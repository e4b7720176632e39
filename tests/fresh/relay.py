"""Network access of the fresh-machine container, limited to apt's mirror and
the Go module proxy.
  relay.py proxy SOCK   (host side) HTTP proxy on a unix socket: CONNECT
                        host:443 and absolute-form http:// requests, to the
                        allowed hosts only
  relay.py listen SOCK  (container side) 127.0.0.1:3128 -> SOCK"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import socket
import sys
import threading

ALLOWED = {"deb.debian.org", "security.debian.org", "proxy.golang.org", "sum.golang.org", "storage.googleapis.com"}


def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def both(a, b):
    t = threading.Thread(target=pipe, args=(b, a), daemon=True)
    t.start()
    pipe(a, b)
    t.join()
    a.close()
    b.close()


def refuse(c, status):
    c.sendall(status)
    c.close()


def serve_proxy(c):
    buf = b""
    while b"\r\n" not in buf:
        d = c.recv(4096)
        if not d:
            c.close()
            return
        buf += d
    line = buf.split(b"\r\n", 1)[0].decode("latin1")
    method, target = line.split(" ", 2)[:2]
    if method == "CONNECT":
        host, port = target.rsplit(":", 1)
    elif target.startswith("http://"):
        hp = target[7:].split("/", 1)[0]
        host, port = (hp.rsplit(":", 1) + ["80"])[:2] if ":" in hp else (hp, "80")
    else:
        refuse(c, b"HTTP/1.1 400 Bad Request\r\n\r\n")
        return
    if host not in ALLOWED:
        sys.stderr.write("refused %s\n" % line)
        refuse(c, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        return
    u = socket.create_connection((host, int(port)), timeout=30)
    u.settimeout(None)
    if method == "CONNECT":
        while b"\r\n\r\n" not in buf:
            d = c.recv(4096)
            if not d:
                break
            buf += d
        c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
    else:
        u.sendall(buf)
    both(c, u)


def main():
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "proxy":
        if os.path.exists(path):
            os.unlink(path)
        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        os.chmod(path, 0o666)
        s.listen(64)
        while True:
            c = s.accept()[0]
            threading.Thread(target=serve_proxy, args=(c,), daemon=True).start()
    else:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 3128))
        s.listen(64)
        while True:
            c = s.accept()[0]
            u = socket.socket(socket.AF_UNIX)
            u.connect(path)
            threading.Thread(target=both, args=(c, u), daemon=True).start()


main()
