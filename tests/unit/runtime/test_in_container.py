"""The pure part of running stacklet inside a container: finding its own id, and the addresses it reports."""

from __future__ import annotations

from rich.console import Console

from stacklet.cli import display
from stacklet.docker.driver import Driver
from stacklet.docker.models import ContainerInfo
from stacklet.docker.selfcontainer import (ContainerHints, container_ids_from_cgroup, container_ids_from_mountinfo,
                                           read_container_hints)
from stacklet.runtime.engine import Endpoint, ServiceStatus, SliceStatus, Vantage

ID = "669d657f3ec6e6f0dd8d4194a4514d5b0eadfeb73f2df61944c61eddf62e6d26"
OTHER = "6111c0fedb4f14b64468021892f1f98d6c9a603eab4d6db00b6d306ec043e027"

CONTAINER_MOUNTINFO = f"""\
72 48 0:39 / / rw,relatime master:2 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/6ZP:/var/lib/docker/overlay2/l/JXG
73 72 0:42 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
78 77 0:29 /docker/{ID} /sys/fs/cgroup/cpu ro,nosuid,nodev,noexec,relatime - cgroup cgroup rw,cpu
89 72 254:0 /var/lib/docker/containers/{ID}/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/vda rw
90 72 254:0 /var/lib/docker/containers/{ID}/hostname /etc/hostname rw,relatime - ext4 /dev/vda rw
91 72 254:0 /var/lib/docker/containers/{ID}/hosts /etc/hosts rw,relatime - ext4 /dev/vda rw
"""

# a Docker host sees the mounts of its containers, but none on its own /etc files
HOST_MOUNTINFO = f"""\
25 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
42 27 254:0 /var/lib/docker /var/lib/docker rw,relatime shared:1 - ext4 /dev/vda rw
310 42 0:61 / /var/lib/docker/containers/{OTHER}/mounts/shm rw,nosuid,nodev,noexec,relatime shared:160 - tmpfs shm rw
"""

PODMAN_MOUNTINFO = (f"612 598 0:52 /containers/storage/overlay-containers/{ID}/userdata/hostname /etc/hostname "
                    "rw,nosuid,nodev,relatime - tmpfs tmpfs rw\n")


def test_mountinfo_of_a_docker_container_names_its_id_once():
    assert container_ids_from_mountinfo(CONTAINER_MOUNTINFO) == [ID]


def test_mountinfo_of_a_docker_host_names_no_container():
    assert container_ids_from_mountinfo(HOST_MOUNTINFO) == []
    assert container_ids_from_mountinfo("") == []


def test_mountinfo_of_a_podman_container():
    assert container_ids_from_mountinfo(PODMAN_MOUNTINFO) == [ID]


def test_cgroup_v1_docker_paths():
    text = f"12:pids:/docker/{ID}\n11:memory:/docker/{ID}\n0::/docker/{ID}\n"
    assert container_ids_from_cgroup(text) == [ID]


def test_cgroup_systemd_scope_and_kubernetes():
    assert container_ids_from_cgroup(f"0::/system.slice/docker-{ID}.scope\n") == [ID]
    assert container_ids_from_cgroup(f"1:cpu:/kubepods/besteffort/pod1234/{OTHER}\n") == [OTHER]


def test_cgroup_v2_namespace_and_host_name_nothing():
    assert container_ids_from_cgroup("0::/\n") == []
    assert container_ids_from_cgroup("0::/user.slice/user-1000.slice/session-2.scope\n") == []


def test_candidates_ids_first_then_hostname_only_with_a_hint():
    assert ContainerHints(marked=False, ids=[], hostname="laptop").candidates() == []
    assert ContainerHints(marked=True, ids=[], hostname="669d657f3ec6").candidates() == [("669d657f3ec6", False)]
    assert ContainerHints(marked=False, ids=[ID], hostname="agent").candidates() == [(ID, True), ("agent", False)]


def test_read_container_hints_from_a_root(tmp_path):
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/mountinfo").write_text(CONTAINER_MOUNTINFO)
    (tmp_path / "proc/self/cgroup").write_text(f"0::/docker/{OTHER}\n")
    (tmp_path / ".dockerenv").touch()
    hints = read_container_hints(tmp_path)
    assert hints.marked and hints.ids == [ID, OTHER]


def test_read_container_hints_of_a_bare_root(tmp_path):
    hints = read_container_hints(tmp_path)
    assert not hints.marked and hints.ids == [] and hints.candidates() == []


def test_override_none_means_host_mode_without_asking_the_engine(monkeypatch):
    monkeypatch.setenv("STACKLET_SELF_CONTAINER", "none")
    assert Driver(host="unix:///nonexistent.sock").self_container() is None


def test_endpoint_address_defaults_to_the_host_address():
    endpoint = Endpoint(port=8081, host="127.0.0.1:32768", network="orders:8081")
    assert endpoint.address == "127.0.0.1:32768"
    attached = Endpoint(port=8081, host="127.0.0.1:32768", network="orders:8081", address="orders:8081")
    assert attached.model_dump()["address"] == "orders:8081"


def _info(name: str, service: str, addresses: dict[str, str], **labels: str) -> ContainerInfo:
    return ContainerInfo(id=name, name=name, state="running", addresses=addresses,
                         labels={"dev.stacklet.service": service, **labels})


def test_vantage_uses_names_and_falls_back_to_ips_when_names_are_shared():
    network = "stacklet-ic-a"
    origin = _info("stacklet-ic-a-orders.origin-1", "orders", {network: "172.20.0.5"})
    gateway = _info("stacklet-ic-a-gateway-1", "gateway", {network: "172.20.0.6"})
    proxy = _info("stacklet-ic-a-stacklet-link-1-1", "stacklet-link-1", {network: "172.20.0.2"})
    owners = {"orders": proxy}
    alone = Vantage(container="agent", network=network)
    assert alone.address(origin, 8081, owners) == "orders:8081"
    shared = Vantage(container="agent", network=network, shared=True)
    assert shared.address(origin, 8081, owners) == "172.20.0.2:8081"  # through its link proxy, as by name
    assert shared.address(gateway, 8080, owners) == "172.20.0.6:8080"


def _status(**kw) -> SliceStatus:
    address = "gateway:8080" if kw.get("attached_as") else None
    svc = ServiceStatus(name="gateway", role="caller", container="c", state="running",
                        endpoints=[Endpoint(port=8080, host="127.0.0.1:40001", network="gateway:8080", address=address)])
    return SliceStatus(name="ic-a", stack="shop", project="stacklet-ic-a", healthy=True, services=[svc], **kw)


def _render(table) -> str:
    console = Console(width=140, record=True)
    console.print(table)
    return console.export_text()


def _words(text: str) -> str:
    return " ".join(text.split())


def test_endpoints_table_shows_the_address_that_works_from_here():
    on_host = _render(display.endpoints_table(_status()))
    assert "from this host" in _words(on_host) and "127.0.0.1:40001" in on_host and "in network" in on_host
    attached = _render(display.endpoints_table(_status(in_container=True, attached_as="agent")))
    assert "from this container" in _words(_render(display.endpoints_table(_status(in_container=True))))
    assert "from container agent on the slice network" in _words(attached)
    row = next(line for line in attached.splitlines() if line.startswith("gateway"))
    assert row.split()[1] == "gateway:8080"
