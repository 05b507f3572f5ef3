"""Shared fixtures of the unit tests: the repo, the Compose corpus, the shop stack, in-memory stacks.

Nothing here needs a Docker daemon. Tests that normalise Compose files need the `docker compose`
CLI (v2): they are skipped without it locally, and fail under CI=true.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

import yaml

from stacklet.config.compose import compose_available, parse_compose
from stacklet.config.stack import Stack, StackFile, load_stack

REPO_ROOT = Path(__file__).resolve().parents[2]
SHOP_DIR = REPO_ROOT / "stacks" / "shop"
# The repository is a sibling of `shared/`; nothing assumes where the two live.
CORPUS_DIR = REPO_ROOT / ".." / "shared" / "corpus" / "compose"
IN_CI = os.environ.get("CI", "").lower() == "true"


def skip_or_fail(reason: str) -> None:
    """Skip locally; in CI a missing prerequisite is a failure, never a silent skip."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: prerequisites must be present)")
    pytest.skip(reason)


@pytest.fixture(scope="session", autouse=True)
def own_compose_cache(tmp_path_factory):
    """The suite's cached `docker compose config` outputs live in its own folder, not the user's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="session")
def compose_cli() -> None:
    """Require the `docker compose` v2 CLI (no daemon needed: only `config` is run)."""
    if not compose_available():
        skip_or_fail("`docker compose` v2 is not installed")


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The folder of real-world Compose files (shared/corpus/compose next to the repo)."""
    if not CORPUS_DIR.is_dir():
        skip_or_fail(f"the Compose corpus is missing at {CORPUS_DIR}")
    return CORPUS_DIR.resolve()


@pytest.fixture(scope="session")
def shop(compose_cli) -> Stack:
    """The example stack stacks/shop, loaded once (through its stack.yaml). Treat it as read-only."""
    if not (SHOP_DIR / "stack.yaml").is_file():
        skip_or_fail("stacks/shop/stack.yaml is missing")
    return load_stack(SHOP_DIR)


def service(image: str | None = None, *, depends_on: Any = None, environment: dict | None = None,
            expose: list | None = None, ports: list | None = None, volumes: list | None = None,
            build: Any = None, **extra: Any) -> dict[str, Any]:
    """One service as `docker compose config --format json` prints it (the parts stacklet reads)."""
    spec: dict[str, Any] = {} if "network_mode" in extra else {"networks": {"default": None}}
    if image:
        spec["image"] = image
    if build:
        spec["build"] = build if isinstance(build, dict) else {"context": build}
    if depends_on is not None:
        if isinstance(depends_on, list):
            depends_on = {d: {"condition": "service_started", "required": True} for d in depends_on}
        spec["depends_on"] = depends_on
    if environment:
        spec["environment"] = environment
    if expose:
        spec["expose"] = [str(p) for p in expose]
    if ports:
        spec["ports"] = ports
    if volumes:
        spec["volumes"] = volumes
    spec.update(extra)
    return spec


def named_volume(source: str, target: str) -> dict[str, Any]:
    return {"type": "volume", "source": source, "target": target, "volume": {}}


@pytest.fixture
def make_stack(tmp_path: Path):
    """Build a Stack in memory (no Docker): ``make_stack(services, meta={...}, volumes={...})``.

    ``with_stack_file=False`` makes it look like a stack loaded with ``-f compose.yaml``.
    """

    def build(services: dict[str, dict], *, meta: dict | None = None, volumes: dict | None = None,
              with_stack_file: bool = True, interpolated: bool = True, unset: list[str] | None = None,
              profiles: list[str] | None = None, env_from_files: dict[str, dict[str, str]] | None = None,
              **raw_extra: Any) -> Stack:
        compose_file = tmp_path / "compose.yaml"
        raw: dict[str, Any] = {"name": "demo", "services": services,
                               "networks": {"default": {"name": "demo_default", "ipam": {}}}, **raw_extra}
        if volumes is not None:
            raw["volumes"] = volumes
        project = parse_compose(raw, [compose_file], interpolated=interpolated, unset_variables=unset,
                                profiles=profiles, env_from_files=env_from_files)
        for name, variables in (env_from_files or {}).items():
            for path in variables.values():
                users = project.env_file_users.setdefault(path, [])
                users += [name] if name not in users else []
        stack_meta = StackFile.model_validate({"name": "demo", **(meta or {})})
        return Stack(meta=stack_meta, compose=project, root=tmp_path,
                     stack_file=tmp_path / "stack.yaml" if with_stack_file else None)

    return build


def compose_accepts(project: dict[str, Any], folder: Path) -> str | None:
    """Run a rendered project through `docker compose config -q`; None when valid, else the error."""
    path = folder / "rendered-compose.yaml"
    path.write_text(yaml.safe_dump(project, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    result = subprocess.run(["docker", "compose", "-f", str(path), "config", "-q"], capture_output=True,
                            text=True, cwd=folder, env=env, timeout=60)
    return None if result.returncode == 0 else result.stderr.strip()
