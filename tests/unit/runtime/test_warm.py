"""Warm slices on the fake engine: when a warm slice fits an ``up`` (the warm key), and the claim.

The stack is a copy of the tiny chain web → api → store with one build context per service, so an
edit to one service's files is told apart from an edit to another's.
"""

from __future__ import annotations

import shutil
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from stacklet.config.stack import load_stack
from stacklet.docker.linkproxy_client import LinkProxyControl
from stacklet.labels import Label, claim_record_name, lease_volume, warm_record_name
from stacklet.planning.plan import make_plan
from stacklet.runtime.engine import SliceEngine
from stacklet.runtime.warmkey import warm_key

from ..conftest import REPO_ROOT
from .fake_driver import FakeDriver

TINY = REPO_ROOT / "tests" / "docker" / "stacks" / "tiny"
HOUR = 3600


@pytest.fixture
def stack_dir(compose_cli, tmp_path) -> Path:
    """tiny, each service built from its own folder."""
    root = tmp_path / "tiny"
    shutil.copytree(TINY, root)
    spec = yaml.safe_load((root / "compose.yaml").read_text())
    for name in ("web", "api", "store"):
        shutil.copytree(root / "app", root / name)
        spec["services"][name]["build"] = {"context": name}
    (root / "compose.yaml").write_text(yaml.safe_dump(spec))
    return root


@pytest.fixture(autouse=True)
def link_proxies_answer(monkeypatch):
    monkeypatch.setattr(LinkProxyControl, "answers", lambda self, timeout_s=0.3: True)
    monkeypatch.setattr(LinkProxyControl, "populate", lambda self, wanted, protocols=None: None)


def key_of(stack_dir: Path, changed: list[str], driver: FakeDriver | None = None, **settings):
    stack = load_stack(stack_dir)
    return warm_key(make_plan(stack, changed), stack, driver or FakeDriver(), **settings)


def touch(path: Path, text: str = "\n# edited\n") -> None:
    path.write_text(path.read_text() + text)


# -- the match decision -----------------------------------------------------------------------

def test_the_same_change_and_settings_give_the_same_key(stack_dir):
    first, again = key_of(stack_dir, ["web"]), key_of(stack_dir, ["web"])
    assert first.digest() == again.digest() and first.mismatch(again) is None


def test_an_edit_to_the_changed_service_keeps_the_key_an_edit_to_another_breaks_it(stack_dir):
    warmed = key_of(stack_dir, ["web"])
    touch(next((stack_dir / "web").glob("*.py")))
    assert key_of(stack_dir, ["web"]).digest() == warmed.digest(), "up rebuilds the changed service itself"
    touch(next((stack_dir / "api").glob("*.py")))
    now = key_of(stack_dir, ["web"])
    assert now.digest() != warmed.digest()
    assert now.mismatch(warmed) == "the image or build files of api changed since it was warmed"


@pytest.mark.parametrize(("settings", "reason"), [
    ({"seed": False}, "it was warmed with seeds (--no-seed differs)"),
    ({"fault_seed": 7}, "it was warmed with fault profile none (seed None), not none (seed 7)"),
])
def test_other_settings_break_the_key_and_say_which(stack_dir, settings, reason):
    warmed, wanted = key_of(stack_dir, ["web"]), key_of(stack_dir, ["web"], **settings)
    assert wanted.digest() != warmed.digest()
    assert wanted.mismatch(warmed) == reason


def test_another_change_does_not_fit(stack_dir):
    wanted, warmed = key_of(stack_dir, ["api"]), key_of(stack_dir, ["web"])
    assert wanted.mismatch(warmed) == "it was warmed for a change of web, not of api"


def test_a_pulled_image_is_compared_by_its_id(stack_dir):
    spec = yaml.safe_load((stack_dir / "compose.yaml").read_text())
    spec["services"]["store"].pop("build")
    spec["services"]["store"]["image"] = "redis:7"
    (stack_dir / "compose.yaml").write_text(yaml.safe_dump(spec))
    driver = FakeDriver()
    driver.images_by_tag["redis:7"] = "sha256:old"
    warmed = key_of(stack_dir, ["web"], driver)
    driver.images_by_tag["redis:7"] = "sha256:new"
    assert key_of(stack_dir, ["web"], driver).mismatch(warmed) == \
        "the image or build files of store changed since it was warmed"


# -- fill, claim, names -----------------------------------------------------------------------

@pytest.fixture
def pool(stack_dir, tmp_path):
    """An engine with one warm slice of a change of web."""
    driver = FakeDriver()
    engine = SliceEngine(driver, tmp_path / "home")
    stack = load_stack(stack_dir)
    plan = make_plan(stack, ["web"])
    key = warm_key(plan, stack, driver)
    booted = engine.warm.fill(plan, stack, key, 1, base="wm-web", ttl_s=HOUR, command={"argv": ["web"]}, timeout_s=30)
    return engine, driver, key, booted[0]


