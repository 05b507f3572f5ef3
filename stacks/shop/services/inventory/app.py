"""inventory: stock per sku and reservations (port 8083), stored in inventory-db (PostgreSQL).

  POST   /reservations {"order_id", "items": [{"sku", "qty"}]}
         -> 201 {"reservation_id", "order_id", "status": "reserved", "items": [{"sku", "qty", "remaining"}]}
         -> 409 {"error": "out of stock", "service", "sku", "requested", "available"} (nothing reserved)
         -> 404 {"error": "unknown sku", "service", "sku"}
  DELETE /reservations/{id} -> 200 {"reservation_id", "status": "released"} (stock put back, once)
  GET    /stock -> 200 {"stock": [{"sku", "qty"}]};  GET /stock/{sku} -> 200 {"sku", "qty"} | 404
  GET    /health -> 200 {"status": "ok"} when inventory-db answers
Demo data when empty: SKU-0001..SKU-0019 with 100 each, SKU-0020 sold out (0).
"""
import json, os, re, signal, sys, time, uuid
import urllib.error, urllib.parse, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import contextlib
import psycopg2, psycopg2.extras, psycopg2.pool

NAME, PORT, MAKE_RID = "inventory", 8083, False

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


DB_URL = os.environ["DATABASE_URL"]
DB = urllib.parse.urlsplit(DB_URL).hostname
DEP_ERRORS.append(((psycopg2.OperationalError, psycopg2.InterfaceError), DB))
pool = None


@contextlib.contextmanager
def db():
    """A cursor in a transaction on a pooled connection; broken connections are dropped."""
    conn = pool.getconn()
    for _ in range(pool.maxconn):  # drop pooled connections the server closed while idle (e.g. a reset)
        try:
            with conn.cursor() as ping:  # a pre-ping, as connection pools do: one round trip
                ping.execute("SELECT 1")
            alive = True
        except psycopg2.Error:
            alive = False
        if alive:
            break
        pool.putconn(conn, close=True)
        conn = pool.getconn()
    try:
        with conn, conn.cursor() as cur:
            yield cur
    finally:
        pool.putconn(conn, close=bool(conn.closed))


def connect_db(schema, seed):
    """Connect (bounded retry), create the tables, insert demo data when they are empty."""
    global pool
    pool = retry(DB, lambda: psycopg2.pool.ThreadedConnectionPool(1, 16, DB_URL, connect_timeout=3))
    with db() as cur:
        cur.execute(schema)
        seed(cur)

SCHEMA = """
CREATE TABLE IF NOT EXISTS stock (sku text PRIMARY KEY, qty integer NOT NULL CHECK (qty >= 0));
CREATE TABLE IF NOT EXISTS reservations (
    id text PRIMARY KEY, order_id text, items jsonb NOT NULL, status text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now());"""


def seed(cur):
    cur.execute("SELECT count(*) FROM stock")
    if cur.fetchone()[0] == 0:
        cur.executemany("INSERT INTO stock (sku, qty) VALUES (%s, %s)",
                        [(f"SKU-{n:04d}", 0 if n == 20 else 100) for n in range(1, 21)])
        log("inserted demo stock for SKU-0001..SKU-0020")


@route("GET", "/health")
def health(h):
    with db() as cur:
        cur.execute("SELECT 1")
    return 200, {"status": "ok"}


@route("POST", "/reservations")
def reserve(h):
    body = h.body()
    items = body.get("items")
    if not isinstance(items, list) or not items or not all(
            isinstance(i, dict) and isinstance(i.get("sku"), str) and type(i.get("qty")) is int and i["qty"] > 0
            for i in items):
        raise Fail(400, 'items must be a non-empty list of {"sku": string, "qty": integer > 0}')
    want = {}
    for i in items:
        want[i["sku"]] = want.get(i["sku"], 0) + i["qty"]
    res_id, left = "res_" + uuid.uuid4().hex[:12], {}
    with db() as cur:  # one transaction: all items are reserved, or none
        for sku in sorted(want):  # a fixed lock order: concurrent reservations cannot deadlock
            cur.execute("UPDATE stock SET qty = qty - %s WHERE sku = %s AND qty >= %s RETURNING qty",
                        (want[sku], sku, want[sku]))
            row = cur.fetchone()
            if row is None:
                cur.execute("SELECT qty FROM stock WHERE sku = %s", (sku,))
                have = cur.fetchone()
                if have is None:
                    raise Fail(404, "unknown sku", sku=sku)
                raise Fail(409, "out of stock", sku=sku, requested=want[sku], available=have[0])
            left[sku] = row[0]
        reserved = [{"sku": s, "qty": q} for s, q in sorted(want.items())]
        cur.execute("INSERT INTO reservations (id, order_id, items, status) VALUES (%s, %s, %s, 'reserved')",
                    (res_id, body.get("order_id"), psycopg2.extras.Json(reserved)))
    return 201, {"reservation_id": res_id, "order_id": body.get("order_id"), "status": "reserved",
                 "items": [{**i, "remaining": left[i["sku"]]} for i in reserved]}


@route("DELETE", "/reservations/([^/]+)")
def release(h, res_id):
    with db() as cur:
        cur.execute("UPDATE reservations SET status = 'released' WHERE id = %s AND status = 'reserved' "
                    "RETURNING items", (res_id,))
        row = cur.fetchone()
        if row is None:
            cur.execute("SELECT status FROM reservations WHERE id = %s", (res_id,))
            if cur.fetchone() is None:
                raise Fail(404, "unknown reservation", reservation_id=res_id)
        else:
            for i in sorted(row[0], key=lambda i: i["sku"]):
                cur.execute("UPDATE stock SET qty = qty + %s WHERE sku = %s", (i["qty"], i["sku"]))
    return 200, {"reservation_id": res_id, "status": "released"}


@route("GET", "/stock")
def list_stock(h):
    with db() as cur:
        cur.execute("SELECT sku, qty FROM stock ORDER BY sku")
        return 200, {"stock": [{"sku": s, "qty": q} for s, q in cur.fetchall()]}


@route("GET", "/stock/([^/]+)")
def get_stock(h, sku):
    with db() as cur:
        cur.execute("SELECT qty FROM stock WHERE sku = %s", (sku,))
        row = cur.fetchone()
    if row is None:
        raise Fail(404, "unknown sku", sku=sku)
    return 200, {"sku": sku, "qty": row[0]}


if __name__ == "__main__":
    serve(lambda: connect_db(SCHEMA, seed))
