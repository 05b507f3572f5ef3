"""``warm`` and the warm path of ``up``: keep slices of a change booted and paused, take one on ``up``.

Refill runs in a detached process (``stacklet warm ... --json``, its own session, output to a log
under the work folder), started by the ``up`` that took a slice once that slice is ready: a boot
takes longer than the ``up`` it replaces, and a process of its own survives the ``up`` (or the TUI
or MCP call) that started it. A thread waits for it, so a long-lived front end keeps no zombie;
a short-lived CLI exits and the refill is reaped by the engine host's init. The refill boots under
a file lock per pool, removes its slice when it fails or gets SIGTERM/Ctrl-C, and a killed one
leaves a slice whose boot deadline passes, which ``gc`` removes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

from pydantic import Field

from stacklet.config.faultprofile import FaultProfile, find_fault_profile, load_fault_profile
from stacklet.config.stack import Stack, parse_duration
from stacklet.errors import BootError, ConfigError, short_repr
from stacklet.ops import results as r
from stacklet.ops.session import Session, load
from stacklet.planning.plan import SlicePlan, default_slice_name, validate_slice_name
from stacklet.runtime.readiness import DEFAULT_TIMEOUT_S
from stacklet.runtime.status import Event, EventSink, SliceStatus
from stacklet.runtime.warm import no_pool_reason
from stacklet.runtime.warmkey import warm_key

DEFAULT_WARM_TTL = "1h"


def warm(session: Session,
         services: Annotated[list[str], Field(description="changed services of the slices to keep warm")] = [],
         count: Annotated[int, Field(description="how many to keep booted and paused; 0 removes the pool",
                                     ge=0, le=8)] = 1,
         radius: Annotated[int | None, Field(description="callers/callees distance, as for `up`")] = None,
         name: Annotated[str | None, Field(description="name prefix of the warm slices (default: the name `up` "
                                                       "would give)")] = None,
         no_seed: Annotated[bool, Field(description="warm slices without seed data")] = False,
         fault: Annotated[str | None, Field(description="fault profile applied to the warm slices")] = None,
         fault_seed: Annotated[int | None, Field(description="seed for repeatable fault randomness")] = None,
         ttl: Annotated[str, Field(description="how long a warm slice waits in the pool, e.g. 30m, 2h")]
         = DEFAULT_WARM_TTL,
         timeout: Annotated[int, Field(description="seconds each service may take to become ready", gt=0)]
         = DEFAULT_TIMEOUT_S,
         background: Annotated[bool, Field(description="fill the pool in a detached process and return")] = False,
         stack: Annotated[str | None, Field(description="stack name, folder or stack.yaml path")] = None,
         files: Annotated[list[Path] | None, Field(description="Compose files (no stack.yaml needed)")] = None,
         env_files: Annotated[list[Path] | None, Field(description="env files for Compose interpolation")] = None,
         profiles: Annotated[list[str], Field(description="Compose profiles to enable")] = [],
         on_event: EventSink = lambda e: None) -> r.WarmResult:
    """Keep `count` slices of a change booted and paused (no CPU), so `up` with the same services and settings
    takes one (rebuilding only what changed since) instead of booting; `count` 0 removes them. The pool's slices
    expire after `ttl`; `ls` shows them as warm."""
    from stacklet.ops.commands import make_slice_plan  # commands imports this module for `up`

    the_stack = load(session, stack, files, env_files, services, profiles or None)
    the_plan = make_slice_plan(the_stack, services, None, radius)
    profile = load_fault_profile(find_fault_profile(fault)) if fault else None
    engine = session.engine
    key = warm_key(the_plan, the_stack, engine.driver, seed=not no_seed, fault_profile=profile, fault_seed=fault_seed)
    if count == 0:
        return r.WarmResult(key=key.digest(), count=0, removed=engine.warm.clear(key.digest()))
    ttl_s = _warm_ttl(ttl)
    base = validate_slice_name(name or default_slice_name(the_plan))
    command = {"cwd": str(Path.cwd()), "argv": _refill_argv(the_stack, services, count, radius, base, no_seed, fault,
                                                            fault_seed, ttl, timeout, env_files, profiles)}
    if background:
        return r.WarmResult(key=key.digest(), count=count, background=spawn_refill(session, command, key.digest()),
                            pool=_pool(session, key.digest()))
    booted = engine.warm.fill(the_plan, the_stack, key, count, base=base, ttl_s=ttl_s, command=command,
                              seed=not no_seed, fault_profile=profile, fault_seed=fault_seed, timeout_s=timeout,
                              on_event=on_event)
    return r.WarmResult(key=key.digest(), count=count, booted=booted, pool=_pool(session, key.digest()))


def take_warm(session: Session, plan: SlicePlan, stack: Stack, name: str, *, seed: bool,
              fault_profile: FaultProfile | None, fault_seed: int | None, ttl_s: int | None, timeout_s: int,
              on_event: EventSink = lambda e: None) -> tuple[SliceStatus | None, r.WarmTake]:
    """``up``'s warm path: take a warm slice that fits as ``name``, rebuild what changed since it was warmed, and
    start a refill; or say why none fits (then ``up`` boots cold)."""
    engine = session.engine
    started = time.monotonic()
    waiting = engine.warm.waiting(plan.stack)
    if not waiting:
        return None, r.WarmTake(reason=no_pool_reason(plan.stack, plan.changed))
    key = warm_key(plan, stack, engine.driver, seed=seed, fault_profile=fault_profile, fault_seed=fault_seed)
    claim = engine.warm.claim(key, name, ttl_s, waiting)
    if not claim.taken:
        on_event(Event("warm", message=f"no warm slice: {claim.reason}"))
        return None, r.WarmTake(reason=claim.reason)
    on_event(Event("warm", message=f"took warm slice {claim.taken}"))
    reloaded = engine.warm.refresh(claim.taken, claim.edited, timeout_s, on_event)
    try:
        engine.converger.await_ready(claim.taken, timeout_s, on_event)
    except BootError as exc:  # a slice that does not come back is removed; `up` boots cold instead
        engine.teardown.remove_slice(claim.taken)
        reason = f"warm slice {claim.taken} was not ready after it was resumed ({exc.message}); it was removed"
        on_event(Event("warm", message=reason))
        return None, r.WarmTake(reason=reason)
    status = engine.status(name)
    seconds = round(time.monotonic() - started, 2)
    refill = spawn_refill(session, claim.command, key.digest()) if claim.command else None
    return status, r.WarmTake(taken=claim.taken, reloaded=reloaded, seconds=seconds, refill=refill)


def spawn_refill(session: Session, command: dict, key: str) -> str:
    """Start ``stacklet warm`` detached (its own session, output to a log); returns the log's path."""
    workdir = session.engine.workdir
    log = workdir / "warm" / f"refill-{key}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    endpoint = [*(["--context", session.context] if session.context else []),
                *(["--host", session.host] if session.host else [])]
    with log.open("ab") as output:
        process = subprocess.Popen([sys.executable, "-m", "stacklet", *endpoint, "warm", *command["argv"], "--json"],
                                   cwd=command.get("cwd") or None, stdin=subprocess.DEVNULL, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, "STACKLET_HOME": str(workdir)})
    threading.Thread(target=process.wait, name=f"refill-{process.pid}", daemon=True).start()
    return str(log)


