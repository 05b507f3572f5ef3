"""Command line of the link proxy.

    python -m stacklet.linkproxy [--host H] [--port P] [--config FILE | --config-json TEXT]
                                 [--seed N] [--token T] [--no-metrics] [--half-close]
                                 [--loop auto|uvloop|asyncio]

The config (a JSON array of proxies, as for POST /populate) is applied before the API
starts listening, so a server whose API answers has its proxies. Toxiproxy's single-dash
spellings (-host, -port, -config, -seed) are accepted too. With ``--token`` (or $LINKPROXY_TOKEN)
every API request needs ``Authorization: Bearer <token>`` (401 otherwise), as Toxiproxy 2.13 does.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import sys
from typing import Any

from . import API_VERSION
from .api import Api
from .httpserver import start_http_server
from .registry import Registry

log = logging.getLogger("stacklet.linkproxy")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m stacklet.linkproxy",
        description="Toxiproxy-API-compatible TCP fault proxy.",
    )
    parser.add_argument("--host", "-host", default=os.environ.get("LINKPROXY_HOST", "127.0.0.1"),
                        help="API address (default: $LINKPROXY_HOST or 127.0.0.1)")
    parser.add_argument("--port", "-port", type=int, default=int(os.environ.get("LINKPROXY_PORT", "8474")),
                        help="API port (default: $LINKPROXY_PORT or 8474)")
    config = parser.add_mutually_exclusive_group()
    config.add_argument("--config", "-config", metavar="FILE", help="JSON array of proxies to create at start")
    config.add_argument("--config-json", metavar="TEXT", help="the same JSON array, inline")
    parser.add_argument("--seed", "-seed", type=int, help="make toxicity, jitter and slicer randomness repeatable")
    parser.add_argument("--token", default=os.environ.get("LINKPROXY_TOKEN") or None,
                        help="require `Authorization: Bearer TOKEN` on every API request, answering 401 without it "
                             "(default: $LINKPROXY_TOKEN; none: the API is open, fit for loopback only)")
    parser.add_argument("--no-metrics", action="store_true", help="do not serve /metrics")
    parser.add_argument("--half-close", action="store_true",
                        help="pass a peer's FIN on as a half-close instead of closing both sockets")
    parser.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto",
                        help="event loop (default: uvloop when importable)")
    parser.add_argument("--proxy-metrics", "-proxy-metrics", "--runtime-metrics", "-runtime-metrics",
                        action="store_true", help=argparse.SUPPRESS)  # Toxiproxy flags; metrics are on
    return parser.parse_args(argv)


def _exit_usage(message: str) -> None:
    print(f"linkproxy: {message}", file=sys.stderr)
    sys.exit(2)


def load_config(args: argparse.Namespace) -> Any:
    """The parsed config, or None; exits with status 2 when it cannot be read or parsed."""
    if args.config:
        try:
            with open(args.config, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            _exit_usage(f"cannot read config {args.config}: {exc.strerror or exc}")
    elif args.config_json is not None:
        text = args.config_json
    else:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        _exit_usage(f"config is not valid JSON: {exc}")


def _loop_factory(choice: str):
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                _exit_usage("--loop uvloop given but uvloop is not installed")
        else:
            return uvloop.new_event_loop, "uvloop"
    return asyncio.new_event_loop, "asyncio"


async def serve(args: argparse.Namespace, config: Any, loop_name: str) -> int:
    registry = Registry(seed=args.seed, half_close=args.half_close)
    if config is not None:
        proxies, error = await registry.populate(config)
        if error is not None and error.status == 400:
            print(f"linkproxy: invalid config: {error.message}", file=sys.stderr)
            return 2
        if error is not None:
            log.error("config error=%s", error.message)
        log.info("config applied proxies=%d", len(proxies or []))
    api = Api(registry, metrics_enabled=not args.no_metrics, token=args.token)
    try:
        server = await start_http_server(api, args.host, args.port)
    except OSError as exc:
        print(f"linkproxy: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        await registry.close_all()
        return 1
    gc.collect()
    gc.freeze()  # what exists now lives as long as the server: keep it out of GC passes
    log.info("started api=%s:%d version=%s loop=%s seed=%s token=%s", args.host, args.port, API_VERSION, loop_name,
             args.seed, "required" if args.token else "none")
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    log.info("stopping")
    server.close()
    await registry.close_all()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s linkproxy %(message)s", datefmt="%H:%M:%S")
    config = load_config(args)
    factory, loop_name = _loop_factory(args.loop)
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(serve(args, config, loop_name))


if __name__ == "__main__":
    sys.exit(main())
