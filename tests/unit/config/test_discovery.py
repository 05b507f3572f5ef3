"""config/stack.py: finding a stack as teams lay projects out (current folder, -f, stack.yaml, compose: lists)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stacklet.config.stack import load_stack, stack_reference
from stacklet.errors import StackFileError

from ..conftest import skip_or_fail
from stacklet.config.compose import compose_available


@pytest.fixture(autouse=True)
def _compose_cli():
    if not compose_available():
        skip_or_fail("`docker compose` v2 is not installed")


def project(folder: Path, *, stack_yaml: str | None = None, name: str = "compose.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("services:\n  api:\n    image: example/api\n    environment: {DB: 'postgres://db:5432/x'}\n"
                               "  db: {image: postgres:16}\n")
    if stack_yaml is not None:
        (folder / "stack.yaml").write_text(stack_yaml)
    return folder


def test_found_from_the_current_folder_with_or_without_stack_yaml(tmp_path):
    folder = project(tmp_path / "forum", name="docker-compose.yml")
    bare = load_stack(start=folder)
    assert bare.name == "forum" and bare.stack_file is None
    (folder / "stack.yaml").write_text("services:\n  db: {stateful: true}\n")
    with_meta = load_stack(start=folder)
    assert with_meta.stack_file == folder / "stack.yaml"
    assert with_meta.name == bare.name == with_meta.compose.name  # adding stack.yaml keeps the identity
    assert stack_reference(with_meta, folder) == ""                # nothing to pass from its own folder


def test_no_stack_anywhere_says_so(tmp_path):
    with pytest.raises(StackFileError) as info:
        load_stack(start=tmp_path)
    assert "no stack given" in info.value.message and "compose.yaml" in info.value.hint


def test_f_with_a_stack_yaml_beside_it_applies_the_stack_yaml(tmp_path):
    folder = project(tmp_path / "app", stack_yaml="name: app\nservices:\n  api: {stateful: true}\n")
    (folder / "override.yaml").write_text("services:\n  api:\n    environment: {EXTRA: '1'}\n")
    stack = load_stack(compose_files=[folder / "compose.yaml", folder / "override.yaml"])
    assert stack.stack_file == folder / "stack.yaml" and stack.service_meta("api").stateful is True
    assert stack.compose.services["api"].environment["EXTRA"] == "1"  # several -f, merged like Compose


def test_compose_as_a_list_in_stack_yaml(tmp_path):
    folder = project(tmp_path / "app", stack_yaml="compose: [compose.yaml, compose.health.yaml]\n")
    (folder / "compose.health.yaml").write_text(
        "services:\n  db:\n    healthcheck: {test: [CMD, pg_isready], interval: 1s}\n")
    stack = load_stack(folder)
    assert stack.compose.services["db"].has_healthcheck
    assert [f.name for f in stack.compose.files] == ["compose.yaml", "compose.health.yaml"]


def test_reference_from_elsewhere_works_from_there(tmp_path):
    folder = project(tmp_path / "stacks" / "forum", stack_yaml="description: x\n")
    stack = load_stack(start=folder)
    assert stack_reference(stack, tmp_path) == "--stack forum"       # found by name under stacks/
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    assert stack_reference(stack, elsewhere) == "--stack forum"      # stacks/ is found from a sibling too
    bare = load_stack(compose_files=[project(tmp_path / "solo")  / "compose.yaml"])
    assert stack_reference(bare, tmp_path) == "-f solo/compose.yaml"


def test_dropping_an_unknown_edge_is_a_clear_error(tmp_path):
    from stacklet.planning.graph import ServiceGraph

    folder = project(tmp_path / "app", stack_yaml="edges:\n  drop:\n    - {from: db, to: api}\n")
    with pytest.raises(StackFileError) as info:
        ServiceGraph.from_stack(load_stack(folder))
    assert info.value.key == "edges.drop.0" and "db → api" in info.value.message
    (folder / "stack.yaml").write_text("edges:\n  drop:\n    - {from: api, to: dbx}\n")
    with pytest.raises(StackFileError) as info:
        load_stack(folder)
    assert info.value.key == "edges.drop.0.to" and "did you mean 'db'" in info.value.hint
