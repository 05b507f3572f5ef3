"""The engine API over a unix socket: which engines use it, the exec stream, and errors as the CLI's.

The server here is a stand-in for the engine's socket (pure protocol); the real engine is used by
every Docker test on the local engine.
"""

from __future__ import annotations

import json
import socketserver
import struct
import threading
from http.server import BaseHTTPRequestHandler

import pytest

from stacklet.docker.engine_api import EngineApi, demultiplex, local_socket
from stacklet.errors import DockerError, EngineUnavailable


def frame(kind: int, text: str) -> bytes:
    data = text.encode()
    return struct.pack(">BxxxL", kind, len(data)) + data


def test_demultiplex_splits_stdout_and_stderr_frames():
    assert demultiplex(frame(1, "out ") + frame(2, "err") + frame(1, "put")) == ("out put", "err")
    assert demultiplex(b"") == ("", "")


@pytest.mark.parametrize("context, host, env, expected", [
    (None, None, {}, "/var/run/docker.sock"),
    (None, "unix:///run/other.sock", {}, "/run/other.sock"),
    (None, None, {"DOCKER_HOST": "unix:///run/env.sock"}, "/run/env.sock"),
    (None, None, {"DOCKER_HOST": "tcp://10.0.0.1:2375"}, None),
    (None, "ssh://me@box", {}, None),
    ("team", None, {}, None),
    (None, None, {"DOCKER_CONTEXT": "team"}, None),
    (None, None, {"DOCKER_CONTEXT": "default"}, "/var/run/docker.sock"),
])
def test_only_an_engine_on_a_unix_socket_without_a_context_uses_the_api(monkeypatch, tmp_path, context, host, env,
                                                                          expected):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    for name in ("DOCKER_HOST", "DOCKER_CONTEXT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert local_socket(context, host) == expected


def test_a_current_context_of_the_docker_cli_keeps_the_cli(monkeypatch, tmp_path):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "team"}))
    assert local_socket(None, None) is None
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "default"}))
    assert local_socket(None, None) == "/var/run/docker.sock"


class FakeEngine(BaseHTTPRequestHandler):
    """Answers like the engine: an exec that prints and exits 3; 404 and 409 where the engine gives them."""

    def do_GET(self):
        if self.path.startswith("/volumes?"):
            self._send(200, {"Volumes": [{"Name": "v1", "Labels": {"k": "v"}}], "Warnings": None})
        elif self.path.startswith("/networks?"):
            self._send(200, [{"Name": "n1", "Labels": None}])
        elif self.path.startswith("/containers/json"):
            self._send(200, [{"Id": "c1"}])
        elif self.path == "/containers/c1/json":
            self._send(200, {"Id": "c1", "State": {"Status": "running"}})
        elif self.path == "/exec/e1/json":
            self._send(200, {"ExitCode": 3})
        else:
            self._send(404, {"message": "No such container: gone"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path == "/containers/c1/exec":
            assert body["Cmd"] == ["sh", "-c", "exit 3"]
            self._send(201, {"Id": "e1"})
        elif self.path == "/containers/paused/exec":
            self._send(409, {"message": "Container paused is paused, unpause the container before exec"})
        elif self.path == "/containers/c1/start":
            self.send_response(204)
            self.end_headers()
        elif self.path == "/containers/busy/start":
            self._send(500, {"message": "driver failed programming external connectivity: Bind for 0.0.0.0:80 "
                                        "failed: port is already allocated"})
        elif self.path == "/containers/gone/exec":
            self._send(404, {"message": "No such container: gone"})
        elif self.path == "/exec/e1/start":
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.docker.multiplexed-stream")
            self.end_headers()
            self.wfile.write(frame(1, "hello\n") + frame(2, "oops\n"))
            self.close_connection = True
        else:
            self._send(500, {"message": "boom"})

    def _send(self, status: int, document) -> None:
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def api(tmp_path):
    path = str(tmp_path / "engine.sock")
    server = _UnixHTTPServer(path, FakeEngine)
    FakeEngine.client_address = ("local", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield EngineApi(path)
    server.shutdown()
    server.server_close()


def test_list_inspect_and_exec(api):
    assert api.container_ids(["dev.stacklet.slice=s1"]) == ["c1"]
    assert api.inspect("c1")["State"]["Status"] == "running"
    assert api.inspect("gone") is None
    assert api.exec("c1", ["sh", "-c", "exit 3"], timeout_s=5) == (3, "hello\n", "oops\n")
    assert api.labelled("volumes", ["k"]) == {"v1": {"k": "v"}}
    assert api.labelled("networks", []) == {"n1": {}}


def test_exec_in_a_paused_or_missing_container_fails_like_docker_exec(api):
    code, _, stderr = api.exec("paused", ["true"], timeout_s=5)
    assert code == 1 and "is paused" in stderr
    code, _, stderr = api.exec("gone", ["true"], timeout_s=5)
    assert code == 1 and "No such container" in stderr


def test_an_engine_error_is_a_docker_error_and_a_missing_socket_an_unavailable_engine(api, tmp_path):
    with pytest.raises(DockerError, match="docker failed to create an exec") as failed:
        api.exec("other", ["true"], timeout_s=5)
    assert "HTTP 500: boom" in failed.value.details
    with pytest.raises(EngineUnavailable, match="no Docker engine answers at unix://"):
        EngineApi(str(tmp_path / "missing.sock")).container_ids([])


def test_start_and_a_refusal_named_by_the_table_of_docker_errors(api):
    api.act("c1", "start")
    with pytest.raises(DockerError, match="a port is already in use") as refused:
        api.act("busy", "start")
    assert "port is already allocated" in refused.value.details
