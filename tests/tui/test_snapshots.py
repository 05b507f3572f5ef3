"""SVG snapshots of the main screens (pytest-textual-snapshot), on recorded data with a fixed clock.

Update them after a deliberate change with `pytest tests/tui --snapshot-update`, then look at the
SVGs in tests/tui/__snapshots__/ (or the report pytest writes on a failure).
"""

from __future__ import annotations

from .conftest import SIZE, settle
from .fakes import FakeEngine


async def _settled(pilot) -> None:
    await settle(pilot)


def _after(*keys: str):
    async def run_before(pilot) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await pilot.pause()
        await settle(pilot)
    return run_before


def test_slice_screen(snap_compare, make_app):
    assert snap_compare(make_app(FakeEngine()), terminal_size=SIZE, run_before=_settled)


def test_slice_screen_following_one_request_across_services(snap_compare, make_app):
    assert snap_compare(make_app(FakeEngine()), terminal_size=SIZE, run_before=_after("i", "enter"))


def test_pick_a_slice_screen(snap_compare, make_app):
    assert snap_compare(make_app(FakeEngine(), None), terminal_size=SIZE, run_before=_settled)


def test_graph_screen(snap_compare, make_app):
    assert snap_compare(make_app(FakeEngine()), terminal_size=SIZE, run_before=_after("g"))


def test_help_screen(snap_compare, make_app):
    assert snap_compare(make_app(FakeEngine()), terminal_size=SIZE, run_before=_after("question_mark"))


def test_no_engine_screen(snap_compare, make_app):
    assert snap_compare(make_app(FakeEngine(available=False)), terminal_size=SIZE, run_before=_settled)
