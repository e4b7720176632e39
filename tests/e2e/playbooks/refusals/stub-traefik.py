"""Stands in for Traefik under the traefik role, for tests that need a
service that deploys, not Traefik itself: "version" prints one, otherwise it
answers OK on the ping entrypoint its --configFile names (the address on
127.0.0.1) and tells systemd it is ready. The shared entrypoints' sockets are
left to systemd."""
import http.server
import os
import re
import socket
import sys
import threading

if sys.argv[1:] == ["version"]:
    print("Version: stub")
    sys.exit(0)

conf = next(a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--configFile="))
with open(conf) as f:
    ping = int(re.search(r"address: '?127\.0\.0\.1:(\d+)", f.read()).group(1))


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", ping), Handler)
threading.Thread(target=srv.serve_forever, daemon=True).start()
notify = os.environ.get("NOTIFY_SOCKET")
if notify:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.connect("\0" + notify[1:] if notify.startswith("@") else notify)
    s.send(b"READY=1")
threading.Event().wait()
