"""python-on-whales, imported on first use.

Its import builds a pydantic model of every Docker object (a quarter of a second); commands served by
the engine API alone (status, ls, reset, fault) never pay it. ``whales.DockerClient`` and
``whales.DockerException`` resolve to python-on-whales' own on first access (PEP 562).
"""

from __future__ import annotations

from typing import Any

_NAMES = {"DockerClient": "python_on_whales", "DockerException": "python_on_whales.exceptions",
          "NoSuchContainer": "python_on_whales.exceptions"}


def __getattr__(name: str) -> Any:
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(_NAMES[name]), name)
    globals()[name] = value
    return value
