"""cli/app.py run_cli: usage errors exit 3 (one JSON document under --json), no traceback ever escapes,
and every command, graph, skill and version included, answers in JSON with --json."""

from __future__ import annotations

import json
import shutil

import pytest

from stacklet import __version__
from stacklet.ops import commands as ops_commands
from stacklet.cli.app import run_cli

from ..conftest import REPO_ROOT, SHOP_DIR


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run the real entry point in-process from the repository root: (exit code, stdout, stderr)."""
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.delenv("STACKLET_STACK", raising=False)
    monkeypatch.delenv("STACKLET_DEBUG", raising=False)

    def invoke(*argv: str) -> tuple[int, str, str]:
        code = run_cli(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def one_document(stdout: str) -> dict:
    data = json.loads(stdout)  # raises unless stdout is exactly one JSON document
    assert isinstance(data, dict) and "ok" in data
    return data


@pytest.mark.parametrize("argv", [["plan", "--bogus", "--json"], ["plan", "--radius", "abc", "--json"],
                                  ["why", "--json"], ["up", "--timeout", "soon", "--json"],
                                  ["fault", "add", "--json"], ["plan", "--radius", "9" * 5000, "--json"]])
def test_usage_errors_exit_3_with_one_json_document(cli, argv):
    code, out, err = cli(*argv)
    assert code == 3
    error = one_document(out)
    assert error["ok"] is False and error["error"] == "usage"
    assert error["message"] and "--help" in error["hint"]
    assert len(error["message"]) < 300


def test_usage_errors_in_text_exit_3_with_clicks_message(cli):
    code, out, err = cli("plan", "--bogus")
    assert code == 3 and out == ""
    assert "No such option: --bogus" in err and "Traceback" not in err


def test_help_and_no_arguments_exit_0(cli):
    assert cli("--help")[0] == 0
    code, out, _ = cli()
    assert code == 0 and "Usage" in out + _


def test_json_after_double_dash_is_an_argument_not_the_flag(cli, compose_cli):
    code, out, err = cli("plan", "--stack", "shop", "--", "--json")
    assert code == 3 and out == "" and "unknown service" in err


def test_version_json(cli):
    code, out, _ = cli("version", "--json")
    assert code == 0 and one_document(out) == {"ok": True, "version": __version__}


def test_graph_json(cli, compose_cli):
    code, out, _ = cli("graph", "--stack", "shop", "--json")
    document = one_document(out)
    assert code == 0 and document["format"] == "mermaid" and "orders" in document["graph"]
    code, out, _ = cli("graph", "--stack", "shop", "--format", "svg", "--json")
    assert code == 3 and one_document(out)["error"] == "PlanError"


def test_skill_json(cli, compose_cli, tmp_path):
    code, out, _ = cli("skill", "--stack", "shop", "--json")
    document = one_document(out)
    assert code == 0 and document["stack"] == "shop" and document["skill"].startswith("#")
    code, out, _ = cli("skill", "--stack", "shop", "--out", str(tmp_path / "SKILL.md"), "--json")
    assert code == 0 and one_document(out)["written"] == str(tmp_path / "SKILL.md")


def test_an_unexpected_exception_is_a_clear_error_not_a_traceback(cli, monkeypatch, compose_cli):
    def broken(*args, **kwargs):
        raise RuntimeError("boom " + "x" * 10_000)

    monkeypatch.setattr(ops_commands, "seed_plan", broken)
    code, out, err = cli("plan", "orders", "--stack", "shop", "--json")
    error = one_document(out)
    assert code == 3 and error["error"] == "UnexpectedError" and "RuntimeError" in error["message"]
    assert len(error["message"]) < 200 and "Traceback" not in err
    code, out, err = cli("plan", "orders", "--stack", "shop")
    assert code == 3 and "unexpected RuntimeError" in err and "Traceback" not in err


def test_huge_radius_is_refused_instantly_with_the_bound(cli, compose_cli):
    code, out, _ = cli("plan", "orders", "--radius", "1000000000", "--stack", "shop", "--json")
    assert code == 3 and "between 0 and 100" in one_document(out)["message"]


@pytest.fixture
def stack_copy(tmp_path):
    """A copy of the shop stack (stack.yaml, compose, faults/) that a test may break."""
    root = tmp_path / "repo"
    shutil.copytree(SHOP_DIR, root / "stacks" / "shop")
    shutil.copytree(REPO_ROOT / "faults", root / "faults")
    return root


@pytest.mark.parametrize("content", [b"name: caf\xe9\n", b"name: shop\nradius: " + b"9" * 5000 + b"\n",
                                     b"name: shop\ndescription: " + b"[" * 1000 + b"]" * 1000 + b"\n",
                                     b"name: shop\nname: shop\n"], ids=["latin-1", "5000-digits", "nested", "dup"])
def test_a_hostile_stack_yaml_is_exit_3_and_one_json_document(cli, monkeypatch, stack_copy, content, compose_cli):
    (stack_copy / "stacks" / "shop" / "stack.yaml").write_bytes(content)
    monkeypatch.chdir(stack_copy)
    code, out, err = cli("plan", "orders", "--stack", "shop", "--json")
    error = one_document(out)
    assert code == 3 and error["error"] == "StackFileError" and "stack.yaml" in error["message"]
    assert "Traceback" not in err


def test_one_bad_fault_profile_does_not_break_skill(cli, monkeypatch, stack_copy, compose_cli):
    (stack_copy / "faults" / "other-stack.yaml").write_bytes(b"stack: other\ntoxics: \xff\n")
    monkeypatch.chdir(stack_copy)
    code, out, _ = cli("skill", "--stack", "shop", "--json")
    skill = one_document(out)["skill"]
    assert code == 0 and "slow-db" in skill
    assert "`faults/other-stack.yaml` (is not UTF-8 text" in skill
