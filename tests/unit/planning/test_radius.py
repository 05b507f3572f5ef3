"""The radius is bounded where it is read (CLI, stack.yaml, MCP) and the graph walk ends when nothing is left."""

from __future__ import annotations

import time

import pytest
from pydantic import ValidationError

from stacklet.config.stack import MAX_RADIUS, StackFile
from stacklet.errors import PlanError
from stacklet.planning.graph import ServiceGraph
from stacklet.planning.plan import make_plan, select_slice

from ..conftest import service


def chain(make_stack, length: int):
    """s0 → s1 → … → s(length-1), each depending on the next."""
    services = {f"s{i}": service("example/app", depends_on=[f"s{i + 1}"] if i + 1 < length else None)
                for i in range(length)}
    return make_stack(services)


def test_the_walk_stops_when_nothing_is_left_to_visit(make_stack):
    stack = chain(make_stack, 5)
    graph = ServiceGraph.from_stack(stack)
    started = time.perf_counter()
    selection = graph.select(["s0"], 10**12, set())  # the graph itself never bounds a caller's radius
    assert time.perf_counter() - started < 20  # the old walk never ended
    assert selection.local == {"s0": "changed", "s1": "callee", "s2": "callee", "s3": "callee", "s4": "callee"}
    assert "callee at distance 4: called by s0" in selection.reasons["s4"]


def test_radius_still_limits_the_walk(make_stack):
    plan = make_plan(chain(make_stack, 5), ["s0"], 2)
    assert [s.name for s in plan.local] == ["s0", "s1", "s2"]


@pytest.mark.parametrize("radius", [-1, MAX_RADIUS + 1, 1_000_000_000, 10**5000], ids=["-1", "bound+1", "1e9", "5001 digits"])
def test_an_out_of_range_radius_is_a_plan_error_naming_the_bound(make_stack, radius):
    stack = chain(make_stack, 3)
    started = time.perf_counter()
    with pytest.raises(PlanError) as caught:
        select_slice(stack, ["s0"], radius, ServiceGraph.from_stack(stack))
    assert time.perf_counter() - started < 20  # the old walk never ended
    assert f"between 0 and {MAX_RADIUS}" in caught.value.message
    assert len(caught.value.message) < 200  # a 5,000-digit radius is described, not printed


@pytest.mark.parametrize("radius", [MAX_RADIUS + 1, 4.2e16])
def test_stack_yaml_radius_is_bounded(radius):
    with pytest.raises(ValidationError, match=f"less than or equal to {MAX_RADIUS}"):
        StackFile.model_validate({"name": "demo", "radius": radius})


def test_the_bound_itself_plans(make_stack):
    assert len(make_plan(chain(make_stack, 3), ["s0"], MAX_RADIUS).local) == 3
