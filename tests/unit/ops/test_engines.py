"""Several engines in the command layer: `ls` over every listed engine (one that does not answer is reported,
not fatal), and `up --engine` choosing one (no Docker daemon needed)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from stacklet.cli.app import app
from stacklet.docker.remote import require_answers, silent_addresses
from stacklet.errors import ConfigError, EngineUnavailable
from stacklet.ops import engines
from stacklet.ops.session import Session
from stacklet.planning.placement import EngineLoad
from stacklet.runtime.status import SliceSummary

SILENT = "unix:///nonexistent/teambox.sock"


def summary(name: str) -> SliceSummary:
    return SliceSummary(name=name, stack="shop", changed=["orders"], created=None, age_s=None, containers=3,
                        running=3, healthy=True)


def test_ls_reports_an_engine_that_does_not_answer_and_lists_the_others(monkeypatch):
    monkeypatch.setenv("STACKLET_ENGINES", f"default,{SILENT}")
    monkeypatch.setattr(engines, "session_for", lambda session, spec: FakeSession(spec.engine))
    result = CliRunner().invoke(app, ["ls", "--json"])
    assert result.exit_code == 0, result.output
    listing = json.loads(result.stdout)
    assert listing["ok"] and [(s["name"], s["engine"]) for s in listing["slices"]] == [("rm-a", "default")]
    assert listing["engines"][0] == {"engine": "default", "ok": True, "slices": 1, "error": None}
    assert listing["engines"][1]["engine"] == SILENT and not listing["engines"][1]["ok"]
    assert "no Docker engine answers" in listing["engines"][1]["error"]


def test_ls_text_says_which_engine_did_not_answer(monkeypatch):
    monkeypatch.setenv("STACKLET_ENGINES", f"default,{SILENT}")
    monkeypatch.setattr(engines, "session_for", lambda session, spec: FakeSession(spec.engine))
    result = CliRunner().invoke(app, ["ls"])
    assert result.exit_code == 0 and "rm-a" in result.stdout
    assert f"engine {SILENT} does not answer" in result.output


def test_the_session_engine_is_listed_first_when_not_configured(monkeypatch):
    monkeypatch.setenv("STACKLET_ENGINES", "tcp://10.250.0.2:2375=10.250.0.2")
    listed = engines.listed_engines(Session(host="ssh://me@box"))
    assert [e.engine for e in listed] == ["ssh://me@box", "tcp://10.250.0.2:2375"]
    other = engines.session_for(Session(), listed[1])
    assert (other.host, other.advertise) == ("tcp://10.250.0.2:2375", "10.250.0.2")


def test_auto_needs_engines_to_choose_from(monkeypatch):
    monkeypatch.setenv("STACKLET_ENGINES", "default")
    with pytest.raises(ConfigError, match="--engine auto needs the engines"):
        engines.choose_engine(Session(), "auto")


def test_auto_places_on_the_engine_the_rule_picks(monkeypatch):
    monkeypatch.setenv("STACKLET_ENGINES", "default,tcp://10.250.0.2:2375=10.250.0.2")
    loads = {"default": EngineLoad(engine="default", answered=True, running_slices=2, free_memory_bytes=8 << 30),
             "tcp://10.250.0.2:2375": EngineLoad(engine="tcp://10.250.0.2:2375", answered=True, running_slices=0,
                                                 free_memory_bytes=1 << 30)}
    monkeypatch.setattr(engines, "engine_load", lambda session, spec: loads[spec.engine])
    chosen, placement = engines.choose_engine(Session(), "auto")
    assert chosen.host == "tcp://10.250.0.2:2375" and chosen.advertise == "10.250.0.2"
    assert placement.reason == "fewest running slices (0)"


def test_a_named_engine_is_used_as_listed(monkeypatch):
    monkeypatch.setenv("STACKLET_ENGINES", "tcp://10.250.0.2:2375=10.250.0.2")
    chosen, placement = engines.choose_engine(Session(), "tcp://10.250.0.2:2375")
    assert placement is None and chosen.advertise == "10.250.0.2"


def test_an_advertised_service_that_does_not_answer_fails_fast_naming_engine_and_service():
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{closed.getsockname()[1]}"  # bound, not listening: refused
        assert silent_addresses({"catalog": address}) == {"catalog": address}
        with pytest.raises(EngineUnavailable, match=f"the baseline on tcp://box:2375 does not answer for catalog at "
                                                    f"{address}"):
            require_answers({"catalog": ("tcp://box:2375", address)})


class FakeSession:
    """A session whose engine lists one slice, or does not answer (the engine named SILENT)."""

    def __init__(self, name: str):
        self.name = name

    @property
    def engine(self):
        if self.name == SILENT:
            raise EngineUnavailable(f"no Docker engine answers at {SILENT}")
        return type("Engine", (), {"list": lambda _: [summary("rm-a")]})()


def test_up_on_a_tcp_engine_elsewhere_without_an_advertise_address_is_refused(monkeypatch):
    from ..conftest import REPO_ROOT

    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.delenv("STACKLET_ENGINES", raising=False)
    monkeypatch.setenv("STACKLET_ENGINES_FILE", "/nonexistent/engines.yaml")
    result = CliRunner().invoke(app, ["--host", "tcp://10.250.0.77:2375", "up", "orders", "--stack", "shop", "--json"])
    error = json.loads(result.stdout)
    assert result.exit_code == 3 and error["error"] == "ConfigError" and error["message"].startswith("--advertise:")
    assert "tcp://10.250.0.77:2375" in error["message"] and "--advertise IP" in error["hint"]
