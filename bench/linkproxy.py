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

With ``--accounting`` it measures instead what the per-link accounting costs, writing
bench/results/linkproxy_accounting.json: the round trip of a kept-alive HTTP request
through proxies with ``protocol: http`` (every request parsed and recorded), ``auto``
(detected as HTTP) and ``tcp`` (no parsing), and the bulk throughput of a non-HTTP link
through this version and through the link proxy of git ``main`` (run side by side).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import http.client
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench" / "results" / "linkproxy.json"
ACCOUNTING_OUT = ROOT / "bench" / "results" / "linkproxy_accounting.json"
HTTP_REQUEST = b"GET /bench/item HTTP/1.1\r\nHost: bench\r\nX-Request-Id: bench-1\r\n\r\n"
HTTP_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
HOST = "127.0.0.1"
MESSAGE = b"m" * 64
TARGETS = {"keepalive_p50_ratio_max": 2.0, "new_connection_p50_ratio_max": 1.8, "throughput_ratio_min": 0.35}
TOXIPROXY_2_12_RATIOS = {"keepalive_p50": 2.2, "new_connection_p50": 2.0, "throughput": 0.22}


# The smallest forwarders that can be written for the same job, measured with --references to
# show where the floor of the ratios lies on the machine: a uvloop one (what any asyncio proxy
# costs at least) and a C epoll one (what the kernel costs). Neither has toxics, an API,
# flow control or error handling; they only make the numbers of the link proxy readable.
C_EPOLL_PROXY = r"""
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
static int peer[65536];
static struct sockaddr_in loopback(int port) {
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET; a.sin_port = htons(port); a.sin_addr.s_addr = htonl(0x7f000001);
  return a;
}
int main(int argc, char **argv) {
  int one = 1, ls = socket(AF_INET, SOCK_STREAM, 0), ep = epoll_create1(0);
  struct sockaddr_in listen_at = loopback(atoi(argv[1])), upstream = loopback(atoi(argv[2]));
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(ls, (void *)&listen_at, sizeof listen_at) || listen(ls, 1024)) return 1;
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls}, events[64];
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  static char buf[262144];
  for (;;) {
    int n = epoll_wait(ep, events, 64, -1);
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      if (fd == ls) {
        int c = accept(ls, 0, 0), u = socket(AF_INET, SOCK_STREAM, 0);
        if (c < 0 || c >= 65536 || u >= 65536 || connect(u, (void *)&upstream, sizeof upstream)) {
          close(c); close(u); continue;
        }
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        peer[c] = u; peer[u] = c;
        struct epoll_event ec = {.events = EPOLLIN, .data.fd = c}, eu = {.events = EPOLLIN, .data.fd = u};
        epoll_ctl(ep, EPOLL_CTL_ADD, c, &ec); epoll_ctl(ep, EPOLL_CTL_ADD, u, &eu);
      } else {
        ssize_t r = read(fd, buf, sizeof buf), off = 0;
        if (r <= 0) { close(peer[fd]); close(fd); continue; }
        while (off < r) { ssize_t w = write(peer[fd], buf + off, r - off); if (w <= 0) break; off += w; }
      }
    }
  }
}
"""


