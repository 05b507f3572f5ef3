"""A property-based fuzz (hypothesis) over stack.yaml, fault profiles and command lines, in-process
through the real entry point (run_cli). Only stacklet's own errors may come out: exit 0 or 3 (2 only for
the missing engine), exactly one JSON document under --json, no traceback, no file written. Bounded to
well under a minute."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stacklet.cli.app import run_cli
from stacklet.config import stack as stack_module
from stacklet.errors import StackletError, UnexpectedError

pytestmark = pytest.mark.usefixtures("compose_cli")

FUZZ = settings(max_examples=30, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

COMPOSE = """\
services:
  api:
    image: example/api
    depends_on: [db]
    environment: {WORKER_URL: "http://worker:8080"}
  worker: {image: example/worker, expose: ["8080"]}
  db: {image: postgres:16}
"""
STACK = "name: demo\nservices:\n  api: {paths: ['api/**']}\n"
PROFILE = "description: slow\ntoxics:\n  - {target: db, type: latency, attributes: {latency: 100}}\n"


def _own_errors(base: type = StackletError) -> set[str]:
    names = {base.__name__}
    for sub in base.__subclasses__():
        names |= _own_errors(sub)
    return names


OWN_ERRORS = (_own_errors() - {UnexpectedError.__name__}) | {"usage"}
ENGINE_ERRORS = {"EngineUnavailable", "DockerError"}

HOSTILE_TEXT = ["--output=OUT", "-oOUT", "1000000000", "9" * 5000, "-1", "4.2e16", "a/b", "x\ny", "demo", "api",
                "db", "é" * 300, "../..", "HEAD", "HEAD~1", "", " ", "\x00", "--json", "--help", "${X:-", "*", "&a"]
VALUE_OPTIONS = {"--since", "--radius", "-r", "--stack", "-s", "--changed", "--format", "--slice", "--env-file"}
OPTIONS = ["--since", "--radius", "-r", "--stack", "-s", "--changed", "--format", "--slice", "--json", "--", "-",
           "--env-file", "--bogus"]
COMMANDS = [["plan"], ["why"], ["graph"], ["fault", "ls"], ["skill"], ["version"]]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A git repository holding the demo stack and a faults/ folder; the fuzz runs inside it."""
    root = tmp_path_factory.mktemp("fuzz")
    (root / "stacks" / "demo").mkdir(parents=True)
    (root / "stacks" / "demo" / "compose.yaml").write_text(COMPOSE)
    (root / "stacks" / "demo" / "stack.yaml").write_text(STACK)
    (root / "faults").mkdir()
    (root / "faults" / "slow.yaml").write_text(PROFILE)
    git = ["git", "-c", "user.name=T", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "."], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "demo"], cwd=root, check=True)
    return root


@pytest.fixture
def cli(workspace, monkeypatch, capsys):
    """run_cli in the workspace; Compose output is computed once per file by the real `docker compose config`."""
    monkeypatch.chdir(workspace)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent")
    for name in ("STACKLET_STACK", "STACKLET_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    real, cache = stack_module.load_compose, {}

    def load_compose_once(files, *, env_files=None, project_directory=None, profiles=None):
        key = (tuple(map(str, files)), tuple(map(str, env_files or [])), str(project_directory),
               tuple(profiles or []))
        if key not in cache:
            cache[key] = real(files, env_files=env_files, project_directory=project_directory, profiles=profiles)
        return cache[key]

    monkeypatch.setattr(stack_module, "load_compose", load_compose_once)

    def invoke(argv: list[str]) -> tuple[int, str, str]:
        before = files_in(workspace)
        code = run_cli(argv)
        out, err = capsys.readouterr()
        check_outcome(argv, code, out, err)
        assert files_in(workspace) == before, f"{argv!r} wrote a file"
        return code, out, err

    return invoke


def files_in(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")
            if ".git" not in p.parts and "__pycache__" not in p.parts}


def check_outcome(argv: list[str], code: int, out: str, err: str) -> None:
    where = repr(argv)[:300]
    assert "Traceback" not in out + err, where
    options = argv[:argv.index("--")] if "--" in argv else argv
    # `--since --json` gives --since the value "--json" (Click's rule): then no JSON is asked for
    asked = any(word == "--json" and (i == 0 or options[i - 1] not in VALUE_OPTIONS) for i, word in enumerate(options))
    if asked and "--help" not in options:
        document = json.loads(out)  # exactly one JSON document, nothing else
        assert isinstance(document, dict) and document.get("ok", True) is (code == 0), where
        if code:
            assert document["error"] in OWN_ERRORS, where
            assert len(document["message"]) < 1000 and len(document.get("hint") or "") < 1000, where
            assert code == 3 or document["error"] in ENGINE_ERRORS, where
    assert code in (0, 2, 3), where


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
    | st.sampled_from(HOSTILE_TEXT),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)
