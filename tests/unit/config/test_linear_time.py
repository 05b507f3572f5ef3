"""Big honest inputs stay fast: the unset-variable scan and the unique check names are linear."""

from __future__ import annotations

import time
from pathlib import Path

from stacklet.config.compose import unset_variables
from stacklet.config.stack import StackFile


def scan(tmp_path: Path, text: str) -> tuple[list[str], float]:
    file = tmp_path / "compose.yaml"
    file.write_text(text)
    started = time.perf_counter()
    found = unset_variables([file], [], tmp_path)
    return found, time.perf_counter() - started


def test_comments_are_not_read(tmp_path, monkeypatch):
    monkeypatch.delenv("IN_VALUE", raising=False)
    monkeypatch.delenv("IN_COMMENT", raising=False)
    text = "# image: ${IN_COMMENT}\nservices:\n  api:\n    image: ${IN_VALUE}  # ${IN_COMMENT}\n"
    assert scan(tmp_path, text)[0] == ["IN_VALUE"]


def test_200_kb_of_unclosed_references_in_comments_and_values_is_fast(tmp_path):
    comment = "# ${X:-" + "a" * 60 + "\n"
    values = "".join(f"  s{i}:\n    image: \"${{V{i}:-{'b' * 40}\"\n" for i in range(1500))
    text = comment * 2000 + "services:\n" + values
    assert len(text) > 200_000
    found, elapsed = scan(tmp_path, text)
    assert elapsed < 1.0, elapsed
    assert found == []  # an unclosed ${V:-... is no use of V


def test_one_huge_value_is_fast(tmp_path):
    text = "services:\n  api:\n    image: \"" + "${X:-" * 40_000 + "\"\n"
    found, elapsed = scan(tmp_path, text)
    assert elapsed < 1.0, elapsed


def test_nested_defaults_keep_their_meaning(tmp_path, monkeypatch):
    for name in ("A", "B", "C"):
        monkeypatch.delenv(name, raising=False)
    text = "services:\n  api:\n    image: ${A:-${B}}\n    command: $$C ${C:?needed}\n"
    assert scan(tmp_path, text)[0] == ["C"]


def test_forty_thousand_checks_validate_in_linear_time():
    checks = [{"name": f"check-{i}", "command": {"run": "true"}} for i in range(40_000)]
    started = time.perf_counter()
    assert len(StackFile.model_validate({"name": "demo", "checks": checks}).checks) == 40_000
    assert time.perf_counter() - started < 5
