"""compose.py: normalising Compose files with `docker compose config`, and the real-world corpus.

Everything here runs `docker compose config` (no daemon needed), except the pure parse_compose tests.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from stacklet.config import compose as compose_module
from stacklet.config.compose import load_compose, parse_compose, substitute_defaults
from stacklet.errors import ComposeError
from stacklet.planning.graph import ServiceGraph
from stacklet.planning.plan import make_plan
from stacklet.planning.render import render, render_baseline
from stacklet.config.stack import Stack, load_stack

from ..conftest import compose_accepts

# corpus file -> (companion --env-file or None, number of services per SOURCES.md)
PLANNABLE = {
    "airflow.yaml": (None, 10),
    "awesome-nginx-flask-mysql.yaml": (None, 3),
    "awesome-react-express-mongodb.yaml": (None, 3),
    "example-voting-app.yaml": (None, 6),
    "immich.yaml": (None, 4),
    "netbox-docker.yaml": (None, 6),  # its env_file: companions sit in env/ and Compose reads them itself
    "opentelemetry-demo.yaml": ("opentelemetry-demo.env", 29),
    "sentry-self-hosted.yaml": ("sentry-self-hosted.env", 57),
    "supabase.yaml": (None, 13),
    "mastodon.yaml": (None, 5),         # its env_file .env.production is not committed: a note
    "posthog-hobby.yaml": (None, 23),   # extends docker-compose.base.yml, not in the corpus: a note
}
# corpus file -> (the missing file the note and the boot blockers must name, the key they name)
MISSING_FILES = {
    "posthog-hobby.yaml": ("docker-compose.base.yml", "extends"),
    "mastodon.yaml": (".env.production", "env_file"),
}

pytestmark = pytest.mark.usefixtures("compose_cli")


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


_LOADED: dict[str, Stack] = {}


def corpus_stack(corpus_dir: Path, name: str, *, with_env: bool = True) -> Stack:
    """A corpus file as a stack, with its companion --env-file unless ``with_env=False``.

    With the env file, each file is loaded once per session and shared: tests must not change it.
    """
    if with_env and name in _LOADED:
        return _LOADED[name]
    env = PLANNABLE[name][0]
    stack = load_stack(compose_files=[corpus_dir / name],
                       env_files=[corpus_dir / env] if env and with_env else None)
    if with_env:
        _LOADED[name] = stack
    return stack


# --------------------------------------------------------------------------------------------
# the corpus


def test_every_corpus_file_is_covered(corpus_dir):
    assert {p.name for p in corpus_dir.glob("*.yaml")} == set(PLANNABLE)


@pytest.mark.parametrize("name", sorted(PLANNABLE))
def test_corpus_file_plans_every_service(corpus_dir, name):
    stack = corpus_stack(corpus_dir, name)
    assert len(stack.services) + len(stack.compose.inactive_services) == PLANNABLE[name][1]
    if PLANNABLE[name][0]:
        assert stack.compose.interpolated
        assert stack.compose.unset_variables == []
    graph = ServiceGraph.from_stack(stack)
    for changed in stack.services:
        plan = make_plan(stack, [changed], graph=graph)
        local = {s.name: s for s in plan.local}
        assert plan.changed == [changed]
        assert local[changed].role == "changed"
        assert not set(local) & {f.name for f in plan.forwarded}
        for link in plan.links:
            assert link.source in local
            assert link.kind == ("local" if link.target in local else "forwarded")
        # link proxies: each target once, no two targets of one proxy on the same port
        targets = [t for p in plan.proxies for t in p.targets]
        assert len(targets) == len(set(targets))
        for proxy in plan.proxies:
            ports = [r.port for r in proxy.routes]
            assert len(ports) == len(set(ports)), proxy
        project = render(plan, stack, "corpus")
        assert set(project["services"]) == ({s.compose_name for s in plan.local}
                                            | {p.name for p in plan.proxies})
        for spec in project["services"].values():
            assert spec["labels"]["dev.stacklet.slice"] == "corpus"
            assert "container_name" not in spec
            for port in spec.get("ports", []):
                assert port["host_ip"] == "127.0.0.1" and port["published"] == ""


@pytest.mark.parametrize("name", sorted(PLANNABLE))
def test_corpus_slice_and_baseline_are_valid_compose(corpus_dir, tmp_path, name):
    """Compose accepts the rendered slice of the most connected service, and the baseline."""
    stack = corpus_stack(corpus_dir, name)
    graph = ServiceGraph.from_stack(stack)
    busiest = max(stack.services, key=lambda s: (len(graph.callers(s)) + len(graph.callees(s)), s))
    project = render(make_plan(stack, [busiest], graph=graph), stack, "valid")
    if not stack.compose.interpolated:
        # ${VAR} values stay in the project; Compose would need the same missing variables again
        assert not [v for v in project.get("volumes", {}) if "$" in v]
        return
    assert compose_accepts(project, tmp_path) is None
    assert compose_accepts(render_baseline(stack), tmp_path) is None


@pytest.mark.parametrize("name", sorted(MISSING_FILES))
def test_corpus_file_with_a_missing_file_plans_with_a_note(corpus_dir, name):
    """A file the project does not commit (an env_file, an extended base) is a planning note, and
    the reason `up` refuses; planning still covers every service."""
    missing, key = MISSING_FILES[name]
    stack = load_stack(compose_files=[corpus_dir / name])
    assert any(missing in note and "missing" in note for note in stack.compose.notes)
    assert stack.compose.boot_blockers and all(missing in b for b in stack.compose.boot_blockers)
    assert any(f".{key})" in b for b in stack.compose.boot_blockers)
    plan = make_plan(stack, [stack.services[0]])
    assert plan.boot_blockers == stack.compose.boot_blockers
    assert any(missing in note for note in plan.notes)


def test_netbox_reads_hosts_from_its_env_files(corpus_dir):
    graph = ServiceGraph.from_stack(corpus_stack(corpus_dir, "netbox-docker.yaml"))
    assert {"postgres", "redis", "redis-cache"} <= set(graph.callees("netbox"))
    assert "env DB_HOST" in graph.edge_reasons("netbox-worker", "postgres")
    assert "env REDIS_CACHE_HOST" in graph.edge_reasons("netbox-housekeeping", "redis-cache")


def test_voting_app_profiles_and_depends_on(corpus_dir):
    stack = corpus_stack(corpus_dir, "example-voting-app.yaml")
    assert "seed" not in stack.services  # behind profile `seed`, which is not active
    assert stack.compose.inactive_services == {"seed": ["seed"]} and stack.compose.profiles == ["seed"]
    graph = ServiceGraph.from_stack(stack)
    assert graph.callees("worker") == ["db", "redis"]
    plan = make_plan(stack, ["vote"], graph=graph)
    assert {s.name: s.role for s in plan.local} == {"vote": "changed", "redis": "callee"}
    assert plan.inactive_services == {"seed": ["seed"]}
    with_seed = load_stack(compose_files=[corpus_dir / "example-voting-app.yaml"], profiles=["seed"])
    plan = make_plan(with_seed, ["vote"])
    assert {s.name: s.role for s in plan.local} == {"vote": "changed", "seed": "caller", "redis": "callee"}


def test_opentelemetry_demo_with_its_env_file(corpus_dir):
    stack = corpus_stack(corpus_dir, "opentelemetry-demo.yaml")
    graph = ServiceGraph.from_stack(stack)
    assert {"cart", "currency", "payment", "product-catalog", "shipping", "kafka"} <= set(graph.callees("checkout"))
    assert "frontend" in graph.callers("checkout")


# Variables these files use without a default (all defined by the companion env file).
UNSET_WITHOUT_ENV = {
    "opentelemetry-demo.yaml": {"IMAGE_NAME", "IMAGE_VERSION", "DEMO_VERSION", "OTEL_COLLECTOR_HOST",
                                "OTEL_COLLECTOR_PORT_HTTP", "KAFKA_HOST", "POSTGRES_HOST"},
    "sentry-self-hosted.yaml": {"HEALTHCHECK_INTERVAL", "HEALTHCHECK_TIMEOUT", "HEALTHCHECK_RETRIES",
                                "HEALTHCHECK_START_PERIOD", "HEALTHCHECK_FILE_INTERVAL", "HEALTHCHECK_FILE_TIMEOUT",
                                "HEALTHCHECK_FILE_RETRIES", "HEALTHCHECK_FILE_START_PERIOD", "SNUBA_IMAGE",
                                "RELAY_IMAGE", "VROOM_IMAGE", "SENTRY_BIND"},
}


@pytest.mark.parametrize("name", sorted(UNSET_WITHOUT_ENV))
def test_corpus_file_without_its_env_file_plans_uninterpolated(corpus_dir, monkeypatch, name):
    """Without --env-file the file is planned from the uninterpolated model, and the notes name
    every variable that is missing (all of them, the same on every run)."""
    for variable in UNSET_WITHOUT_ENV[name]:
        monkeypatch.delenv(variable, raising=False)
    stack = corpus_stack(corpus_dir, name, with_env=False)
    assert len(stack.services) + len(stack.compose.inactive_services) == PLANNABLE[name][1]
    assert not stack.compose.interpolated
    assert UNSET_WITHOUT_ENV[name] <= set(stack.compose.unset_variables)
    assert any("uninterpolated" in note and all(v in note for v in UNSET_WITHOUT_ENV[name])
               for note in stack.compose.notes)
    graph = ServiceGraph.from_stack(stack)
    for changed in stack.services:
        plan = make_plan(stack, [changed], graph=graph)
        assert any("uninterpolated" in note for note in plan.notes)
        render(plan, stack, "corpus")


# --------------------------------------------------------------------------------------------
# Compose features, one small file each


def test_anchors_and_merge_keys(tmp_path):
    path = write(tmp_path, "compose.yaml", """\
