"""The one exception tree of stacklet.

Every message says what was tried, what happened, and carries a hint for the fix.
Errors become exit codes only in the CLI (see ``exit_code``).

    StackletError
    ├── ConfigError            bad input files: stack.yaml, Compose files, fault profiles
    │   ├── StackFileError     stack.yaml missing, malformed or invalid
    │   └── ComposeError       Compose file could not be loaded or normalised
    ├── PlanError              a plan cannot be made: unknown service, bad git ref, no baseline
    ├── DockerError            the engine or the compose CLI failed
    │   └── EngineUnavailable  no Docker engine answers at the configured endpoint
    ├── BootError              a slice did not come up: a service failed or stayed unhealthy
    ├── SliceNotFound          no slice with that name on this engine
    ├── UnexpectedError        any other exception, turned into a sentence at a front end's boundary
    └── LinkProxyError         a link proxy did not answer or refused a request
"""

from __future__ import annotations

import reprlib
from typing import Any


class _ShortRepr(reprlib.Repr):
    """reprlib with small limits; huge integers are described, never converted (Python refuses >4300 digits)."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxdict, self.maxlist, self.maxtuple, self.maxset = 3, 6, 6, 6, 6
        self.maxstring, self.maxlong, self.maxother = 80, 40, 80

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 128:
            return f"<an integer of about {int(x.bit_length() * 0.30103)} digits>"
        return super().repr_int(x, level)


_SHORT = _ShortRepr()


def short_text(text: str, limit: int = 300) -> str:
    """``text`` cut to ``limit`` characters, for messages of other libraries that quote user input whole."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def short_repr(value: Any) -> str:
    """``repr`` cut to a few dozen characters and three levels, for error messages that quote user input."""
    return _SHORT.repr(value)


class StackletError(Exception):
    """Base of every error stacklet raises on purpose."""

    exit_code = 3

    def __init__(self, message: str, *, hint: str | None = None, details: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict:
        """A JSON-ready form: kind, message, hint, details."""
        return {
            "error": type(self).__name__,
            "message": self.message,
            "hint": self.hint,
            "details": self.details,
        }


class ConfigError(StackletError):
    """An input file is missing, malformed or invalid.

    ``file`` and ``key`` locate the problem; the message already names them.
    """

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None, **kw):
        where = ""
        if file and key:
            where = f"{file}: {key}: "
        elif file or key:
            where = f"{file or key}: "
        super().__init__(where + message, **kw)
        self.file = file
        self.key = key

    def to_dict(self) -> dict:
        return {**super().to_dict(), "file": self.file, "key": self.key}


class StackFileError(ConfigError):
    """stack.yaml is missing, malformed or does not match its schema."""


class ComposeError(ConfigError):
    """A Compose file could not be loaded or normalised."""


class PlanError(StackletError):
    """A plan cannot be made from the given changes."""


class DockerError(StackletError):
    """The Docker engine or the compose CLI failed."""

    exit_code = 2


class EngineUnavailable(DockerError):
    """No Docker engine answers at the configured endpoint."""


class BootError(StackletError):
    """A slice did not come up. ``service`` names the culprit when one is known."""

    exit_code = 2

    def __init__(self, message: str, *, service: str | None = None, health: str | None = None,
                 logs: str | None = None, **kw):
        super().__init__(message, **kw)
        self.service = service
        self.health = health
        self.logs = logs

    def to_dict(self) -> dict:
        return {**super().to_dict(), "service": self.service, "health": self.health, "logs": self.logs}


class SliceNotFound(StackletError):
    """No slice of that name runs on this engine."""


class LinkProxyError(StackletError):
    """A link proxy did not answer or refused a request."""

    exit_code = 2


class UnexpectedError(StackletError):
    """An exception that is not stacklet's own, caught at a front end's boundary and reported plainly."""

    @classmethod
    def wrap(cls, exc: BaseException) -> "UnexpectedError":
        """Say what failed in a sentence (input too deep, not UTF-8, an OS error) instead of a traceback."""
        details = f"{type(exc).__name__}: {short_repr(str(exc))[1:-1]}"
        if isinstance(exc, RecursionError):
            return cls("the input nests too deeply to be read", hint="flatten the file or argument", details=details)
        if isinstance(exc, UnicodeError):
            return cls("a file or argument is not UTF-8 text", hint="save files as UTF-8", details=details)
        if isinstance(exc, MemoryError):
            return cls("the input is too large to hold in memory", hint="use a smaller input", details=details)
        if isinstance(exc, OSError):
            where = f" ({short_repr(str(exc.filename))[1:-1]})" if exc.filename else ""
            return cls(f"{exc.strerror or type(exc).__name__}{where}", hint="check the path and its permissions",
                       details=details)
        return cls(f"unexpected {type(exc).__name__}: {short_repr(str(exc))[1:-1]}",
                   hint="this is a bug in stacklet; STACKLET_DEBUG=1 prints the traceback", details=details)
