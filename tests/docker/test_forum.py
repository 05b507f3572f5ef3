"""The forum, a stack stacklet was not written for: Compose's boot semantics and isolation, on a real engine.

Postgres without a healthcheck, a migration job that api waits for (service_completed_successfully),
RabbitMQ and its consumer, a Redis cache and a search service built locally, a shared env_file and a
profile-gated tool. The forum is copied (with the shop's Postgres image folder it builds from, and its
seeds) into a temporary folder so a test can break its migration.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from stacklet.labels import Label

from .conftest import NOTHING, REPO, http, leftovers, run_cli

pytestmark = pytest.mark.usefixtures("driver")


def copy_forum(root: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "stacks" / "forum", root / "stacks" / "forum", ignore=ignore)
    shutil.copytree(REPO / "stacks" / "shop" / "images" / "postgres", root / "stacks" / "shop" / "images" / "postgres")
    shutil.copytree(REPO / "seeds" / "forum", root / "seeds" / "forum", ignore=ignore)
    return root / "stacks" / "forum"


@pytest.fixture(scope="module")
def forum(tmp_path_factory) -> Path:
    return copy_forum(tmp_path_factory.mktemp("forum"))


@pytest.fixture(scope="module")
def env(workdir) -> dict:
    return {"STACKLET_HOME": str(workdir)}


def exec_in(driver, labels: dict[str, str], service: str, *argv: str) -> str:
    container = next(c for c in driver.containers(labels) if c.service == service)
    result = driver.exec(container.id, list(argv), timeout_s=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def stores_of(driver, labels: dict[str, str]) -> dict[str, object]:
    """What every store of a slice or baseline holds: rows, keys, queued messages, search documents."""
    rows = exec_in(driver, labels, "db", "psql", "-U", "forum", "-d", "forum", "-tAc",
                   "SELECT (SELECT count(*) FROM posts) || ',' || (SELECT count(*) FROM events)")
    keys = exec_in(driver, labels, "cache", "redis-cli", "--scan")
    queues = exec_in(driver, labels, "broker", "rabbitmqctl", "-q", "list_queues", "name", "messages")
    documents = exec_in(driver, labels, "search", "sh", "-c", "cd /data && find . -type f | sort | xargs -r md5sum")
    return {"rows": rows, "keys": sorted(keys.split()), "queues": queues, "documents": documents}


def test_a_failing_migration_fails_the_boot_naming_it_and_leaves_nothing(driver, tmp_path, env):
    stack = copy_forum(tmp_path)
    compose = yaml.safe_load((stack / "compose.yaml").read_text())
    compose["services"]["migrate"]["environment"] = {"MIGRATE_FAIL": "1", "MIGRATE_FAIL_AFTER_S": "3"}
    (stack / "compose.yaml").write_text(yaml.safe_dump(compose, sort_keys=False))
    try:
        result = run_cli("up", "api", "--stack", str(stack), "--name", "fo-fail", "--json", env=env, check=False,
                         timeout=900)
        document = json.loads(result.stdout)
        assert result.returncode == 2 and document["ok"] is False, result.stdout[-2000:]
        assert document["service"] == "migrate" and "exited with code 1" in document["message"]
        assert "failing on purpose" in document["logs"]
    finally:
        run_cli("down", "fo-fail", env=env, check=False)
    assert leftovers(driver, "fo-fail") == NOTHING


def test_a_slice_of_api_is_isolated_seeded_after_migrate_and_consumes_its_own_events(driver, forum, env):
    baseline = {Label.BASELINE: "forum"}
    run_cli("baseline", "up", "--stack", str(forum), env=env, timeout=900)
    try:
        assert "debug" not in {c.service for c in driver.containers(baseline)}, "profile debug is not active"
        status = json.loads(run_cli("baseline", "status", "--stack", str(forum), "--json", env=env).stdout)
        migrate = next(s for s in status["services"] if s["name"] == "migrate")
        assert migrate["state"] == "exited" and status["healthy"], "a job that exited 0 is healthy in a baseline"
        before = stores_of(driver, baseline)
        up = json.loads(run_cli("up", "api", "--stack", str(forum), "--name", "fo-api", "--json", env=env,
                                timeout=900).stdout)
        try:
            roles = {s["name"]: s["role"] for s in up["plan"]["local"]}
            assert roles["migrate"] == "job" and roles["worker"] == "consumer" and roles["db"] == "stateful"
            assert up["plan"]["forwarded"] == [] and "debug" not in roles
            # db has no healthcheck: it was probed, migrated, then seeded; the seeded post reads back
            verdict = run_cli("check", "fo-api", "--all", "--json", env=env, check=False)
            assert json.loads(verdict.stdout)["verdict"] == "passed", verdict.stdout[-3000:]

            web = next(s for s in up["slice"]["services"] if s["name"] == "web")["endpoints"][0]["host"]
            slice_labels = {Label.SLICE: "fo-api"}
            events_before = int(stores_of(driver, slice_labels)["rows"].split(",")[1])
            status, body = http("POST", f"http://{web}/posts", {"author": "iso", "title": "t", "body": "b"})
            assert status == 201, body
            deadline = time.monotonic() + 60
            while int(stores_of(driver, slice_labels)["rows"].split(",")[1]) <= events_before:
                assert time.monotonic() < deadline, "the slice's worker never consumed the slice's event"
                time.sleep(1)
            assert stores_of(driver, baseline) == before, "a write through the slice reached the baseline"

            # one health rule: a job that exited 0 is healthy, a killed service is not, in status, ls and check
            assert json.loads(run_cli("status", "fo-api", "--json", env=env).stdout)["healthy"]
            search = next(c for c in driver.containers(slice_labels) if c.service == "search")
            subprocess.run(["docker", "kill", search.id], check=True, capture_output=True)
            assert json.loads(run_cli("status", "fo-api", "--json", env=env).stdout)["healthy"] is False
            listed = json.loads(run_cli("ls", "--json", env=env).stdout)["slices"]
            assert next(s for s in listed if s["name"] == "fo-api")["healthy"] is False
            unhealthy = run_cli("check", "fo-api", "--json", env=env, check=False)
            assert unhealthy.returncode == 2 and json.loads(unhealthy.stdout)["verdict"] == "unhealthy"
        finally:
            run_cli("down", "fo-api", env=env, check=False)
        assert leftovers(driver, "fo-api") == NOTHING
    finally:
        run_cli("baseline", "down", "--stack", str(forum), env=env, check=False)
    assert not driver.containers(baseline)
