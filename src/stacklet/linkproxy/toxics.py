"""Toxic models: the eight TCP toxic types, three HTTP ones, their attributes, validation, JSON shape.

A toxic is pure configuration (name, type, stream, toxicity, attributes). What a TCP toxic
does to the bytes of one connection lives in :mod:`stacklet.linkproxy.stages`; the HTTP
toxics act per request in :mod:`stacklet.linkproxy.httptap`.

Validation is stricter than Toxiproxy v2.12, which crashes or stalls on some values: every
invalid value is a 400 whose message names the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .errors import INVALID_STREAM, INVALID_TOXIC_TYPE, TOXIC_EXISTS, bad_request
from .validation import check_name, check_text

STREAMS = ("upstream", "downstream")
INT64_MAX = 2**63 - 1
MAX_BODY_CHARS = 64 * 1024  # http_error's body
MAX_PREFIX_CHARS = 2048  # path_prefix


def _non_negative(name: str) -> Callable[[dict], None]:
    def check(attrs: dict) -> None:
        if attrs[name] < 0:
            raise bad_request(f"attribute {name!r} must be >= 0, got {attrs[name]}")

    return check


def _positive(name: str) -> Callable[[dict], None]:
    def check(attrs: dict) -> None:
        if attrs[name] <= 0:
            raise bad_request(f"attribute {name!r} must be > 0, got {attrs[name]}")

    return check


def _status(attrs: dict) -> None:
    if not 100 <= attrs["status"] <= 599:
        raise bad_request(f"attribute 'status' must be between 100 and 599, got {attrs['status']}")


def _body(attrs: dict) -> None:
    check_text("body", attrs["body"], MAX_BODY_CHARS)


def _path_prefix(attrs: dict) -> None:
    prefix = attrs["path_prefix"]
    if prefix and (not prefix.startswith("/") or not prefix.isprintable() or len(prefix) > MAX_PREFIX_CHARS):
        raise bad_request(
            f"attribute 'path_prefix' must be empty or printable text starting with '/' "
            f"of at most {MAX_PREFIX_CHARS} characters, got {prefix[:40]!r}"
        )


def _variation_within_average(attrs: dict) -> None:
    if attrs["size_variation"] > attrs["average_size"]:
        raise bad_request(
            "attribute 'size_variation' must be <= average_size "
            f"({attrs['average_size']}), got {attrs['size_variation']}"
        )


@dataclass(frozen=True)
class ToxicType:
    """One toxic type: its attribute names (JSON order), which of them are strings, value checks."""

    name: str
    attributes: tuple[str, ...]
    checks: tuple[Callable[[dict], None], ...] = ()
    strings: tuple[str, ...] = ()  # attributes holding text; the others are integers

    def zeros(self) -> dict:
        """Every attribute at its zero value (0 or ""), as Toxiproxy lists unset ones."""
        return {key: "" if key in self.strings else 0 for key in self.attributes}

    def validate(self, attrs: dict) -> None:
        """Raise a 400 naming the first attribute whose value is invalid."""
        for check in self.checks:
            check(attrs)


TOXIC_TYPES: dict[str, ToxicType] = {
    t.name: t
    for t in (
        ToxicType("latency", ("latency", "jitter"), (_non_negative("latency"), _non_negative("jitter"))),
        ToxicType("bandwidth", ("rate",), (_positive("rate"),)),
        ToxicType("slow_close", ("delay",), (_non_negative("delay"),)),
        ToxicType("timeout", ("timeout",), (_non_negative("timeout"),)),
        ToxicType("reset_peer", ("timeout",), (_non_negative("timeout"),)),
        ToxicType(
            "slicer",
            ("average_size", "size_variation", "delay"),
            (
                _positive("average_size"),
                _non_negative("size_variation"),
                _non_negative("delay"),
                _variation_within_average,
            ),
        ),
        ToxicType("limit_data", ("bytes",), (_non_negative("bytes"),)),
        ToxicType("noop", ()),
        ToxicType("http_error", ("status", "body", "path_prefix"), (_status, _body, _path_prefix),
                  strings=("body", "path_prefix")),
        ToxicType("http_fail_first", ("count", "status"), (_non_negative("count"), _status)),
        ToxicType("http_latency", ("latency", "jitter", "path_prefix"),
                  (_non_negative("latency"), _non_negative("jitter"), _path_prefix), strings=("path_prefix",)),
    )
}


@dataclass(frozen=True)
class Toxic:
    """A toxic as the API shows it. Immutable: an update builds a new one."""

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: Mapping[str, int | str] = field(default_factory=dict)

    @property
    def is_http(self) -> bool:
        """True for the HTTP toxics, which act per request instead of on a link's bytes."""
        return self.type.startswith("http_")

    def to_json(self) -> dict:
        """Toxiproxy's JSON shape: every attribute of the type, zeros included."""
        return {
            "attributes": {k: self.attributes[k] for k in TOXIC_TYPES[self.type].attributes},
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": _json_number(self.toxicity),
        }


