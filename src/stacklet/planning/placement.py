"""Where `up --engine auto` puts a slice: a placement rule over the listed engines, not a scheduler.

The rule: among the engines that answer, the one with the fewest running slices; on a tie, the
one with the most free memory (memory the engine's host has, minus what the engine's running
containers use); on a tie again, the first listed.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from stacklet.errors import EngineUnavailable


class EngineLoad(BaseModel):
    """What placement knows of one listed engine."""

    engine: str = Field(description="as listed in STACKLET_ENGINES or the engines file")
    answered: bool
    running_slices: int = 0
    free_memory_bytes: int = 0
    error: str | None = Field(None, description="why the engine did not answer")


class Placement(BaseModel):
    """The engine `up --engine auto` chose, and why."""

    engine: str
    reason: str
    candidates: list[EngineLoad]


def place(loads: list[EngineLoad]) -> Placement:
    """The engine with the fewest running slices, then the most free memory, then listed first."""
    answering = [load for load in loads if load.answered]
    if not answering:
        silent = "; ".join(f"{load.engine}: {load.error or 'no answer'}" for load in loads) or "none listed"
        raise EngineUnavailable(f"no listed engine answers ({silent})",
                                hint="start one of them, or list engines in STACKLET_ENGINES / the engines file")
    order = {load.engine: index for index, load in enumerate(loads)}
    chosen = min(answering, key=lambda load: (load.running_slices, -load.free_memory_bytes, order[load.engine]))
    others = [load for load in answering if load is not chosen]
    if not others:
        reason = "the only listed engine that answers"
    elif all(load.running_slices > chosen.running_slices for load in others):
        reason = f"fewest running slices ({chosen.running_slices})"
    elif all(load.free_memory_bytes < chosen.free_memory_bytes for load in others
             if load.running_slices == chosen.running_slices):
        reason = (f"fewest running slices ({chosen.running_slices}, tied) and most free memory "
                  f"({chosen.free_memory_bytes / 2**30:.1f} GiB)")
    else:
        reason = f"fewest running slices ({chosen.running_slices}) and as much free memory as any, listed first"
    silent = [load.engine for load in loads if not load.answered]
    if silent:
        reason += f"; not answering: {', '.join(silent)}"
    return Placement(engine=chosen.engine, reason=reason, candidates=loads)