x-base: &base
  image: example/app
  environment: &env
    DB_URL: postgres://db:5432/app
    LOG: info
services:
  api:
    <<: *base
    environment:
      <<: *env
      LOG: debug
  worker:
    <<: *base
  db:
    image: postgres:16
""")
    project = load_compose([path])
    api, worker = project.services["api"], project.services["worker"]
    assert api.image == worker.image == "example/app"
    assert api.environment == {"DB_URL": "postgres://db:5432/app", "LOG": "debug"}
    assert worker.environment == {"DB_URL": "postgres://db:5432/app", "LOG": "info"}
    assert set(project.services) == {"api", "worker", "db"}  # x- extension fields are not services


def test_only_active_profiles_are_planned(tmp_path, monkeypatch):
    path = write(tmp_path, "compose.yaml", """\
services:
  app:
    image: example/app
  debug:
    image: example/debug
    profiles: [debug]
    environment:
      TARGET: http://app:8000
  tools:
    image: example/tools
    profiles: [ops, debug]
""")
    monkeypatch.delenv("COMPOSE_PROFILES", raising=False)
    project = load_compose([path])
    assert set(project.services) == {"app"} and set(project.raw["services"]) == {"app"}
    assert project.inactive_services == {"debug": ["debug"], "tools": ["ops", "debug"]}
    assert project.profiles == ["debug", "ops"]
    assert project.profile_hint("tools") == "tools is in profile ops, debug: pass --profile ops"
    project = load_compose([path], profiles=["debug"])
    assert set(project.services) == {"app", "debug", "tools"}
    assert project.services["debug"].profiles == ["debug"]
    assert sorted(project.services["tools"].profiles) == ["debug", "ops"]
    assert project.services["app"].profiles == []
    monkeypatch.setenv("COMPOSE_PROFILES", "ops")
    assert set(load_compose([path]).services) == {"app", "tools"}  # as Compose reads COMPOSE_PROFILES
    assert set(load_compose([path], profiles=["*"]).services) == {"app", "debug", "tools"}


def test_extends_in_the_same_file(tmp_path):
    path = write(tmp_path, "compose.yaml", """\