def build_c_proxy(directory: Path) -> Path | None:
    """Compile C_EPOLL_PROXY with the system C compiler; None when there is none."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    source, binary = directory / "epoll_proxy.c", directory / "epoll_proxy"
    source.write_text(C_EPOLL_PROXY)
    built = subprocess.run([compiler, "-O2", "-o", str(binary), str(source)], capture_output=True)
    return binary if built.returncode == 0 else None


# -- servers (run in subprocesses) --------------------------------------------------------


def run_server(role: str, port: int, upstream_port: int = 0) -> None:
    """Serve ``echo`` (write back what is read), ``sink`` (count N bytes, then ack) or
    ``minimal-proxy`` (forward to upstream_port, nothing else) on port."""
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

    class Forward(asyncio.Protocol):
        """One side of the minimal uvloop proxy."""

        def __init__(self, peer=None):
            self.peer, self.transport, self.early = peer, None, []

        def connection_made(self, transport):
            self.transport = transport
            if self.peer is None:  # the client side: dial the upstream
                self.peer = Forward(self)
                asyncio.get_running_loop().create_task(self.dial())

        async def dial(self):
            try:
                await asyncio.get_running_loop().create_connection(lambda: self.peer, HOST, upstream_port)
            except OSError:
                self.transport.close()
                return
            for data in self.early:
                self.peer.transport.write(data)

        def data_received(self, data):
            if self.peer.transport is None:
                self.early.append(data)
            else:
                self.peer.transport.write(data)

        def connection_lost(self, exc):
            if self.peer is not None and self.peer.transport is not None:
                self.peer.transport.close()

    class HttpAnswer(asyncio.Protocol):
        """Answers every request head (no bodies) with HTTP_RESPONSE, kept alive."""

        def connection_made(self, transport):
            self.transport, self.pending = transport, b""

        def data_received(self, data):
            self.pending += data
            count = self.pending.count(b"\r\n\r\n")
            if count:
                self.transport.write(HTTP_RESPONSE * count)
                self.pending = self.pending[self.pending.rfind(b"\r\n\r\n") + 4 :]

    factories = {"echo": Echo, "sink": Sink, "minimal-proxy": Forward, "http": HttpAnswer}

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(factories[role], HOST, port, backlog=1024)
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


def keepalive_rtts(port: int, count: int, deadline: float, message: bytes = MESSAGE, answer_size: int = 0) -> list[float]:
    """Microseconds per round trip of ``message`` (64-byte echo by default) on one kept-alive
    connection; ``answer_size`` is the size of the answer when it is not the message itself."""
    samples = []
    answer_size = answer_size or len(message)
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = bytearray(answer_size)
        view = memoryview(buffer)
        for i in range(count + 50):
            if time.monotonic() > deadline:
                break
            start = time.perf_counter_ns()
            sock.sendall(message)
            got = 0
            while got < answer_size:
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


def start_process(args: list[str], log_dir: Path, name: str, env: dict | None = None) -> subprocess.Popen:
    log = open(log_dir / f"{name}.log", "wb")
    return subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop_processes(processes: list[subprocess.Popen]) -> None:
    """Terminate the benchmark's subprocesses, killing those that do not stop within 5 s."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()


def stats(samples: list[float]) -> dict:
    return {
        "count": len(samples),
        "p50": round(percentile(samples, 0.50), 1),
        "p99": round(percentile(samples, 0.99), 1),
        "mean": round(statistics.fmean(samples), 1),
    }


def summarize(samples: dict[str, list[float]], round_p50s: dict[str, list[float]]) -> dict:
    """Stats per path, each path's p50/p99 ratio to the direct path (all samples pooled), and
    the p50 ratio of each interleaved round (how much the machine moved during the run)."""
    result: dict = {label: stats(values) for label, values in samples.items()}
    direct = result["direct"]
    for label in samples:
        if label != "direct":
            result[label]["ratio_p50"] = round(result[label]["p50"] / direct["p50"], 3)
            result[label]["ratio_p99"] = round(result[label]["p99"] / direct["p99"], 3)
            result[label]["round_ratios_p50"] = [
                round(mine / base, 3) for mine, base in zip(round_p50s[label], round_p50s["direct"])
            ]
    result["ratio_p50"] = result["proxy"]["ratio_p50"]
    result["ratio_p99"] = result["proxy"]["ratio_p99"]
    return result


