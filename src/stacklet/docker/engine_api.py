"""The local engine's HTTP API over its unix socket, for the calls a boot makes many times a second.

A docker CLI call is a process: 40 ms on an idle host, several hundred under load. A boot polls the
state of its containers every 0.1 s and runs their healthcheck commands on demand, and every command
lists a slice's containers, so listing, inspecting and running a command in a container go to the
engine's socket directly (about 1 ms each). Hand-written over ``http.client``: the Docker SDK would
add its import time to every command and a second model of the engine's objects, for four endpoints.

Only an engine reached through a unix socket without a context uses it (no ``--context``, no
``DOCKER_CONTEXT``, no current context in the docker CLI's config); tcp, ssh and contexts keep the CLI.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import struct
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlencode

from stacklet.docker.errors import ENGINE_HINT, docker_error
from stacklet.errors import DockerError, EngineUnavailable

DEFAULT_SOCKET = "/var/run/docker.sock"
REQUEST_TIMEOUT_S = 60
_HEADER = struct.Struct(">BxxxL")  # the multiplexed stream's frame header: stream (1 stdout, 2 stderr), size


class _UnixConnection(http.client.HTTPConnection):
    """An HTTP connection to a unix socket (http.client speaks only TCP)."""

    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def local_socket(context: str | None, host: str | None) -> str | None:
    """The unix socket of the engine the docker CLI would use for ``context``/``host``, when it is one
    reached without a context; else None (the CLI is used)."""
    if context or os.environ.get("DOCKER_CONTEXT") not in (None, "", "default") or _current_context():
        return None
    url = host or os.environ.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}"
    return url.removeprefix("unix://") if url.startswith("unix://") else None


def _current_context() -> str | None:
    """The docker CLI's current context (``docker context use``), unless it is ``default``."""
    folder = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    try:
        current = json.loads((folder / "config.json").read_text()).get("currentContext")
    except (OSError, ValueError, AttributeError):
        return None
    return current if current and current != "default" else None


class EngineApi:
    """The engine API at one unix socket."""

    def __init__(self, socket_path: str):
        self.socket_path = socket_path

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket_path}"

    def container_ids(self, label_filters: list[str]) -> list[str]:
        """Ids of the containers (running or not) carrying every ``key`` or ``key=value`` of ``label_filters``."""
        query = urlencode({"all": "1", "filters": json.dumps({"label": label_filters} if label_filters else {})})
        return [c["Id"] for c in self._json("GET", f"/containers/json?{query}", "list containers")]

    def labelled(self, kind: Literal["networks", "volumes"], label_filters: list[str]) -> dict[str, dict[str, str]]:
        """Networks or volumes carrying every ``key`` or ``key=value`` of ``label_filters``: name -> labels."""
        query = urlencode({"filters": json.dumps({"label": label_filters} if label_filters else {})})
        found = self._json("GET", f"/{kind}?{query}", f"list {kind}")
        items = ((found or {}).get("Volumes") or []) if kind == "volumes" else (found or [])
        return {item["Name"]: dict(item.get("Labels") or {}) for item in items}

    def inspect(self, container_id: str) -> dict[str, Any] | None:
        """``docker inspect`` of one container, or None when it does not exist."""
        status, body = self._request("GET", f"/containers/{quote(container_id)}/json", "inspect a container")
        if status == 404:
            return None
        return self._decoded(status, body, "inspect a container")

    def act(self, container_id: str, action: Literal["start", "pause", "unpause"]) -> None:
        """``docker start|pause|unpause`` of one container (starting a running one is fine)."""
        self._json("POST", f"/containers/{quote(container_id)}/{action}", f"{action} container {container_id[:12]}")

    def exec(self, container_id: str, argv: list[str], timeout_s: float) -> tuple[int, str, str]:
        """Run ``argv`` in a container and wait: (exit code, stdout, stderr). A container that is missing,
        paused or stopped gives exit code 1 and the engine's message, as ``docker exec`` does."""
        status, body = self._request("POST", f"/containers/{quote(container_id)}/exec", "create an exec",
                                     {"AttachStdout": True, "AttachStderr": True, "Cmd": argv})
        if status in (404, 409):
            return 1, "", f"Error response from daemon: {_message(body)}\n"
        exec_id = self._decoded(status, body, "create an exec")["Id"]
        status, body = self._request("POST", f"/exec/{exec_id}/start", "start an exec",
                                     {"Detach": False, "Tty": False}, timeout_s=timeout_s)
        if status in (404, 409):
            return 1, "", f"Error response from daemon: {_message(body)}\n"
        if status >= 400:
            self._decoded(status, body, "start an exec")
        stdout, stderr = demultiplex(body)
        code = self._json("GET", f"/exec/{exec_id}/json", "read an exec's exit code").get("ExitCode")
        return (code if isinstance(code, int) else 126), stdout, stderr

    def _json(self, method: str, path: str, what: str, body: dict | None = None) -> Any:
        return self._decoded(*self._request(method, path, what, body), what)

    def _decoded(self, status: int, body: bytes, what: str) -> Any:
        """The JSON of an answer; a refusal is the DockerError of docker/errors.py's table, as from the CLI."""
        if status >= 400:
            raise docker_error(what, f"HTTP {status}: {_message(body)}", self.endpoint, hint=ENGINE_HINT)
        try:
            return json.loads(body or b"null")
        except ValueError as exc:
            raise DockerError(f"docker failed to {what}: the engine answered with something other than JSON",
                              hint=ENGINE_HINT) from exc

    def _request(self, method: str, path: str, what: str, body: dict | None = None,
                 timeout_s: float = REQUEST_TIMEOUT_S) -> tuple[int, bytes]:
        connection = _UnixConnection(self.socket_path, timeout_s)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            connection.request(method, path, body=payload,
                               headers={"Content-Type": "application/json"} if payload is not None else {})
            response = connection.getresponse()
            return response.status, response.read()
        except (FileNotFoundError, ConnectionRefusedError, PermissionError) as exc:
            raise EngineUnavailable(f"no Docker engine answers at {self.endpoint} ({exc.strerror or exc})",
                                    hint=ENGINE_HINT) from exc
        except (TimeoutError, socket.timeout) as exc:
            raise DockerError(f"docker did not {what} within {timeout_s:.0f} s", hint=ENGINE_HINT) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise DockerError(f"docker failed to {what}: {exc}", hint=ENGINE_HINT) from exc
        finally:
            connection.close()


def demultiplex(stream: bytes) -> tuple[str, str]:
    """stdout and stderr of a non-TTY exec's multiplexed stream (8-byte header per frame)."""
    out, err = bytearray(), bytearray()
    offset = 0
    while offset + _HEADER.size <= len(stream):
        kind, size = _HEADER.unpack_from(stream, offset)
        offset += _HEADER.size
        (err if kind == 2 else out).extend(stream[offset:offset + size])
        offset += size
    return out.decode(errors="replace"), err.decode(errors="replace")


def _message(body: bytes) -> str:
    try:
        return str(json.loads(body).get("message", "")).strip() or body.decode(errors="replace").strip()
    except (ValueError, AttributeError):
        return body.decode(errors="replace").strip()