def _refill_argv(stack: Stack, services: list[str], count: int, radius: int | None, base: str, no_seed: bool,
                 fault: str | None, fault_seed: int | None, ttl: str, timeout: int, env_files: list[Path] | None,
                 profiles: list[str]) -> list[str]:
    """The ``stacklet warm`` arguments that fill this pool again from any folder (paths made absolute)."""
    where = (["--stack", str(stack.stack_file.resolve())] if stack.stack_file else
             [part for f in stack.compose.files for part in ("--file", str(Path(f).resolve()))])
    return [*services, "--count", str(count), "--name", base, "--ttl", ttl, "--timeout", str(timeout), *where,
            *(["--radius", str(radius)] if radius is not None else []), *(["--no-seed"] if no_seed else []),
            *(["--fault", fault] if fault else []), *(["--fault-seed", str(fault_seed)] if fault_seed is not None else []),
            *[part for f in env_files or [] for part in ("--env-file", str(Path(f).resolve()))],
            *[part for p in profiles for part in ("--profile", p)]]


def _pool(session: Session, key: str) -> list:
    names = {w.slice for w in session.engine.warm.pool(key)}
    return [s for s in session.engine.list() if s.name in names]


def _warm_ttl(value: str) -> int:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise ConfigError(str(exc), key="--ttl", hint=f"got {short_repr(value)}") from exc
    if not seconds:
        raise ConfigError("a warm slice needs a TTL", key="--ttl", hint="e.g. --ttl 1h (`never` is not allowed)")
    return seconds
