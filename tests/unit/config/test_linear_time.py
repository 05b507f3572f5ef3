"""Big honest inputs stay fast: the unset-variable scan and the unique check names are linear.

Linear is shown by growth, not by a wall-clock bound (a shared host makes those flaky): eight times
the input must take well under the sixty-four times a quadratic algorithm would need. Python's cyclic
garbage collector is paused while timing: its passes over every live object grow with the heap, which
measures the collector, not the algorithm."""

from __future__ import annotations

import gc
import time
from pathlib import Path

from stacklet.config.compose import unset_variables
from stacklet.config.stack import StackFile


def growth(run, small, big) -> float:
    """How many times longer ``run(big)`` takes than ``run(small)`` (best of three each, collector paused)."""
    def best(arg) -> float:
        times = []
        for _ in range(3):
            gc.collect()
            gc.disable()
            try:
                started = time.perf_counter()
                run(arg)
                times.append(time.perf_counter() - started)
            finally:
                gc.enable()
        return min(times)

    return best(big) / max(best(small), 1e-6)


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


def unclosed_references(times: int) -> str:
    comment = "# ${X:-" + "a" * 60 + "\n"
    values = "".join(f"  s{i}:\n    image: \"${{V{i}:-{'b' * 40}\"\n" for i in range(int(375 * times)))
    return comment * int(500 * times) + "services:\n" + values


def test_200_kb_of_unclosed_references_in_comments_and_values_is_linear(tmp_path):
    text = unclosed_references(4)
    assert len(text) > 200_000
    assert scan(tmp_path, text)[0] == []  # an unclosed ${V:-... is no use of V
    assert growth(lambda t: scan(tmp_path, t), unclosed_references(0.5), text) < 32


def test_one_huge_value_is_linear(tmp_path):
    def value(n: int) -> str:
        return "services:\n  api:\n    image: \"" + "${X:-" * n + "\"\n"

    assert growth(lambda t: scan(tmp_path, t), value(5_000), value(40_000)) < 32


def test_nested_defaults_keep_their_meaning(tmp_path, monkeypatch):
    for name in ("A", "B", "C"):
        monkeypatch.delenv(name, raising=False)
    text = "services:\n  api:\n    image: ${A:-${B}}\n    command: $$C ${C:?needed}\n"
    assert scan(tmp_path, text)[0] == ["C"]


def test_forty_thousand_checks_validate_in_linear_time():
    def checks(n: int) -> list[dict]:
        return [{"name": f"check-{i}", "command": {"run": "true"}} for i in range(n)]

    assert len(StackFile.model_validate({"name": "demo", "checks": checks(40_000)}).checks) == 40_000
    assert growth(lambda c: StackFile.model_validate({"name": "demo", "checks": c}), checks(5_000),
                  checks(40_000)) < 32
