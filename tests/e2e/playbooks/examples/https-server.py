"""Serves DIR over HTTPS on 127.0.0.1:443 with CERT and KEY, as the forge's
package registry in binary_stage's documented example; exits after
SECONDS; writes its pid to PIDFILE. Usage: https-server.py DIR CERT KEY
SECONDS PIDFILE"""
import functools
import http.server
import os
import ssl
import sys
import threading

directory, cert, key, seconds, pidfile = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory)
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 443), handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
with open(pidfile, "w") as f:
    f.write("%d\n" % os.getpid())
threading.Timer(seconds, srv.shutdown).start()
srv.serve_forever()
