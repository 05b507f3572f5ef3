"""The schema of stack.yaml ``checks:`` and of the per-service ``signals:`` settings (pydantic, pure).

A check is either a sequence of HTTP steps against services of the slice, or a command run on the
host or inside a service container. Strings may use ``${name}`` placeholders: values captured by
earlier steps, plus ``${run}`` (a short id of this check run) and ``${slice}``.
"""

from __future__ import annotations

import functools
import re
import threading
from typing import Annotated, Any, Literal

from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.ext.parser import ExtendedJsonPathParser
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from stacklet.errors import short_repr

Port = Annotated[int, Field(ge=1, le=65535, description="a TCP port, 1-65535")]

PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
DEFAULT_ERROR_PATTERN = r"\b(ERROR|FATAL|CRITICAL|PANIC|Traceback \(most recent call last\)|panic:)"
DEFAULT_REQUEST_PATTERN = (r"\b(?P<method>GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS)\s+(?P<path>/\S*?)"
                           r"(?:\s+HTTP/[\d.]+\"?)?\s+(?P<status>[1-5]\d\d)\b")
OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "contains", "matches", "exists", "type", "len")
JSON_TYPES = {"string": str, "number": (int, float), "integer": int, "boolean": bool, "array": list,
              "object": dict, "null": type(None)}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


_PARSERS = threading.local()


@functools.lru_cache(maxsize=4096)
def parse_jsonpath(path: str) -> Any:
    """The compiled JSONPath, memoised; jsonpath_ng's own ``parse`` builds a new parser per call (2-3 ms each,
    which made 10,000 checks take half a minute). One parser per thread, as PLY parsers keep state."""
    parser = getattr(_PARSERS, "parser", None)
    if parser is None:
        parser = _PARSERS.parser = ExtendedJsonPathParser()
    return parser.parse(path)


def _valid_jsonpath(path: str) -> str:
    if not path.startswith("$"):
        raise ValueError(f"JSONPath {path!r} must start with '$' (for example $.id)")
    try:
        parse_jsonpath(path)
    except (JsonPathLexerError, JsonPathParserError) as exc:
        raise ValueError(f"JSONPath {path!r} does not parse: {exc}") from exc
    return path


