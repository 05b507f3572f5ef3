"""Typed messages that the TUI's thread workers post to their screens (instead of calling back into
the UI thread): each carries the result of one read or action, or the error that ended it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from textual.message import Message

from stacklet.checks.verdict import Verdict
from stacklet.runtime.status import SliceSummary
from stacklet.tui.actions import SliceSnapshot


@dataclass
class SnapshotLoaded(Message):
    """The slice's status, links, faults and baseline answers were read."""

    snapshot: SliceSnapshot
    profiles: list


@dataclass
class SnapshotFailed(Message):
    """Reading the slice failed."""

    error: Exception


@dataclass
class ActionDone(Message):
    """An action (restart, reset, fault) finished: the sentence to show, and what to do next."""

    title: str
    text: str
    then: Callable[[], None] | None = None


@dataclass
class ActionFailed(Message):
    """An action failed: the title and the error text to show."""

    title: str
    text: str


@dataclass
class ChecksDone(Message):
    """The slice's checks ran: their verdict."""

    verdict: Verdict


@dataclass
class SlicesLoaded(Message):
    """The slices on the engine, for the picker."""

    slices: list[SliceSummary]


@dataclass
class SlicesFailed(Message):
    """Listing the slices failed: the error text."""

    text: str


@dataclass
class EngineAnswered(Message):
    """The engine answered: open the slice named on the command line, or the picker."""


@dataclass
class EngineUnreachable(Message):
    """The engine did not answer."""

    error: Exception
