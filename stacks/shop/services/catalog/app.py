"""catalog: products with sku, name and price (port 8084), stored in catalog-db (PostgreSQL).

  GET /products        -> 200 {"products": [{"sku", "name", "price_cents"}]}
  GET /products/{sku}  -> 200 {"sku", "name", "price_cents"} | 404 {"error", "service", "sku"}
  GET /health          -> 200 {"status": "ok"} when catalog-db answers
Creates its table at start; when it is empty, inserts 20 demo products SKU-0001..SKU-0020.
"""
import json, os, re, signal, sys, time, uuid
import urllib.error, urllib.parse, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import contextlib
import psycopg2, psycopg2.pool

NAME, PORT, MAKE_RID = "catalog", 8084, False

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

SCHEMA = """CREATE TABLE IF NOT EXISTS products (
    sku text PRIMARY KEY, name text NOT NULL, price_cents integer NOT NULL CHECK (price_cents >= 0))"""
DEMO = [("Espresso beans 1 kg", 1899), ("Pour-over kettle", 3499), ("Ceramic mug", 1299),
        ("Burr grinder", 8999), ("Paper filters x100", 599), ("Milk frother", 2499),
        ("Travel tumbler", 1999), ("Cold brew jar", 2299), ("Tea sampler", 1599), ("Coffee scale", 2799),
        ("French press", 2999), ("Moka pot", 3299), ("Latte glasses x2", 1799), ("Cleaning tablets", 899),
        ("Decaf beans 500 g", 1099), ("Chai concentrate", 799), ("Barista apron", 2199),
        ("Knock box", 1899), ("Tamper 58 mm", 2599), ("Gift card", 5000)]


def seed(cur):
    cur.execute("SELECT count(*) FROM products")
    if cur.fetchone()[0] == 0:
        cur.executemany("INSERT INTO products (sku, name, price_cents) VALUES (%s, %s, %s)",
                        [(f"SKU-{n:04d}", name, price) for n, (name, price) in enumerate(DEMO, 1)])
        log(f"inserted {len(DEMO)} demo products")


def product(row):
    return {"sku": row[0], "name": row[1], "price_cents": row[2]}


@route("GET", "/health")
def health(h):
    with db() as cur:
        cur.execute("SELECT 1")
    return 200, {"status": "ok"}


@route("GET", "/products")
def list_products(h):
    with db() as cur:
        cur.execute("SELECT sku, name, price_cents FROM products ORDER BY sku")
        return 200, {"products": [product(r) for r in cur.fetchall()]}


@route("GET", "/products/([^/]+)")
def get_product(h, sku):
    with db() as cur:
        cur.execute("SELECT sku, name, price_cents FROM products WHERE sku = %s", (sku,))
        row = cur.fetchone()
    if row is None:
        raise Fail(404, "unknown sku", sku=sku)
    return 200, product(row)


if __name__ == "__main__":
    serve(lambda: connect_db(SCHEMA, seed))