services:
  base:
    image: example/base
    expose: ["8000"]
    environment:
      CACHE: redis://cache:6379
    depends_on: [cache]
  child:
    extends: base
    image: example/child
  cache:
    image: redis:7
""")
    child = load_compose([path]).services["child"]
    assert child.image == "example/child"
    assert child.expose == [8000]
    assert child.environment == {"CACHE": "redis://cache:6379"}
    assert list(child.depends_on) == ["cache"]


def test_extends_another_file(tmp_path):
    write(tmp_path, "common/base.yaml", """\
services:
  common:
    image: example/common
    environment:
      API: http://api:9000
    expose: ["9000"]
""")
    path = write(tmp_path, "compose.yaml", """\
services:
  api:
    image: example/api
  worker:
    extends: {file: common/base.yaml, service: common}
    environment:
      EXTRA: "1"
""")
    worker = load_compose([path]).services["worker"]
    assert worker.image == "example/common"
    assert worker.environment == {"API": "http://api:9000", "EXTRA": "1"}
    assert worker.expose == [9000]


def test_extends_a_missing_file_is_a_note_and_blocks_boot(tmp_path):
    path = write(tmp_path, "compose.yaml", """\
services:
  app:
    extends: {file: nowhere/base.yml, service: app}
    environment: {DB: "postgres://db:5432/app"}
  db: {image: postgres:16}
