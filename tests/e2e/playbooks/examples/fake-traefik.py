"""Stands in for Traefik in bluegreen_unit's documented example: listens on
:80 with SO_REUSEPORT, answers /ping on the port its --configFile names
("ping: PORT"), and tells systemd it is ready."""
import http.server
import os
import socket
import sys
import threading

conf = next(a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--configFile="))
with open(conf) as f:
    ping = int(f.read().split("ping:")[1].split()[0])


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args):
        pass


class ReusePortServer(http.server.ThreadingHTTPServer):
    def server_bind(self):
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


for srv in (ReusePortServer(("0.0.0.0", 80), Handler), http.server.ThreadingHTTPServer(("127.0.0.1", ping), Handler)):
    threading.Thread(target=srv.serve_forever, daemon=True).start()
notify = os.environ.get("NOTIFY_SOCKET")
if notify:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.connect("\0" + notify[1:] if notify.startswith("@") else notify)
    s.send(b"READY=1")
threading.Event().wait()
