"""Where a client reaches what an engine publishes: loopback, the engine's advertise address, or an ssh forward.

A slice on the local engine publishes on 127.0.0.1. A slice on another host's engine publishes on
that host's advertise address (an address the client reaches), or, for an ``ssh://`` engine, on
that host's loopback; then stacklet opens a local forward for each published port through one
ssh master connection (OpenSSH ``ControlMaster``), and closes them when the slice goes.

Hand-written over paramiko/sshtunnel on purpose: a forward must outlive the stacklet process that
opened it (the endpoints are used after ``up`` returns), which a tunnel thread in this process
cannot do, and the ssh client reuses the user's own ssh config, agent and known_hosts, exactly as
Docker's own ``ssh://`` connection helper does.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

from stacklet.docker.errors import SSH_HINT
from stacklet.errors import EngineUnavailable

LOOPBACK = {"127.0.0.1", "::1", "localhost"}
WILDCARD = {"", "0.0.0.0", "::"}
SSH_TIMEOUT_S = 30


def remote_tcp_host(host: str | None) -> str | None:
    """The host name of a ``tcp://`` engine on another machine (None for sockets, ssh and loopback)."""
    if not host or not host.startswith("tcp://"):
        return None
    name = urlsplit(host).hostname
    return None if not name or name in LOOPBACK else name


def reach_address(host_ip: str, host_port: int, advertise: str | None, forwards: "SshForwards | None") -> str:
    """``host:port`` from which the client reaches ``host_port``, published by the engine on ``host_ip``.

    A specific address is reached as it is; the engine's loopback through a local ssh forward (ssh
    engines); every address of the engine's host through its advertise address; else the loopback here.
    """
    if host_ip not in LOOPBACK | WILDCARD:
        return f"{host_ip}:{host_port}"
    if forwards is not None:
        return f"127.0.0.1:{forwards.forward(host_port)}"
    if advertise and host_ip in WILDCARD:
        return f"{advertise}:{host_port}"
    return f"127.0.0.1:{host_port}"


def free_local_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now (the kernel's pick)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def ssh_destination(url: str) -> list[str]:
    """ssh arguments naming the host of an ``ssh://[user@]host[:port]`` engine URL."""
    parts = urlsplit(url)
    if parts.scheme != "ssh" or not parts.hostname:
        raise ValueError(f"not an ssh:// engine URL: {url!r}")
    target = f"{parts.username}@{parts.hostname}" if parts.username else parts.hostname
    return [*(["-p", str(parts.port)] if parts.port else []), "--", target]


def forwards_dir() -> Path:
    """Where the ssh master sockets and the forward tables live: ``$XDG_RUNTIME_DIR/stacklet`` or ~/.cache."""
    base = os.environ.get("XDG_RUNTIME_DIR") or str(Path.home() / ".cache")
    return Path(base) / "stacklet" / "ssh"


class SshForwards:
    """Local forwards to one ssh engine's loopback ports, over one master connection kept by ssh itself.

    The table of open forwards (engine port -> local port) is a JSON file next to the master's
    socket, so every stacklet process on this machine finds and reuses the same forwards. Each change
    to it (read, ssh, write) holds a lock on its directory, so concurrent processes lose no entry.
    """

    def __init__(self, url: str, run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
                 directory: Path | None = None, is_listening: Callable[[int], bool] = listening):
        self.url = url
        self.destination = ssh_destination(url)
        self.run = run
        self.is_listening = is_listening
        directory = directory or forwards_dir()
        digest = hashlib.sha256(url.encode()).hexdigest()[:16]
        self.socket = directory / f"{digest}.sock"
        self.table_file = directory / f"{digest}.json"

    def forward(self, engine_port: int) -> int:
        """The local port forwarded to ``engine_port`` on the engine's loopback (opened when missing)."""
        with self._locked():
            table = self.table()
            local = table.get(engine_port)
            if local and self.is_listening(local):
                return local
            self._master()
            local = free_local_port()
            self._ssh("-O", "forward", "-L", f"127.0.0.1:{local}:127.0.0.1:{engine_port}")
            table[engine_port] = local
            self._save(table)
            return local

    def close(self, engine_ports: list[int], published: Callable[[], set[int]] | None = None) -> None:
        """Cancel the forwards of ``engine_ports``, and of every engine port not in ``published()`` (a recreated
        container publishes a new port: the old one's forward would outlive its slice); the master exits, and
        the table goes, once no forward is left. ``published`` is read under the lock, so after every forward
        in the table was opened."""
        with self._locked():
            table = self.table()
            gone = set(engine_ports)
            if published is not None and table:
                still = published()
                gone |= {port for port in table if port not in still}
            for port in sorted(gone):
                local = table.pop(port, None)
                if local:
                    self._ssh("-O", "cancel", "-L", f"127.0.0.1:{local}:127.0.0.1:{port}", check=False)
            self._save(table)
            if not table:
                self._ssh("-O", "exit", check=False)

    def table(self) -> dict[int, int]:
        """The forwards open now: engine port -> local port."""
        try:
            return {int(k): int(v) for k, v in json.loads(self.table_file.read_text()).items()}
        except (OSError, ValueError):
            return {}

    def _save(self, table: dict[int, int]) -> None:
        if not table:
            self.table_file.unlink(missing_ok=True)
            return
        scratch = self.table_file.with_suffix(".json.new")
        scratch.write_text(json.dumps({str(k): v for k, v in sorted(table.items())}))
        scratch.replace(self.table_file)  # readers without the lock never see half a table

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the lock of the forwards' directory (flock: released by the kernel even if this process dies;
        hand-written because it is five lines and filelock is not a dependency)."""
        self.table_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(self.table_file.parent, os.O_RDONLY)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)

    def _master(self) -> None:
        if self._ssh("-O", "check", check=False).returncode == 0:
            return
        self._ssh("-M", "-N", "-f", "-o", "ControlPersist=yes", "-o", "ExitOnForwardFailure=yes",
                  "-o", "BatchMode=yes")

    def _ssh(self, *options: str, check: bool = True) -> subprocess.CompletedProcess:
        command = ["ssh", "-S", str(self.socket), *options, *self.destination]
        try:
            done = self.run(command, capture_output=True, text=True, timeout=SSH_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EngineUnavailable(f"ssh to {self.url} failed: {exc}", hint=SSH_HINT) from exc
        if check and done.returncode != 0:
            raise EngineUnavailable(f"ssh to {self.url} failed to {' '.join(options[:2])}", hint=SSH_HINT,
                                    details=(done.stderr or "").strip())
        return done
