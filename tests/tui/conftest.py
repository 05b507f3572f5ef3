"""Fixtures of the TUI tests: a fake engine on recorded snapshots, an app factory, a settle helper."""

from __future__ import annotations

import re

import pytest

from stacklet.tui.app import StackletApp

from .fakes import NOW, FakeEngine, faults_dir

SIZE = (160, 45)


@pytest.fixture
def fake() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def make_app(tmp_path):
    start = faults_dir(tmp_path)

    def make(engine: FakeEngine, slice_name: str | None = "shop-orders") -> StackletApp:
        return StackletApp(engine, slice_name, clock=lambda: NOW, faults_start=start, refresh_s=None)
    return make


async def settle(pilot) -> None:
    """Wait until every worker is done and the log pane has drawn what they produced."""
    app = pilot.app
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause(0.05)
        flush = getattr(app.screen, "flush_logs", None)
        if flush:
            flush()
        await pilot.pause()


def log_text(app) -> list[str]:
    from textual.widgets import RichLog
    lines = ["".join(segment.text for segment in strip).rstrip() for strip in app.screen.query_one(RichLog).lines]
    return [re.sub(r"^(\S+)\s+│ ", r"\1 │ ", line) for line in lines]  # the column width is not tested here


def notifications(app) -> list[str]:
    return [f"{n.title or ''}|{n.message}" for n in app._notifications]


def sync(test):
    """Run an async pilot test with asyncio.run (the project has no pytest asyncio plugin)."""
    import asyncio
    import functools

    @functools.wraps(test)
    def run(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))
    return run