def _json_number(value: float) -> float | int:
    """Write 1.0 as 1 like Go's encoder does for float32."""
    return int(value) if float(value).is_integer() else value


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def optional_string(body: Mapping, key: str) -> str | None:
    """``body[key]`` if it is a string, None if absent or null; a 400 otherwise."""
    value = body.get(key)
    if value is None or isinstance(value, str):
        return value
    raise bad_request(f"field {key!r} must be a string, got {_type_name(value)}")


def optional_bool(body: Mapping, key: str) -> bool | None:
    """``body[key]`` if it is a boolean, None if absent or null; a 400 otherwise."""
    value = body.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise bad_request(f"field {key!r} must be a boolean, got {_type_name(value)}")


def _optional_toxicity(body: Mapping) -> float | None:
    value = body.get("toxicity")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_request(f"field 'toxicity' must be a number, got {_type_name(value)}")
    if not (0.0 <= value <= 1.0) or math.isnan(value):
        raise bad_request(f"field 'toxicity' must be between 0 and 1, got {value}")
    return float(value)


def _attribute_value(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_request(f"attribute {key!r} must be an integer, got {_type_name(value)}")
    if isinstance(value, float):
        if not value.is_integer():
            raise bad_request(f"attribute {key!r} must be an integer, got {value}")
        value = int(value)
    if not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise bad_request(f"attribute {key!r} is out of range, got {value}")
    return value


def _string_value(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise bad_request(f"attribute {key!r} must be a string, got {_type_name(value)}")
    return value


def _merge_attributes(toxic_type: ToxicType, current: Mapping[str, int | str], body: Mapping) -> dict:
    raw = body.get("attributes")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise bad_request(f"field 'attributes' must be an object, got {_type_name(raw)}")
    merged = dict(current)
    for key, value in raw.items():
        if key not in toxic_type.attributes:
            expected = ", ".join(toxic_type.attributes) or "none"
            raise bad_request(
                f"unknown attribute {key!r} for toxic type {toxic_type.name} (expected: {expected})"
            )
        if value is None:
            continue
        merged[key] = _string_value(key, value) if key in toxic_type.strings else _attribute_value(key, value)
    toxic_type.validate(merged)
    return merged


def new_toxic(body: Any, taken_names: Callable[[str], bool]) -> Toxic:
    """Build a toxic from a POST body, checking in Toxiproxy's order.

    Body shape, then stream, then type, then name conflict (409), then attributes.
    """
    if not isinstance(body, dict):
        raise bad_request(f"expected a JSON object, got {_type_name(body)}")
    name = optional_string(body, "name") or ""
    type_name = optional_string(body, "type") or ""
    stream = optional_string(body, "stream")
    toxicity = _optional_toxicity(body)
    stream = "downstream" if stream is None else stream.lower()
    if stream not in STREAMS:
        raise INVALID_STREAM
    toxic_type = TOXIC_TYPES.get(type_name)
    if toxic_type is None:
        raise INVALID_TOXIC_TYPE
    if name:
        check_name("name", name)
    else:
        name = f"{type_name}_{stream}"
    if taken_names(name):
        raise TOXIC_EXISTS
    attributes = _merge_attributes(toxic_type, toxic_type.zeros(), body)
    return Toxic(name, type_name, stream, 1.0 if toxicity is None else toxicity, attributes)


def updated_toxic(current: Toxic, body: Any) -> Toxic:
    """Merge a PATCH body onto a toxic: attributes merged, toxicity kept when absent.

    Name, type and stream cannot change (Toxiproxy ignores them in updates).
    """
    if not isinstance(body, dict):
        raise bad_request(f"expected a JSON object, got {_type_name(body)}")
    toxicity = _optional_toxicity(body)
    attributes = _merge_attributes(TOXIC_TYPES[current.type], current.attributes, body)
    return Toxic(
        current.name,
        current.type,
        current.stream,
        current.toxicity if toxicity is None else toxicity,
        attributes,
    )