""")
    project = load_compose([path])
    assert project.missing_extends == {"app": "nowhere/base.yml"}
    assert project.services["app"].environment == {"DB": "postgres://db:5432/app"}  # its own keys still plan
    assert any("nowhere/base.yml" in note for note in project.notes)
    assert project.boot_blockers == ["nowhere/base.yml (services.app.extends) does not exist"]


def test_include_a_missing_file_names_it_and_the_include_key(tmp_path):
    path = write(tmp_path, "compose.yaml", """\
include:
  - sub/other.yaml
services:
  app: {image: example/app}
""")
    with pytest.raises(ComposeError) as info:
        load_compose([path])
    assert "other.yaml" in info.value.message
    assert info.value.key == "include"
    assert "extends" not in info.value.message


def test_include(tmp_path):
    write(tmp_path, "sub/db.yaml", "services:\n  db:\n    image: postgres:16\n")
    path = write(tmp_path, "compose.yaml", """\
include:
  - sub/db.yaml
services:
  app:
    image: example/app
    environment: {DB: "postgresql://u:p@db:5432/x"}
""")
    project = load_compose([path])
    assert set(project.services) == {"app", "db"}


def test_missing_env_file_is_a_note_and_blocks_boot(tmp_path):
    path = write(tmp_path, "compose.yaml", """\
services:
  app:
    image: example/app
    env_file: .env.secret
  opt:
    image: example/opt
    env_file: [{path: .env.optional, required: false}]
""")
    project = load_compose([path])
    assert set(project.services) == {"app", "opt"} and project.name == tmp_path.name.lower()
    assert project.missing_env_files == {"app": [".env.secret"]}  # an optional one is not missing
    assert any(".env.secret" in note and "app" in note for note in project.notes)
    assert project.boot_blockers == ["env_file .env.secret (services.app.env_file) does not exist"]


def test_env_file_values_reach_the_model(tmp_path):
    write(tmp_path, "app.env", "DB_HOST=db\nAPI_URL=http://api:8000\n")
    path = write(tmp_path, "compose.yaml", """\
services:
  app:
    image: example/app
    env_file: app.env
  db: {image: postgres:16}
  api: {image: example/api}
""")
    project = load_compose([path])
    assert project.services["app"].environment == {"DB_HOST": "db", "API_URL": "http://api:8000"}


def test_depends_on_list_and_map_forms(tmp_path):
    path = write(tmp_path, "compose.yaml", """\
services:
  a:
    image: example/a
    depends_on: [b, c]
  b:
    image: example/b
    depends_on:
      c: {condition: service_healthy}
      d: {condition: service_completed_successfully, required: false, restart: true}
  c: {image: example/c}
  d: {image: example/d}
""")
    project = load_compose([path])
    a, b = project.services["a"], project.services["b"]
    assert sorted(a.depends_on) == ["b", "c"]
    assert a.depends_on["b"].condition == "service_started" and a.depends_on["b"].required
    assert b.depends_on["c"].condition == "service_healthy"
    assert b.depends_on["d"].condition == "service_completed_successfully"
    assert b.depends_on["d"].required is False and b.depends_on["d"].restart is True


def test_env_file_option(tmp_path):
    env = write(tmp_path, "vars.env", "TAG=1.2.3\nAPI_HOST=api\n")
    path = write(tmp_path, "compose.yaml", """\
services:
  web:
    image: example/web:${TAG}
    environment:
      API_URL: http://${API_HOST}:8000
  api: {image: example/api}
