"""`up --engine auto`: the placement rule over listed engines (fewest running slices, then most free memory)."""

from __future__ import annotations

import pytest

from stacklet.errors import EngineUnavailable
from stacklet.planning.placement import EngineLoad, place

GIB = 2**30


def load(engine: str, slices: int = 0, free_gib: float = 1, answered: bool = True) -> EngineLoad:
    return EngineLoad(engine=engine, answered=answered, running_slices=slices, free_memory_bytes=int(free_gib * GIB),
                      error=None if answered else "no Docker engine answers")


def test_fewest_running_slices_wins_over_free_memory():
    chosen = place([load("default", slices=2, free_gib=30), load("tcp://box:2375", slices=1, free_gib=2)])
    assert chosen.engine == "tcp://box:2375" and chosen.reason == "fewest running slices (1)"


def test_on_a_tie_the_most_free_memory_wins():
    chosen = place([load("default", slices=1, free_gib=2), load("tcp://box:2375", slices=1, free_gib=6)])
    assert chosen.engine == "tcp://box:2375"
    assert "most free memory (6.0 GiB)" in chosen.reason and "tied" in chosen.reason


def test_a_full_tie_goes_to_the_first_listed():
    chosen = place([load("default"), load("tcp://box:2375")])
    assert chosen.engine == "default" and "listed first" in chosen.reason


def test_an_engine_that_does_not_answer_is_skipped_and_named():
    chosen = place([load("tcp://box:2375", answered=False), load("default", slices=5)])
    assert chosen.engine == "default"
    assert chosen.reason == "the only listed engine that answers; not answering: tcp://box:2375"
    assert [c.engine for c in chosen.candidates] == ["tcp://box:2375", "default"]


def test_no_engine_answering_fails_naming_each():
    with pytest.raises(EngineUnavailable, match="no listed engine answers") as caught:
        place([load("default", answered=False), load("ssh://me@box", answered=False)])
    assert "default: no Docker engine answers" in caught.value.message and "ssh://me@box" in caught.value.message
