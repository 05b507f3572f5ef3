"""Every real-world Compose file of the corpus plans: each service as the changed one, notes for what is missing."""

from __future__ import annotations

import pytest

from stacklet.config.stack import load_stack
from stacklet.planning.graph import ServiceGraph
from stacklet.planning.plan import make_plan
from stacklet.planning.traits import traits_of

from ..conftest import CORPUS_DIR

CORPUS = sorted(p.name for p in CORPUS_DIR.glob("*.yaml")) if CORPUS_DIR.is_dir() else []


def test_the_corpus_is_there(corpus_dir):
    assert len(CORPUS) >= 11


@pytest.mark.parametrize("name", CORPUS)
def test_plans_every_service(compose_cli, corpus_dir, name):
    env = corpus_dir / name.replace(".yaml", ".env")
    stack = load_stack(compose_files=[corpus_dir / name], env_files=[env] if env.is_file() else None)
    graph = ServiceGraph.from_stack(stack)
    stores = set(traits_of(stack).stateful)
    for changed in stack.services:
        plan = make_plan(stack, [changed], graph=graph)
        local = {s.name for s in plan.local}
        assert plan.local[0].name == changed and plan.local[0].role == "changed"
        assert not {f.name for f in plan.forwarded} & stores  # isolation: a store is never forwarded
        for edge in plan.edges:
            assert edge.origins and all(o["kind"] in ("depends_on", "links", "calls", "env") for o in edge.origins)
            assert edge.followed or (edge.weak and edge.target not in local)
    if name == "mastodon.yaml":
        assert any(".env.production" in note for note in stack.compose.notes) and stack.compose.boot_blockers
