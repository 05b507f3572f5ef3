"""Byte counters and their Prometheus text exposition.

Counters are plain objects incremented by the data path as bytes move, so a scrape shows
live numbers (Toxiproxy v2.12 only adds a connection's bytes when it ends).
"""

from __future__ import annotations

from typing import Iterable

from .accounting import ProxyStats


class ByteCounter:
    """Bytes received from the source and sent to the sink, for one proxy and direction."""

    __slots__ = ("received", "sent")

    def __init__(self) -> None:
        self.received = 0
        self.sent = 0


class ProxyGauges:
    """Point-in-time numbers of one proxy, read at scrape time."""

    __slots__ = ("proxy", "connections", "fast_links", "toxic_links")

    def __init__(self, proxy: str, connections: int, fast_links: int, toxic_links: int):
        self.proxy = proxy
        self.connections = connections
        self.fast_links = fast_links
        self.toxic_links = toxic_links


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items())) + "}"


class Metrics:
    """Counters keyed like Toxiproxy's: direction, listener, proxy, upstream."""

    def __init__(self) -> None:
        self._counters: dict[tuple[str, str, str, str], ByteCounter] = {}
        self._stats: dict[str, ProxyStats] = {}

    def new_stats(self, proxy: str) -> ProxyStats:
        """Fresh accounting for a proxy being created; it replaces a deleted namesake's in /metrics."""
        stats = self._stats[proxy] = ProxyStats()
        return stats

    def counter(self, proxy: str, listener: str, upstream: str, direction: str) -> ByteCounter:
        """The (shared, created on first use) counter for one label set."""
        key = (proxy, listener, upstream, direction)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = ByteCounter()
        return counter

    def render(self, gauges: Iterable[ProxyGauges]) -> str:
        """Prometheus text format 0.0.4."""
        received = []
        sent = []
        for (proxy, listener, upstream, direction), counter in sorted(self._counters.items()):
            labels = _labels(direction=direction, listener=listener, proxy=proxy, upstream=upstream)
            received.append(f"toxiproxy_proxy_received_bytes_total{labels} {counter.received}")
            sent.append(f"toxiproxy_proxy_sent_bytes_total{labels} {counter.sent}")
        lines = [
            "# HELP toxiproxy_proxy_received_bytes_total Bytes read from the source, per proxy and direction.",
            "# TYPE toxiproxy_proxy_received_bytes_total counter",
            *received,
            "# HELP toxiproxy_proxy_sent_bytes_total Bytes written to the sink, per proxy and direction.",
            "# TYPE toxiproxy_proxy_sent_bytes_total counter",
            *sent,
        ]
        gauges = sorted(gauges, key=lambda g: g.proxy)
        lines += [
            "# HELP linkproxy_connections Open client connections per proxy.",
            "# TYPE linkproxy_connections gauge",
            *(f"linkproxy_connections{_labels(proxy=g.proxy)} {g.connections}" for g in gauges),
            "# HELP linkproxy_links Links (one direction of a connection) on the fast path or the toxic path.",
            "# TYPE linkproxy_links gauge",
        ]
        for g in gauges:
            lines.append(f"linkproxy_links{_labels(path='fast', proxy=g.proxy)} {g.fast_links}")
            lines.append(f"linkproxy_links{_labels(path='toxic', proxy=g.proxy)} {g.toxic_links}")
        stats = sorted(self._stats.items())
        lines += [
            "# HELP linkproxy_dial_failures_total Client connections closed because the upstream could not be dialled.",
            "# TYPE linkproxy_dial_failures_total counter",
            *(f"linkproxy_dial_failures_total{_labels(proxy=name)} {s.connect_failures}" for name, s in stats),
        ]
        lines += _stats_lines(stats)
        return "\n".join(lines) + "\n"


def _counter_lines(name: str, help_text: str, samples: list[tuple[dict[str, str], int]]) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} counter",
            *(f"{name}{_labels(**labels)} {value}" for labels, value in samples)]


def _stats_lines(stats: list[tuple[str, ProxyStats]]) -> list[str]:
    """The accounting counters of every proxy name seen, deleted ones included."""
    lines = _counter_lines("linkproxy_connections_total", "Client connections accepted.",
                           [({"proxy": name}, s.connections_total) for name, s in stats])
    lines += _counter_lines("linkproxy_resets_total", "Connections ended by a TCP reset (a peer's or a reset_peer toxic's).",
                            [({"proxy": name}, s.resets) for name, s in stats])
    lines += _counter_lines("linkproxy_http_connections_total", "Connections parsed as HTTP/1.x.",
                            [({"proxy": name}, s.http_connections) for name, s in stats])
    lines += _counter_lines("linkproxy_http_requests_total", "HTTP requests seen, answered or not.",
                            [({"proxy": name}, s.requests) for name, s in stats])
    responses = []
    for name, s in stats:
        responses += [({"class": f"{n}xx", "proxy": name}, s.status_classes[n]) for n in range(1, 6)]
        responses.append(({"class": "none", "proxy": name}, s.no_response))
    lines += _counter_lines("linkproxy_http_responses_total",
                            "HTTP responses by status class; class none: the connection ended first.", responses)
    lines += _counter_lines("linkproxy_http_faults_total", "HTTP requests answered by an HTTP toxic.",
                            [({"proxy": name}, s.faults) for name, s in stats])
    return lines
