"""A slice on an ``ssh://`` engine, against a real sshd: the team box's engine (scripts/teambox.sh) reached
through an OpenSSH server in its network namespace. Docker reaches the engine with its own ssh helper
(``ssh HOST docker system dial-stdio``); stacklet forwards each published port over one ssh master
connection and closes the forwards on ``down``, those of containers a reload replaced included. Needs
root, like test_remote.py; traffic goes only to 127.0.0.1 and 10.250.0.0/24.

The client side lives in a throwaway home, never the user's ~/.ssh: OpenSSH reads ~/.ssh from the
password database, not from $HOME, and Docker's ssh helper takes no ssh options, so an ``ssh`` first on
PATH adds ``-F`` with the throwaway config, for Docker and stacklet alike.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import time
from functools import partial
from pathlib import Path

import pytest

from stacklet.docker.engines import SshForwards, listening
from stacklet.docker.errors import SSH_HINT
from stacklet.errors import EngineUnavailable

from .conftest import NOTHING, TINY, http, leftovers, run_cli
from .test_remote import TEAM_ADDRESS, team_engine, teambox  # noqa: F401 (team_engine is a fixture)

SSH_ENGINE = f"ssh://root@{TEAM_ADDRESS}"
SSH_CLIENT = shutil.which("ssh") or "/usr/bin/ssh"
SLICE = "ss-ssh-tiny"
REFUSED_WITHIN_S = 20  # a refused key or host key fails at once; ssh's own ConnectTimeout is 30 s

pytestmark = pytest.mark.timeout(600)


def ssh_client_home(root: Path, key: Path, known_host_key: str | None) -> dict[str, str]:
    """A home with an ssh config for the team box (this key, this pinned host key, batch mode) and an ``ssh``
    first on PATH that reads it; returns the environment for ``run_cli``."""
    (root / ".ssh").mkdir(parents=True)
    (root / "bin").mkdir()
    known_hosts = root / ".ssh" / "known_hosts"
    known_hosts.write_text(f"{TEAM_ADDRESS} {known_host_key}\n" if known_host_key else "")
    (root / ".ssh" / "config").write_text(
        f"Host {TEAM_ADDRESS}\n  User root\n  IdentityFile {key}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {known_hosts}\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n"
        "  BatchMode yes\n  ConnectTimeout 10\n")
    wrapper = root / "bin" / "ssh"
    wrapper.write_text(f'#!/bin/sh\nexec {SSH_CLIENT} -F "$HOME/.ssh/config" "$@"\n')
    wrapper.chmod(0o755)
    # XDG_RUNTIME_DIR empty: stacklet keeps its ssh master socket and forwards table below this home
    return {"HOME": str(root), "PATH": f"{root / 'bin'}:{os.environ['PATH']}", "XDG_RUNTIME_DIR": ""}


def users_ssh_files() -> dict[str, tuple[int, int]]:
    """The user's own ~/.ssh (name -> size, mtime): the tests leave it as it was."""
    folder = Path(pwd.getpwuid(os.getuid()).pw_dir) / ".ssh"
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()} if folder.is_dir() else {}


def ssh_processes(under: Path) -> list[str]:
    """Command lines of the running ssh clients with an argument below ``under``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().decode(errors="replace").rstrip("\0").split("\0")
        except OSError:
            continue
        if Path(words[0]).name == "ssh" and any(str(under) in word for word in words):
            found.append(" ".join(words))
    return found


def addresses(status: dict) -> dict[str, str]:
    """Service or link proxy -> the address its (first) endpoint is reached on from here."""
    return {s["name"]: s["endpoints"][0]["address"] for s in [*status["services"], *status["proxies"]]}


def forwards_folder(env: dict[str, str]) -> Path:
    """Where stacklet keeps the ssh master's socket and the forwards table for this environment's home."""
    return Path(env["HOME"]) / ".cache" / "stacklet" / "ssh"


@pytest.fixture(scope="module")
def sshd(team_engine, tmp_path_factory) -> Path:
    """An sshd in the team box's namespace (scripts/teambox.sh sshd-up); its folder holds the client key."""
    folder = tmp_path_factory.mktemp("ss-sshd")
    started = teambox("sshd-up", str(folder), check=False)
    if started.returncode != 0:
        message = f"scripts/teambox.sh sshd-up failed:\n{started.stdout}\n{started.stderr}"
        if os.environ.get("CI") != "true" and not Path("/usr/sbin/sshd").exists():
            pytest.skip(f"{message}\n(no OpenSSH server: scripts/bootstrap.sh docker installs it, as root)")
        pytest.fail(message)
    yield folder
    teambox("sshd-down", str(folder))
    assert not list(folder.iterdir()), "sshd-down left files behind"


@pytest.fixture(scope="module")
def host_key(sshd) -> str:
    """The sshd's public host key, as a known_hosts entry wants it (type and key)."""
    return " ".join((sshd / "host_key.pub").read_text().split()[:2])


@pytest.fixture(scope="module")
def users_ssh() -> dict[str, tuple[int, int]]:
    return users_ssh_files()


@pytest.fixture(scope="module")
def client(sshd, host_key, tmp_path_factory) -> dict[str, str]:
    return ssh_client_home(tmp_path_factory.mktemp("ss-home"), sshd / "client_key", host_key)


@pytest.fixture(scope="module")
def ssh_slice(client, team_engine, users_ssh) -> dict:
    """A tiny `api` slice on the ssh engine (its images built there); removed at the end, leaving nothing."""
    up = run_cli("--host", SSH_ENGINE, "up", "api", "--stack", str(TINY), "--name", SLICE, "--json", env=client)
    yield json.loads(up.stdout)
    run_cli("--host", SSH_ENGINE, "down", SLICE, env=client, check=False)
    assert leftovers(team_engine, SLICE) == NOTHING, "the slice left something on the team box"


