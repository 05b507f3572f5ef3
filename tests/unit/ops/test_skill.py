"""skill.py: the agent skill document generated from a stack (pure), and `stacklet skill`."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from stacklet.cli.app import app
from stacklet.ops.skill import render_skill

from ..conftest import REPO_ROOT, service


@pytest.fixture(scope="module")
def shop_skill(shop) -> str:
    return render_skill(shop)


def test_services_table(shop_skill):
    assert "# Working on the `shop` stack with stacklet" in shop_skill
    assert "| orders | built locally | no | 8081 | inventory, orders-db, payments, redis | gateway |" in shop_skill
    assert "| redis | built locally | yes | 6379 | - | notifications, orders, payments, users |" in shop_skill
    for name in ("gateway", "catalog", "users", "fraud", "notifications", "inventory-db", "catalog-db"):
        assert f"\n| {name} | built locally |" in shop_skill


def test_boot_and_slices(shop_skill):
    assert "`stacklet baseline status --stack shop --json`" in shop_skill
    assert "`stacklet up SERVICE... --stack shop --json`" in shop_skill
    assert "`--since REF`" in shop_skill and "`--radius N` (default 1)" in shop_skill
    assert ("| orders | orders, gateway, inventory, orders-db, payments, redis, inventory-db "
            "| catalog, fraud, users |") in shop_skill
    assert "\n| orders-db | orders-db," not in shop_skill  # stateful services are not offered as changes


def test_checks_commands_faults_seeds(shop_skill):
    assert "`stacklet check NAME --json`" in shop_skill
    assert "Exit 0 passed, 1 checks failed, 2 the slice is not healthy, 3 usage" in shop_skill
    for command in ("stacklet status NAME --json", "stacklet logs [SERVICE] --slice NAME --tail 100 --json",
                    "stacklet down NAME --json", "stacklet fault add TARGET TYPE key=value... --slice NAME",
                    "stacklet reset [SERVICE] --slice NAME --json"):
        assert command in shop_skill
    for profile in ("bandwidth-crunch", "flaky-payments", "payments-down", "slow-baseline", "slow-db"):
        assert f"\n| {profile} | " in shop_skill
    assert "| payments reset_peer upstream timeout=0 toxicity=0.3 |" in shop_skill
    assert "| @forwarded latency downstream latency=150 jitter=50 |" in shop_skill
    assert "- orders-db: 001-schema.sql, 002-orders.sql, 003-edge-cases.sql" in shop_skill
    assert "- redis: 001-users.redis, 002-sessions.redis, 003-charges.redis, 004-edge-cases.redis" in shop_skill
    assert "/var/run/docker.sock" in shop_skill


def test_deterministic_short_and_portable(shop, shop_skill):
    assert render_skill(shop) == shop_skill
    assert len(shop_skill.splitlines()) < 200
    assert str(REPO_ROOT) not in shop_skill and "`stacks/shop/stack.yaml`" in shop_skill


def test_checks_listed_per_service(make_stack):
    stack = make_stack(
        {"api": service("example/api", expose=[80], environment={"DB": "postgres://db:5432/x"}),
         "db": service("postgres:16")},
        meta={"checks": [
            {"name": "create", "description": "POST /items answers 201", "services": ["api"],
             "steps": [{"name": "post", "service": "api", "method": "POST", "path": "/items",
                        "expect": {"status": 201}}]},
            {"name": "migrations", "command": {"run": "true"}}]})
    if not getattr(stack, "checks", None):
        pytest.fail("Stack.checks is missing: stack.yaml `checks:` are not parsed")
    text = render_skill(stack)
    assert "| create | http | api | POST /items answers 201 |" in text
    assert "| migrations | command | any service | - |" in text
    assert "| api | api, db | - | create, migrations |" in text


def test_a_bare_stack(make_stack):
    stack = make_stack({"api": service("example/api", expose=[80], environment={"DB": "postgres://db:5432/x"}),
                        "db": service("postgres:16")}, meta={"baseline": {"addresses": {"api": "staging:80"}}})
    text = render_skill(stack)
    assert "| db | image `postgres:16` | yes | 5432 | - | api |" in text
    assert "remote baseline in `baseline.addresses`" in text
    assert "No seed files" in text and "stack.yaml declares no `checks:` yet." in text
    assert "No fault profile in `faults/` applies to this stack." in text


def test_cli_writes_the_file(monkeypatch, tmp_path, shop_skill):
    monkeypatch.chdir(REPO_ROOT)
    out = tmp_path / "SKILL.md"
    result = CliRunner().invoke(app, ["skill", "--stack", "shop", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text() == shop_skill
    assert result.stderr.strip() == f"wrote {out} ({len(shop_skill.splitlines())} lines)"
    printed = CliRunner().invoke(app, ["skill", "--stack", "shop"])
    assert printed.stdout == shop_skill


def test_cli_unknown_stack(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    result = CliRunner().invoke(app, ["skill", "--stack", "nope"])
    assert result.exit_code == 3
    assert "no stack named 'nope'" in result.stderr
