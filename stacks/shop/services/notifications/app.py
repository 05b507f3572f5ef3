"""notifications: tells users about their orders (port 8087).

A background thread reads the redis stream orders.events in the consumer group
"notifications" and records one notification per order.created event (once per order).
  GET /notifications?limit=20 -> 200 {"count", "notifications": [{"order_id", "user_id",
                                      "message", "created_at", "rid"}]} (newest first)
  GET /notifications/{order_id} -> 200 notification | 404
  GET /health -> 200 {"status": "ok"} when redis answers and the consumer runs
Keys: notifications:by-order (hash), notifications:recent (list, 1000), notifications:count.
"""
import json, os, re, signal, sys, time, uuid
import urllib.error, urllib.parse, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import threading
import redis

NAME, PORT, MAKE_RID = "notifications", 8087, False
REDIS_URL = os.environ["REDIS_URL"]
STREAM, GROUP, CONSUMER = "orders.events", "notifications", "notifications-1"

# ---- boilerplate, the same in every shop service (each service is one file) -------------
ROUTES, DEP_ERRORS = [], []  # (method, path regex, fn(handler, *groups)); (exception types, dependency)


def log(msg):
    print(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), NAME, msg, flush=True)


class Fail(Exception):
    """An error response: status and JSON body {"error": ..., "service": ..., **extra}."""
    def __init__(self, status, error, service=None, **extra):
        super().__init__(error)
        self.status, self.body = status, {"error": error, "service": service or NAME, **extra}


def route(method, pattern):
    return lambda fn: ROUTES.append((method, re.compile(pattern + "$"), fn)) or fn


def call(base, method, path, rid, body=None, timeout=5.0):
    """JSON call to a dependency with the request id. Its error statuses are raised again
    with its body; unreachable -> 502, timeout -> 504, both naming the dependency."""
    svc = urllib.parse.urlsplit(base).hostname
    req = urllib.request.Request(base.rstrip("/") + path, None if body is None else json.dumps(body).encode(),
                                 {"Content-Type": "application/json", "X-Request-Id": rid}, method=method)
    try:
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, data = r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            status, data = e.code, json.loads(e.read() or b"{}")
    except (TimeoutError, urllib.error.URLError) as e:
        if isinstance(getattr(e, "reason", e), TimeoutError):
            raise Fail(504, f"{svc} timed out after {timeout}s", svc)
        raise Fail(502, f"{svc} unreachable: {getattr(e, 'reason', e)}", svc)
    except (OSError, ValueError) as e:
        raise Fail(502, f"bad response from {svc}: {e}", svc)
    if status >= 400:
        raise Fail(status, data.pop("error", f"{svc} answered {status}"), data.pop("service", svc), **data)
    return status, data


class Handler(BaseHTTPRequestHandler):
    def body(self):
        try:
            data = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise Fail(400, "request body must be a JSON object")
        return data

    def dispatch(self):
        t0, url = time.monotonic(), urllib.parse.urlsplit(self.path)
        self.rid = self.headers.get("X-Request-Id") or (uuid.uuid4().hex[:12] if MAKE_RID else "-")
        self.query = dict(urllib.parse.parse_qsl(url.query))
        status, body = 404, {"error": f"no route for {self.command} {url.path}", "service": NAME}
        try:
            for method, rx, fn in ROUTES:
                if method == self.command and (m := rx.match(url.path)):
                    status, body = fn(self, *map(urllib.parse.unquote, m.groups()))
                    break
        except Fail as e:
            status, body = e.status, e.body
        except Exception as e:
            err, dep = f"{type(e).__name__}: {e}".strip(), next((d for t, d in DEP_ERRORS if isinstance(e, t)), None)
            status, body = (502, {"error": f"{dep} unreachable: {err}", "service": dep}) if dep \
                else (500, {"error": err, "service": NAME})
        raw = json.dumps(body).encode()
        self.send_response(status)
        for k, v in (("Content-Type", "application/json"), ("Content-Length", len(raw)), ("X-Request-Id", self.rid)):
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(raw)
        if url.path != "/health" or status != 200:  # passing healthchecks (every second) are not logged
            err = f" ERROR {body.get('error')}" if status >= 500 else ""
            log(f"rid={self.rid} {self.command} {url.path} {status} {round((time.monotonic() - t0) * 1000)}ms{err}")

    do_GET = do_POST = do_DELETE = dispatch

    def log_message(self, *args):
        pass


