"""Where the client reaches published ports: loopback, advertise address, ssh forwards (ssh is faked here:
the commands stacklet gives it are checked, and the Docker test covers advertise addresses)."""

from __future__ import annotations

import subprocess

import pytest

from stacklet.docker.driver import Driver
from stacklet.docker.models import info_from_inspect
from stacklet.docker.engines import SshForwards, reach_address, remote_tcp_host, ssh_destination
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

    def __init__(self, fail: str | None = None):
        self.commands: list[list[str]] = []
        self.master = False
        self.fail = fail

    def __call__(self, command, **kwargs):
        self.commands.append(command)
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


def test_a_failing_ssh_names_the_engine(tmp_path):
    forwards = SshForwards("ssh://me@box", run=FakeSsh(fail="-M"), directory=tmp_path, is_listening=lambda p: False)
    with pytest.raises(EngineUnavailable, match="ssh to ssh://me@box failed") as caught:
        forwards.forward(40001)
    assert "Permission denied" in caught.value.details
