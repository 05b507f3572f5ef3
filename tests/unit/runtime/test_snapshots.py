"""Seeded snapshots on the fake engine: the key, and what a boot decides (take one, start from one, skip jobs)."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from stacklet.config.stack import load_stack
from stacklet.docker.linkproxy_client import LinkProxyControl
from stacklet.errors import BootError, DockerError
from stacklet.labels import Label
from stacklet.planning.plan import make_plan
from stacklet.runtime.engine import SliceEngine
from stacklet.runtime.readiness import health
from stacklet.runtime.snapshots import UNUSED_DAYS, snapshot_key, store_config

from ..conftest import REPO_ROOT
from .fake_driver import FakeDriver

SCRIPTS = {"migrate": ["running", "exited:0"]}


@pytest.fixture
def forum(compose_cli, tmp_path):
    """A copy of the forum with its seeds, so a test may edit a seed file."""
    for part in ("stacks/forum", "seeds/forum"):
        shutil.copytree(REPO_ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    return load_stack(tmp_path / "stacks" / "forum")


@pytest.fixture(autouse=True)
def link_proxies_answer(monkeypatch):
    monkeypatch.setattr(LinkProxyControl, "answers", lambda self, timeout_s=0.3: True)
    monkeypatch.setattr(LinkProxyControl, "populate", lambda self, wanted, protocols=None: None)
    monkeypatch.setattr("stacklet.runtime.readiness.probe", lambda protocol, host, port, timeout_s=0.5: True)


def boot(driver: FakeDriver, forum, tmp_path, name: str, **options):
    engine = SliceEngine(driver, tmp_path / "home")
    return engine, engine.up(make_plan(forum, ["migrate"]), forum, name, **options)


def seed_execs(driver: FakeDriver) -> set[str]:
    return {service for service, argv in driver.execs if argv[0] in ("psql", "redis-cli", "sh")
            and "CHECKPOINT" not in argv}


def test_the_key_changes_with_each_thing_that_made_the_data(tmp_path):
    seed = tmp_path / "001.sql"
    seed.write_text("insert into t values (1);")
    config = store_config({"environment": {"POSTGRES_DB": "forum"}, "volumes": ["db-data:/var/lib/postgresql/data"]})
    base = snapshot_key("sha256:a", [seed], {"migrate": "sha256:m"}, config)
    assert base == snapshot_key("sha256:a", [seed], {"migrate": "sha256:m"}, config), "the key is stable"
    assert config["volumes"] == ["/var/lib/postgresql/data"]
    others = {snapshot_key("sha256:b", [seed], {"migrate": "sha256:m"}, config),
              snapshot_key("sha256:a", [seed], {"migrate": "sha256:m2"}, config),
              snapshot_key("sha256:a", [seed], {"migrate": "sha256:m"}, {**config, "environment": {"X": "1"}})}
    seed.write_text("insert into t values (2);")
    others.add(snapshot_key("sha256:a", [seed], {"migrate": "sha256:m"}, config))
    assert base not in others and len(others) == 4


def test_the_first_boot_keeps_snapshots_and_the_next_starts_from_them(forum, tmp_path):
    driver = FakeDriver(dict(SCRIPTS))
    _, first = boot(driver, forum, tmp_path, "s1")
    assert first.healthy
    kept = {tag for tag in driver.images_by_tag if tag.startswith("stacklet-snapshot/")}
    assert {t.split(":")[0] for t in kept} == {"stacklet-snapshot/forum-db", "stacklet-snapshot/forum-cache",
                                               "stacklet-snapshot/forum-search"}
    assert seed_execs(driver) == {"db", "cache", "search"}
    assert ("copy_out", "db", "/var/lib/postgresql/data") in driver.calls, "the db's volume is in its snapshot"
    stop = driver.calls.index(("stop", ("db.origin",)))
    assert driver.calls[stop + 1:].index(("start", ("db.origin",))) > driver.calls[stop + 1:].index(
        next(c for c in driver.calls[stop + 1:] if c[0] == "commit")), "stopped while copied and committed, then started"
    assert not any(c[0] == "pause" for c in driver.calls), "a clean stop, not a paused (crash-consistent) copy"
    assert all(s.snapshot is None for s in first.services)

    driver.execs.clear()
    before = len(driver.calls)
    engine, second = boot(driver, forum, tmp_path, "s2")
    assert second.healthy
    assert seed_execs(driver) == set(), "no seed file runs for a store from its snapshot"
    db = second.service("db")
    assert db.snapshot and any(t.endswith(":" + db.snapshot) for t in kept)
    migrate = second.service("migrate")
    assert migrate.satisfied_by == f"snapshot:{db.snapshot}" and migrate.state == "created"
    started = {s for call in driver.calls[before:] if call[0] == "start" for s in call[1]}
    assert "db.origin" in started and not any(s.startswith("migrate") for s in started), \
        "the migration job whose store came from a snapshot does not run"
    info = next(c for c in driver.containers({Label.SLICE: "s2"}) if c.service == "migrate")
    assert health(info).ready, "a satisfied job counts as done"
    spec = yaml.safe_load(engine.teardown.slice_folder("s2").joinpath("compose.yaml").read_text())
    assert not spec["services"]["db.origin"].get("volumes"), "its data is read from the snapshot's layers"


def test_a_store_from_its_snapshot_mounts_no_volume_of_its_own():
    """Docker would copy the whole data into such a volume at create; a bind mount and a named volume another
    service shares stay, and a top-level volume nothing mounts any more goes. A store prepared now keeps it."""
    from types import SimpleNamespace

    from stacklet.runtime.snapshots import SnapshotChoice, restore
    spec = {"services": {
        "db": {"image": "db:dev", "labels": {}, "volumes": [
            {"type": "volume", "source": "db-data", "target": "/var/lib/postgresql/data"},
            {"type": "volume", "target": "/scratch"},
            {"type": "volume", "source": "uploads", "target": "/uploads"},
            {"type": "bind", "source": "/src/init.sql", "target": "/docker-entrypoint-initdb.d/init.sql"}]},
        "api": {"image": "api:dev", "labels": {}, "volumes": [
            {"type": "volume", "source": "uploads", "target": "/srv/uploads"}]}},
        "volumes": {"db-data": {"labels": {}}, "uploads": {"labels": {}}}}
    choice = SnapshotChoice(service="db", key="k1", image="stacklet-snapshot/s-db:k1", present=True)
    restore(spec, {"db": choice}, SimpleNamespace(local=[]))
    db = spec["services"]["db"]
    assert db["image"] == "stacklet-snapshot/s-db:k1" and db["labels"][Label.SNAPSHOT] == "k1"
    assert [m["target"] for m in db["volumes"]] == ["/uploads", "/docker-entrypoint-initdb.d/init.sql"]
    assert spec["volumes"] == {"uploads": {"labels": {}}}
    prepared = {"services": {"db": {"image": "db:dev", "labels": {}, "volumes": [
        {"type": "volume", "source": "db-data", "target": "/data"}]}}, "volumes": {"db-data": {}}}
    restore(prepared, {"db": choice.model_copy(update={"present": False})}, SimpleNamespace(local=[]))
    assert prepared["services"]["db"]["volumes"] and prepared["volumes"]


def test_an_edited_seed_file_or_a_rebuilt_job_makes_a_new_key(forum, tmp_path):
    driver = FakeDriver(dict(SCRIPTS))
    _, first = boot(driver, forum, tmp_path, "s1")
    _, again = boot(driver, forum, tmp_path, "s2")
    key = again.service("db").snapshot
    seed = tmp_path / "seeds" / "forum" / "db" / "002-events.sql"
    seed.write_text(seed.read_text() + "\n-- edited\n")
    _, edited = boot(driver, forum, tmp_path, "s3")
    assert edited.service("db").snapshot is None, "a new key: prepared again, and a new snapshot kept"
    assert edited.service("migrate").satisfied_by is None
    _, after_edit = boot(driver, forum, tmp_path, "s4")
    assert after_edit.service("db").snapshot not in (None, key)
    assert after_edit.service("cache").snapshot == again.service("cache").snapshot, "other stores keep theirs"

    migrate_tag = next(t for t in driver.images_by_tag if t.startswith("stacklet-build/forum-migrate:"))
    driver.images_by_tag[migrate_tag] = "sha256:rebuilt-migrate"
    _, rebuilt = boot(driver, forum, tmp_path, "s5")
    assert rebuilt.service("db").snapshot is None and rebuilt.service("migrate").satisfied_by is None


def test_a_job_run_with_other_environment_makes_a_new_key_and_runs(forum, tmp_path):
    """A migration whose environment changed may write other data (or fail): its store is prepared again."""
    driver = FakeDriver(dict(SCRIPTS))
    boot(driver, forum, tmp_path, "s1")
    _, again = boot(driver, forum, tmp_path, "s2")
    assert again.service("migrate").satisfied_by is not None
    compose_file = tmp_path / "stacks" / "forum" / "compose.yaml"
    compose = yaml.safe_load(compose_file.read_text())
    compose["services"]["migrate"]["environment"] = {"MIGRATE_FAIL": "1"}
    compose_file.write_text(yaml.safe_dump(compose, sort_keys=False))
    _, changed = boot(driver, load_stack(tmp_path / "stacks" / "forum"), tmp_path, "s3")
    assert changed.service("db").snapshot is None and changed.service("migrate").satisfied_by is None


def test_no_snapshot_and_the_stack_switch_boot_without(forum, tmp_path):
    driver = FakeDriver(dict(SCRIPTS))
    boot(driver, forum, tmp_path, "s1")
    driver.execs.clear()
    _, off = boot(driver, forum, tmp_path, "s2", snapshots=False)
    assert all(s.snapshot is None for s in off.services) and seed_execs(driver) == {"db", "cache", "search"}
    forum.meta.snapshots = False
    driver.execs.clear()
    _, switched = boot(driver, forum, tmp_path, "s3")
    assert all(s.snapshot is None for s in switched.services) and seed_execs(driver) == {"db", "cache", "search"}


def test_unchanged_images_are_reused_not_rebuilt(forum, tmp_path):
    driver = FakeDriver(dict(SCRIPTS))
    boot(driver, forum, tmp_path, "s1")
    builds = [c for c in driver.calls if c[0] == "build"]
    boot(driver, forum, tmp_path, "s2")
    assert [c for c in driver.calls if c[0] == "build"] == builds + [("build", ())], "nothing built the second time"


def test_gc_removes_stale_and_long_unused_snapshots_and_keeps_current_and_used_ones(forum, tmp_path):
    driver = FakeDriver(dict(SCRIPTS))
    engine, _ = boot(driver, forum, tmp_path, "s1")
    first = {t for t in driver.images_by_tag if t.startswith("stacklet-snapshot/")}
    seed = tmp_path / "seeds" / "forum" / "db" / "002-events.sql"
    seed.write_text(seed.read_text() + "\n-- edited\n")
    boot(driver, forum, tmp_path, "s2")
    engine.down("s1")
    engine.down("s2")
    decisions = {d.image: d for d in engine.gc_snapshots(dry_run=True)}
    old_db = next(t for t in first if "forum-db" in t)
    assert decisions[old_db].remove and "stale" in decisions[old_db].reason
    assert sum(d.remove for d in decisions.values()) == 1, "only the snapshot whose seed file changed is stale"
    assert old_db in driver.images_by_tag, "a dry run removes nothing"
    engine.gc_snapshots()
    assert old_db not in driver.images_by_tag and len(decisions) - 1 == sum(
        t.startswith("stacklet-snapshot/") for t in driver.images_by_tag)

    _, running = boot(driver, forum, tmp_path, "s3")
    later = datetime.now(timezone.utc) + timedelta(days=UNUSED_DAYS + 1)
    kept = engine.gc_snapshots(dry_run=True, now=later)
    assert all(not d.remove and d.reason == "in use by a container" for d in kept), "a store's image is in use"
    engine.down("s3")
    assert all(d.remove and "not used for" in d.reason for d in engine.gc_snapshots(dry_run=True, now=later))


def test_a_boot_that_fails_also_reports_a_snapshot_it_could_not_build(forum, tmp_path, monkeypatch):
    driver = FakeDriver({**SCRIPTS, "web": ["exited:1"]})  # web fails after the stores were seeded and kept
    real_build = driver.build_folder

    def build_folder(folder, tag):
        if tag.startswith("stacklet-snapshot/forum-cache"):
            raise DockerError("no space left on device")
        return real_build(folder, tag)
    monkeypatch.setattr(driver, "build_folder", build_folder)
    engine = SliceEngine(driver, tmp_path / "home")
    with pytest.raises(BootError) as info:
        engine.up(make_plan(forum, ["api"]), forum, "s1")
    assert "web" in info.value.message
    assert "the snapshot of cache (" in info.value.details and "no space left on device" in info.value.details
    kept = {tag.split(":")[0] for tag in driver.images_by_tag if tag.startswith("stacklet-snapshot/")}
    assert kept == {"stacklet-snapshot/forum-db", "stacklet-snapshot/forum-search"}, "the others were still kept"