def retry(what, fn, attempts=60):
    """Call fn until it succeeds, once a second, at most `attempts` times; then exit 1."""
    for _ in range(attempts):
        try:
            return fn()
        except Exception as e:
            log(f"waiting for {what}: {type(e).__name__}: {str(e).strip()}")
            time.sleep(1)
    log(f"ERROR {what} did not answer after {attempts} attempts")
    sys.exit(1)


def serve(init=lambda: None):
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop at once on SIGTERM
    try:
        init()
        srv = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
        log(f"listening on :{PORT}")
        srv.serve_forever(poll_interval=0.25)
    except (SystemExit, KeyboardInterrupt):
        log("stopped")
        raise
# ---- end of boilerplate -------------------------------------------------------------------
R = redis.Redis.from_url(REDIS_URL, decode_responses=True, socket_timeout=5, socket_connect_timeout=3)
DEP_ERRORS.append(((redis.ConnectionError, redis.TimeoutError), urllib.parse.urlsplit(REDIS_URL).hostname))


def ensure_group():
    try:
        R.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except redis.ResponseError as e:
        if "BUSYGROUP" not in str(e):
            raise


def record(msg_id, event):
    if event.get("type") != "order.created":
        return
    note = {"order_id": event["order_id"], "user_id": event.get("user_id"),
            "message": f"Your order {event['order_id']} is paid: {int(event.get('total_cents', 0)) / 100:.2f}",
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rid": event.get("rid")}
    if R.hsetnx("notifications:by-order", note["order_id"], json.dumps(note)):  # once per order
        R.lpush("notifications:recent", json.dumps(note))
        R.ltrim("notifications:recent", 0, 999)
        R.incr("notifications:count")
    log(f"rid={event.get('rid', '-')} consumed {STREAM} {msg_id} order.created {note['order_id']}")


def consume():
    """Read own pending entries first (after a restart), then new ones; ack each after recording."""
    pending, ready = True, False
    while True:
        try:
            if not ready:
                ensure_group()
                ready = True
            resp = R.xreadgroup(GROUP, CONSUMER, {STREAM: "0" if pending else ">"}, count=50, block=1000)
            entries = resp[0][1] if resp else []
            pending = pending and bool(entries)
            for msg_id, event in entries:
                record(msg_id, event)
                R.xack(STREAM, GROUP, msg_id)
        except redis.RedisError as e:
            log(f"ERROR consuming {STREAM}: {type(e).__name__}: {e}")
            ready = ready and "NOGROUP" not in str(e)  # stream or group deleted: create again
            time.sleep(1)


CONSUMER_THREAD = threading.Thread(target=consume, name="consumer", daemon=True)


def init():
    retry("redis", R.ping)
    CONSUMER_THREAD.start()


@route("GET", "/health")
def health(h):
    R.ping()
    if not CONSUMER_THREAD.is_alive():
        raise Fail(503, "the orders.events consumer stopped")
    return 200, {"status": "ok"}


@route("GET", "/notifications")
def list_notifications(h):
    limit = max(1, min(int(h.query.get("limit", "20")), 1000))
    notes = [json.loads(n) for n in R.lrange("notifications:recent", 0, limit - 1)]
    return 200, {"count": int(R.get("notifications:count") or 0), "notifications": notes}


@route("GET", "/notifications/([^/]+)")
def get_notification(h, order_id):
    note = R.hget("notifications:by-order", order_id)
    if note is None:
        raise Fail(404, "no notification for this order", order_id=order_id)
    return 200, json.loads(note)


if __name__ == "__main__":
    serve(init)
