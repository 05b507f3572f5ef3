"""config/yamlload.py: one bounded YAML loader for stack.yaml, fault profiles and Compose files."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from stacklet.config import yamlload
from stacklet.config.stack import load_stack_file
from stacklet.config.faultprofile import load_fault_profile
from stacklet.config.yamlload import (MAX_ALIAS_EXPANSION, MAX_DEPTH, MAX_INTEGER_DIGITS, check_nesting,
                                      load_yaml_file)
from stacklet.errors import ComposeError, StackFileError


def alias_bomb(key: str, levels: int = 9) -> str:
    """Nine levels of ten aliases: 10^9 strings once expanded, a few hundred bytes as text."""
    lines = ["l0: &l0 [" + ", ".join(["lol"] * 10) + "]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "\n".join(lines) + f"\n{key}: *l{levels - 1}\n"


def write(tmp_path: Path, text: str | bytes, name: str = "stack.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def refusal(tmp_path: Path, text: str | bytes) -> StackFileError:
    path = write(tmp_path, text)
    started = time.perf_counter()
    with pytest.raises(StackFileError) as caught:
        load_yaml_file(path, StackFileError)
    assert time.perf_counter() - started < 20  # expanded, it took minutes
    assert str(path) in caught.value.message and caught.value.hint
    assert len(caught.value.message) < 300 and len(caught.value.hint) < 300
    return caught.value


def test_uses_the_c_loader_when_installed():
    if yaml.__with_libyaml__:
        assert yamlload._Loader is yaml.CSafeLoader


def test_alias_bomb_is_refused_without_expanding_it(tmp_path):
    error = refusal(tmp_path, "name: demo\n" + alias_bomb("description"))
    assert f"beyond {MAX_ALIAS_EXPANSION}" in error.message


def test_modest_aliases_and_merge_keys_still_load(tmp_path):
    text = "base: &base {image: x, environment: {A: '1'}}\napi:\n  <<: *base\n  image: y\nworker: *base\n"
    assert load_yaml_file(write(tmp_path, text), StackFileError) == {
        "base": {"image": "x", "environment": {"A": "1"}},
        "api": {"image": "y", "environment": {"A": "1"}},
        "worker": {"image": "x", "environment": {"A": "1"}}}


def test_a_duplicate_key_names_file_key_and_both_lines(tmp_path):
    error = refusal(tmp_path, "name: demo\nservices:\n  orders: {calls: [a]}\n  orders: {calls: [b]}\n")
    assert error.key == "services.orders"
    assert "appears twice (first at line 3) at line 4" in error.message


@pytest.mark.parametrize("text", ["a: " + "[" * 1000 + "]" * 1000,
                                  "".join("  " * i + f"k{i}:\n" for i in range(1000)) + "  " * 1000 + "v\n",
                                  "a: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
                                  "a0: &a0 [1]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 100)),
                                  "a: &a [*a]\n"],
                         ids=["flow-1000", "block-1000", "flow-bound+1", "alias-chain", "cycle"])
def test_deep_nesting_is_refused(tmp_path, text):
    error = refusal(tmp_path, text)
    assert "nest" in error.message


def test_huge_integers_are_refused_before_conversion(tmp_path):
    error = refusal(tmp_path, "name: demo\nradius: " + "9" * 5000 + "\n")
    assert error.key == "radius" and f"at most {MAX_INTEGER_DIGITS}" in error.message
    assert load_yaml_file(write(tmp_path, "n: " + "9" * MAX_INTEGER_DIGITS), StackFileError)["n"] > 0


def test_non_utf8_is_a_clear_error(tmp_path):
    error = refusal(tmp_path, "name: caf\xe9\n".encode("latin-1"))
    assert "not UTF-8" in error.message and "line 1" in error.message


def test_syntax_errors_keep_line_and_column(tmp_path):
    assert "line 2, column 1" in refusal(tmp_path, "a: [\n").message


def test_stack_yaml_and_fault_profiles_go_through_it(tmp_path):
    with pytest.raises(StackFileError, match="appears twice"):
        load_stack_file(write(tmp_path, "name: a\nname: b\n"))
    with pytest.raises(StackFileError, match="beyond"):
        load_fault_profile(write(tmp_path, alias_bomb("description") + "toxics: []\n", "slow.yaml"))
    with pytest.raises(StackFileError, match="not UTF-8"):
        load_fault_profile(write(tmp_path, b"name: \xff\n", "bad.yaml"))
    with pytest.raises(StackFileError, match="must be a mapping"):
        load_stack_file(write(tmp_path, "- a\n"))


def test_check_nesting_is_iterative(tmp_path):
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(ComposeError, match=f"deeper than {MAX_DEPTH}"):
        check_nesting({"services": deep}, tmp_path / "compose.yaml", ComposeError)
    check_nesting({"services": {"a": {"image": "x"}}}, tmp_path / "compose.yaml", ComposeError)
