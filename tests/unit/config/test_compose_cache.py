"""The cache of `docker compose config` output: a hit skips Compose, and every input Compose reads
changes the key (files, env files, extended files, the variables the files mention, the tools)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stacklet.config import compose, compose_cache
from stacklet.config.compose import load_compose
from stacklet.config.compose_cache import cache_folder, config_key
from stacklet.errors import ComposeError

COMMAND = ["config"]


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "app.env").write_text("LEVEL=debug\nFROM_HOST\n")
    (tmp_path / "base.yaml").write_text("services:\n  base:\n    image: busybox\n    env_file: base.env\n")
    (tmp_path / "base.env").write_text("A=1\n")
    (tmp_path / "compose.yaml").write_text(
        "services:\n"
        "  web:\n"
        "    image: nginx:${TAG:-1}\n"
        "    env_file: app.env\n"
        "    environment: [BARE]\n"
        "  worker:\n"
        "    extends: {file: base.yaml, service: base}\n")
    return tmp_path


def key(folder: Path) -> str | None:
    return config_key([folder / "compose.yaml"], [], folder, COMMAND)


def counting_runs(monkeypatch) -> list[list[str]]:
    calls: list[list[str]] = []
    real = compose._run

    def run(cmd, file):
        calls.append(cmd)
        return real(cmd, file)
    monkeypatch.setattr(compose, "_run", run)
    return calls


def test_a_second_load_of_the_same_files_does_not_run_compose(project, monkeypatch, compose_cli):
    calls = counting_runs(monkeypatch)
    first = load_compose([project / "compose.yaml"])
    second = load_compose([project / "compose.yaml"])
    assert len(calls) == 1 and first.raw == second.raw and first.interpolated == second.interpolated
    assert len(list(cache_folder().glob("*.json"))) == 1


def test_a_changed_file_misses_and_shows_the_change(project, monkeypatch, compose_cli):
    calls = counting_runs(monkeypatch)
    load_compose([project / "compose.yaml"])
    (project / "app.env").write_text("LEVEL=info\n")
    assert load_compose([project / "compose.yaml"]).services["web"].environment["LEVEL"] == "info"
    assert len(calls) == 2


@pytest.mark.parametrize("change", ["compose", "env_file", "extended", "extended_env_file", "dotenv"])
def test_every_file_compose_reads_is_in_the_key(project, change):
    before = key(project)
    file = {"compose": "compose.yaml", "env_file": "app.env", "extended": "base.yaml",
            "extended_env_file": "base.env", "dotenv": ".env"}[change]
    with (project / file).open("a") as handle:
        handle.write("\n# changed\n" if file.endswith(".yaml") else "B=2\n")
    assert key(project) != before


@pytest.mark.parametrize("variable", ["TAG", "BARE", "FROM_HOST", "COMPOSE_PROJECT_NAME", "DOCKER_DEFAULT_PLATFORM"])
def test_variables_compose_takes_from_the_environment_are_in_the_key(project, monkeypatch, variable):
    monkeypatch.delenv(variable, raising=False)
    before = key(project)
    monkeypatch.setenv(variable, "x")
    assert key(project) != before


def test_other_variables_are_not_in_the_key(project, monkeypatch):
    before = key(project)
    monkeypatch.setenv("SOMETHING_UNRELATED", "x")
    assert key(project) == before


def test_the_tools_are_in_the_key(project, monkeypatch):
    before = key(project)
    monkeypatch.setattr(compose_cache, "_tools", lambda: [("/usr/bin/docker", 1, 2)])
    assert key(project) != before


def test_an_include_or_the_switch_turns_the_cache_off(project, monkeypatch):
    assert key(project) is not None
    monkeypatch.setenv("STACKLET_COMPOSE_CACHE", "0")
    assert key(project) is None
    monkeypatch.delenv("STACKLET_COMPOSE_CACHE")
    (project / "compose.yaml").write_text("include: [base.yaml]\nservices:\n  web: {image: nginx}\n")
    assert key(project) is None


def test_a_failure_is_not_cached(project, monkeypatch, compose_cli):
    (project / "compose.yaml").write_text("services:\n  web:\n    image: nginx\n    ports: ['not a port']\n")
    for _ in range(2):
        with pytest.raises(ComposeError):
            load_compose([project / "compose.yaml"])
    assert not list(cache_folder().glob("*.json"))
