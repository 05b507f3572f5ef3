"""A read-only debug page (adminer-like, profile `debug`): GET /<table> lists its last 50 rows."""

import json
import os
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2

DATABASE_URL = os.environ["DATABASE_URL"]
TABLES = {"posts", "events"}


class Handler(BaseHTTPRequestHandler):
    """GET /posts or /events: the last rows as JSON."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        table = self.path.strip("/")
        if table not in TABLES or not re.fullmatch(r"[a-z]+", table):
            status, payload = 404, {"tables": sorted(TABLES)}
        else:
            with psycopg2.connect(DATABASE_URL) as conn, conn.cursor() as cur:
                cur.execute(f"SELECT row_to_json(t) FROM (SELECT * FROM {table} ORDER BY id DESC LIMIT 50) t")
                status, payload = 200, {"rows": [r[0] for r in cur.fetchall()]}
        body = json.dumps(payload, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", 8081), Handler).serve_forever()
