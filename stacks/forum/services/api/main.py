"""The forum api: posts in Postgres, a read cache in Redis, events to RabbitMQ, documents to search.

POST /posts {"author", "title", "body"} stores a post, caches it, publishes `post_created` on the
`events` queue (the worker stores it as an event row) and indexes it in search.
GET /posts/<id> reads through the cache; GET /search?q=word asks search; GET /health.
"""

import json
import os
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pika
import psycopg2
import redis

DATABASE_URL = os.environ["DATABASE_URL"]
CACHE = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=5)
AMQP_URL = os.environ["AMQP_URL"]
SEARCH_URL = os.environ["SEARCH_URL"].rstrip("/")
QUEUE = os.environ.get("EVENTS_QUEUE", "events")
CACHE_TTL_S = int(os.environ.get("CACHE_TTL_S", "300"))


def publish(event: dict) -> None:
    """Publish one persistent message on the events queue."""
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        channel = connection.channel()
        channel.queue_declare(queue=QUEUE, durable=True)
        channel.basic_publish(exchange="", routing_key=QUEUE, body=json.dumps(event),
                              properties=pika.BasicProperties(delivery_mode=2))
    finally:
        connection.close()


def search_request(method: str, path: str, document: dict | None = None) -> dict:
    """One JSON request to the search service."""
    data = json.dumps(document).encode() if document is not None else None
    request = urllib.request.Request(SEARCH_URL + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


class Handler(BaseHTTPRequestHandler):
    """Routes of the api."""

    def _send(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path, _, query = self.path.partition("?")
        if path == "/health":
            return self._send(200, {"status": "ok"})
        if path.startswith("/posts/"):
            return self._get_post(path.removeprefix("/posts/"))
        if path == "/search":
            word = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("q", "")
            return self._send(200, search_request("GET", f"/posts/_search?q={word}"))
        return self._send(404, {"error": "not found"})

    def _get_post(self, post_id: str) -> None:
        cached = CACHE.get(f"post:{post_id}")
        if cached:
            return self._send(200, {**json.loads(cached), "cached": True})
        with psycopg2.connect(DATABASE_URL) as conn, conn.cursor() as cur:
            cur.execute("SELECT id, author, title, body FROM posts WHERE id = %s", (int(post_id),))
            row = cur.fetchone()
        if row is None:
            return self._send(404, {"error": f"no post {post_id}"})
        post = dict(zip(("id", "author", "title", "body"), row))
        CACHE.setex(f"post:{post_id}", CACHE_TTL_S, json.dumps(post))
        return self._send(200, {**post, "cached": False})

    def do_POST(self) -> None:  # noqa: N802
        if self.path != "/posts":
            return self._send(404, {"error": "not found"})
        try:
            post = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            author, title, body = post["author"], post["title"], post.get("body", "")
        except (ValueError, KeyError) as exc:
            return self._send(400, {"error": f"invalid post: {exc}"})
        with psycopg2.connect(DATABASE_URL) as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO posts (author, title, body) VALUES (%s, %s, %s) RETURNING id",
                        (author, title, body))
            post_id = cur.fetchone()[0]
        stored = {"id": post_id, "author": author, "title": title, "body": body}
        CACHE.setex(f"post:{post_id}", CACHE_TTL_S, json.dumps(stored))
        publish({"type": "post_created", "post_id": post_id, "author": author})
        search_request("PUT", f"/posts/_doc/{post_id}", stored)
        return self._send(201, stored)

    def log_message(self, fmt: str, *args) -> None:
        print(f"api {self.address_string()} {fmt % args}", flush=True)


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8000"))), Handler).serve_forever()
