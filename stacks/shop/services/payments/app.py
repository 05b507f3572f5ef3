"""payments: charges (port 8082). Asks fraud first; charges and idempotency keys live in redis.

  POST /charges {"user_id", "amount_cents", "order_id"?, "idempotency_key"?}
       (or header Idempotency-Key)
       -> 201 {"charge_id", "status": "captured", "user_id", "amount_cents", "order_id",
               "idempotency_key", "created_at"}
       -> 402 {"error": "payment rejected by fraud check", "service", "reasons", "score"}
       A retry with the same idempotency key gets the first answer again (same charge_id),
       with "replayed": true; 409 while the first one is still running.
  GET  /charges/{id} -> 200 charge | 404
  GET  /health -> 200 {"status": "ok"} when redis answers
"""
import json, os, re, signal, sys, time, uuid
import urllib.error, urllib.parse, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import redis

NAME, PORT, MAKE_RID = "payments", 8082, False
FRAUD_URL = os.environ["FRAUD_URL"]
REDIS_URL = os.environ["REDIS_URL"]

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
R = redis.Redis.from_url(REDIS_URL, decode_responses=True, socket_timeout=3, socket_connect_timeout=3)
DEP_ERRORS.append(((redis.ConnectionError, redis.TimeoutError), urllib.parse.urlsplit(REDIS_URL).hostname))


@route("GET", "/health")
def health(h):
    R.ping()
    return 200, {"status": "ok"}


def charge(h, body):
    user_id, amount = body.get("user_id"), body.get("amount_cents")
    if not isinstance(user_id, str) or type(amount) is not int or amount < 0:
        raise Fail(400, 'need "user_id": string and "amount_cents": integer >= 0')
    _, verdict = call(FRAUD_URL, "POST", "/score", h.rid, {"user_id": user_id, "amount_cents": amount}, timeout=3)
    if verdict.get("decision") != "approve":
        return 402, {"error": "payment rejected by fraud check", "service": NAME,
                     "reasons": verdict.get("reasons", []), "score": verdict.get("score")}
    ch = {"charge_id": "ch_" + uuid.uuid4().hex[:16], "status": "captured", "user_id": user_id,
          "amount_cents": amount, "order_id": body.get("order_id"),
          "idempotency_key": body.get("idempotency_key"),
          "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    R.set(f"payments:charge:{ch['charge_id']}", json.dumps(ch))
    return 201, ch


@route("POST", "/charges")
def create_charge(h):
    body = h.body()
    key = body["idempotency_key"] = h.headers.get("Idempotency-Key") or body.get("idempotency_key")
    if not key:
        return charge(h, body)
    slot = f"payments:idem:{key}"
    if not R.set(slot, "pending", nx=True, ex=60):  # someone used this key already
        prev = R.get(slot)
        if prev in (None, "pending"):
            raise Fail(409, "a payment with this idempotency key is in progress", idempotency_key=key)
        prev = json.loads(prev)
        log(f"rid={h.rid} replaying idempotency key {key}")
        return prev["status"], {**prev["body"], "replayed": True}
    try:
        status, answer = charge(h, body)
    except Exception:
        R.delete(slot)  # nothing was charged: let a retry try again
        raise
    R.set(slot, json.dumps({"status": status, "body": answer}), ex=86400)
    return status, answer


@route("GET", "/charges/([^/]+)")
def get_charge(h, charge_id):
    ch = R.get(f"payments:charge:{charge_id}")
    if ch is None:
        raise Fail(404, "unknown charge", charge_id=charge_id)
    return 200, json.loads(ch)


if __name__ == "__main__":
    serve(lambda: retry("redis", R.ping))
