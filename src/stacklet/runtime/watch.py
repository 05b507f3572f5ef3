"""``stacklet up --watch``: reload a slice's built services when their files change.

The files of a service are those of ``changes.services_for_files``: its build context, plus the
``paths:`` globs of stack.yaml. ``watch_roots`` and ``services_to_reload`` are pure; ``watch`` uses
the ``watchfiles`` package (inotify and friends), waits until the files have been quiet for the
debounce time, then reloads the services touched, one after another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from stacklet.planning.changes import services_for_files
from stacklet.runtime.engine import ReloadResult, SliceEngine
from stacklet.runtime.readiness import DEFAULT_TIMEOUT_S
from stacklet.errors import StackletError
from stacklet.config.stack import Stack

DEBOUNCE_MS = 300
READY_PROBE_MS = 500
GLOB_CHARS = "*?["


def built_services(stack: Stack, services: Iterable[str]) -> list[str]:
    """Those of ``services`` that have a build context (only they can be reloaded from their files)."""
    return [s for s in services if s in stack.compose.services and stack.compose.services[s].build_context]


def watch_roots(stack: Stack, services: Iterable[str]) -> list[Path]:
    """The folders to watch for ``services``: build contexts and the fixed part of each ``paths:`` glob.

    Folders inside another watched folder are left out; folders that do not exist are skipped.
    """
    roots: set[Path] = set()
    for name in services:
        context = stack.compose.services[name].build_context if name in stack.compose.services else None
        if context is not None:
            roots.add(context.resolve())
        for glob in stack.service_meta(name).paths:
            fixed = []
            for part in Path(glob).parts:
                if any(c in part for c in GLOB_CHARS):
                    break
                fixed.append(part)
            folder = (stack.root / Path(*fixed)) if fixed else stack.root
            roots.add((folder if folder.is_dir() else folder.parent).resolve())
    existing = sorted(r for r in roots if r.is_dir())
    return [r for r in existing if not any(r != o and r.is_relative_to(o) for o in existing)]


def services_to_reload(stack: Stack, services: list[str], paths: Iterable[str | Path]) -> list[str]:
    """The services among ``services`` that files at ``paths`` belong to, in the order of ``services``."""
    hits = services_for_files(stack, [Path(p) for p in paths])
    return [s for s in services if s in hits]


def watch(engine: SliceEngine, name: str, stack: Stack, services: list[str], *,
          on_reload: Callable[[ReloadResult], None], on_error: Callable[[str, StackletError], None],
          on_ready: Callable[[list[Path]], None] = lambda roots: None,
          on_change: Callable[[list[str]], None] = lambda services: None, timeout_s: int = DEFAULT_TIMEOUT_S,
          debounce_ms: int = DEBOUNCE_MS, stop_event=None) -> None:
    """Reload the services of slice ``name`` whose files change, until Ctrl-C (KeyboardInterrupt) or ``stop_event``.

    ``on_ready`` is called once the watch is in place (a change made before that may be missed).
    A reload that fails is reported through ``on_error`` and the watch goes on.
    """
    import watchfiles

    services = built_services(stack, services)
    roots = watch_roots(stack, services)
    if not roots:
        return
    ready = False
    # yield_on_timeout: the first (empty) batch says the watcher is in place
    for changes in watchfiles.watch(*roots, step=debounce_ms, debounce=max(2000, debounce_ms * 4),
                                    rust_timeout=READY_PROBE_MS, yield_on_timeout=True,
                                    stop_event=stop_event, raise_interrupt=True):
        if not ready:
            ready = True
            on_ready(roots)
        targets = services_to_reload(stack, services, [path for _, path in changes])
        if not targets:
            continue
        on_change(targets)
        for service in targets:
            try:
                on_reload(engine.reload(name, service, timeout_s))
            except StackletError as error:
                on_error(service, error)
