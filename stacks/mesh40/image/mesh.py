"""One mesh40 service: a tiny HTTP service whose dependencies come from the environment.

  SERVICE  its name (for logs and answers)      PORT  the port to listen on (default 8000)
  CALLS    comma-separated base URLs it calls, e.g. http://cart:8005,http://tax:8020
  DATA_DIR when set (stores), every GET / appends to DATA_DIR/hits and reports the count
GET /        calls each dependency once, concurrently (GET /, passing X-Request-Id); answers
             {"service", "ok", "hits"?, "calls": [{"url", "status", "ms", "body" | "error"}]};
             502 when a dependency failed
GET /health  200 {"status": "ok"}, no dependency is called
"""
import json, os, signal, sys, threading, time, uuid
from concurrent.futures import ThreadPoolExecutor
import urllib.error, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVICE = os.environ.get("SERVICE", "mesh")
PORT = int(os.environ.get("PORT", "8000"))
CALLS = [u.strip().rstrip("/") for u in os.environ.get("CALLS", "").split(",") if u.strip()]
DATA_DIR = os.environ.get("DATA_DIR")
TIMEOUT = float(os.environ.get("CALL_TIMEOUT", "5"))
LOCK = threading.Lock()


def log(msg):
    print(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), SERVICE, msg, flush=True)


def call(url, rid):
    t0 = time.monotonic()
    req = urllib.request.Request(url + "/", headers={"X-Request-Id": rid})
    try:
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
                status, body = r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            status, body = e.code, json.loads(e.read() or b"{}")
        out = {"status": status, "body": body}
    except Exception as e:  # unreachable, timeout, bad answer
        out = {"status": 502, "error": f"{type(e).__name__}: {e}"}
    return {"url": url, "ms": round((time.monotonic() - t0) * 1000), **out}


def hit():
    with LOCK, open(os.path.join(DATA_DIR, "hits"), "a+") as f:
        f.write("x")
        return f.tell()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        t0, rid = time.monotonic(), self.headers.get("X-Request-Id") or uuid.uuid4().hex[:12]
        if self.path == "/health":
            status, body = 200, {"status": "ok"}
        elif self.path.split("?")[0] == "/":
            with ThreadPoolExecutor(max(1, len(CALLS))) as pool:
                calls = list(pool.map(lambda url: call(url, rid), CALLS))
            ok = all(c["status"] < 400 for c in calls)
            status, body = (200 if ok else 502), {"service": SERVICE, "ok": ok, "calls": calls}
            if DATA_DIR:
                body["hits"] = hit()
        else:
            status, body = 404, {"error": f"no route for GET {self.path}", "service": SERVICE}
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("X-Request-Id", rid)
        self.end_headers()
        self.wfile.write(raw)
        if self.path != "/health":
            failed = [c["url"] for c in body.get("calls", []) if c["status"] >= 400]
            err = f" ERROR failed calls: {', '.join(failed)}" if failed else ""
            log(f"rid={rid} GET {self.path} {status} {round((time.monotonic() - t0) * 1000)}ms{err}")

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    srv = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    log(f"listening on :{PORT}, calls {CALLS or 'nothing'}")
    try:
        srv.serve_forever(poll_interval=0.25)
    except (SystemExit, KeyboardInterrupt):
        log("stopped")