def test_fill_boots_and_pauses_and_records_the_slice(pool):
    engine, driver, key, name = pool
    containers = [c for c in driver.all.values() if c.labels.get(Label.SLICE) == name]
    assert containers and all(c.state == "paused" for c in containers)
    record = next(c for c in driver.all.values() if c.labels.get(Label.WARM_OF) == name)
    assert record.name == warm_record_name(name) and record.labels[Label.WARM_KEY] == key.digest()
    row = next(s for s in engine.list() if s.name == name)
    assert row.warm == "paused" and row.changed == ["web"] and row.expires is not None


def test_fill_stops_once_the_pool_is_full(pool, stack_dir):
    engine, driver, key, _ = pool
    stack = load_stack(stack_dir)
    again = engine.warm.fill(make_plan(stack, ["web"]), stack, key, 1, base="wm-web", ttl_s=HOUR, command={},
                             timeout_s=30)
    assert again == []


def test_a_claim_takes_the_slice_under_the_users_name_and_every_command_finds_it(pool):
    engine, driver, key, name = pool
    claim = engine.warm.claim(key, "mine", ttl_s=2 * HOUR)
    assert claim.taken == name and claim.command == {"argv": ["web"]}
    assert all(c.state == "running" for c in driver.all.values() if c.labels.get(Label.SLICE) == name)
    status = engine.status("mine")
    assert status.name == "mine" and status.taken_from == name and status.labelled_as == name
    row = next(s for s in engine.list() if s.taken_from == name)
    assert row.name == "mine" and row.warm is None
    assert lease_volume(name, taken=True) in driver.vols and lease_volume(name, taken=False) not in driver.vols
    assert engine.exists("mine") and engine.stack_of("mine").name == "tiny"
    engine.down("mine")
    assert not [c for c in driver.all.values() if name in (c.labels.get(Label.SLICE), c.labels.get(Label.WARM_OF))]
    assert not [v for v, labels in driver.vols.items() if labels.get(Label.SLICE) == name]


def test_a_warm_slice_is_handed_out_once(pool):
    engine, driver, key, name = pool
    assert engine.warm.claim(key, "first", ttl_s=None).taken == name
    second = engine.warm.claim(key, "second", ttl_s=None)
    assert second.taken is None and "no warm slice of stack tiny is waiting" in second.reason


def test_two_concurrent_claims_one_wins(pool):
    engine, driver, key, name = pool
    waiting = engine.warm.waiting("tiny")
    results: dict[str, object] = {}
    go = threading.Barrier(2)

    def take(as_name: str) -> None:
        go.wait()
        results[as_name] = engine.warm.claim(key, as_name, ttl_s=None, waiting=waiting)

    threads = [threading.Thread(target=take, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    taken = [n for n, claim in results.items() if claim.taken]
    assert len(taken) == 1 and results[taken[0]].taken == name
    loser = next(claim for n, claim in results.items() if not claim.taken)
    assert "taken by another `up`" in loser.reason
    assert next(c for c in driver.all.values() if c.labels.get(Label.WARM_OF) == name).name == \
        claim_record_name(taken[0])


def test_a_key_that_does_not_match_says_why(pool, stack_dir):
    engine, driver, key, name = pool
    stack = load_stack(stack_dir)
    other = warm_key(make_plan(stack, ["web"]), stack, driver, fault_seed=3)
    claim = engine.warm.claim(other, "mine", ttl_s=None)
    assert claim.taken is None and claim.reason.startswith(f"warm slice {name} does not fit: it was warmed with")


def test_gc_removes_an_expired_warm_slice_and_its_record(pool):
    engine, driver, key, name = pool
    later = datetime.now(timezone.utc) + timedelta(seconds=HOUR + 60)
    decisions = engine.gc(now=later)
    assert [d.slice for d in decisions if d.remove] == [name]
    assert not [c for c in driver.all.values() if c.labels.get(Label.WARM_OF) == name]


def test_clear_removes_the_pool_but_not_a_taken_slice(pool, stack_dir):
    engine, driver, key, name = pool
    engine.warm.claim(key, "mine", ttl_s=None)
    stack = load_stack(stack_dir)
    second = engine.warm.fill(make_plan(stack, ["web"]), stack, key, 1, base="wm-web", ttl_s=HOUR, command={},
                              timeout_s=30)
    assert engine.warm.clear(key.digest()) == second
    assert engine.status("mine").taken_from == name


def test_a_take_rebuilds_only_the_changed_services_edited_since_warming(pool, stack_dir):
    engine, driver, key, name = pool
    touch(next((stack_dir / "web").glob("*.py")))
    stack = load_stack(stack_dir)
    now = warm_key(make_plan(stack, ["web"]), stack, driver)
    assert now.digest() == key.digest() and now.edited_since(key) == ["web"]
    assert key.edited_since(key) == []
    assert engine.warm.claim(now, "mine", ttl_s=None).edited == ["web"]
