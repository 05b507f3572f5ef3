"""Seeded snapshots on real Docker, with the forum's db: PostgreSQL in a named volume, prepared by the migrate
job and seeded with two SQL files.

One module, four boots of the `db` slice (db, migrate and a link proxy; no baseline needed): without
snapshots, the boot that keeps one (or reuses the one kept before), one that starts from it, and one after an
edited seed file and a rebuilt migration image. The store started from a snapshot mounts no volume at its data
path and starts without crash recovery. (Stores without a volume, committed as they are, are covered on the
fake engine in tests/unit/runtime/test_snapshots.py.)
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from stacklet.labels import Label

from .conftest import NOTHING, leftovers, run_cli
from .test_forum import copy_forum

pytestmark = pytest.mark.usefixtures("driver")

SLICES = ("sn-snap-off", "sn-snap-keep", "sn-snap-from", "sn-snap-new")


@pytest.fixture(scope="module")
def forum(tmp_path_factory) -> Path:
    return copy_forum(tmp_path_factory.mktemp("forum"))


@pytest.fixture(scope="module")
def env(tmp_path_factory, forum, driver):
    """The CLI's environment; at the end every slice, and the snapshots and images made from the edited copy,
    are removed."""
    environment = {"STACKLET_HOME": str(tmp_path_factory.mktemp("home"))}
    made_here: list[str] = []
    yield {**environment, "_images": made_here}
    for name in SLICES:
        run_cli("down", name, env=environment, check=False)
    for image in driver.images({Label.SNAPSHOT_OF: ""}):
        if image.labels.get(Label.SNAPSHOT_SOURCE, "").startswith(str(forum.parent.parent)):
            made_here.extend(image.tags)
    for image in made_here:
        driver.remove_image(image)
    assert leftovers(driver, *SLICES) == NOTHING


def up(forum: Path, env: dict, name: str, *extra: str) -> tuple[dict, str]:
    """Boot the db slice in text mode (its boot events), then read its status as JSON."""
    environment = {k: v for k, v in env.items() if not k.startswith("_")}
    events = run_cli("up", "db", "--stack", str(forum), "--name", name, "--timeout", "300", *extra,
                     env=environment)
    status = json.loads(run_cli("status", name, "--json", env=environment).stdout)
    return {s["name"]: s for s in status["services"]}, events.stdout + events.stderr


def psql(container: str, sql: str) -> str:
    return subprocess.run(["docker", "exec", container, "psql", "-U", "forum", "-d", "forum", "-tAc", sql],
                          capture_output=True, text=True, check=True).stdout.strip()


def plan_snapshots(forum: Path, env: dict) -> dict:
    environment = {k: v for k, v in env.items() if not k.startswith("_")}
    return json.loads(run_cli("plan", "db", "--stack", str(forum), "--json", env=environment).stdout)["snapshots"]


def test_no_snapshot_boots_the_stores_from_scratch(forum, env):
    services, events = up(forum, env, "sn-snap-off", "--no-snapshot")
    assert all(s["snapshot"] is None for s in services.values())
    assert services["migrate"]["state"] == "exited" and services["migrate"]["satisfied_by"] is None
    assert "db: seeding" in events and "snapshot" not in events
    run_cli("down", "sn-snap-off", env={k: v for k, v in env.items() if not k.startswith("_")})


def test_a_snapshot_is_reused_no_seed_runs_no_migration_and_the_data_is_there(forum, env):
    kept, _ = up(forum, env, "sn-snap-keep")  # keeps the snapshots (or starts from those kept before)
    seeded_rows = psql(kept["db"]["container"], "select count(*) from posts")
    run_cli("down", "sn-snap-keep", env={k: v for k, v in env.items() if not k.startswith("_")})
    present = plan_snapshots(forum, env)
    assert {s for s, c in present.items() if c["present"]} == {"db"}

    services, events = up(forum, env, "sn-snap-from")
    db = services["db"]
    assert db["snapshot"] == present["db"]["key"]
    assert services["migrate"]["satisfied_by"] == f"snapshot:{db['snapshot']}"
    assert services["migrate"]["state"] == "created", "the migration job did not run"
    assert "seeding" not in events and f"from snapshot {db['snapshot']}" in events
    assert int(seeded_rows) > 0 and psql(db["container"], "select count(*) from posts") == seeded_rows
    mounts = json.loads(subprocess.run(["docker", "inspect", "-f", "{{json .Mounts}}", db["container"]],
                                       capture_output=True, text=True, check=True).stdout)
    assert not [m for m in mounts if m["Destination"] == "/var/lib/postgresql/data"], \
        "its data is read from the snapshot's layers, not copied into a volume"
    logs = subprocess.run(["docker", "logs", db["container"]], capture_output=True, text=True)
    log = logs.stdout + logs.stderr
    assert "database system was shut down at" in log and "not properly shut down" not in log, \
        "the snapshot was taken from a cleanly stopped PostgreSQL: no recovery at start"


def test_reset_returns_the_exact_seeded_state(forum, env):
    environment = {k: v for k, v in env.items() if not k.startswith("_")}
    status = json.loads(run_cli("status", "sn-snap-from", "--json", env=environment).stdout)
    db = next(s["container"] for s in status["services"] if s["name"] == "db")
    before = psql(db, "select md5(string_agg(t::text, ',' order by t::text)) from posts t")
    psql(db, "delete from posts where id = (select min(id) from posts)")
    psql(db, "insert into posts (author, title, body) values ('x', 'y', 'z')")
    assert psql(db, "select md5(string_agg(t::text, ',' order by t::text)) from posts t") != before
    result = json.loads(run_cli("reset", "db", "--slice", "sn-snap-from", "--json", env=environment).stdout)
    assert result["ok"] and result["results"][0]["action"] == "reset"
    assert psql(db, "select md5(string_agg(t::text, ',' order by t::text)) from posts t") == before


def test_an_edited_seed_file_and_a_rebuilt_migration_make_new_keys_and_gc_removes_the_stale(forum, env, driver):
    environment = {k: v for k, v in env.items() if not k.startswith("_")}
    run_cli("down", "sn-snap-from", env=environment, check=False)
    before = plan_snapshots(forum, env)
    seed = forum.parent.parent / "seeds" / "forum" / "db" / "002-events.sql"
    seed.write_text(seed.read_text() + "\n-- edited: a new key\n")
    edited = plan_snapshots(forum, env)
    assert edited["db"]["key"] != before["db"]["key"] and not edited["db"]["present"]

    migration = forum / "services" / "migrate"
    source = next(p for p in sorted(migration.iterdir()) if p.is_file() and p.suffix == ".py")
    source.write_text(source.read_text() + "\n# rebuilt: a new image\n")
    services, events = up(forum, env, "sn-snap-new")
    compose = yaml.safe_load(Path(json.loads(run_cli("status", "sn-snap-new", "--json", env=environment).stdout)
                                  ["compose_file"]).read_text())
    env["_images"].append(next(s["image"] for s in compose["services"].values()
                               if s["labels"].get(Label.SERVICE) == "migrate"))
    assert services["db"]["snapshot"] is None and services["migrate"]["state"] == "exited"
    assert "db: seeding" in events
    run_cli("down", "sn-snap-new", env=environment)
    after = plan_snapshots(forum, env)
    assert after["db"]["present"] and after["db"]["key"] not in (before["db"]["key"], edited["db"]["key"])

    # the snapshot just kept is stale once its seed file changes again (one kept before from another copy of the
    # forum, with the key the unedited files make, stays current there: gc recomputes the key from its source)
    seed.write_text(seed.read_text() + "\n-- edited again\n")
    # and the migration image built from the edited sources is stale once they change again
    source.write_text(source.read_text() + "\n# edited again\n")
    rebuilt = env["_images"][-1]
    gc = json.loads(run_cli("gc", "--json", env=environment).stdout)
    removed = {d["key"]: d["reason"] for d in gc["snapshots"] if d["remove"]}
    assert after["db"]["key"] in removed and "stale" in removed[after["db"]["key"]], gc["snapshots"]
    assert not driver.image_ids([after["db"]["image"]])
    images = {d["image"]: d for d in gc["images"]}
    assert images[rebuilt]["remove"] and "the sources of migrate changed" in images[rebuilt]["reason"], images
    assert images[rebuilt]["service"] == "forum/migrate" and not driver.image_ids([rebuilt])