""")
    project = load_compose([path], env_files=[env])
    assert project.interpolated and project.unset_variables == [] and project.notes == []
    assert project.services["web"].image == "example/web:1.2.3"
    assert project.services["web"].environment["API_URL"] == "http://api:8000"


def test_missing_env_file_option(tmp_path):
    path = write(tmp_path, "compose.yaml", "services:\n  web: {image: example/web}\n")
    with pytest.raises(ComposeError) as info:
        load_compose([path], env_files=[tmp_path / "missing.env"])
    assert "missing.env" in info.value.message
    assert "--env-file" in info.value.hint


# --------------------------------------------------------------------------------------------
# unset variables


def test_unset_variable_defaulting_to_blank_is_noted(tmp_path, monkeypatch):
    monkeypatch.delenv("TAG", raising=False)
    path = write(tmp_path, "compose.yaml", "services:\n  web:\n    image: example/web:${TAG}\n")
    project = load_compose([path])
    assert project.interpolated
    assert project.unset_variables == ["TAG"]
    assert len(project.notes) == 1 and "TAG" in project.notes[0] and "blank" in project.notes[0]


def test_unset_variable_that_breaks_interpolation_plans_uninterpolated(tmp_path, monkeypatch):
    for name in ("DATA", "API_HOST"):
        monkeypatch.delenv(name, raising=False)
    path = write(tmp_path, "compose.yaml", """\
services:
  web:
    image: example/web
    volumes: ["${DATA}:/srv"]
    environment:
      API_URL: http://${API_HOST:-api}:8000
  api:
    image: example/api
""")
    stack = load_stack(compose_files=[path])
    assert not stack.compose.interpolated
    assert stack.compose.unset_variables == ["DATA"]
    assert any("uninterpolated" in n and "DATA" in n for n in stack.compose.notes)
    # the default in ${API_HOST:-api} still gives the edge
    graph = ServiceGraph.from_stack(stack)
    assert graph.callees("web") == ["api"]
    assert 8000 in graph.ports_seen("api")
    plan = make_plan(stack, ["web"], graph=graph)
    assert any("uninterpolated" in n for n in plan.notes)


def test_uninterpolated_model_with_list_environment(tmp_path, monkeypatch):
    """`config --no-interpolate` keeps list-form environment as a list: it must still be read."""
    monkeypatch.delenv("DATA", raising=False)
    path = write(tmp_path, "compose.yaml", """\
services:
  web:
    image: example/web
    volumes: ["${DATA}:/srv"]
    environment:
      - API_URL=http://api:8000
      - PASSTHROUGH
  api:
    image: example/api
""")
    stack = load_stack(compose_files=[path])
    assert not stack.compose.interpolated
    assert stack.compose.services["web"].environment == {"API_URL": "http://api:8000", "PASSTHROUGH": None}
    assert ServiceGraph.from_stack(stack).callees("web") == ["api"]


def test_uninterpolated_bind_mount_is_not_a_named_volume(tmp_path, monkeypatch):
    """`${DATA}:/srv` is a bind mount of a path in a variable; in the uninterpolated model Compose
    shows it as a volume named "${DATA}". It is not a named volume of the stack."""
    monkeypatch.delenv("DATA", raising=False)
    path = write(tmp_path, "compose.yaml", """\
services:
  store:
    image: example/store
    volumes: ["${DATA}:/srv", "store-data:/var/lib/store"]
volumes:
  store-data:
""")
    stack = load_stack(compose_files=[path])
    assert not stack.compose.interpolated
    assert stack.compose.services["store"].named_volume_targets == ["/var/lib/store"]
    project = render(make_plan(stack, ["store"]), stack, "s1")
    assert list(project["volumes"]) == ["store-data"]


def test_required_variable_plans_uninterpolated_and_notes_name_it(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET", raising=False)
    path = write(tmp_path, "compose.yaml", """\
services:
  web:
    image: example/web
    environment:
      SECRET: ${SECRET:?set SECRET first}