def benchmark(args: argparse.Namespace, work: Path) -> dict:
    echo_port, sink_port, api_port = free_port(), free_port(), free_port()
    proxy_ports = {name: free_port() for name in ("echo", "sink", "sink_toxic")}
    config = [
        {"name": "echo", "listen": f"{HOST}:{proxy_ports['echo']}", "upstream": f"{HOST}:{echo_port}"},
        {"name": "sink", "listen": f"{HOST}:{proxy_ports['sink']}", "upstream": f"{HOST}:{sink_port}"},
        {"name": "sink_toxic", "listen": f"{HOST}:{proxy_ports['sink_toxic']}", "upstream": f"{HOST}:{sink_port}"},
    ]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    me = [sys.executable, __file__, "--serve"]
    processes = [
        start_process([*me, "echo", str(echo_port)], work, "echo"),
        start_process([*me, "sink", str(sink_port)], work, "sink"),
        start_process([sys.executable, "-m", "stacklet.linkproxy", "--port", str(api_port),
                       "--config-json", json.dumps(config)], work, "linkproxy", env=env),
    ]
    # Paths for the latency measurements (echo) and the throughput ones (sink).
    echo_paths = {"direct": echo_port, "proxy": proxy_ports["echo"]}
    sink_paths = {"direct": sink_port, "proxy": proxy_ports["sink"], "proxy_latency0": proxy_ports["sink_toxic"]}
    references: dict[str, str] = {}
    if args.references:
        for target, paths in ((echo_port, echo_paths), (sink_port, sink_paths)):
            port = free_port()
            processes.append(start_process([*me, "minimal-proxy", str(port), str(target)], work, f"minimal-{port}"))
            paths["uvloop_minimal"] = port
        references["uvloop_minimal"] = "the smallest uvloop forwarder (bench/linkproxy.py --serve minimal-proxy)"
        binary = build_c_proxy(work)
        if binary is None:
            references["c_epoll"] = "skipped: no C compiler"
        else:
            for target, paths in ((echo_port, echo_paths), (sink_port, sink_paths)):
                port = free_port()
                processes.append(start_process([str(binary), str(port), str(target)], work, f"c-{port}"))
                paths["c_epoll"] = port
            references["c_epoll"] = "a 50-line C epoll forwarder, blocking connect (C_EPOLL_PROXY in bench/linkproxy.py)"
    try:
        for port in (api_port, *echo_paths.values(), *sink_paths.values()):
            wait_for_port(port)
        status, body = api(api_port, "POST", "/proxies/sink_toxic/toxics",
                           {"type": "latency", "stream": "upstream", "attributes": {"latency": 0}})
        if status != 200:
            raise RuntimeError(f"cannot add the latency toxic: {status} {body!r}")
        rounds = args.rounds
        deadline = time.monotonic() + args.max_seconds

        keepalive = {label: [] for label in echo_paths}
        keepalive_rounds = {label: [] for label in echo_paths}
        for _ in range(rounds):
            for label, port in echo_paths.items():
                samples = keepalive_rtts(port, args.keepalive // rounds, deadline)
                keepalive[label] += samples
                keepalive_rounds[label].append(percentile(samples, 0.5))

        new_connection = {label: [] for label in echo_paths}
        new_connection_rounds = {label: [] for label in echo_paths}
        for _ in range(rounds):
            for label, port in echo_paths.items():
                samples = new_connection_rtts(port, args.connections // rounds, deadline)
                new_connection[label] += samples
                new_connection_rounds[label].append(percentile(samples, 0.5))

        total = int(args.gib * (1 << 30))
        runs: dict[str, list[float]] = {label: [] for label in sink_paths}
        for _ in range(args.throughput_rounds):
            if time.monotonic() > deadline:
                break
            for label, port in sink_paths.items():
                runs[label].append(round(throughput(port, total, 120), 1))
        best = {label: max(values) for label, values in runs.items()}
    except Exception:
        for log in sorted(work.glob("*.log")):
            print(f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}", file=sys.stderr)
        raise
    finally:
        stop_processes(processes)

    keepalive_result = summarize(keepalive, keepalive_rounds)
    new_connection_result = summarize(new_connection, new_connection_rounds)
    throughput_result = {
        "bytes_per_run": total,
        "runs_mb_s": runs,
        "best_mb_s": best,
        **{f"ratio_{label}": round(best[label] / best["direct"], 3) for label in best if label != "direct"},
        "ratio": round(best["proxy"] / best["direct"], 3),
        "ratio_latency0": round(best["proxy_latency0"] / best["direct"], 3),
    }
    throughput_result.pop("ratio_proxy")
    throughput_result.pop("ratio_proxy_latency0")
    return {
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "uvloop": _uvloop_version(),
            "load_average_at_start": args.load_at_start,
        },
        "method": {
            "rounds": rounds,
            "keepalive_samples": args.keepalive,
            "new_connection_samples": args.connections,
            "throughput_rounds": args.throughput_rounds,
            "note": "latencies in microseconds, paths interleaved in rounds; throughput best of the "
                    "rounds, MB = 10^6 bytes; 'proxy' is the link proxy",
            "references": references,
        },
        "keepalive_rtt_us": keepalive_result,
        "new_connection_rtt_us": new_connection_result,
        "throughput": throughput_result,
        "targets": TARGETS,
        "toxiproxy_2_12_ratios": TOXIPROXY_2_12_RATIOS,
        "targets_met": {
            "keepalive_p50": keepalive_result["ratio_p50"] <= TARGETS["keepalive_p50_ratio_max"],
            "new_connection_p50": new_connection_result["ratio_p50"] <= TARGETS["new_connection_p50_ratio_max"],
            "throughput": throughput_result["ratio"] >= TARGETS["throughput_ratio_min"],
        },
    }


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; clock-tick resolution)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_per_request_us(pid: int, port: int, count: int, deadline: float) -> float:
    """Microseconds of the proxy process's CPU per kept-alive HTTP request through ``port``;
    a machine under load makes wall-clock round trips noisy, CPU time much less so."""
    before = process_cpu_seconds(pid)
    done = len(keepalive_rtts(port, count, deadline, HTTP_REQUEST, len(HTTP_RESPONSE))) + 50
    return round((process_cpu_seconds(pid) - before) / done * 1e6, 1)


