"""Link proxy: a Toxiproxy-API-compatible TCP fault proxy on asyncio (and uvloop when present).

It runs alone in its own container, so it imports nothing else from stacklet. Run it with
``python -m stacklet.linkproxy --host H --port P [--config proxies.json] [--seed N]``.
"""

__version__ = "0.1.0"
TOXIPROXY_VERSION = "2.12.0"  # the Toxiproxy release whose API this server speaks
API_VERSION = f"{TOXIPROXY_VERSION}+stacklet.{__version__}"
