"""fraud: scores a payment (port 8086). No dependencies.

  POST /score {"user_id", "amount_cents"}
       -> 200 {"decision": "approve" | "reject", "score": 0..1, "reasons": [...]}
  GET  /health -> 200 {"status": "ok"}
Rejects amounts over FRAUD_MAX_AMOUNT_CENTS (default 50000) and the user ids listed in
FRAUD_BLOCKED_USERS (comma separated, default "u-5").
"""
import json, os, re, signal, sys, time, uuid
import urllib.error, urllib.parse, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME, PORT, MAKE_RID = "fraud", 8086, False
MAX_AMOUNT = int(os.environ.get("FRAUD_MAX_AMOUNT_CENTS", "50000"))
BLOCKED = {u.strip() for u in os.environ.get("FRAUD_BLOCKED_USERS", "u-5").split(",") if u.strip()}

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


@route("GET", "/health")
def health(h):
    return 200, {"status": "ok"}


@route("POST", "/score")
def score(h):
    body = h.body()
    user_id, amount = body.get("user_id"), body.get("amount_cents")
    if not isinstance(user_id, str) or type(amount) is not int or amount < 0:
        raise Fail(400, 'need "user_id": string and "amount_cents": integer >= 0')
    reasons = []
    if amount > MAX_AMOUNT:
        reasons.append(f"amount {amount} is over the limit of {MAX_AMOUNT} cents")
    if user_id in BLOCKED:
        reasons.append(f"user {user_id} is blocked")
    risk = 1.0 if reasons else round(min(amount / MAX_AMOUNT, 1.0) * 0.8, 3)
    return 200, {"decision": "reject" if reasons else "approve", "score": risk, "reasons": reasons}


if __name__ == "__main__":
    serve()
