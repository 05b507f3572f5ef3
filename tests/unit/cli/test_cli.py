"""cli.py: the planning commands (plan, why, graph) through Typer's CliRunner. No Docker daemon."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stacklet import __version__
from stacklet.cli.app import app

from ..conftest import REPO_ROOT

pytestmark = pytest.mark.usefixtures("compose_cli")

ORDERS_LOCAL = {"orders": "changed", "gateway": "caller", "payments": "callee", "inventory": "callee",
                "orders-db": "callee", "redis": "callee", "inventory-db": "stateful"}


@pytest.fixture
def run(monkeypatch, shop):
    """Run the CLI from the repository root, as a user would."""
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.delenv("STACKLET_STACK", raising=False)
    runner = CliRunner()

    def invoke(*args: str, env: dict | None = None):
        return runner.invoke(app, list(args), env=env, catch_exceptions=False)

    return invoke


def only_json(result) -> dict:
    """stdout must be exactly one JSON document."""
    return json.loads(result.stdout)


@pytest.fixture
def bad_stack(tmp_path) -> Path:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "compose.yaml").write_text("services:\n  orders: {image: example/orders}\n")
    (folder / "stack.yaml").write_text("name: bad\nservices:\n  orders:\n    colour: red\n")
    return folder


class TestPlan:
    def test_json(self, run):
        result = run("plan", "orders", "--stack", "shop", "--json")
        assert result.exit_code == 0, result.stderr
        data = only_json(result)
        assert {s["name"]: s["role"] for s in data["local"]} == ORDERS_LOCAL
        assert [f["name"] for f in data["forwarded"]] == ["catalog", "fraud", "users"]
        assert data["changed"] == ["orders"] and data["stack"] == "shop" and data["radius"] == 1
        assert len(data["proxies"]) == 2
        assert result.stderr == ""

    def test_json_with_radius_and_several_services(self, run):
        data = only_json(run("plan", "orders", "catalog", "--radius", "0", "--stack", "shop", "--json"))
        assert data["changed"] == ["orders", "catalog"] and data["radius"] == 0
        assert {s["name"] for s in data["local"]} == {"orders", "catalog", "orders-db", "redis", "catalog-db"}

    def test_stack_by_folder_path_and_env(self, run):
        by_folder = only_json(run("plan", "orders", "--stack", "stacks/shop", "--json"))
        by_file = only_json(run("plan", "orders", "--stack", str(REPO_ROOT / "stacks/shop/stack.yaml"), "--json"))
        by_env = only_json(run("plan", "orders", "--json", env={"STACKLET_STACK": "shop"}))
        assert by_folder == by_file == by_env

    def test_text_names_the_roles(self, run):
        result = run("plan", "orders", "--stack", "shop")
        assert result.exit_code == 0, result.stderr
        out = result.stdout
        assert "slice of shop for orders (radius 1)" in out
        lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
        for name, role in ORDERS_LOCAL.items():
            assert role in lines[name].split(), lines[name]
        assert "forwarded" in out and "catalog.baseline:8084" in out
        assert "links (through link proxies)" in out
        assert "orders-db.origin:5432" in out
        assert "\x1b[" not in out  # no colour codes when piped

    def test_compose_file_without_stack_yaml(self, run, tmp_path):
        (tmp_path / "compose.yaml").write_text(
            "services:\n  web:\n    image: example/web\n    environment: {API: 'http://api:8000'}\n"
            "  api: {image: example/api}\n")
        data = only_json(run("plan", "web", "-f", str(tmp_path / "compose.yaml"), "--radius", "0", "--json"))
        assert [s["name"] for s in data["local"]] == ["web"]
        assert data["forwarded"][0]["name"] == "api" and data["forwarded"][0]["baseline"] == "none"
        assert any("baseline.addresses.api" in n for n in data["notes"])

    def test_unknown_service(self, run):
        result = run("plan", "shipping", "--stack", "shop")
        assert result.exit_code == 3
        assert result.stdout == ""
        assert "error: unknown service(s): shipping" in result.stderr
        assert "hint: services are: " in result.stderr and "orders" in result.stderr

    def test_unknown_service_json(self, run):
        result = run("plan", "shipping", "--stack", "shop", "--json")
        assert result.exit_code == 3
        data = only_json(result)
        assert data["ok"] is False
        assert data["error"] == "PlanError"
        assert "shipping" in data["message"]
        assert "orders" in data["hint"]
        assert result.stderr == ""

    def test_no_service(self, run):
        result = run("plan", "--stack", "shop")
        assert result.exit_code == 3
        assert "no changed service" in result.stderr and "hint:" in result.stderr

    def test_negative_radius(self, run):
        result = run("plan", "orders", "--radius", "-1", "--stack", "shop", "--json")
        assert result.exit_code == 3
        assert only_json(result)["ok"] is False

    def test_bad_stack_yaml(self, run, bad_stack):
        result = run("plan", "orders", "--stack", str(bad_stack))
        assert result.exit_code == 3
        assert "services.orders.colour" in result.stderr
        assert "stack.yaml" in result.stderr
        assert "unknown key" in result.stderr
        assert "hint: allowed keys here: calls, paths, stateful, ports" in result.stderr

    def test_bad_stack_yaml_json(self, run, bad_stack):
        result = run("plan", "orders", "--stack", str(bad_stack), "--json")
        assert result.exit_code == 3
        data = only_json(result)
        assert data["ok"] is False and data["error"] == "StackFileError"
        assert data["key"] == "services.orders.colour"
        assert data["file"] == str(bad_stack / "stack.yaml")
        assert "calls" in data["hint"]

    def test_unknown_stack(self, run):
        result = run("plan", "orders", "--stack", "nope", "--json")
        assert result.exit_code == 3
        data = only_json(result)
        assert data["ok"] is False and "nope" in data["message"]
        assert "shop" in data["hint"]

    def test_bad_since_ref_json(self, run):
        result = run("plan", "--since", "no-such-ref-for-stacklet", "--stack", "shop", "--json")
        assert result.exit_code == 3
        data = only_json(result)
        assert data["ok"] is False and data["error"] == "PlanError"
        assert "no-such-ref-for-stacklet" in data["message"]
        assert "--since" in data["hint"]

    def test_compose_error_json(self, run, tmp_path):
        result = run("plan", "web", "-f", str(tmp_path / "missing.yaml"), "--json")
        assert result.exit_code == 3
        data = only_json(result)
        assert data["ok"] is False and data["error"] == "ComposeError"
        assert "missing.yaml" in data["message"]


class TestWhy:
    def test_forwarded(self, run):
        result = run("why", "catalog", "--changed", "orders", "--stack", "shop")
        assert result.exit_code == 0, result.stderr
        lines = result.stdout.strip().splitlines()
        assert lines[0] == ("catalog is forwarded to the baseline: dependency of local gateway; "
                            "forwarded catalog may write to the baseline's catalog-db")
        # then each edge of catalog with where it comes from
        assert "  gateway → catalog: services.gateway.calls in stack.yaml; " \
               "services.gateway.environment.CATALOG_URL in compose.yaml" in lines

    def test_local_json(self, run):
        data = only_json(run("why", "inventory-db", "--changed", "orders", "--stack", "shop", "--json"))
        assert data["service"] == "inventory-db" and data["state"] == "local" and data["role"] == "stateful"
        assert "stateful dependency of inventory" in data["explanation"]

    def test_forwarded_json(self, run):
        data = only_json(run("why", "catalog", "--changed", "orders", "--stack", "shop", "--json"))
        edges = data.pop("edges")
        assert {(e["source"], e["target"], e["weak"]) for e in edges} == {("gateway", "catalog", False),
                                                                        ("catalog", "catalog-db", False)}
        assert data == {"ok": True, "service": "catalog", "state": "forwarded", "role": None,
                        "explanation": ("catalog is forwarded to the baseline: dependency of local gateway; "
                                                     "forwarded catalog may write to the baseline's catalog-db")}

    def test_absent_json(self, run):
        data = only_json(run("why", "notifications", "--changed", "orders", "--stack", "shop", "--json"))
        assert data["state"] == "absent" and data["role"] is None
        assert "2 hops" in data["explanation"]

    def test_radius(self, run):
        data = only_json(run("why", "fraud", "--changed", "orders", "--radius", "2", "--stack", "shop", "--json"))
        assert data["state"] == "local" and data["role"] == "callee"

    def test_unknown_service(self, run):
        result = run("why", "shipping", "--changed", "orders", "--stack", "shop")
        assert result.exit_code == 3
        assert "shipping" in result.stderr and "hint:" in result.stderr

    def test_unknown_service_json(self, run):
        result = run("why", "catalog", "--changed", "shipping", "--stack", "shop", "--json")
        assert result.exit_code == 3
        assert only_json(result)["ok"] is False


class TestGraph:
    def test_dot(self, run):
        result = run("graph", "--format", "dot", "--stack", "shop")
        assert result.exit_code == 0, result.stderr
        out = result.stdout
        assert out.startswith("digraph services {")
        assert '"orders" -> "orders-db";' in out and '"gateway" -> "orders";' in out
        assert out.count(" -> ") == 13

    def test_mermaid_with_a_slice(self, run):
        result = run("graph", "--changed", "orders", "--stack", "shop")
        assert result.exit_code == 0, result.stderr
        assert result.stdout.startswith("flowchart LR")
        assert "classDef changed" in result.stdout
        assert result.stdout.count(" --> ") == 13

    def test_unknown_format(self, run):
        result = run("graph", "--format", "png", "--stack", "shop")
        assert result.exit_code == 3
        assert "png" in result.stderr and "--format mermaid" in result.stderr
        assert result.stdout == ""


def test_version(run):
    result = run("version")
    assert result.exit_code == 0
    assert __version__ in result.stdout
