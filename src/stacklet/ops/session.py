"""What every command needs before it acts: the engine to talk to, the stack, the slice.

A ``Session`` is made once per front end (the CLI's ``--context``/``--host``, the MCP server's, the
TUI's engine) and handed to every command of ``stacklet.ops``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from stacklet.config.engines import advertise_of, configured_engines
from stacklet.config.stack import STACK_FILE, Stack, find_compose_file, list_stacks, load_stack
from stacklet.docker.driver import Driver
from stacklet.errors import PlanError
from stacklet.planning.changes import changes_since
from stacklet.runtime.engine import SliceEngine


@dataclass
class Session:
    """The engine endpoint (and default stack) commands run against; the engine is made on first use."""

    context: str | None = None
    host: str | None = None
    default_stack: str | None = None
    advertise: str | None = None  # the address other hosts reach the engine's host on (else as configured)
    _engine: SliceEngine | None = field(default=None, repr=False)

    @classmethod
    def of(cls, engine: SliceEngine) -> "Session":
        """A session over an engine that already exists (the TUI's)."""
        return cls(_engine=engine)

    @property
    def engine(self) -> SliceEngine:
        if self._engine is None:
            advertise = self.advertise or advertise_of(self.host, self.context, configured_engines())
            self._engine = SliceEngine(Driver(context=self.context, host=self.host, advertise=advertise))
        return self._engine

    @property
    def driver(self):
        return self.engine.driver


def load(session: Session, stack: str | None = None, files: list[Path] | None = None,
         env_files: list[Path] | None = None, services: list[str] | None = None,
         profiles: list[str] | None = None) -> Stack:
    """Load the stack: named, from ``-f`` files, or the current folder's (its stack.yaml, else the Compose file
    Compose would pick); else, among the stacks under stacks/, the one holding all ``services``."""
    stack = stack or (None if files else session.default_stack)
    here = Path.cwd()
    if stack or files or (here / STACK_FILE).is_file() or find_compose_file(here):
        return load_stack(stack, compose_files=files, env_files=env_files, profiles=profiles)
    names = list_stacks()
    if len(names) > 1 and services:
        holding = [s for s in (load_stack(n, env_files=env_files, profiles=profiles) for n in names)
                   if set(services) <= set(s.services)]
        if len(holding) == 1:
            return holding[0]
    return load_stack(None, env_files=env_files, profiles=profiles)


def changed(stack: Stack, services: list[str], since: str | None) -> list[str]:
    """The services named, plus those touched since a git ref."""
    return changed_with_notes(stack, services, since)[0]


def changed_with_notes(stack: Stack, services: list[str], since: str | None) -> tuple[list[str], list[str]]:
    """The services named, plus those touched since a git ref; and a note naming the changed files that map to
    no service (they change nothing in the slice)."""
    named = list(services)
    if not since:
        return named, []
    hits, unmapped = changes_since(stack, since)
    named += [s for s in hits if s not in named]
    if not unmapped:
        return named, []
    listed = ", ".join(unmapped[:10]) + (f" and {len(unmapped) - 10} more" if len(unmapped) > 10 else "")
    return named, [f"changed since {since} but owned by no service: {listed} (map them with `paths:` in stack.yaml)"]


def one_slice(session: Session, name: str | None) -> str:
    """``name``, or the only slice on the engine."""
    if name:
        return name
    slices = [s for s in session.engine.list() if not s.warm]  # warm slices wait for an `up` to take them
    if len(slices) == 1:
        return slices[0].name
    raise PlanError("no slice given" if slices else "no slice is running",
                    hint=f"name one of: {', '.join(s.name for s in slices)}" if slices
                    else "`stacklet up SERVICE` starts one")