def test_a_slice_on_an_ssh_engine_answers_here_through_local_forwards(ssh_slice, client):
    status = ssh_slice["slice"]
    assert ssh_slice["engine"] == SSH_ENGINE and status["healthy"]
    reached = addresses(status)
    proxies = {p["name"] for p in status["proxies"]}
    assert {"web", "api", "store"} < set(reached) and proxies
    for name, address in reached.items():
        assert address.startswith("127.0.0.1:"), (name, address)
        # a link proxy's control API wants the slice's token: a 401 is its answer
        assert http("GET", f"http://{address}/{'proxies' if name in proxies else 'health'}", timeout=10)[0] == (
            401 if name in proxies else 200), (name, address)
    # web -> api -> store, through the link proxy, on the team box
    code, chain = http("GET", f"http://{reached['web']}/", timeout=10)
    assert code == 200 and chain["calls"]["http://api:9001/"]["calls"]["http://store:9002/"]["name"] == "store"
    # one ssh master holds every forward; it runs with the throwaway home's config, as Docker's helper does
    masters = ssh_processes(Path(client["HOME"]))
    assert len(masters) == 1, masters
    assert " -M " in masters[0] and f"-F {client['HOME']}/.ssh/config" in masters[0], masters[0]
    [table] = forwards_folder(client).glob("*.json")
    assert sorted(json.loads(table.read_text()).values()) == sorted(int(a.split(":")[1]) for a in reached.values())


def test_status_logs_and_ls_work_from_here_and_name_the_engine(ssh_slice, client):
    on_ssh = ("--host", SSH_ENGINE)
    status = json.loads(run_cli(*on_ssh, "status", SLICE, "--json", env=client).stdout)
    assert status["healthy"] and status["engine"] == SSH_ENGINE
    assert addresses(status) == addresses(ssh_slice["slice"])  # the forwards are found again, not opened twice
    assert http("GET", f"http://{addresses(status)['web']}/ss-ssh-marker", timeout=10)[0] == 200
    logs = json.loads(run_cli(*on_ssh, "logs", "web", "--slice", SLICE, "--json", env=client).stdout)
    assert logs["engine"] == SSH_ENGINE and "web GET /ss-ssh-marker" in {line["line"] for line in logs["lines"]}
    listing = json.loads(run_cli("ls", "--json", env={**client, "STACKLET_ENGINES": f"default,{SSH_ENGINE}"},
                                 timeout=120).stdout)
    assert {s["name"]: s["engine"] for s in listing["slices"]}[SLICE] == SSH_ENGINE
    assert {e["engine"]: e["ok"] for e in listing["engines"]} == {"default": True, SSH_ENGINE: True}


@pytest.mark.parametrize("refusal", ["unknown host key", "key not authorized"])
def test_a_refused_ssh_login_fails_fast_naming_the_engine(sshd, host_key, tmp_path, refusal):
    if refusal == "unknown host key":
        env, said = ssh_client_home(tmp_path / "home", sshd / "client_key", None), "Host key verification failed"
    else:
        stranger = tmp_path / "stranger_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True, timeout=30)
        env, said = ssh_client_home(tmp_path / "home", stranger, host_key), "Permission denied"
    started = time.monotonic()
    result = run_cli("--host", SSH_ENGINE, "up", "api", "--stack", str(TINY), "--name", "ss-ssh-refused", "--json",
                     env=env, check=False, timeout=120)
    assert time.monotonic() - started < REFUSED_WITHIN_S
    answer = json.loads(result.stdout)
    assert result.returncode == 2 and answer["error"] == "EngineUnavailable", result.stdout + result.stderr
    assert SSH_ENGINE in answer["message"] and answer["hint"] == SSH_HINT and said in answer["details"]
    # stacklet's own forwards meet the same refusal, and say so as clearly
    forwards = SshForwards(SSH_ENGINE, run=partial(subprocess.run, env={**os.environ, **env}),
                           directory=tmp_path / "forwards")
    with pytest.raises(EngineUnavailable, match=f"ssh to {SSH_ENGINE} failed") as refused:
        forwards.forward(9)
    assert said in refused.value.details and refused.value.hint == SSH_HINT


def test_down_after_a_reload_closes_every_forward_and_leaves_nothing(ssh_slice, client, team_engine, users_ssh):
    """A reload recreates `api`, which the engine publishes on a new port: a new forward; `down` closes the old
    one too (it used to keep the ssh master alive after the slice was gone)."""
    on_ssh = ("--host", SSH_ENGINE)
    before = addresses(ssh_slice["slice"])
    run_cli(*on_ssh, "reload", "api", "--slice", SLICE, "--json", env=client)
    after = addresses(json.loads(run_cli(*on_ssh, "status", SLICE, "--json", env=client).stdout))
    assert after["api"] != before["api"] and http("GET", f"http://{after['api']}/health", timeout=10)[0] == 200
    ports = {int(address.split(":")[1]) for address in [*before.values(), *after.values()]}
    home = Path(client["HOME"])
    assert ssh_processes(home) and all(listening(port) for port in ports)
    run_cli(*on_ssh, "down", SLICE, "--json", env=client)
    assert [port for port in ports if listening(port)] == []
    assert ssh_processes(home) == [], "an ssh process of the slice is left"
    assert list(forwards_folder(client).iterdir()) == [], "the forwards table or the master's socket is left"
    assert leftovers(team_engine, SLICE) == NOTHING
    assert users_ssh_files() == users_ssh, "the user's own ~/.ssh changed"
