"""The Toxiproxy HTTP API: routes, status codes and JSON bodies of Toxiproxy v2.12."""

from __future__ import annotations

import hmac
import json
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl

from . import API_VERSION
from .errors import ApiError, bad_request
from .httpserver import Request, Response
from .accounting import MAX_RECORDS_PER_READ
from .registry import Registry
from .validation import ascii_digits, check_json_depth

JSON = "application/json"
ANY_METHOD = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _dumps(value: Any) -> bytes:
    """UTF-8 JSON like Go's encoder; text that is not valid Unicode is escaped, never a 500."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode()
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":")).encode()


def json_response(status: int, value: Any) -> Response:
    return Response(status, _dumps(value), JSON)


def error_response(error: ApiError) -> Response:
    return Response(error.status, _dumps(error.to_json()) + b"\n", JSON)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


_decoder = json.JSONDecoder(parse_constant=_reject_constant)


def decode_body(request: Request) -> Any:
    """The first JSON value of the body (trailing data ignored, as Go's decoder does)."""
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request("body is not UTF-8") from None
    text = text.lstrip()
    if not text:
        raise bad_request("EOF")
    check_json_depth(text)
    try:
        value, _ = _decoder.raw_decode(text)
    except ValueError as exc:
        raise bad_request(f"invalid JSON: {exc}") from None
    except RecursionError:  # not reachable after check_json_depth; kept as the last guard
        raise bad_request("JSON nested too deeply") from None
    return value


Route = Callable[..., Awaitable[Response]]


class Api:
    """Request handler for :func:`httpserver.start_http_server`."""

    def __init__(self, registry: Registry, metrics_enabled: bool = True, token: str | None = None) -> None:
        self.registry = registry
        self.metrics_enabled = metrics_enabled
        self.token = token or None

    def authorized(self, request: Request) -> bool:
        """Whether the request may use the API: always without a token, else only with ``Bearer <token>``."""
        if self.token is None:
            return True
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token.encode())

    def _routes(self, segments: list[str]) -> tuple[dict[str, Route], tuple[str, ...]] | None:
        if any(segment == "" for segment in segments):
            return None
        match segments:
            case ["version"]:
                return {"GET": self.version}, ()
            case ["reset"]:
                return {"POST": self.reset}, ()
            case ["populate"]:
                return {"POST": self.populate}, ()
            case ["metrics"] if self.metrics_enabled:
                return {method: self.metrics for method in ANY_METHOD}, ()
            case ["proxies"]:
                return {"GET": self.proxy_index, "POST": self.proxy_create}, ()
            case ["proxies", proxy]:
                return {
                    "GET": self.proxy_show,
                    "POST": self.proxy_update,
                    "PATCH": self.proxy_update,
                    "DELETE": self.proxy_delete,
                }, (proxy,)
            case ["proxies", proxy, "requests"]:
                return {"GET": self.proxy_requests}, (proxy,)
            case ["proxies", proxy, "toxics"]:
                return {"GET": self.toxic_index, "POST": self.toxic_create}, (proxy,)
            case ["proxies", proxy, "toxics", toxic]:
                return {
                    "GET": self.toxic_show,
                    "POST": self.toxic_update,
                    "PATCH": self.toxic_update,
                    "DELETE": self.toxic_delete,
                }, (proxy, toxic)
        return None

    async def __call__(self, request: Request) -> Response:
        if request.headers.get("user-agent", "").startswith("Mozilla/"):
            return Response(403, b"User agent not allowed\n", "text/plain; charset=utf-8")
        if not self.authorized(request):
            return error_response(ApiError("missing or wrong bearer token", 401))
        found = self._routes(request.path.split("/")[1:]) if request.path.startswith("/") else None
        if found is None:
            return Response(404, b"404 page not found\n", "text/plain; charset=utf-8")
        methods, args = found
        handler = methods.get(request.method)
        if handler is None:
            return Response(405, b"", None)
        try:
            return await handler(request, *args)
        except ApiError as error:
            return error_response(error)

    # -- handlers ------------------------------------------------------------------------

    async def version(self, request: Request) -> Response:
        body = f'{{"version": "{API_VERSION}"}}\n'.encode()
        return Response(200, body, "application/json;charset=utf-8")

    async def metrics(self, request: Request) -> Response:
        body = self.registry.render_metrics().encode("utf-8", "backslashreplace")
        return Response(200, body, "text/plain; version=0.0.4; charset=utf-8")

    async def reset(self, request: Request) -> Response:
        await self.registry.reset()
        return Response(204)

    async def proxy_index(self, request: Request) -> Response:
        return json_response(200, {p.name: p.to_json() for p in self.registry.sorted_proxies()})

    async def proxy_create(self, request: Request) -> Response:
        proxy = await self.registry.create(decode_body(request))
        return json_response(201, proxy.to_json())

    async def populate(self, request: Request) -> Response:
        try:
            body = decode_body(request)
        except ApiError as error:
            return json_response(error.status, {**error.to_json(), "proxies": None})
        proxies, error = await self.registry.populate(body)
        listed = None if proxies is None else [p.to_json() for p in proxies]
        if error is not None:
            return json_response(error.status, {**error.to_json(), "proxies": listed})
        return json_response(201, {"proxies": listed})

    async def proxy_show(self, request: Request, name: str) -> Response:
        return json_response(200, self.registry.get(name).to_json())

    async def proxy_update(self, request: Request, name: str) -> Response:
        self.registry.get(name)  # 404 before body errors, like Toxiproxy
        proxy = await self.registry.update(name, decode_body(request))
        return json_response(200, proxy.to_json())

    async def proxy_delete(self, request: Request, name: str) -> Response:
        await self.registry.delete(name)
        return Response(204)

    async def proxy_requests(self, request: Request, name: str) -> Response:
        """GET /proxies/{name}/requests?since=SEQ&limit=N: the proxy's counters and its HTTP
        requests with a sequence number above ``since`` (default 0), oldest first."""
        proxy = self.registry.get(name)
        query = dict(parse_qsl(request.query))
        since = _query_int(query, "since", 0, 2**63 - 1, 0)
        limit = _query_int(query, "limit", 1, MAX_RECORDS_PER_READ, MAX_RECORDS_PER_READ)
        stats = proxy.stats
        records = stats.records_since(since, limit)
        return json_response(200, {
            "proxy": proxy.name,
            "protocol": proxy.protocol,
            "last_seq": stats.seq,
            "next_since": records[-1]["seq"] if records else max(since, stats.seq),
            "truncated": stats.truncated_after(since),
            "requests": records,
            "stats": stats.to_json(len(proxy.connections)),
        })

    async def toxic_index(self, request: Request, name: str) -> Response:
        proxy = self.registry.get(name)
        return json_response(200, [toxic.to_json() for toxic in proxy.toxics_in_order()])

    async def toxic_create(self, request: Request, name: str) -> Response:
        self.registry.get(name)
        toxic = self.registry.add_toxic(name, decode_body(request))
        return json_response(200, toxic.to_json())

    async def toxic_show(self, request: Request, name: str, toxic: str) -> Response:
        return json_response(200, self.registry.get_toxic(name, toxic).to_json())

    async def toxic_update(self, request: Request, name: str, toxic: str) -> Response:
        self.registry.get_toxic(name, toxic)
        updated = self.registry.update_toxic(name, toxic, decode_body(request))
        return json_response(200, updated.to_json())

    async def toxic_delete(self, request: Request, name: str, toxic: str) -> Response:
        self.registry.remove_toxic(name, toxic)
        return Response(204)


def _query_int(query: dict[str, str], key: str, low: int, high: int, default: int) -> int:
    """An integer query parameter within [low, high]; a 400 naming it otherwise."""
    text = query.get(key)
    if text is None:
        return default
    if not ascii_digits(text) or len(text) > 19 or not low <= int(text) <= high:
        raise bad_request(f"query parameter {key!r} must be an integer from {low} to {high}, got {text[:40]!r}")
    return int(text)
