"""users: users and sessions (port 8085), stored in redis.

  GET  /users -> 200 {"users": [{"id", "name", "email"}]}
  GET  /users/{id} -> 200 {"id", "name", "email"} | 404 {"error": "unknown user", "service", "user_id"}
  POST /users {"id"?, "name", "email"} -> 201 user
  POST /sessions {"user_id"} -> 201 {"token", "user_id", "expires_in", "expires_at"} | 404 unknown user
  GET  /sessions/{token} -> 200 {"token", "user_id", "expires_at"}
                         -> 401 {"error": "session expired", ...} when its expires_at has passed | 404
  GET  /health -> 200 {"status": "ok"} when redis answers
Keys: users:{id} (hash), users:ids (set), sessions:{token} (hash: user_id, expires_at as
2026-11-21T10:00:00Z; redis drops the key a day after expires_at, then the token is unknown).
Demo data when there are no users: u-1..u-5.
"""
import json, os, re, signal, sys, time, uuid
import urllib.error, urllib.parse, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import datetime
import redis

NAME, PORT, MAKE_RID = "users", 8085, False
REDIS_URL = os.environ["REDIS_URL"]
SESSION_TTL = 3600
SESSION_KEEP = 86400  # an expired session answers 401 for a day, then its key is gone (404)
DEMO = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Katherine Johnson", "Edsger Dijkstra"]

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


def save(user):
    R.hset(f"users:{user['id']}", mapping=user)
    R.sadd("users:ids", user["id"])


def init():
    retry("redis", R.ping)
    if R.scard("users:ids") == 0:
        for n, name in enumerate(DEMO, 1):
            save({"id": f"u-{n}", "name": name, "email": f"{name.split()[0].lower()}@example.com"})
        log(f"inserted {len(DEMO)} demo users u-1..u-{len(DEMO)}")


def load(user_id):
    user = R.hgetall(f"users:{user_id}")
    if not user:
        raise Fail(404, "unknown user", user_id=user_id)
    return user


@route("GET", "/health")
def health(h):
    R.ping()
    return 200, {"status": "ok"}


@route("GET", "/users")
def list_users(h):
    return 200, {"users": [R.hgetall(f"users:{u}") for u in sorted(R.smembers("users:ids"))]}


@route("GET", "/users/([^/]+)")
def get_user(h, user_id):
    return 200, load(user_id)


@route("POST", "/users")
def create_user(h):
    body = h.body()
    if not all(isinstance(body.get(k), str) for k in ("name", "email")):
        raise Fail(400, 'need "name" and "email" (strings)')
    user = {"id": str(body.get("id") or "u-" + uuid.uuid4().hex[:8]), "name": body["name"], "email": body["email"]}
    save(user)
    return 201, user


@route("POST", "/sessions")
def login(h):
    user = load(str(h.body().get("user_id")))
    token = uuid.uuid4().hex
    expires_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + SESSION_TTL))
    R.pipeline().hset(f"sessions:{token}", mapping={"user_id": user["id"], "expires_at": expires_at}) \
        .expire(f"sessions:{token}", SESSION_TTL + SESSION_KEEP).execute()
    return 201, {"token": token, "user_id": user["id"], "expires_in": SESSION_TTL, "expires_at": expires_at}


@route("GET", "/sessions/([^/]+)")
def get_session(h, token):
    session = R.hgetall(f"sessions:{token}")
    if not session:
        raise Fail(404, "unknown or expired session")
    expires_at = session.get("expires_at")  # ISO 8601 with an offset or Z; none: until redis drops it
    now = datetime.datetime.now(datetime.timezone.utc)
    if expires_at and datetime.datetime.fromisoformat(expires_at.replace("Z", "+00:00")) <= now:
        raise Fail(401, "session expired", token=token, user_id=session.get("user_id"), expires_at=expires_at)
    return 200, {"token": token, "user_id": session.get("user_id"), "expires_at": expires_at}


if __name__ == "__main__":
    serve(init)
