"""Link proxy benchmark: direct connections vs through the link proxy, side by side.

    .venv/bin/python bench/linkproxy.py [--quick] [--gib 1] [--out bench/results/linkproxy.json]

Starts, as subprocesses, a uvloop echo server, a uvloop sink server and the link proxy
(`python -m stacklet.linkproxy`, with this interpreter), then measures in one run, in
interleaved rounds so both paths see the same machine state:

  (a) round trip of a 64-byte echo on a kept-alive connection (p50, p99)
  (b) new-connection round trip: connect, 64-byte echo, close (p50)
  (c) bulk throughput in MB/s (1 MB = 10^6 B) for 1 GiB, through the proxy with no toxic
      and with a 0 ms latency toxic (the toxic path)

Prints a table and writes the raw numbers and the proxy/direct ratios to the JSON file
(keeping its "image" section, written by bench/linkproxy_image.py). Every loop is bounded
in count and in time.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench" / "results" / "linkproxy.json"
HOST = "127.0.0.1"
MESSAGE = b"m" * 64
TARGETS = {"keepalive_p50_ratio_max": 2.0, "new_connection_p50_ratio_max": 1.8, "throughput_ratio_min": 0.35}
TOXIPROXY_2_12_RATIOS = {"keepalive_p50": 2.2, "new_connection_p50": 2.0, "throughput": 0.22}


# -- servers (run in subprocesses) --------------------------------------------------------


def run_server(role: str, port: int) -> None:
    """Serve ``echo`` (write back what is read) or ``sink`` (count N bytes, then ack) on port."""
    try:
        import uvloop

        new_loop = uvloop.new_event_loop
    except ImportError:
        new_loop = asyncio.new_event_loop

    class Echo(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            self.transport.write(data)

    class Sink(asyncio.BufferedProtocol):
        """First 8 bytes: big-endian length N; after N more bytes, reply b"k"."""

        def connection_made(self, transport):
            self.transport = transport
            self.buffer = bytearray(1 << 20)
            self.view = memoryview(self.buffer)
            self.header = b""
            self.remaining = None

        def get_buffer(self, sizehint):
            return self.view

        def buffer_updated(self, nbytes):
            if self.remaining is None:
                need = 8 - len(self.header)
                self.header += bytes(self.view[: min(need, nbytes)])
                extra = nbytes - min(need, nbytes)
                if len(self.header) < 8:
                    return
                self.remaining = int.from_bytes(self.header, "big") - extra
            else:
                self.remaining -= nbytes
            if self.remaining <= 0:
                self.transport.write(b"k")
                self.remaining = None
                self.header = b""

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Echo if role == "echo" else Sink, HOST, port, backlog=1024)
        await server.serve_forever()

    with asyncio.Runner(loop_factory=new_loop) as runner:
        runner.run(main())


# -- helpers --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, deadline_s: float = 10.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {HOST}:{port} after {deadline_s} s")


def api(port: int, method: str, path: str, body: object | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        payload = None if body is None else json.dumps(body)
        conn.request(method, path, payload, {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- measurements ---------------------------------------------------------------------------


def keepalive_rtts(port: int, count: int, deadline: float) -> list[float]:
    """Microseconds per 64-byte echo on one kept-alive connection."""
    samples = []
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = bytearray(len(MESSAGE))
        view = memoryview(buffer)
        for i in range(count + 50):
            if time.monotonic() > deadline:
                break
            start = time.perf_counter_ns()
            sock.sendall(MESSAGE)
            got = 0
            while got < len(MESSAGE):
                n = sock.recv_into(view[got:])
                if not n:
                    raise RuntimeError("echo connection closed")
                got += n
            if i >= 50:  # warm-up
                samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


def new_connection_rtts(port: int, count: int, deadline: float) -> list[float]:
    """Microseconds for connect + 64-byte echo on a new connection (close not counted)."""
    samples = []
    buffer = bytearray(len(MESSAGE))
    for _ in range(count):
        if time.monotonic() > deadline:
            break
        start = time.perf_counter_ns()
        sock = socket.create_connection((HOST, port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(MESSAGE)
        got = 0
        while got < len(MESSAGE):
            n = sock.recv_into(memoryview(buffer)[got:])
            if not n:
                raise RuntimeError("echo connection closed")
            got += n
        samples.append((time.perf_counter_ns() - start) / 1000)
        sock.close()
    return samples


def throughput(port: int, total: int, timeout_s: float) -> float:
    """MB/s to push ``total`` bytes to the sink and get its acknowledgement."""
    block = memoryview(b"\0" * (1 << 20))
    with socket.create_connection((HOST, port), timeout=timeout_s) as sock:
        start = time.perf_counter()
        sock.sendall(total.to_bytes(8, "big"))
        left = total
        while left > 0:
            size = min(left, len(block))
            sock.sendall(block[:size])
            left -= size
        if sock.recv(1) != b"k":
            raise RuntimeError("sink did not acknowledge")
        elapsed = time.perf_counter() - start
    return total / elapsed / 1e6


# -- main -----------------------------------------------------------------------------------


def start_process(args: list[str], env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def summarize(direct: list[float], proxied: list[float]) -> dict:
    result = {}
    for label, samples in (("direct", direct), ("proxy", proxied)):
        result[label] = {
            "count": len(samples),
            "p50": round(percentile(samples, 0.50), 1),
            "p99": round(percentile(samples, 0.99), 1),
            "mean": round(statistics.fmean(samples), 1),
        }
    result["ratio_p50"] = round(result["proxy"]["p50"] / result["direct"]["p50"], 3)
    result["ratio_p99"] = round(result["proxy"]["p99"] / result["direct"]["p99"], 3)
    return result


def benchmark(args: argparse.Namespace) -> dict:
    echo_port, sink_port, api_port = free_port(), free_port(), free_port()
    proxy_ports = {name: free_port() for name in ("echo", "sink", "sink_toxic")}
    config = [
        {"name": "echo", "listen": f"{HOST}:{proxy_ports['echo']}", "upstream": f"{HOST}:{echo_port}"},
        {"name": "sink", "listen": f"{HOST}:{proxy_ports['sink']}", "upstream": f"{HOST}:{sink_port}"},
        {"name": "sink_toxic", "listen": f"{HOST}:{proxy_ports['sink_toxic']}", "upstream": f"{HOST}:{sink_port}"},
    ]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    processes = [
        start_process([sys.executable, __file__, "--serve", "echo", str(echo_port)]),
        start_process([sys.executable, __file__, "--serve", "sink", str(sink_port)]),
        start_process(
            [sys.executable, "-m", "stacklet.linkproxy", "--port", str(api_port), "--config-json", json.dumps(config)],
            env=env,
        ),
    ]
    try:
        for port in (echo_port, sink_port, api_port, *proxy_ports.values()):
            wait_for_port(port)
        status, body = api(api_port, "POST", "/proxies/sink_toxic/toxics",
                           {"type": "latency", "stream": "upstream", "attributes": {"latency": 0}})
        if status != 200:
            raise RuntimeError(f"cannot add the latency toxic: {status} {body!r}")
        rounds = args.rounds
        deadline = time.monotonic() + args.max_seconds

        direct_ka, proxy_ka = [], []
        for _ in range(rounds):
            per_round = args.keepalive // rounds
            direct_ka += keepalive_rtts(echo_port, per_round, deadline)
            proxy_ka += keepalive_rtts(proxy_ports["echo"], per_round, deadline)

        direct_nc, proxy_nc = [], []
        for _ in range(rounds):
            per_round = args.connections // rounds
            direct_nc += new_connection_rtts(echo_port, per_round, deadline)
            proxy_nc += new_connection_rtts(proxy_ports["echo"], per_round, deadline)

        total = int(args.gib * (1 << 30))
        runs: dict[str, list[float]] = {"direct": [], "proxy": [], "proxy_latency0": []}
        for _ in range(args.throughput_rounds):
            if time.monotonic() > deadline:
                break
            runs["direct"].append(round(throughput(sink_port, total, 120), 1))
            runs["proxy"].append(round(throughput(proxy_ports["sink"], total, 120), 1))
            runs["proxy_latency0"].append(round(throughput(proxy_ports["sink_toxic"], total, 120), 1))
        best = {label: max(values) for label, values in runs.items()}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()

    keepalive = summarize(direct_ka, proxy_ka)
    new_connection = summarize(direct_nc, proxy_nc)
    throughput_result = {
        "bytes_per_run": total,
        "runs_mb_s": runs,
        "best_mb_s": best,
        "ratio": round(best["proxy"] / best["direct"], 3),
        "ratio_latency0": round(best["proxy_latency0"] / best["direct"], 3),
    }
    return {
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "uvloop": _uvloop_version(),
        },
        "method": {
            "rounds": rounds,
            "keepalive_samples": args.keepalive,
            "new_connection_samples": args.connections,
            "throughput_rounds": args.throughput_rounds,
            "note": "latencies in microseconds; throughput best of the rounds, MB = 10^6 bytes",
        },
        "keepalive_rtt_us": keepalive,
        "new_connection_rtt_us": new_connection,
        "throughput": throughput_result,
        "targets": TARGETS,
        "toxiproxy_2_12_ratios": TOXIPROXY_2_12_RATIOS,
        "targets_met": {
            "keepalive_p50": keepalive["ratio_p50"] <= TARGETS["keepalive_p50_ratio_max"],
            "new_connection_p50": new_connection["ratio_p50"] <= TARGETS["new_connection_p50_ratio_max"],
            "throughput": throughput_result["ratio"] >= TARGETS["throughput_ratio_min"],
        },
    }


def _uvloop_version() -> str | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.__version__


def print_table(result: dict) -> None:
    ka, nc, tp = result["keepalive_rtt_us"], result["new_connection_rtt_us"], result["throughput"]
    rows = [
        ("kept-alive RTT p50 (µs)", ka["direct"]["p50"], ka["proxy"]["p50"], ka["ratio_p50"], "<= 2.0"),
        ("kept-alive RTT p99 (µs)", ka["direct"]["p99"], ka["proxy"]["p99"], ka["ratio_p99"], ""),
        ("new-connection RTT p50 (µs)", nc["direct"]["p50"], nc["proxy"]["p50"], nc["ratio_p50"], "<= 1.8"),
        ("new-connection RTT p99 (µs)", nc["direct"]["p99"], nc["proxy"]["p99"], nc["ratio_p99"], ""),
        ("throughput (MB/s)", tp["best_mb_s"]["direct"], tp["best_mb_s"]["proxy"], tp["ratio"], ">= 0.35"),
        ("throughput, 0 ms latency toxic (MB/s)", tp["best_mb_s"]["direct"], tp["best_mb_s"]["proxy_latency0"],
         tp["ratio_latency0"], ""),
    ]
    print(f"{'measure':40} {'direct':>10} {'proxy':>10} {'ratio':>7}  target")
    for name, direct, proxied, ratio, target in rows:
        print(f"{name:40} {direct:>10} {proxied:>10} {ratio:>7}  {target}")
    print("targets met:", result["targets_met"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", nargs=2, metavar=("ROLE", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="small counts, 64 MiB transfers (smoke run)")
    parser.add_argument("--keepalive", type=int, default=20000, help="kept-alive round trips per path")
    parser.add_argument("--connections", type=int, default=2000, help="new connections per path")
    parser.add_argument("--gib", type=float, default=1.0, help="GiB per throughput run")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds for latencies")
    parser.add_argument("--throughput-rounds", type=int, default=3)
    parser.add_argument("--max-seconds", type=float, default=240.0, help="time budget of the whole run")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results JSON ('-' to skip writing)")
    args = parser.parse_args()
    if args.serve:
        run_server(args.serve[0], int(args.serve[1]))
        return 0
    if args.quick:
        args.keepalive, args.connections, args.gib, args.throughput_rounds = 2000, 200, 1 / 16, 1
    result = benchmark(args)
    print_table(result)
    if str(args.out) != "-":
        previous = json.loads(args.out.read_text()) if args.out.exists() else {}
        if "image" in previous:
            result["image"] = previous["image"]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