def _valid_regex(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
    return value


class ServiceSignals(_Strict):
    """How to read a service's logs for runtime signals during a check run."""

    error_pattern: str = Field(default=DEFAULT_ERROR_PATTERN, description="regex of an error-level log line")
    request_pattern: str = Field(default=DEFAULT_REQUEST_PATTERN,
                                 description="regex of a request log line, with named groups status (and path)")
    ignore: list[str] = Field(default_factory=list, description="regexes of log lines that are never signals")

    @field_validator("error_pattern", "request_pattern")
    @classmethod
    def _regexes(cls, value: str) -> str:
        return _valid_regex(value)

    @field_validator("request_pattern")
    @classmethod
    def _has_status_group(cls, value: str) -> str:
        if "status" not in re.compile(value).groupindex:
            raise ValueError("needs a named group (?P<status>...) for the response status")
        return value

    @field_validator("ignore")
    @classmethod
    def _ignore_regexes(cls, value: list[str]) -> list[str]:
        for item in value:
            _valid_regex(item)
        return value


class Expect(_Strict):
    """What a step's response must look like."""

    status: int | list[int] | None = Field(default=None, description="expected status (or any of several)")
    json_: dict[str, Any] = Field(default_factory=dict, alias="json",
                                  description="JSONPath -> value, or -> {operator: value}")
    headers: dict[str, str] = Field(default_factory=dict, description="header -> regex")
    body_contains: str | None = None
    max_ms: int | None = Field(default=None, gt=0, description="slowest acceptable response")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("status")
    @classmethod
    def _http_statuses(cls, value: int | list[int] | None) -> int | list[int] | None:
        for status in value if isinstance(value, list) else [] if value is None else [value]:
            if not 100 <= status <= 599:
                raise ValueError(f"an HTTP status is between 100 and 599, got {short_repr(status)}")
        return value

    @field_validator("json_")
    @classmethod
    def _paths_and_operators(cls, value: dict[str, Any]) -> dict[str, Any]:
        for path, expected in value.items():
            _valid_jsonpath(path)
            if as_operators(expected) is not None:
                kind = expected.get("type")
                if "type" in expected and not (isinstance(kind, str) and kind in JSON_TYPES):
                    raise ValueError(f"type must be one of {', '.join(JSON_TYPES)}, got {short_repr(kind)}")
                if "matches" in expected:
                    _valid_regex(str(expected["matches"]))
            elif isinstance(expected, dict) and expected and any(k in OPERATORS for k in expected):
                unknown = sorted(set(expected) - set(OPERATORS))
                raise ValueError(f"unknown operator {unknown[0]!r} at {path}; operators: {', '.join(OPERATORS)}")
        return value

    def statuses(self) -> list[int]:
        if self.status is None:
            return []
        return self.status if isinstance(self.status, list) else [self.status]


MAX_LOAD_REQUESTS = 10_000
MAX_LOAD_CONCURRENCY = 64
MAX_LOAD_SECONDS = 300


class LoadExpect(_Strict):
    """What a load step's requests must achieve together."""

    p99_ms: float | None = Field(default=None, gt=0, description="slowest acceptable 99th percentile")
    error_rate: float | None = Field(default=None, ge=0, le=1, description="largest acceptable share of errors "
                                                                           "(0..1)")


class LoadSpec(_Strict):
    """A step sent many times: ``requests`` at ``concurrency``, stopping early after ``duration_s``."""

    requests: int = Field(gt=0, le=MAX_LOAD_REQUESTS, description="how many requests to send")
    concurrency: int = Field(default=4, gt=0, le=MAX_LOAD_CONCURRENCY, description="requests in flight at once")
    duration_s: float | None = Field(default=None, gt=0, le=MAX_LOAD_SECONDS,
                                     description="stop sending after this long, even if fewer were sent")
    expect: LoadExpect = Field(default_factory=LoadExpect)


class HttpStep(_Strict):
    """One HTTP request to a service of the slice, with expectations and captures."""

    name: str
    service: str = Field(description="the service the request goes to (must run in the slice)")
    port: Port | None = Field(default=None, description="default: the service's first port")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    path: str = "/"
    headers: dict[str, str] = Field(default_factory=dict)
    json_: Any = Field(default=None, alias="json", description="JSON request body")
    timeout_s: float = Field(default=10.0, gt=0)
    expect: Expect = Field(default_factory=Expect)
    capture: dict[str, str] = Field(default_factory=dict, description="variable -> JSONPath in the response")
    load: LoadSpec | None = Field(default=None, description="send the request many times (``${i}``: its number); "
                                                            "an error is a failed request or an unexpected status")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _load_sends_no_captures(self) -> "HttpStep":
        if self.load and (self.capture or self.expect.json_ or self.expect.headers
                          or self.expect.body_contains is not None or self.expect.max_ms is not None):
            raise ValueError(f"step {self.name!r} with `load:` checks only `expect.status` per request "
                             f"(and `load.expect` together): remove capture, expect.json, headers, "
                             f"body_contains and max_ms")
        return self

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with '/'")
        return value

    @field_validator("capture")
    @classmethod
    def _capture_paths(cls, value: dict[str, str]) -> dict[str, str]:
        for variable, path in value.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", variable):
                raise ValueError(f"variable name {variable!r} must be letters, digits and '_'")
            _valid_jsonpath(str(path))
        return value


class CommandCheck(_Strict):
    """A command run on the host (``sh -c``) or inside a service container."""

    run: str | list[str] = Field(description="a shell line, or an argv list")
    in_: str | None = Field(default=None, alias="in", description="run inside this service's container")
    exit_code: int = 0
    stdout_contains: str | None = None
    stdout_matches: str | None = None
    timeout_s: float = Field(default=60.0, gt=0)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("stdout_matches")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        return _valid_regex(value)


class CheckSpec(_Strict):
    """A named check: HTTP steps or a command. ``services`` tags it to the changes it is relevant to."""

    name: str
    description: str = ""
    services: list[str] = Field(default_factory=list, description="relevant when one of these changed "
                                "(empty: relevant to every change)")
    steps: list[HttpStep] = Field(default_factory=list)
    command: CommandCheck | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
            raise ValueError("must be letters, digits, '.', '-' or '_'")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> "CheckSpec":
        if bool(self.steps) == bool(self.command):
            raise ValueError(f"check {self.name!r} needs either `steps:` (HTTP) or `command:`, not both or neither")
        names = [s.name for s in self.steps]
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate:
            raise ValueError(f"check {self.name!r} has two steps named {duplicate!r}")
        return self

    @property
    def kind(self) -> str:
        return "http" if self.steps else "command"

    def target_services(self) -> list[str]:
        """Services the check talks to or runs in."""
        if self.command:
            return [self.command.in_] if self.command.in_ else []
        return list(dict.fromkeys(s.service for s in self.steps))


def as_operators(expected: Any) -> dict[str, Any] | None:
    """An expectation written as ``{operator: value, ...}``, or None when it is a plain value to equal."""
    if isinstance(expected, dict) and expected and set(expected) <= set(OPERATORS):
        return expected
    return None


def placeholders(value: Any) -> set[str]:
    """Names of every ``${name}`` placeholder inside a (nested) value."""
    if isinstance(value, str):
        return set(PLACEHOLDER.findall(value))
    if isinstance(value, dict):
        return set().union(*(placeholders(k) | placeholders(v) for k, v in value.items())) if value else set()
    if isinstance(value, list):
        return set().union(*(placeholders(v) for v in value)) if value else set()
    return set()


def substitute(value: Any, variables: dict[str, Any]) -> Any:
    """Replace ``${name}`` placeholders; a string that is exactly one placeholder keeps the value's type."""
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole and whole.group(1) in variables:
            return variables[whole.group(1)]
        return PLACEHOLDER.sub(lambda m: str(variables.get(m.group(1), m.group(0))), value)
    if isinstance(value, dict):
        return {substitute(k, variables): substitute(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, variables) for v in value]
    return value


def undefined_placeholders(check: CheckSpec) -> list[tuple[str, str]]:
    """(step, name) of placeholders used before any step captures them."""
    known = {"run", "slice"}
    missing = []
    for step in check.steps:
        used = placeholders([step.path, step.headers, step.json_, step.expect.json_, step.expect.headers,
                             step.expect.body_contains])
        missing += [(step.name, name) for name in sorted(used - known - ({"i"} if step.load else set()))]
        known |= set(step.capture)
    return missing
