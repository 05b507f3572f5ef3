"""The start order of a created project, Compose's way, on the fake engine (no Docker)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stacklet.errors import BootError
from stacklet.labels import Label
from stacklet.runtime.readiness import strategy_for
from stacklet.runtime.seeds import SeedResult
from stacklet.runtime.startup import StartPlan, start_in_order, wait_conditions

from .fake_driver import FakeDriver

PROJECT = "stacklet-t"


def svc(name: str, depends: dict[str, str] | None = None, *, one_shot: bool = False, after: str = "",
        role: str = "callee", healthcheck: bool = False, seed_after: str = "") -> dict:
    labels = {Label.SERVICE: name, Label.ROLE: role, Label.ONE_SHOT: "true" if one_shot else "false"}
    if after:
        labels[Label.AFTER] = after
    if seed_after:
        labels[Label.SEED_AFTER] = seed_after
    spec: dict = {"image": "x", "labels": labels}
    if depends:
        spec["depends_on"] = {d: {"condition": c, "required": True} for d, c in depends.items()}
    if healthcheck:
        spec["healthcheck"] = {"test": ["CMD", "true"]}
    return spec


def boot(tmp_path: Path, services: dict, scripts: dict, *, seeds: dict | None = None, seed_log: list | None = None,
         on_ready=None, timeout_s: int = 30) -> FakeDriver:
    driver = FakeDriver(scripts)
    compose_file = tmp_path / "compose.yaml"
    compose_file.write_text(yaml.safe_dump({"name": PROJECT, "services": services}))
    driver.project(compose_file, PROJECT).create()

    def seed(service, info):
        (seed_log if seed_log is not None else []).append(service)
        return SeedResult(service=service, action="seed", files=["1.sql"], seconds=0.0)

    start_in_order(driver, PROJECT, StartPlan(services=services, strategy_of=lambda info: strategy_for(info),
                                              on_ready=on_ready or (lambda info: None), seed=seed,
                                              seeds=seeds or {}, timeout_s=timeout_s))
    return driver


def test_conditions_are_composes_own():
    services = {"db": svc("db"), "migrate": svc("migrate", {"db": "service_started"}, one_shot=True),
                "api": svc("api", {"migrate": "service_completed_successfully", "db": "service_healthy"}),
                "web": svc("web", {"api": "service_started"})}
    assert wait_conditions(services) == {"db": {}, "migrate": {"db": "started"},
                                         "api": {"migrate": "completed", "db": "ready"}, "web": {"api": "started"}}


def test_a_job_runs_to_completion_before_what_waits_for_it(tmp_path):
    services = {"db": svc("db"), "migrate": svc("migrate", {"db": "service_started"}, one_shot=True),
                "api": svc("api", {"migrate": "service_completed_successfully", "db": "service_started"},
                           healthcheck=True),
                "web": svc("web", {"api": "service_healthy"})}
    driver = boot(tmp_path, services, {"db": ["running"], "migrate": ["running", "running", "exited:0"],
                                       "api": ["running:starting", "running:healthy"], "web": ["running"]})
    assert driver.started() == [("db",), ("migrate",), ("api",), ("web",)]


def test_service_started_does_not_wait_for_health(tmp_path):
    services = {"db": svc("db", healthcheck=True), "api": svc("api", {"db": "service_started"})}
    driver = boot(tmp_path, services, {"db": ["running:starting", "running:starting", "running:healthy"],
                                       "api": ["running"]})
    assert driver.started() == [("db",), ("api",)]
    api_started = driver.calls.index(("start", ("api",)))
    assert api_started == 2, "api starts once db runs, while db's healthcheck is still starting"


def test_a_failed_job_fails_the_boot_naming_it_with_its_logs(tmp_path):
    services = {"db": svc("db"), "migrate": svc("migrate", {"db": "service_started"}, one_shot=True),
                "api": svc("api", {"migrate": "service_completed_successfully"})}
    driver = FakeDriver({"db": ["running"], "migrate": ["running", "exited:3"]})
    driver.logs["migrate"] = "ERROR: relation \"posts\" already exists"
    compose_file = tmp_path / "compose.yaml"
    compose_file.write_text(yaml.safe_dump({"name": PROJECT, "services": services}))
    driver.project(compose_file, PROJECT).create()
    with pytest.raises(BootError) as failed:
        start_in_order(driver, PROJECT, StartPlan(services=services, strategy_of=lambda info: strategy_for(info)))
    assert failed.value.service == "migrate"
    assert "exited with code 3" in failed.value.message
    assert "already exists" in failed.value.logs
    assert ("start", ("api",)) not in driver.calls


def test_calls_inferred_from_the_environment_wait_until_ready(tmp_path):
    services = {"orders": svc("orders", healthcheck=True), "gateway": svc("gateway", after="orders")}
    driver = boot(tmp_path, services, {"orders": ["running:starting", "running:starting", "running:healthy"]})
    assert driver.started() == [("orders",), ("gateway",)]


def test_a_store_is_seeded_after_the_jobs_that_prepare_it(tmp_path):
    order: list[str] = []
    services = {"db": svc("db", role="stateful", seed_after="migrate"),
                "migrate": svc("migrate", {"db": "service_healthy"}, one_shot=True),
                "api": svc("api", {"db": "service_healthy", "migrate": "service_completed_successfully"})}
    driver = FakeDriver({"db": ["running"], "migrate": ["running", "exited:0"], "api": ["running"]})
    compose_file = tmp_path / "compose.yaml"
    compose_file.write_text(yaml.safe_dump({"name": PROJECT, "services": services}))
    driver.project(compose_file, PROJECT).create()

    def seed(service, info):
        migrate = next(c for c in driver.all.values() if c.service == "migrate")
        order.append((service, migrate.state))
        return SeedResult(service=service, action="seed", files=["1.sql"], seconds=0.0)

    start_in_order(driver, PROJECT, StartPlan(services=services, strategy_of=lambda info: strategy_for(info),
                                              seed=seed, seeds={"db": ["1.sql"]}))
    assert order == [("db", "exited")], "seeds load once the migration completed"
    assert driver.started() == [("db",), ("migrate",), ("api",)]


def test_a_link_proxy_is_configured_before_anything_connects_through_it(tmp_path):
    configured: list[str] = []
    services = {"stacklet-link-1": svc("stacklet-link-1", role="linkproxy"),
                "orders": svc("orders", {"stacklet-link-1": "service_started"})}
    services["stacklet-link-1"]["labels"][Label.ROLE] = "linkproxy"
    driver = boot(tmp_path, services, {}, on_ready=lambda info: configured.append(info.service))
    assert configured[0] == "stacklet-link-1"
    assert driver.started() == [("stacklet-link-1",), ("orders",)]


def test_a_service_that_never_gets_ready_times_out_naming_it(tmp_path):
    services = {"db": svc("db", healthcheck=True)}
    with pytest.raises(BootError) as failed:
        boot(tmp_path, services, {"db": ["running:starting"]}, timeout_s=0)
    assert failed.value.service == "db" and "did not become ready within 0 s" in failed.value.message
