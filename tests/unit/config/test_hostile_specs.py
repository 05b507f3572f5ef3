"""Hostile values in checks and Compose output: clear errors naming file and key, never a crash."""

from __future__ import annotations

import json
import subprocess

import pytest
from pydantic import ValidationError

from stacklet.config import compose
from stacklet.config.checkspec import Expect, HttpStep
from stacklet.config.compose import load_compose, parse_compose
from stacklet.config.stack import StackFile
from stacklet.config.yamlload import MAX_DEPTH
from stacklet.errors import ComposeError

from .test_stack import stack_file_error


@pytest.mark.parametrize("kind", [["string"], {"a": 1}, 5, None])
def test_a_json_type_that_is_not_a_type_name_is_a_clear_error(kind):
    with pytest.raises(ValidationError, match="type must be one of string, number"):
        Expect.model_validate({"json": {"$.x": {"type": kind}}})


def test_checkspec_type_list_in_stack_yaml_names_the_key(tmp_path):
    error = stack_file_error(tmp_path, "name: demo\nchecks:\n  - name: c\n    steps:\n      - name: s\n"
                                       "        service: api\n        expect: {json: {$.x: {type: [string]}}}\n")
    assert error.key == "checks.0.steps.0.expect.json" and "type must be one of" in error.message


@pytest.mark.parametrize("status", [-201, 0, 99, 600, [200, 1000]])
def test_expected_statuses_are_http_statuses(status):
    with pytest.raises(ValidationError, match="between 100 and 599"):
        Expect.model_validate({"status": status})


@pytest.mark.parametrize("port", [-5, 0, 65536])
def test_a_steps_port_is_a_tcp_port(port):
    with pytest.raises(ValidationError, match="65535|greater than or equal to 1"):
        HttpStep.model_validate({"name": "s", "service": "api", "port": port})


def test_stack_yaml_ports_outside_the_range_name_service_and_key(tmp_path):
    error = stack_file_error(tmp_path, "name: demo\nservices:\n  fraud:\n    ports: [8080, 99999, -1, 0]\n")
    assert error.key == "services.fraud.ports.1" and "65535" in error.message


def test_compose_expose_outside_the_range_is_refused_at_load(tmp_path):
    raw = {"name": "demo", "services": {"fraud": {"image": "x", "expose": ["8080", "99999"]}}}
    with pytest.raises(ComposeError) as caught:
        parse_compose(raw, [tmp_path / "compose.yaml"])
    assert caught.value.key == "services.fraud.expose" and "99999" in caught.value.message


@pytest.mark.parametrize("depth", [MAX_DEPTH + 5, 100_000])
def test_deeply_nested_compose_output_is_a_compose_error(tmp_path, monkeypatch, depth):
    """`docker compose config` output is read as data: any depth is an error, never a RecursionError."""
    file = tmp_path / "compose.yaml"
    file.write_text("services: {}\n")
    deep = "[" * depth + "]" * depth
    output = '{"name": "demo", "services": {"a": {"image": "x", "x-deep": %s}}}' % deep
    monkeypatch.setattr(compose.shutil, "which", lambda name: "/usr/bin/docker")
    monkeypatch.setattr(compose, "_run", lambda cmd, f: subprocess.CompletedProcess(cmd, 0, output, ""))
    with pytest.raises(ComposeError, match="nests deeper than"):
        load_compose([file])


def test_modest_compose_output_still_loads(tmp_path, monkeypatch):
    file = tmp_path / "compose.yaml"
    file.write_text("services: {}\n")
    output = json.dumps({"name": "demo", "services": {"a": {"image": "x", "labels": {"k": "v"}}}})
    monkeypatch.setattr(compose.shutil, "which", lambda name: "/usr/bin/docker")
    monkeypatch.setattr(compose, "_run", lambda cmd, f: subprocess.CompletedProcess(cmd, 0, output, ""))
    assert list(load_compose([file]).services) == ["a"]


def test_radius_from_stack_yaml_beyond_the_bound_names_key_and_bound(tmp_path):
    error = stack_file_error(tmp_path, "name: demo\nradius: 1000000000\n")
    assert error.key == "radius" and "100" in error.message


def test_check_names_are_unique(tmp_path):
    with pytest.raises(ValidationError, match="two checks are named 'a'"):
        StackFile.model_validate({"name": "demo", "checks": [
            {"name": n, "command": {"run": ["true"]}} for n in ("a", "b", "a")]})