def main_branch_linkproxy(work: Path) -> Path | None:
    """The link proxy package of git ``main``, extracted under ``work``; None without git or main."""
    target = work / "main-src"
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "main", "src/stacklet/linkproxy"],
                             capture_output=True)
    if archive.returncode != 0:
        return None
    target.mkdir()
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    (target / "src" / "stacklet" / "__init__.py").write_text("")
    return target / "src"


def accounting_benchmark(args: argparse.Namespace, work: Path) -> dict:
    """Kept-alive HTTP round trips with HTTP accounting on, auto-detected and off; bulk throughput
    of a non-HTTP link through this link proxy and the one of git main, interleaved in rounds."""
    http_port, sink_port, api_port, old_api_port = free_port(), free_port(), free_port(), free_port()
    ports = {name: free_port() for name in ("http_on", "http_auto", "http_off", "sink_auto", "sink_tcp",
                                            "old_http", "old_sink")}

    def entry(name: str, upstream: int, **extra) -> dict:
        return {"name": name, "listen": f"{HOST}:{ports[name]}", "upstream": f"{HOST}:{upstream}", **extra}

    config = [entry("http_on", http_port, protocol="http"), entry("http_auto", http_port),
              entry("http_off", http_port, protocol="tcp"), entry("sink_auto", sink_port),
              entry("sink_tcp", sink_port, protocol="tcp")]
    old_config = [entry("old_http", http_port), entry("old_sink", sink_port)]
    me = [sys.executable, __file__, "--serve"]
    old_src = main_branch_linkproxy(work)
    processes = [
        start_process([*me, "http", str(http_port)], work, "http"),
        start_process([*me, "sink", str(sink_port)], work, "sink"),
        start_process([sys.executable, "-m", "stacklet.linkproxy", "--port", str(api_port),
                       "--config-json", json.dumps(config)], work, "linkproxy",
                      env=dict(os.environ, PYTHONPATH=str(ROOT / "src"))),
    ]
    if old_src is not None:
        processes.append(start_process([sys.executable, "-m", "stacklet.linkproxy", "--port", str(old_api_port),
                                        "--config-json", json.dumps(old_config)], work, "linkproxy-main",
                                       env=dict(os.environ, PYTHONPATH=str(old_src))))
    http_paths = {"direct": http_port, "proxy_http": ports["http_on"], "proxy_auto": ports["http_auto"],
                  "proxy_tcp": ports["http_off"]}
    sink_paths = {"direct": sink_port, "proxy_auto": ports["sink_auto"], "proxy_tcp": ports["sink_tcp"]}
    if old_src is not None:
        http_paths["main_proxy"] = ports["old_http"]
        sink_paths["main_proxy"] = ports["old_sink"]
    try:
        for port in (api_port, *http_paths.values(), *sink_paths.values()):
            wait_for_port(port)
        deadline = time.monotonic() + args.max_seconds
        # bulk first, while both link proxies are fresh; then HTTP
        total = int(args.gib * (1 << 30))
        runs: dict[str, list[float]] = {label: [] for label in sink_paths}
        for index in range(args.throughput_rounds):
            if time.monotonic() > deadline:
                break
            order = list(sink_paths.items())
            for label, port in order[::-1] if index % 2 else order:
                runs[label].append(round(throughput(port, total, 120), 1))
        rtts = {label: [] for label in http_paths}
        rounds_p50 = {label: [] for label in http_paths}
        for index in range(args.rounds):
            order = list(http_paths.items())
            for label, port in order[::-1] if index % 2 else order:  # alternate: no path always goes first
                samples = keepalive_rtts(port, args.keepalive // args.rounds, deadline, HTTP_REQUEST, len(HTTP_RESPONSE))
                rtts[label] += samples
                rounds_p50[label].append(percentile(samples, 0.5))
        proxy_pid = processes[2].pid
        cpu_paths = [("proxy_http", proxy_pid, ports["http_on"]), ("proxy_tcp", proxy_pid, ports["http_off"])]
        if old_src is not None:
            cpu_paths.append(("main_proxy", processes[3].pid, ports["old_http"]))
        cpu = {label: [] for label, _, _ in cpu_paths}
        for _ in range(args.rounds):
            for label, pid, port in cpu_paths:
                cpu[label].append(cpu_per_request_us(pid, port, args.keepalive // args.rounds, deadline))
        status, body = api(api_port, "GET", "/proxies/http_on/requests?since=0&limit=1")
        recorded = json.loads(body)["stats"] if status == 200 else None
    finally:
        stop_processes(processes)
    keepalive = {label: stats(values) for label, values in rtts.items()}
    for label in http_paths:
        if label != "direct":
            keepalive[label]["ratio_p50_to_direct"] = round(keepalive[label]["p50"] / keepalive["direct"]["p50"], 3)
            keepalive[label]["round_p50_over_proxy_tcp"] = [
                round(mine / base, 3) for mine, base in zip(rounds_p50[label], rounds_p50["proxy_tcp"])]
    best = {label: max(values) for label, values in runs.items() if values}
    median = {label: statistics.median(values) for label, values in runs.items() if values}
    return {
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "uvloop": _uvloop_version(),
                    "load_average_at_start": args.load_at_start,
                    "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "method": {
            "rounds": args.rounds, "keepalive_samples_per_path": args.keepalive,
            "throughput_rounds": args.throughput_rounds, "bytes_per_throughput_run": total,
            "http_request": HTTP_REQUEST.decode(), "http_response_bytes": len(HTTP_RESPONSE),
            "paths": {
                "proxy_http": "protocol http: every request parsed and recorded",
                "proxy_auto": "protocol auto: detected as HTTP from the first bytes, then as proxy_http",
                "proxy_tcp": "protocol tcp: no parsing (accounting of connections and bytes only)",
                "main_proxy": "the link proxy of git main (before per-link accounting), same machine, same run",
            },
            "note": "latencies in microseconds; throughput in MB/s (10^6 B), best and median of the rounds; "
                    "paths interleaved, their order reversed every other round",
        },
        "http_keepalive_rtt_us": keepalive,
        "proxy_cpu_us_per_http_request": {label: {"rounds": values, "median": statistics.median(values)}
                                          for label, values in cpu.items()},
        "http_accounting_cpu_us_per_request": round(statistics.median(cpu["proxy_http"])
                                                    - statistics.median(cpu["proxy_tcp"]), 1),
        "http_accounting_overhead_p50_us": round(keepalive["proxy_http"]["p50"] - keepalive["proxy_tcp"]["p50"], 1),
        "http_accounting_overhead_p50_ratio": round(keepalive["proxy_http"]["p50"] / keepalive["proxy_tcp"]["p50"], 3),
        "bulk_throughput": {"runs_mb_s": runs, "best_mb_s": best, "median_mb_s": median,
                            **({"best_this_over_main": round(best["proxy_auto"] / best["main_proxy"], 3),
                                "median_this_over_main": round(median["proxy_auto"] / median["main_proxy"], 3)}
                               if "main_proxy" in best else {})},
        "requests_recorded_on_proxy_http": recorded,
    }


def print_accounting(result: dict) -> None:
    print(f"{'kept-alive HTTP RTT (µs)':28} {'p50':>8} {'p99':>8}")
    for label, values in result["http_keepalive_rtt_us"].items():
        print(f"{label:28} {values['p50']:>8} {values['p99']:>8}")
    print(f"HTTP accounting overhead at p50: {result['http_accounting_overhead_p50_us']} µs "
          f"(x{result['http_accounting_overhead_p50_ratio']} of protocol tcp)")
    print("proxy CPU µs per HTTP request (median of rounds):",
          {label: values["median"] for label, values in result["proxy_cpu_us_per_http_request"].items()})
    print("bulk throughput, best MB/s:", result["bulk_throughput"]["best_mb_s"])
    print("bulk throughput, median MB/s:", result["bulk_throughput"]["median_mb_s"])


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
    for label in ("uvloop_minimal", "c_epoll"):
        if label in ka:
            print(f"reference {label:15} ratios: kept-alive p50 {ka[label]['ratio_p50']}, "
                  f"new-connection p50 {nc[label]['ratio_p50']}, throughput {tp[f'ratio_{label}']}")
    print("targets met:", result["targets_met"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", nargs="+", metavar="ARG", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="small counts, 64 MiB transfers (smoke run)")
    parser.add_argument("--references", action="store_true",
                        help="also measure a minimal uvloop forwarder and a minimal C epoll forwarder")
    parser.add_argument("--keepalive", type=int, default=20000, help="kept-alive round trips per path")
    parser.add_argument("--connections", type=int, default=2000, help="new connections per path")
    parser.add_argument("--gib", type=float, default=1.0, help="GiB per throughput run")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds for latencies")
    parser.add_argument("--throughput-rounds", type=int, default=3)
    parser.add_argument("--max-seconds", type=float, default=240.0, help="time budget of the whole run")
    parser.add_argument("--out", type=Path, default=None, help="results JSON ('-' to skip writing)")
    parser.add_argument("--accounting", action="store_true",
                        help="measure the per-link accounting instead (HTTP on/off, this version vs git main)")
    args = parser.parse_args()
    if args.serve:
        run_server(args.serve[0], int(args.serve[1]), int(args.serve[2]) if len(args.serve) > 2 else 0)
        return 0
    if args.quick:
        args.keepalive, args.connections, args.gib, args.throughput_rounds = 2000, 200, 1 / 16, 1
    args.load_at_start = [round(x, 2) for x in os.getloadavg()]
    if args.accounting:
        with tempfile.TemporaryDirectory(prefix="linkproxy-bench-") as work:
            result = accounting_benchmark(args, Path(work))
        print_accounting(result)
        out = args.out or ACCOUNTING_OUT
        if str(out) != "-":
            out.write_text(json.dumps(result, indent=2) + "\n")
            print(f"wrote {out}")
        return 0
    args.out = args.out or DEFAULT_OUT
    with tempfile.TemporaryDirectory(prefix="linkproxy-bench-") as work:
        result = benchmark(args, Path(work))
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
