"""planning/selection.py and plan.py: isolation, jobs, consumers, weak edges, depends_on for the runtime."""

from __future__ import annotations

from stacklet.planning.graph import ServiceGraph
from stacklet.planning.plan import make_plan
from stacklet.planning.render import render

from ..conftest import service

SHARED = {"api": {"DB": "shared.env", "SEARCH": "shared.env", "CACHE": "shared.env"},
          "worker": {"DB": "shared.env", "SEARCH": "shared.env", "CACHE": "shared.env"}}


def forumish(make_stack, **kw):
    env = {"DB": "postgres://db:5432/x", "SEARCH": "http://search:9200", "CACHE": "http://cache:8000"}
    return make_stack({
        "web": service("example/web", expose=[80], environment={"API": "http://api:8000"}),
        "api": service("example/api", expose=[8000], environment=dict(env), depends_on={
            "migrate": {"condition": "service_completed_successfully", "required": True},
            "broker": {"condition": "service_healthy", "required": True}}),
        "worker": service("example/worker", environment=dict(env), depends_on={
            "broker": {"condition": "service_healthy", "required": True}}),
        "migrate": service("example/api", command=["migrate"], depends_on=["db"]),
        "db": service("postgres:16"),
        "broker": service("rabbitmq:3"),
        "search": service("example/search", expose=[9200]),
        "cache": service("example/cache", expose=[8000]),
    }, env_from_files=SHARED, **kw)


def test_slice_runs_stores_jobs_and_consumers_locally(make_stack):
    plan = make_plan(forumish(make_stack), ["api"])
    roles = {s.name: s.role for s in plan.local}
    assert roles == {"api": "changed", "web": "caller", "broker": "callee", "migrate": "job", "worker": "consumer",
                     "db": "stateful", "search": "stateful"}
    assert not plan.forwarded                      # nothing of the baseline is used, nothing can be written
    local = {s.name: s for s in plan.local}
    assert local["db"].seed_after == ["migrate"] and local["db"].stateful_rule == "image"
    assert local["search"].stateful_rule == "port"
    assert "listens on no port" in local["worker"].reasons[0]
    assert [(d.service, d.condition, d.local) for d in local["api"].depends_on] == [
        ("migrate", "service_completed_successfully", True), ("broker", "service_healthy", True)]
    assert local["api"].starts_after == ["db", "search"]  # called through the environment, not in depends_on
    # cache is no store and reached only through the shared env file: left out, and the plan says so
    assert "cache" not in roles and any("api → cache is weak" in note for note in plan.notes)
    # the rendered project keeps the Compose depends_on conditions
    api = render(plan, forumish(make_stack), "s")["services"]["api.origin" if local["api"].behind_proxy else "api"]
    assert api["depends_on"]["migrate"] == {"condition": "service_completed_successfully", "required": True}


def test_weak_edges_are_marked_with_their_origin(make_stack):
    graph = ServiceGraph.from_stack(forumish(make_stack))
    assert graph.is_weak("worker", "search") and not graph.is_weak("web", "api")
    origin = graph.edge_sources("worker", "db")[0]
    assert (origin.kind, origin.key, origin.variable, origin.file) == ("env", "services.worker.env_file", "DB",
                                                                       "shared.env")
    assert "[weak: shared env_file]" in graph.edge_text("worker", "db")
    plan = make_plan(forumish(make_stack), ["worker"])
    edge = next(e for e in plan.edges if (e.source, e.target) == ("worker", "cache"))
    assert edge.weak and not edge.followed and edge.origins[0]["variable"] == "CACHE"


def test_producer_with_ports_is_not_taken_for_a_consumer(make_stack):
    plan = make_plan(forumish(make_stack), ["worker"])
    assert "api" not in {s.name for s in plan.local}
    assert any(n.startswith("api also uses local broker broker but is not in the slice: it listens on 8000")
               for n in plan.notes)
    declared = make_plan(forumish(make_stack, meta={"services": {"api": {"consumer": True}}}), ["worker"])
    assert {s.name: s.role for s in declared.local}["api"] == "consumer"


def test_a_job_preparing_a_local_store_joins_the_slice(make_stack):
    stack = forumish(make_stack)
    plan = make_plan(stack, ["db"], radius=0)
    assert {s.name: s.role for s in plan.local} == {"db": "changed", "migrate": "job"}
    assert {s.name: s for s in plan.local}["db"].seed_after == ["migrate"]


def test_forwarded_writer_is_named(make_stack):
    plan = make_plan(forumish(make_stack), ["web"], radius=0)
    assert [(f.name, f.writes_to) for f in plan.forwarded] == [("api", ["broker", "db", "search"])]
    assert any(n.startswith("forwarded api writes to the baseline's broker, db, search") for n in plan.notes)


def test_stateful_false_opts_out_and_seed_after_overrides(make_stack):
    stack = forumish(make_stack, meta={"services": {"search": {"stateful": False}, "db": {"seed_after": []}}})
    plan = make_plan(stack, ["api"])
    local = {s.name: s for s in plan.local}
    # no longer a store: the weak edge to it is not followed (left out, unreachable), as for any service
    assert "search" not in local and not plan.forwarded and any("api → search is weak" in n for n in plan.notes)
    assert local["db"].seed_after == []


def test_dropped_edge_and_inactive_profile(make_stack):
    stack = forumish(make_stack, meta={"edges": {"drop": [{"from": "worker", "to": "db"}]}})
    graph = ServiceGraph.from_stack(stack)
    assert not graph.graph.has_edge("worker", "db") and graph.dropped == [("worker", "db")]
    profiled = make_stack({"app": service("example/app"), "tool": service("example/tool", profiles=["debug"])})
    plan = make_plan(profiled, ["app"])
    assert plan.inactive_services == {"tool": ["debug"]} and "tool" not in {s.name for s in plan.local}
