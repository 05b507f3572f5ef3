"""orders: places and stores orders (port 8081). Data in orders-db (PostgreSQL).

  POST /orders {"user_id", "items": [{"sku", "qty", "price_cents"}], "idempotency_key"?}
       reserves stock (inventory), charges (payments), writes the row, XADDs
       {"type": "order.created", ...} to the redis stream orders.events
       -> 201 {"id", "user_id", "status": "paid", "total_cents", "charge_id",
               "reservation_id", "items", "idempotency_key", "created_at"}
       -> 200 the same order when idempotency_key was already used
       -> the dependency's status and body on failure (409 out of stock, 402 rejected, 502 ...);
          stock reserved for a failed order is released again
  GET  /orders/{id} -> 200 order | 404;  GET /orders?user_id=u-1 -> 200 {"orders": [...]} (latest 50)
  GET  /health -> 200 {"status": "ok"} when orders-db and redis answer
"""
import json, os, re, signal, sys, time, uuid
import urllib.error, urllib.parse, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import contextlib
import psycopg2, psycopg2.extras, psycopg2.pool
import redis

NAME, PORT, MAKE_RID = "orders", 8081, False
PAYMENTS_URL = os.environ["PAYMENTS_URL"]
INVENTORY_URL = os.environ["INVENTORY_URL"]
REDIS_URL = os.environ["REDIS_URL"]
STREAM = "orders.events"

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
R = redis.Redis.from_url(REDIS_URL, decode_responses=True, socket_timeout=3, socket_connect_timeout=3)
DEP_ERRORS.append(((redis.ConnectionError, redis.TimeoutError), urllib.parse.urlsplit(REDIS_URL).hostname))

SCHEMA = """CREATE TABLE IF NOT EXISTS orders (
    id text PRIMARY KEY, user_id text NOT NULL, status text NOT NULL, total_cents integer NOT NULL,
    charge_id text, reservation_id text, items jsonb NOT NULL, idempotency_key text UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now())"""
COLS = "id, user_id, status, total_cents, charge_id, reservation_id, items, idempotency_key, created_at"


def as_order(row):
    order = dict(zip(COLS.split(", "), row))
    order["created_at"] = order["created_at"].isoformat()
    return order


def find(where, value):
    with db() as cur:
        cur.execute(f"SELECT {COLS} FROM orders WHERE {where} = %s", (value,))
        row = cur.fetchone()
    return row and as_order(row)


def init():
    connect_db(SCHEMA, lambda cur: None)  # orders start empty
    retry("redis", R.ping)


@route("GET", "/health")
def health(h):
    with db() as cur:
        cur.execute("SELECT 1")
    R.ping()
    return 200, {"status": "ok"}


@route("POST", "/orders")
def create_order(h):
    body = h.body()
    user_id, items, key = body.get("user_id"), body.get("items"), body.get("idempotency_key")
    if not isinstance(user_id, str) or not isinstance(items, list) or not items or not all(
            isinstance(i, dict) and isinstance(i.get("sku"), str) and type(i.get("qty")) is int and i["qty"] > 0
            and type(i.get("price_cents")) is int and i["price_cents"] >= 0 for i in items):
        raise Fail(400, 'need "user_id" and "items": [{"sku": string, "qty": int > 0, "price_cents": int >= 0}]')
    if key and (existing := find("idempotency_key", key)):
        return 200, existing
    order_id = "ord_" + uuid.uuid4().hex[:12]
    total = sum(i["qty"] * i["price_cents"] for i in items)
    _, res = call(INVENTORY_URL, "POST", "/reservations", h.rid,
                  {"order_id": order_id, "items": [{"sku": i["sku"], "qty": i["qty"]} for i in items]})
    try:
        _, charge = call(PAYMENTS_URL, "POST", "/charges", h.rid, {
            "user_id": user_id, "amount_cents": total, "order_id": order_id,
            "idempotency_key": key or order_id}, timeout=10)
        with db() as cur:
            cur.execute(f"INSERT INTO orders ({COLS}) VALUES (%s, %s, 'paid', %s, %s, %s, %s, %s, now()) "
                        f"RETURNING {COLS}", (order_id, user_id, total, charge["charge_id"],
                                              res["reservation_id"], psycopg2.extras.Json(items), key))
            order = as_order(cur.fetchone())
    except Exception:
        try:  # put the stock back; the failure itself is answered below
            call(INVENTORY_URL, "DELETE", f"/reservations/{res['reservation_id']}", h.rid)
        except Fail as e:
            log(f"rid={h.rid} ERROR releasing {res['reservation_id']} of {order_id}: {e}")
        raise
    try:
        R.xadd(STREAM, {"type": "order.created", "order_id": order_id, "user_id": user_id,
                        "total_cents": total, "charge_id": order["charge_id"], "rid": h.rid},
               maxlen=10000, approximate=True)
    except redis.RedisError as e:  # the order stands; the event is lost (no outbox in this demo)
        log(f"rid={h.rid} ERROR publishing order.created for {order_id}: {e}")
    return 201, order


@route("GET", "/orders/([^/]+)")
def get_order(h, order_id):
    order = find("id", order_id)
    if not order:
        raise Fail(404, "unknown order", order_id=order_id)
    return 200, order


@route("GET", "/orders")
def list_orders(h):
    with db() as cur:
        cur.execute(f"SELECT {COLS} FROM orders WHERE %(u)s IS NULL OR user_id = %(u)s "
                    "ORDER BY created_at DESC LIMIT 50", {"u": h.query.get("user_id")})
        return 200, {"orders": [as_order(r) for r in cur.fetchall()]}


if __name__ == "__main__":
    serve(init)
