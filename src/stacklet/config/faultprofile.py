"""Fault profiles (``faults/<name>.yaml``) and the faults of ``stacklet fault add``: named lists of toxics
on link targets, validated by the link proxy's own toxic registry (one schema for both)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from stacklet.config.stack import _is_file, _Strict
from stacklet.config.yamlload import load_yaml_file
from stacklet.errors import StackFileError, short_repr
from stacklet.linkproxy.errors import ApiError
from stacklet.linkproxy.toxics import TOXIC_TYPES


FAULTS_DIR = "faults"
TARGET_SELECTORS = ("@forwarded", "@local", "@all")
# Every toxic type with its attributes and their defaults (Toxiproxy's units: ms, KB/s, bytes, µs).
TOXIC_ATTRIBUTES: dict[str, dict[str, int | str]] = {name: kind.zeros() for name, kind in TOXIC_TYPES.items()}
"""Every toxic type the link proxy serves (TCP, and HTTP ones beyond Toxiproxy) with its attributes at their
defaults; the link proxy's own registry is the one schema, so a profile is valid exactly when the proxy takes it."""
MAX_TOXIC_ATTRIBUTE = 2**31 - 1  # Toxiproxy keeps attributes in 32/64-bit integers
DOWN = "down"  # not a toxic: the link is disabled (connections refused) until cleared


class ToxicSpec(_Strict):
    """One fault on a link target: a toxic (or ``down``) with its stream, toxicity and attributes."""

    target: str = Field(description="service name as its callers see it, or @forwarded/@local/@all")
    type: str
    name: str | None = None
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: float = Field(default=1.0, ge=0.0, le=1.0)
    attributes: dict[str, int | str] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in TOXIC_ATTRIBUTES and value != DOWN:
            raise ValueError(f"unknown toxic type {value!r}; types are {', '.join([*TOXIC_ATTRIBUTES, DOWN])}")
        return value

    @model_validator(mode="after")
    def _valid_attributes(self) -> "ToxicSpec":
        kind = TOXIC_TYPES.get(self.type)
        if kind is None:
            return self  # `down`: no attributes
        for key, value in self.attributes.items():
            if key not in kind.attributes:
                names = ", ".join(kind.attributes) or "none"
                raise ValueError(f"unknown attribute {key!r} for {self.type}; its attributes are: {names}")
            if key in kind.strings:
                if not isinstance(value, str):
                    raise ValueError(f"attribute {key!r} must be text, got {short_repr(value)}")
            elif isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"attribute {key!r} must be a whole number, got {short_repr(value)}")
            elif not 0 <= value <= MAX_TOXIC_ATTRIBUTE:
                raise ValueError(f"attribute {key!r} must be between 0 and {MAX_TOXIC_ATTRIBUTE}, "
                                 f"got {short_repr(value)}")
        merged = {**kind.zeros(), **self.attributes}
        try:
            kind.validate(merged)  # the link proxy's own checks (e.g. bandwidth rate > 0, status 100-599)
        except ApiError as exc:
            raise ValueError(exc.message.removeprefix("bad request body: ")) from None
        self.__dict__["attributes"] = merged
        return self

    @property
    def toxic_name(self) -> str:
        return self.name or f"{self.type}_{self.stream}"


class FaultProfile(_Strict):
    """A named, described list of faults (faults/<name>.yaml)."""

    name: str
    description: str = ""
    stack: str | None = None
    toxics: list[ToxicSpec] = Field(min_length=1)


def find_fault_profile(name: str, start: Path | None = None) -> Path:
    """The file of profile ``name``: a path, or faults/<name>.yaml in the nearest faults/ folder."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and _is_file(path):
        return path.resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        for candidate in (folder / FAULTS_DIR / f"{name}.yaml", folder / FAULTS_DIR / f"{name}.yml"):
            if _is_file(candidate):
                return candidate
    known = ", ".join(p.stem for p in list_fault_profiles(start)) or "none found"
    raise StackFileError(f"no fault profile named {short_repr(name)}", file=f"{FAULTS_DIR}/{short_repr(name)[1:-1]}.yaml",
                         hint=f"profiles: {known}")


def list_fault_profiles(start: Path | None = None) -> list[Path]:
    """The profile files of the nearest faults/ folder."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / FAULTS_DIR).is_dir():
            return sorted([*(folder / FAULTS_DIR).glob("*.yaml"), *(folder / FAULTS_DIR).glob("*.yml")])
    return []


def load_fault_profile(path: Path) -> FaultProfile:
    """Read and validate a fault profile; errors name the file and the key."""
    data = load_yaml_file(path, StackFileError, "a mapping with `toxics:`")
    data.setdefault("name", path.stem)
    try:
        return FaultProfile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        hint = {"extra_forbidden": "allowed keys: name, description, stack, toxics; each toxic: target, type, "
                                   "name, stream, toxicity, attributes",
                "missing": "a profile needs `toxics:`, each with `target` and `type`"}.get(first["type"])
        raise StackFileError(first["msg"].removeprefix("Value error, "), file=str(path), key=key,
                             hint=hint or "see faults/slow-db.yaml for an example") from exc


def parse_toxic_arguments(target: str, toxic_type: str, pairs: list[str]) -> ToxicSpec:
    """``fault add TARGET TYPE key=value...`` into a validated ToxicSpec."""
    fields: dict[str, Any] = {"target": target, "type": toxic_type, "attributes": {}}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise StackFileError(f"argument {pair!r} is not key=value", key=pair,
                                 hint="e.g. latency=200 jitter=50 stream=upstream toxicity=0.5")
        if key in ("stream", "name"):
            fields[key] = value
        elif key == "toxicity":
            fields[key] = _number(key, value, float)
        elif key in getattr(TOXIC_TYPES.get(toxic_type), "strings", ()):
            fields["attributes"][key] = value
        else:
            fields["attributes"][key] = _number(key, value, int)
    try:
        return ToxicSpec.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or toxic_type
        raise StackFileError(first["msg"].removeprefix("Value error, "), key=key,
                             hint=f"attributes of {toxic_type}: "
                                  f"{', '.join(TOXIC_ATTRIBUTES.get(toxic_type, {})) or 'none'}") from exc


def _number(key: str, value: str, kind: type) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise StackFileError(f"{key} must be a {'whole ' if kind is int else ''}number, got {short_repr(value)}", key=key,
                             hint=f"e.g. {key}=100") from None
