"""A tiny HTTP service for stacklet's Docker tests: GET / answers with its name and, when
CALLS is set (comma-separated URLs), the answers of those services; GET /health is the probe."""
import http.server
import json
import os
import signal
import sys
import urllib.request

NAME = os.environ.get("NAME", "app")
PORT = int(os.environ.get("PORT", "9000"))
CALLS = [u for u in os.environ.get("CALLS", "").split(",") if u]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            body = {"ok": True}
        else:
            body = {"name": NAME, "calls": {}}
            for url in CALLS:
                try:
                    with urllib.request.urlopen(url, timeout=5) as response:
                        body["calls"][url] = json.load(response)
                except OSError as exc:
                    body["calls"][url] = {"error": str(exc)}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        if self.path != "/health":
            print(f"{NAME} {self.command} {self.path}", flush=True)


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
http.server.ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
