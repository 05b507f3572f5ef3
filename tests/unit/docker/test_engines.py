"""Where the client reaches published ports: loopback, advertise address, ssh forwards (ssh is faked here:
the commands stacklet gives it are checked, and the Docker test covers advertise addresses)."""

from __future__ import annotations

import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from stacklet.docker.driver import Driver
from stacklet.docker.models import info_from_inspect
from stacklet.docker.engines import SshForwards, reach_address, remote_tcp_host, ssh_destination
from stacklet.docker.errors import ENGINE_HINT, SSH_HINT, docker_error, engine_hint
from stacklet.errors import EngineUnavailable


def test_a_remote_tcp_engine_is_one_on_another_host():
    assert remote_tcp_host("tcp://10.250.0.2:2375") == "10.250.0.2"
    assert remote_tcp_host("tcp://127.0.0.1:2375") is None and remote_tcp_host("tcp://localhost:2375") is None
    assert remote_tcp_host("ssh://me@box") is None and remote_tcp_host(None) is None


def test_reach_a_published_port():
    assert reach_address("127.0.0.1", 4001, None, None) == "127.0.0.1:4001"
    assert reach_address("10.250.0.2", 4001, None, None) == "10.250.0.2:4001"  # published on an address: as is
    assert reach_address("0.0.0.0", 4001, "10.250.0.2", None) == "10.250.0.2:4001"
    assert reach_address("127.0.0.1", 4001, "10.250.0.2", None) == "127.0.0.1:4001"  # the engine's loopback stays


def test_a_tcp_engine_on_another_host_needs_an_advertise_address():
    assert Driver(host="tcp://10.250.0.2:2375").needs_advertise
    assert not Driver(host="tcp://10.250.0.2:2375", advertise="10.250.0.2").needs_advertise
    assert Driver(host="tcp://10.250.0.2:2375", advertise="10.250.0.2").publish_ip == "10.250.0.2"
    assert not Driver(host="ssh://me@box").needs_advertise and Driver().publish_ip == "127.0.0.1"


def test_inspect_keeps_the_address_a_port_is_published_on():
    info = info_from_inspect({"Id": "c1", "Name": "/x", "State": {"Status": "running"}, "NetworkSettings": {
        "Ports": {"8080/tcp": [{"HostIp": "10.250.0.2", "HostPort": "40001"}], "9/udp": None}}})
    assert info.ports == {8080: 40001} and info.port_ips == {8080: "10.250.0.2"}


def test_ssh_destinations():
    assert ssh_destination("ssh://me@box:2222") == ["-p", "2222", "--", "me@box"]
    assert ssh_destination("ssh://box") == ["--", "box"]
    with pytest.raises(ValueError):
        ssh_destination("tcp://box:2375")


class FakeSsh:
    """Records ssh command lines; the master is absent until started."""

    def __init__(self, fail: str | None = None, forward_s: float = 0):
        self.commands: list[list[str]] = []
        self.master = False
        self.fail = fail
        self.forward_s = forward_s  # how long `-O forward` takes: widens the window concurrent callers race in

    def __call__(self, command, **kwargs):
        self.commands.append(command)
        if "forward" in command:
            time.sleep(self.forward_s)
        options = command[3:command.index("--")]
        code = 0
        if options[:2] == ["-O", "check"]:
            code = 0 if self.master else 255
        elif options[0] == "-M":
            self.master = True
        elif options[:2] == ["-O", "exit"]:
            self.master = False
        if self.fail and self.fail in options:
            code = 255
        return subprocess.CompletedProcess(command, code, "", "Permission denied (publickey)." if code else "")


def test_forwards_open_once_through_one_master_and_close_with_the_slice(tmp_path):
    ssh = FakeSsh()
    open_ports: set[int] = set()
    forwards = SshForwards("ssh://me@box", run=ssh, directory=tmp_path, is_listening=lambda p: p in open_ports)
    first = forwards.forward(40001)
    open_ports.add(first)
    assert forwards.forward(40001) == first  # reused while it listens
    second = forwards.forward(40002)
    assert forwards.table() == {40001: first, 40002: second}
    masters = [c for c in ssh.commands if "-M" in c]
    assert len(masters) == 1 and "ControlPersist=yes" in masters[0] and masters[0][-2:] == ["--", "me@box"]
    assert ["-O", "forward", "-L", f"127.0.0.1:{first}:127.0.0.1:40001"] == ssh.commands[2][3:7]
    # another process finds the same forwards
    assert SshForwards("ssh://me@box", run=ssh, directory=tmp_path).table() == forwards.table()
    forwards.close([40001])
    assert forwards.table() == {40002: second} and ssh.master
    forwards.close([40002])
    assert forwards.table() == {} and not ssh.master  # the master exits with the last forward
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # and the table file goes with it


