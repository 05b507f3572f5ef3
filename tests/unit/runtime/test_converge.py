"""The converge pipeline and the one health rule, on the fake engine (no Docker daemon).

The stack is the tiny chain web → api → store of the Docker tests; the link proxy's control API is
replaced by a recorder (the real one is tested against real link proxies in tests/linkproxy).
"""

from __future__ import annotations

import pytest

from stacklet.config.stack import ServiceMeta, load_stack
from stacklet.docker.linkproxy_client import LinkProxyControl
from stacklet.errors import BootError, PlanError
from stacklet.labels import Label, marker_volume
from stacklet.planning.plan import make_plan
from stacklet.runtime.engine import SliceEngine

from ..conftest import REPO_ROOT
from .fake_driver import FakeDriver

TINY = REPO_ROOT / "tests" / "docker" / "stacks" / "tiny"


@pytest.fixture
def tiny(compose_cli):
    return load_stack(TINY)


@pytest.fixture(autouse=True)
def link_proxies_answer(monkeypatch):
    routes: list[dict] = []
    monkeypatch.setattr(LinkProxyControl, "answers", lambda self, timeout_s=0.3: True)
    monkeypatch.setattr(LinkProxyControl, "populate", lambda self, wanted, protocols=None: routes.append(wanted))
    return routes


def engine_on(driver: FakeDriver, tmp_path) -> SliceEngine:
    return SliceEngine(driver, tmp_path / "home")


def services_of(driver: FakeDriver) -> set[str]:
    return {c.service for c in driver.all.values()}


def test_up_starts_callees_first_and_configures_link_proxies_before_callers(tiny, tmp_path, link_proxies_answer):
    driver = FakeDriver(with_healthcheck={"web", "api", "store.origin", "api.origin"})
    engine = engine_on(driver, tmp_path)
    status = engine.up(make_plan(tiny, ["web"]), tiny, "t1")
    assert status.healthy and {s.name for s in status.services} == {"web", "api", "store"}
    batches = driver.started()
    order = [service for batch in batches for service in batch]
    assert order.index("store.origin") < order.index("api.origin") < order.index("web")
    assert order.index("stacklet-link-1") < order.index("api.origin"), "the link proxy is routed before callers"
    assert link_proxies_answer, "the link proxy got its routes"
    assert marker_volume("t1") in driver.vols, "a finished boot leaves its marker for gc"


