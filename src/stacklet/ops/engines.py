"""Several engines: the slices of every listed engine, and where `up --engine` puts a slice.

The engines are those of ``STACKLET_ENGINES`` or the engines file (``config/engines.py``), plus the
engine this session names (``--host``/``--context``) when it is not listed. An engine that does not
answer is reported beside the others, never fatal.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from pydantic import BaseModel, Field

from stacklet.config.engines import DEFAULT_ENGINE, EngineSpec, configured_engines
from stacklet.errors import ConfigError, StackletError
from stacklet.ops.session import Session
from stacklet.planning.placement import EngineLoad, Placement, place
from stacklet.runtime.status import SliceSummary

AUTO = "auto"


class EngineReport(BaseModel):
    """One listed engine as `ls` saw it."""

    engine: str
    ok: bool
    slices: int = 0
    error: str | None = Field(None, description="why it did not answer")


def session_engine(session: Session) -> EngineSpec:
    """The engine this session talks to, as an engine list names it."""
    return EngineSpec(engine=session.host or session.context or DEFAULT_ENGINE, advertise=session.advertise)


def listed_engines(session: Session) -> list[EngineSpec]:
    """The configured engines, with this session's own engine first when it is not among them."""
    listed = configured_engines()
    own = session_engine(session)
    return listed if any(e.engine == own.engine for e in listed) else [own, *listed]


def session_for(session: Session, spec: EngineSpec) -> Session:
    """A session like ``session`` on another engine (its own when it is that engine)."""
    if spec.engine == session_engine(session).engine:
        return session
    return Session(host=spec.host, context=spec.context, default_stack=session.default_stack,
                   advertise=spec.advertise)


def slices_everywhere(session: Session) -> tuple[list[SliceSummary], list[EngineReport]]:
    """Every slice of every listed engine, each naming its engine; and how each engine answered."""
    specs = listed_engines(session)

    errors: list[StackletError] = []

    def read(spec: EngineSpec) -> tuple[list[SliceSummary], EngineReport]:
        try:
            found = session_for(session, spec).engine.list()
        except StackletError as error:
            errors.append(error)
            return [], EngineReport(engine=spec.engine, ok=False, error=error.message)
        return ([s.model_copy(update={"engine": spec.engine}) for s in found],
                EngineReport(engine=spec.engine, ok=True, slices=len(found)))

    with ThreadPoolExecutor(max_workers=min(8, len(specs))) as pool:
        answers = list(pool.map(read, specs))
    if len(errors) == len(specs):  # no engine answered: nothing to list, the command fails as any other would
        raise errors[0]
    return [s for found, _ in answers for s in found], [report for _, report in answers]


def engine_load(session: Session, spec: EngineSpec) -> EngineLoad:
    """Running slices and free memory of one engine (not answering is recorded, not raised)."""
    try:
        engine = session_for(session, spec).engine
        info = engine.driver.engine_info()
        running = sum(1 for s in engine.list() if s.running)
        free = max(0, info.memory_bytes - engine.driver.memory_in_use())
    except StackletError as error:
        return EngineLoad(engine=spec.engine, answered=False, error=error.message)
    return EngineLoad(engine=spec.engine, answered=True, running_slices=running, free_memory_bytes=free)


def choose_engine(session: Session, engine: str) -> tuple[Session, Placement | None]:
    """The session on the engine ``up --engine`` names: ``auto`` (placed by the rule of planning/placement),
    a listed engine, or any engine URL or context."""
    if engine != AUTO:
        spec = next((e for e in listed_engines(session) if e.engine == engine), None)
        return session_for(session, spec or EngineSpec(engine=engine)), None
    specs = listed_engines(session)
    if len(specs) < 2:
        raise ConfigError("--engine auto needs the engines to choose from", key="STACKLET_ENGINES",
                          hint="list them: STACKLET_ENGINES=default,tcp://HOST:2375=ADVERTISE-IP, or an engines "
                               "file (STACKLET_ENGINES_FILE)")
    with ThreadPoolExecutor(max_workers=min(8, len(specs))) as pool:
        loads = list(pool.map(lambda spec: engine_load(session, spec), specs))
    placement = place(loads)
    chosen = next(spec for spec in specs if spec.engine == placement.engine)
    return session_for(session, chosen), placement