service_names = st.sampled_from(["api", "worker", "db", "nope", "a/b", "x\ny", "-r"])
stack_documents = st.fixed_dictionaries(
    {"name": st.sampled_from(["demo", "Demo", "", "a/b", "x" * 100])},
    optional={
        "radius": st.integers() | st.sampled_from([10**9, 10**99, -1, "1", 1.5]),
        "description": st.text(max_size=50) | json_values,
        "ttl": st.sampled_from(["2h", "0", "99999999999999d", "soon", 5, None, -1]),
        "services": st.dictionaries(service_names, st.fixed_dictionaries({}, optional={
            "calls": st.lists(service_names, max_size=3), "ports": st.lists(st.integers(), max_size=3),
            "stateful": json_values, "paths": st.lists(st.text(max_size=10), max_size=2)}), max_size=3),
        "checks": st.lists(st.fixed_dictionaries({"name": st.text(max_size=8)}, optional={
            "steps": st.lists(st.fixed_dictionaries({"name": st.text(max_size=5), "service": service_names},
                                                    optional={"port": st.integers(), "json": json_values,
                                                              "expect": json_values}), max_size=2),
            "command": json_values}), max_size=3),
        "baseline": json_values,
        "unknown": json_values,
    })
HOSTILE_FILES = [
    b"name: demo\n" + b"".join(b"l%d: &l%d [" % (i, i) + b", ".join([b"*l%d" % (i - 1) if i else b"x"] * 10) + b"]\n"
                               for i in range(9)) + b"description: *l8\n",
    b"name: demo\nradius: " + b"9" * 5000 + b"\n",
    b"name: demo\ndescription: " + b"[" * 1000 + b"]" * 1000 + b"\n",
    b"name: demo\nservices:\n  api: {}\n  api: {calls: [db]}\n",
    b"name: d\xe9mo\n",
    b"\xff\xfe\x00",
]
file_contents = (stack_documents.map(lambda d: yaml.safe_dump(d, allow_unicode=True).encode())
                 | st.binary(max_size=200) | st.text(max_size=200).map(str.encode)
                 | st.sampled_from(HOSTILE_FILES))


@FUZZ
@given(content=file_contents)
def test_fuzz_stack_yaml(cli, workspace, content):
    stack_file = workspace / "stacks" / "demo" / "stack.yaml"
    stack_file.write_bytes(content)
    try:
        for argv in (["plan", "api", "--stack", "demo", "--json"], ["why", "db", "--changed", "api", "--stack", "demo",
                                                                    "--json"]):
            code, _, _ = cli(argv)
            assert code in (0, 3)
    finally:
        stack_file.write_text(STACK)


profile_documents = st.fixed_dictionaries({}, optional={
    "name": st.text(max_size=10), "description": json_values, "stack": st.sampled_from(["demo", "other", None]),
    "toxics": st.lists(st.fixed_dictionaries({"target": service_names, "type": st.sampled_from(
        ["latency", "bandwidth", "down", "slicer", "wobble"])}, optional={
        "attributes": st.dictionaries(st.sampled_from(["latency", "jitter", "rate", "x"]),
                                      st.integers() | json_values, max_size=2),
        "toxicity": st.floats() | json_values, "stream": st.text(max_size=10)}), max_size=3)})


@FUZZ
@given(content=profile_documents.map(lambda d: yaml.safe_dump(d).encode()) | st.binary(max_size=100)
       | st.sampled_from(HOSTILE_FILES))
def test_fuzz_fault_profiles(cli, workspace, content):
    profile = workspace / "faults" / "fuzz.yaml"
    profile.write_bytes(content)
    try:
        code, out, _ = cli(["skill", "--stack", "demo", "--json"])
        assert code == 0 and "## Faults" in json.loads(out)["skill"]  # one bad profile never breaks skill
        cli(["up", "api", "--stack", "demo", "--fault", "fuzz", "--json"])  # refused (3), or no engine (2)
    finally:
        profile.unlink()


tokens = st.sampled_from(OPTIONS) | st.sampled_from(HOSTILE_TEXT) | st.text(max_size=12)


@FUZZ
@given(command=st.sampled_from(COMMANDS), arguments=st.lists(tokens, max_size=6), as_json=st.booleans())
def test_fuzz_command_lines(cli, command, arguments, as_json):
    cli([*command, *arguments, *(["--json"] if as_json else [])])