def test_protocol_in_stack_yaml_is_set_on_the_routes_of_that_service(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(LinkProxyControl, "answers", lambda self, timeout_s=0.3: True)
    populated: list[tuple[dict, dict | None]] = []
    monkeypatch.setattr(LinkProxyControl, "populate",
                        lambda self, wanted, protocols=None: populated.append((wanted, protocols)))
    stack = tiny.model_copy(deep=True)
    stack.meta.services["api"] = ServiceMeta(protocol="http")
    driver = FakeDriver(with_healthcheck={"web", "api", "store.origin", "api.origin"})
    engine_on(driver, tmp_path).up(make_plan(stack, ["web"]), stack, "t9")
    [(wanted, protocols)] = populated
    assert protocols == {route: "http" for route in wanted if route.split(":")[0] == "api"} and protocols


def test_a_failed_service_tears_the_slice_down_and_names_it(tiny, tmp_path):
    driver = FakeDriver({"api.origin": ["running:starting", "exited:1"]})
    driver.logs["api"] = "Traceback: boom"
    engine = engine_on(driver, tmp_path)
    with pytest.raises(BootError) as failed:
        engine.up(make_plan(tiny, ["web"]), tiny, "t2")
    assert failed.value.service == "api" and "exited with code 1" in failed.value.message
    assert failed.value.logs == "Traceback: boom"
    assert failed.value.__cause__ is not failed.value, "an error is never its own cause"
    assert not driver.all and not driver.nets, "nothing is left on the engine"
    assert not (tmp_path / "home" / "slices" / "t2").exists(), "nor the slice's folder"


def test_keep_on_failure_keeps_it_and_marks_the_boot_kept(tiny, tmp_path):
    driver = FakeDriver({"api.origin": ["running:starting", "exited:1"]})
    engine = engine_on(driver, tmp_path)
    with pytest.raises(BootError) as failed:
        engine.up(make_plan(tiny, ["web"]), tiny, "t3", keep_on_failure=True)
    assert "kept running" in failed.value.hint
    assert driver.all, "the containers stay to be inspected"
    assert driver.vols[marker_volume("t3")][Label.BOOT_RESULT] == "kept"


def test_ctrl_c_during_the_boot_removes_what_was_started(tiny, tmp_path):
    driver = FakeDriver()
    engine = engine_on(driver, tmp_path)
    original = driver.start

    def interrupted(ids):
        original(ids)
        raise KeyboardInterrupt

    driver.start = interrupted
    with pytest.raises(BootError) as failed:
        engine.up(make_plan(tiny, ["web"]), tiny, "t4")
    assert "interrupted" in failed.value.message and failed.value.hint == "nothing was left running"
    assert isinstance(failed.value.__cause__, KeyboardInterrupt)
    assert not driver.all


def test_up_on_a_running_slice_reconciles_and_keeps_it(tiny, tmp_path):
    driver = FakeDriver()
    engine = engine_on(driver, tmp_path)
    engine.up(make_plan(tiny, ["web"]), tiny, "t5")
    before = set(driver.all)
    status = engine.up(make_plan(tiny, ["web"]), tiny, "t5")
    assert status.healthy and set(driver.all) == before, "nothing changed, nothing recreated"


def test_up_of_another_stack_under_a_taken_name_says_whether_that_slice_runs(tiny, tmp_path):
    driver = FakeDriver()
    engine = engine_on(driver, tmp_path)
    engine.up(make_plan(tiny, ["web"]), tiny, "t10")
    other = tiny.model_copy(update={"stack_file": tmp_path / "other" / "stack.yaml"})
    with pytest.raises(PlanError, match="already runs, made from stack "):
        engine.up(make_plan(other, ["web"]), other, "t10")
    for service in services_of(driver):  # the engine restarted: every container exited
        driver.kill(service)
    with pytest.raises(PlanError, match="exists, stopped .none of its containers runs.") as refused:
        engine.up(make_plan(other, ["web"]), other, "t10")
    assert "stacklet down t10" in refused.value.hint


def test_ls_status_and_the_health_rule_agree_on_a_killed_service(tiny, tmp_path):
    driver = FakeDriver()
    engine = engine_on(driver, tmp_path)
    engine.up(make_plan(tiny, ["web"]), tiny, "t6")
    assert engine.status("t6").healthy and engine.list()[0].healthy
    driver.kill("api")
    assert not engine.status("t6").healthy
    assert not engine.list()[0].healthy


def test_a_one_shot_job_that_exited_0_is_healthy_everywhere(tmp_path):
    from stacklet.runtime.readiness import health
    from stacklet.docker.models import ContainerInfo

    job = ContainerInfo(id="j", name="j", state="exited", exit_code=0, labels={Label.ONE_SHOT: "true"})
    service = ContainerInfo(id="s", name="s", state="exited", exit_code=0, labels={Label.ONE_SHOT: "false"})
    killed = ContainerInfo(id="k", name="k", state="exited", exit_code=137, labels={})
    starting_proxy = ContainerInfo(id="p", name="p", state="running", health="starting",
                                   labels={Label.ROLE: "linkproxy"})
    assert health(job).ready
    assert not health(service).ready, "a long-running service that exited is not healthy, even with 0"
    assert not health(killed).ready
    assert health(starting_proxy).ready


def test_the_workdir_ignores_itself_and_down_removes_the_slice_folder(tiny, tmp_path):
    driver = FakeDriver()
    engine = engine_on(driver, tmp_path)
    engine.up(make_plan(tiny, ["web"]), tiny, "t7")
    home = tmp_path / "home"
    assert (home / ".gitignore").read_text().splitlines()[-1] == "*"
    assert (home / "slices" / "t7" / "compose.yaml").is_file()
    engine.down("t7")
    assert not (home / "slices" / "t7").exists() and not driver.all and not driver.nets


def test_reload_removes_the_image_it_replaced(tiny, tmp_path):
    driver = FakeDriver()
    engine = engine_on(driver, tmp_path)
    engine.up(make_plan(tiny, ["web"]), tiny, "t8")
    web = next(c for c in driver.all.values() if c.service == "web")
    original_recreate = driver.project

    def project(compose_file, name):
        handle = original_recreate(compose_file, name)

        def recreate(services):
            for cid, info in list(driver.all.items()):
                if info.compose_service in services:
                    driver.all[cid] = info.model_copy(update={"image": "img-web-2", "state": "running"})
                    driver.progress[cid] = 0
        handle.recreate = recreate
        return handle

    driver.project = project
    result = engine.reload("t8", "web")
    assert result.rebuilt and ("remove_image", web.image) in driver.calls


def test_a_boot_is_ready_without_waiting_for_dockers_first_healthcheck_tick(tiny, tmp_path):
    """Docker still says ``starting`` for every service (its first check not yet due): the boot is ready
    once each service's healthcheck command passed when stacklet ran it, and status says so."""
    starting = {"web": ["running:starting"], "api.origin": ["running:starting"], "store.origin": ["running:starting"]}
    driver = FakeDriver(starting, with_healthcheck=set(starting))
    status = engine_on(driver, tmp_path).up(make_plan(tiny, ["web"]), tiny, "t-tick", timeout_s=2)
    assert status.healthy
    services = {s.name: s for s in status.services}
    assert {s.health for s in services.values()} == {"healthy"}
    assert "Docker's own first check is still due" in services["web"].health_output
    assert {service for service, _ in driver.execs} >= {"web", "api", "store"}, \
        "each healthcheck's own command ran in its container"
