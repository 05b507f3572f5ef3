"""Numbers from the command line are bounded where they are read, before any engine is touched."""

from __future__ import annotations

import json
import time

import pytest

from stacklet.cli.app import run_cli
from stacklet.config.stack import MAX_TIMEOUT_S

from ..conftest import REPO_ROOT


@pytest.fixture
def cli(monkeypatch, capsys, compose_cli):
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")  # no engine there: every refusal must come first

    def invoke(*argv: str) -> tuple[int, dict]:
        started = time.perf_counter()
        code = run_cli(list(argv))
        assert time.perf_counter() - started < 30
        return code, json.loads(capsys.readouterr().out)

    return invoke


@pytest.mark.parametrize("command", [["up", "orders", "--stack", "shop"], ["reload", "orders"],
                                     ["baseline", "up", "--stack", "shop"]])
@pytest.mark.parametrize("timeout", ["1000000000000", "0", "-5", str(MAX_TIMEOUT_S + 1)])
def test_timeout_is_bounded_before_anything_is_built(cli, command, timeout):
    code, error = cli(*command, "--timeout", timeout, "--json")
    assert code == 3 and error["error"] == "usage" and "--timeout" in error["message"]


@pytest.mark.parametrize("ttl", ["99999999d", "1000000000000s", "9" * 5000 + "d"], ids=["1e8d", "1e12s", "5000-digits"])
def test_ttl_is_bounded_before_anything_is_built(cli, ttl):
    code, error = cli("up", "orders", "--stack", "shop", "--ttl", ttl, "--json")
    assert code == 3 and error["key"] == "--ttl" and "365d" in error["message"]
    assert len(error["hint"]) < 200
