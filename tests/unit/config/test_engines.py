"""The engines list: STACKLET_ENGINES (ENGINE[=ADVERTISE], comma separated) and the engines file."""

from __future__ import annotations

import pytest

from stacklet.config.engines import (EngineSpec, advertise_of, configured_engines, load_engines_file,
                                     parse_engines)
from stacklet.errors import ConfigError


def test_engines_with_and_without_an_advertise_address():
    engines = parse_engines(" default, tcp://10.250.0.2:2375=10.250.0.2 ,ssh://me@box,team-box,,default")
    assert [(e.engine, e.advertise) for e in engines] == [
        ("default", None), ("tcp://10.250.0.2:2375", "10.250.0.2"), ("ssh://me@box", None), ("team-box", None)]
    assert (engines[0].host, engines[0].context) == (None, None)
    assert (engines[1].host, engines[1].context) == ("tcp://10.250.0.2:2375", None)
    assert (engines[3].host, engines[3].context) == (None, "team-box")


def test_an_advertise_address_must_be_an_ip():
    with pytest.raises(ConfigError, match="STACKLET_ENGINES: cannot read engine 'tcp://box:2375=box.lan'") as caught:
        parse_engines("tcp://box:2375=box.lan")
    assert "ENGINE[=ADVERTISE-IP]" in caught.value.hint


def test_the_engines_file(tmp_path, monkeypatch):
    path = tmp_path / "engines.yaml"
    path.write_text("engines:\n  - engine: tcp://10.250.0.2:2375\n    advertise: 10.250.0.2\n  - engine: default\n")
    monkeypatch.delenv("STACKLET_ENGINES", raising=False)
    monkeypatch.setenv("STACKLET_ENGINES_FILE", str(path))
    assert [e.engine for e in configured_engines()] == ["tcp://10.250.0.2:2375", "default"]
    monkeypatch.setenv("STACKLET_ENGINES", "ssh://me@box")  # the variable wins over the file
    assert [e.engine for e in configured_engines()] == ["ssh://me@box"]


def test_a_bad_engines_file_names_the_file_and_key(tmp_path):
    path = tmp_path / "engines.yaml"
    path.write_text("engines:\n  - engine: tcp://box:2375\n    adverts: 10.0.0.1\n")
    with pytest.raises(ConfigError, match=r"engines\.yaml: engines\.0\.adverts") as caught:
        load_engines_file(path)
    assert "advertise" in caught.value.hint


def test_no_list_means_no_engines(tmp_path, monkeypatch):
    monkeypatch.delenv("STACKLET_ENGINES", raising=False)
    monkeypatch.setenv("STACKLET_ENGINES_FILE", str(tmp_path / "missing.yaml"))
    assert configured_engines() == []


def test_the_advertise_address_of_an_engine():
    engines = [EngineSpec(engine="tcp://10.250.0.2:2375", advertise="10.250.0.2"), EngineSpec(engine="default")]
    assert advertise_of("tcp://10.250.0.2:2375", None, engines) == "10.250.0.2"
    assert advertise_of(None, None, engines) is None
    assert advertise_of("tcp://elsewhere:2375", None, engines) is None
