"""gateway: the shop's public HTTP API (port 8080).

Gives every request an X-Request-Id (unless it has one) and passes it on. Placing an order
checks the user (users), prices the items (catalog), then hands the priced order to orders.
  POST /orders {"user_id", "items": [{"sku", "qty"}]}  -> 201 order (from orders)
       optional header Idempotency-Key (or "idempotency_key" in the body)
  GET  /orders/{id}, GET /products, GET /products/{sku}, GET /users/{id}
  POST /sessions {"user_id"} -> 201 {"token", "user_id", "expires_in", "expires_at"}
  GET  /sessions/{token} -> 200 {"token", "user_id", "expires_at"} | 401 session expired | 404 (from users)
  GET  /health
"""
import json, os, re, signal, sys, time, uuid
import urllib.error, urllib.parse, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME, PORT, MAKE_RID = "gateway", 8080, True
ORDERS_URL = os.environ["ORDERS_URL"]
CATALOG_URL = os.environ["CATALOG_URL"]
USERS_URL = os.environ["USERS_URL"]

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


def q(s):
    return urllib.parse.quote(str(s), safe="")


@route("GET", "/health")
def health(h):
    return 200, {"status": "ok"}


@route("POST", "/orders")
def place_order(h):
    order = h.body()
    user_id, items = order.get("user_id"), order.get("items")
    if not isinstance(user_id, str) or not user_id:
        raise Fail(400, "user_id (a string) is required")
    if not isinstance(items, list) or not items or not all(
            isinstance(i, dict) and isinstance(i.get("sku"), str) and type(i.get("qty")) is int and i["qty"] > 0
            for i in items):
        raise Fail(400, 'items must be a non-empty list of {"sku": string, "qty": integer > 0}')
    call(USERS_URL, "GET", f"/users/{q(user_id)}", h.rid)  # unknown user -> 404 from users
    priced = []
    for item in items:
        _, product = call(CATALOG_URL, "GET", f"/products/{q(item['sku'])}", h.rid)  # unknown sku -> 404
        priced.append({"sku": product["sku"], "qty": item["qty"], "price_cents": product["price_cents"]})
    key = h.headers.get("Idempotency-Key") or order.get("idempotency_key")
    return call(ORDERS_URL, "POST", "/orders", h.rid,
                {"user_id": user_id, "items": priced, "idempotency_key": key}, timeout=20)


@route("GET", "/orders/([^/]+)")
def get_order(h, order_id):
    return call(ORDERS_URL, "GET", f"/orders/{q(order_id)}", h.rid)


@route("GET", "/products")
def list_products(h):
    return call(CATALOG_URL, "GET", "/products", h.rid)


@route("GET", "/products/([^/]+)")
def get_product(h, sku):
    return call(CATALOG_URL, "GET", f"/products/{q(sku)}", h.rid)


@route("GET", "/users/([^/]+)")
def get_user(h, user_id):
    return call(USERS_URL, "GET", f"/users/{q(user_id)}", h.rid)


@route("POST", "/sessions")
def login(h):
    return call(USERS_URL, "POST", "/sessions", h.rid, h.body())


@route("GET", "/sessions/([^/]+)")
def get_session(h, token):
    return call(USERS_URL, "GET", f"/sessions/{q(token)}", h.rid)


if __name__ == "__main__":
    serve()