def test_closing_also_drops_the_forwards_of_ports_no_container_publishes_any_more(tmp_path):
    """A recreated container (reload) publishes a new engine port; its old forward goes with the slice's."""
    ssh = FakeSsh()
    forwards = SshForwards("ssh://me@box", run=ssh, directory=tmp_path, is_listening=lambda p: False)
    opened = {port: forwards.forward(port) for port in (40001, 40002, 40003)}
    forwards.close([40001], published=lambda: {40001, 40003})  # 40002 belonged to a container since replaced
    assert forwards.table() == {40003: opened[40003]} and ssh.master
    assert ["-O", "cancel", "-L", f"127.0.0.1:{opened[40002]}:127.0.0.1:40002"] in [c[3:7] for c in ssh.commands]
    forwards.close([40003], published=lambda: {40003})
    assert forwards.table() == {} and not ssh.master


def test_concurrent_opens_and_closes_lose_no_forward(tmp_path):
    """Several stacklet processes share one engine's table: each read-ssh-write holds the lock (the threads
    here open the lock's directory each on their own, so flock separates them as it separates processes)."""
    ssh = FakeSsh(forward_s=0.02)
    keep = list(range(41001, 41009))
    drop = list(range(42001, 42009))

    def forward(port: int) -> int:
        return SshForwards("ssh://me@box", run=ssh, directory=tmp_path, is_listening=lambda p: False).forward(port)

    with ThreadPoolExecutor(max_workers=8) as pool:
        opened = dict(zip(keep + drop, pool.map(forward, keep + drop)))
    table = SshForwards("ssh://me@box", run=ssh, directory=tmp_path).table()
    assert table == opened and len(set(opened.values())) == len(opened)
    assert len([c for c in ssh.commands if "-M" in c]) == 1  # one master, started by the first caller

    def close(port: int) -> None:
        SshForwards("ssh://me@box", run=ssh, directory=tmp_path).close([port])

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(close, drop))
    assert SshForwards("ssh://me@box", run=ssh, directory=tmp_path).table() == {p: opened[p] for p in keep}
    assert ssh.master


def test_a_reader_waits_for_a_change_in_progress(tmp_path):
    """The lock is held while ssh runs: a second process's forward starts only after the first one's is saved."""
    ssh = FakeSsh(forward_s=0.3)
    first = SshForwards("ssh://me@box", run=ssh, directory=tmp_path, is_listening=lambda p: False)
    opener = threading.Thread(target=first.forward, args=(41001,))
    opener.start()
    time.sleep(0.1)
    second = SshForwards("ssh://me@box", run=ssh, directory=tmp_path, is_listening=lambda p: True)
    assert second.forward(41001) == first.table()[41001]  # found the first one's forward, opened none
    opener.join()
    assert len([c for c in ssh.commands if "forward" in c]) == 1


def test_a_failing_ssh_names_the_engine(tmp_path):
    forwards = SshForwards("ssh://me@box", run=FakeSsh(fail="-M"), directory=tmp_path, is_listening=lambda p: False)
    with pytest.raises(EngineUnavailable, match="ssh to ssh://me@box failed") as caught:
        forwards.forward(40001)
    assert "Permission denied" in caught.value.details and caught.value.hint == SSH_HINT


def test_a_failing_ssh_helper_of_docker_gets_the_ssh_hint():
    failed = ('error during connect: Get "http://docker.example.com/v1.50/version": command [ssh -o '
              "ConnectTimeout=30 -T -l root -- box docker system dial-stdio] has exited with exit status 255, "
              "make sure the URL is valid: stderr=Host key verification failed.")
    error = docker_error("list containers", failed, "ssh://root@box")
    assert isinstance(error, EngineUnavailable) and error.hint == SSH_HINT and "ssh://root@box" in error.message
    assert engine_hint(failed) == SSH_HINT
    assert engine_hint("Cannot connect to the Docker daemon at unix:///nonexistent") == ENGINE_HINT
