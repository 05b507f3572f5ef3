"""The forum example stack's plans: stores, jobs and consumers local, the debug tool absent."""

from __future__ import annotations

import pytest

from stacklet.config.stack import load_stack
from stacklet.labels import Label
from stacklet.planning.plan import make_plan
from stacklet.planning.render import render, render_baseline

from ..conftest import REPO_ROOT, compose_accepts, skip_or_fail

FORUM = REPO_ROOT / "stacks" / "forum"
STORES = {"db", "cache", "broker", "search"}


@pytest.fixture(scope="module")
def forum(compose_cli):
    if not (FORUM / "stack.yaml").is_file():
        skip_or_fail("stacks/forum/stack.yaml is missing")
    return load_stack(FORUM)


def roles(plan) -> dict[str, str]:
    return {s.name: s.role for s in plan.local}


def test_identity_and_profiles(forum):
    assert forum.name == "forum" == forum.compose.name  # named by its Compose project
    assert "debug" not in forum.services and forum.compose.inactive_services == {"debug": ["debug"]}
    assert forum.compose.shared_env_files() == {"forum.env"}
    assert "debug" not in render_baseline(forum)["services"]


def test_every_store_is_recognised_by_a_rule(forum):
    plan = make_plan(forum, ["api"])
    rules = {s.name: s.stateful_rule for s in plan.local if s.stateful}
    assert set(rules) == STORES
    assert rules["search"] == "port"  # built from the Python services' Dockerfile: only 9200 gives it away


def test_plan_api(forum):
    plan = make_plan(forum, ["api"])
    assert roles(plan) == {"api": "changed", "web": "caller", "broker": "callee", "cache": "callee",
                           "search": "callee", "migrate": "job", "worker": "consumer", "db": "stateful"}
    assert not plan.forwarded
    local = {s.name: s for s in plan.local}
    assert local["db"].seed_after == ["migrate"]
    # what decides readiness: db's image healthcheck is disabled, cache and search have none at all
    assert {n: local[n].healthcheck for n in ("db", "cache", "search", "broker", "api")} == {
        "db": "none", "cache": "none", "search": "none", "broker": "compose", "api": "compose"}
    assert ("migrate", "service_completed_successfully", True) in [
        (d.service, d.condition, d.required) for d in local["api"].depends_on]
    assert local["migrate"].job and local["migrate"].depends_on[0].service == "db"
    assert plan.boot_blockers == [] and plan.inactive_services == {"debug": ["debug"]}


def test_plan_worker(forum):
    plan = make_plan(forum, ["worker"])
    assert roles(plan) == {"worker": "changed", "broker": "callee", "migrate": "job", "db": "stateful"}
    assert not plan.forwarded
    db = next(s for s in plan.local if s.name == "db")
    assert any("forum.env (DATABASE_URL)" in r for r in db.reasons)  # a store reached through the shared env file
    assert any(n.startswith("api also uses local broker broker but is not in the slice") for n in plan.notes)


def test_plan_search(forum):
    plan = make_plan(forum, ["search"])
    assert roles(plan) == {"search": "changed", "api": "caller", "worker": "consumer", "migrate": "job",
                           "broker": "stateful", "cache": "stateful", "db": "stateful"}
    assert not plan.forwarded and "debug" not in roles(plan)


def test_plan_web_at_radius_0_names_the_writer(forum):
    plan = make_plan(forum, ["web"], radius=0)
    assert [(f.name, sorted(f.writes_to)) for f in plan.forwarded] == [("api", sorted(STORES))]


def test_debug_with_its_profile(compose_cli):
    stack = load_stack(FORUM, profiles=["debug"])
    plan = make_plan(stack, ["debug"])
    assert roles(plan) == {"debug": "changed", "db": "callee", "migrate": "job"}


def test_rendered_slice_is_valid_compose_with_its_conditions(forum, tmp_path):
    plan = make_plan(forum, ["api"])
    project = render(plan, forum, "rp-forum-api")
    api = project["services"]["api.origin"]
    assert api["depends_on"]["migrate"] == {"condition": "service_completed_successfully", "required": True}
    assert compose_accepts(project, tmp_path) is None


def test_the_baseline_seeds_db_after_its_migration_as_a_slice_does(forum):
    """Both wait for migrate before seeding db: the seed files insert into the tables it creates."""
    baseline = render_baseline(forum)["services"]
    assert baseline["db"]["labels"][Label.SEED_AFTER] == "migrate"
    assert Label.SEED_AFTER not in baseline["cache"]["labels"], "no job prepares the cache"
    local = {s.name: s for s in make_plan(forum, ["api"]).local}
    assert local["db"].seed_after == ["migrate"]