""")
    project = load_compose([path])
    assert not project.interpolated
    assert "SECRET" in project.unset_variables
    assert any("uninterpolated" in n and "SECRET" in n for n in project.notes)


@pytest.mark.parametrize("line", ['ports: ["${PORT}:${PORT}"]', "mem_limit: ${MEM}"])
def test_any_unset_variable_failure_falls_back_to_uninterpolated(tmp_path, monkeypatch, line):
    for name in ("PORT", "MEM"):
        monkeypatch.delenv(name, raising=False)
    path = write(tmp_path, "compose.yaml", f"services:\n  web:\n    image: example/web\n    {line}\n")
    project = load_compose([path])
    assert not project.interpolated
    assert project.unset_variables
    assert any("uninterpolated" in n for n in project.notes)


@pytest.mark.parametrize(("value", "expected"), [
    ("http://${API_HOST:-api}:8000", "http://api:8000"),
    ("http://${API_HOST-api}:8000", "http://api:8000"),
    ("${UNSET_FOR_TEST}x", "x"),
    ("$UNSET_FOR_TEST/y", "/y"),
    ("no variables", "no variables"),
])
def test_substitute_defaults(monkeypatch, value, expected):
    monkeypatch.delenv("API_HOST", raising=False)
    monkeypatch.delenv("UNSET_FOR_TEST", raising=False)
    assert substitute_defaults(value) == expected


def test_substitute_defaults_prefers_the_environment(monkeypatch):
    monkeypatch.setenv("API_HOST", "api2")
    assert substitute_defaults("http://${API_HOST:-api}:8000") == "http://api2:8000"


# --------------------------------------------------------------------------------------------
# other failures


def test_missing_compose_file(tmp_path):
    with pytest.raises(ComposeError) as info:
        load_compose([tmp_path / "nope.yaml"])
    assert "nope.yaml" in info.value.message and "not found" in info.value.message
    assert "-f" in info.value.hint


def test_invalid_compose_file(tmp_path):
    path = write(tmp_path, "compose.yaml", "services:\n  web:\n    image: [unclosed\n")
    with pytest.raises(ComposeError) as info:
        load_compose([path])
    assert str(path) in info.value.message
    assert info.value.hint


def test_unknown_compose_key(tmp_path):
    path = write(tmp_path, "compose.yaml", "services:\n  web:\n    image: example/web\n    colour: red\n")
    with pytest.raises(ComposeError) as info:
        load_compose([path])
    assert "colour" in info.value.message


def test_without_the_docker_cli(tmp_path, monkeypatch):
    path = write(tmp_path, "compose.yaml", "services:\n  web: {image: example/web}\n")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ComposeError) as info:
        load_compose([path])
    assert "docker" in info.value.message
    assert "install" in info.value.hint
    assert compose_module.compose_available() is False


def test_several_files_are_merged(tmp_path):
    base = write(tmp_path, "compose.yaml", "services:\n  web:\n    image: example/web\n")
    override = write(tmp_path, "compose.override.yaml",
                     "services:\n  web:\n    environment: {API: http://api:1}\n  api: {image: example/api}\n")
    project = load_compose([base, override])
    assert set(project.services) == {"web", "api"}
    assert project.services["web"].environment == {"API": "http://api:1"}
    assert project.files == [base.resolve(), override.resolve()]


# --------------------------------------------------------------------------------------------
# parse_compose (pure: no Docker)


class TestParseCompose:
    def parse(self, services, **kw):
        return parse_compose({"name": "p", "services": services, **kw}, [Path("/x/compose.yaml")], profiles=["*"])

    def test_fields(self):
        project = self.parse({"web": {
            "image": "example/web",
            "build": {"context": "/src/web", "dockerfile": "Dockerfile"},
            "depends_on": {"db": {"condition": "service_healthy", "required": True, "unknown": 1}},
            "links": ["db:database", "cache"],
            "environment": {"A": "1", "B": None, "N": 5},
            "expose": ["8000", "9000/udp", "7000-7002"],
            "ports": [{"target": 80, "published": "8080"}, "${P}:81"],
            "volumes": [{"type": "volume", "source": "data", "target": "/var/lib/x"},
                        {"type": "volume", "target": "/anon"},
                        {"type": "bind", "source": "/h", "target": "/c"}],
            "healthcheck": {"test": ["CMD", "true"]},
            "network_mode": "host",
            "profiles": ["debug"],
        }})
        web = project.services["web"]
        assert web.build_context == Path("/src/web")
        assert web.depends_on["db"].condition == "service_healthy"
        assert web.links == ["db", "cache"]
        assert web.environment == {"A": "1", "B": None, "N": "5"}
        assert web.expose == [8000, 7000]
        assert web.udp_ports == [9000]
        assert web.port_targets == [80]
        assert web.named_volume_targets == ["/var/lib/x"]
        assert web.has_healthcheck and web.network_mode == "host" and web.profiles == ["debug"]
        assert web.raw["image"] == "example/web"

    def test_short_forms(self):
        project = self.parse({"a": {"build": "/src/a", "depends_on": ["b"]}, "b": None})
        assert project.services["a"].build_context == Path("/src/a")
        assert list(project.services["a"].depends_on) == ["b"]
        assert project.services["b"].image is None

    def test_disabled_healthcheck(self):
        project = self.parse({"a": {"image": "x", "healthcheck": {"disable": True}}})
        assert not project.services["a"].has_healthcheck

    def test_list_environment(self):
        project = self.parse({"a": {"image": "x", "environment": ["A=1", "B", "C=x=y"]}})
        assert project.services["a"].environment == {"A": "1", "B": None, "C": "x=y"}

    def test_name_defaults_to_the_folder(self):
        project = parse_compose({"services": {}}, [Path("/x/myapp/compose.yaml")])
        assert project.name == "myapp"
        assert project.notes == []

    def test_notes(self):
        assert "they default to blank" in parse_compose({"services": {}}, [Path("/c.yaml")],
                                                        unset_variables=["A"]).notes[0]
        note = parse_compose({"services": {}}, [Path("/c.yaml")], interpolated=False,
                             unset_variables=["A", "B"]).notes[0]
        assert "A, B" in note and "uninterpolated" in note and "--env-file" in note


def _compose_config(path: Path, env_files: list[Path] | None = None, env: dict | None = None) -> dict:
    """What Compose itself makes of a file: `docker compose config --format json`, as JSON."""
    import json
    import os
    import subprocess
    command = ["docker", "compose", *(f"--env-file={e}" for e in env_files or []), "-f", str(path), "config",
               "--format", "json"]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60, cwd=path.parent,
                          env={**{k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}, **(env or {})})
    return json.loads(done.stdout)


RUN_KEYS = ("command", "entrypoint", "healthcheck", "environment")


def test_a_dollar_reaches_the_container_as_compose_passes_it(tmp_path, monkeypatch):
    """Compose prints a value's `$` as `$$`: the model holds the value itself, and a rendered project gives the
    container what Compose would (not `$$HOME` where Compose passes `$HOME`)."""
    monkeypatch.setenv("SECRET", "pa$word")
    write(tmp_path, "compose.yaml", "services:\n  a:\n    image: debian:bookworm-slim\n"
                                    "    command: [sh, -c, 'echo $$HOME ${SECRET}']\n"
                                    "    environment: {PASSWORD: '${SECRET}', PID_REF: 'x$$y'}\n"
                                    "    healthcheck: {test: 'echo $$(hostname)'}\n")
    stack = load_stack(compose_files=[tmp_path / "compose.yaml"])
    spec = stack.compose.services["a"].raw
    assert spec["command"] == ["sh", "-c", "echo $HOME pa$word"]
    assert spec["environment"] == {"PASSWORD": "pa$word", "PID_REF": "x$y"}
    rendered = write(tmp_path, "rendered.yaml", __import__("yaml").safe_dump(render_baseline(stack)))
    original = _compose_config(tmp_path / "compose.yaml")["services"]["a"]
    again = _compose_config(rendered)["services"]["a"]
    assert {k: again.get(k) for k in RUN_KEYS if k != "healthcheck"} == {k: original.get(k) for k in RUN_KEYS
                                                                         if k != "healthcheck"}
    assert again["healthcheck"]["test"] == original["healthcheck"]["test"]


@pytest.mark.parametrize("name", ["netbox-docker.yaml", "airflow.yaml",
                                  "awesome-nginx-flask-mysql.yaml"])
def test_corpus_commands_with_dollars_run_as_under_compose(corpus_dir, tmp_path, name):
    """The corpus files that write `$$`: each service's command, entrypoint, healthcheck and environment in
    the rendered baseline are what Compose makes of the file itself."""
    stack = corpus_stack(corpus_dir, name)
    if not stack.compose.interpolated:
        pytest.fail(f"{name} was expected to interpolate with its env file")
    env = PLANNABLE[name][0]
    original = _compose_config(corpus_dir / name, [corpus_dir / env] if env else None)["services"]
    rendered = write(tmp_path, "rendered.yaml", __import__("yaml").safe_dump(render_baseline(stack)))
    again = _compose_config(rendered)["services"]
    dollars = 0
    for service, spec in again.items():
        for key in ("command", "entrypoint", "environment"):
            assert spec.get(key) == original[service].get(key), f"{service}.{key}"
        if original[service].get("healthcheck", {}).get("test"):
            assert spec["healthcheck"]["test"] == original[service]["healthcheck"]["test"], f"{service}.healthcheck"
        dollars += "$" in json.dumps([original[service].get(k) for k in RUN_KEYS])
    assert dollars, f"{name} has no `$` in what its services run: the test checks nothing"
