"""planning/traits.py: stores recognised by every rule (and which rule said so), jobs, brokers."""

from __future__ import annotations

from stacklet.planning.traits import job_reason, service_ports, stateful_decision, traits_of

from ..conftest import named_volume, service


def built(tmp_path, folder: str, dockerfile: str) -> dict:
    (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    (tmp_path / folder / "Dockerfile").write_text(dockerfile)
    return {"context": str(tmp_path / folder)}


def test_each_rule_decides_and_says_which(make_stack, tmp_path):
    stack = make_stack({
        "declared": service("example/app"),
        "optout": service("redis:7"),
        "image": service("postgres:16"),
        "from": service(build=built(tmp_path, "from", "FROM mariadb:11\n")),
        "command": service(build=built(tmp_path, "cmd", 'FROM debian\nCMD ["redis-server", "--port", "6379"]\n')),
        "compose_command": service("example/x", command=["rabbitmq-server"]),
        "port": service(build=built(tmp_path, "port", "FROM debian\nCMD [\"python3\", \"s.py\"]\n"), expose=[9200]),
        "dockerfile_port": service(build=built(tmp_path, "dport", "FROM debian\nEXPOSE 27017\nCMD [\"x\"]\n")),
        "volume": service(build=built(tmp_path, "vol", "FROM debian\nCMD [\"x\"]\n"),
                          volumes=[named_volume("idx", "/data")]),
        "app": service(build=built(tmp_path, "app", "FROM debian\nEXPOSE 8000\nCMD [\"python3\", \"app.py\"]\n")),
    }, meta={"services": {"declared": {"stateful": True}, "optout": {"stateful": False}}})
    rules = {name: stateful_decision(stack, name).rule for name in stack.services}
    assert rules == {"declared": "declared", "optout": "declared", "image": "image", "from": "dockerfile-from",
                     "command": "command", "compose_command": "command", "port": "port",
                     "dockerfile_port": "port", "volume": "volume", "app": "none"}
    assert not stateful_decision(stack, "optout").stateful and not stateful_decision(stack, "app").stateful
    assert "redis" in stateful_decision(stack, "command").reason
    assert service_ports(stack, "command") == [6379]  # the family's port when nothing declares one
    traits = traits_of(stack)
    assert traits.brokers == {"compose_command"}
    assert set(traits.stateful) == set(stack.services) - {"optout", "app"}


def test_jobs(make_stack):
    stack = make_stack({
        "api": service("example/api", expose=[8000], depends_on={
            "migrate": {"condition": "service_completed_successfully", "required": True}}),
        "migrate": service("example/api", command=["migrate"]),
        "oneshot": service("example/tool", command=["sync"], restart="no"),
        "server": service("example/srv", command=["serve"], restart="no", expose=[80]),
        "declared": service("example/x"),
        "notajob": service("example/y", command=["x"], restart="no"),
    }, meta={"services": {"declared": {"job": True}, "notajob": {"job": False}}})
    assert "api wait for it" in job_reason(stack, "migrate")
    assert "restart" in job_reason(stack, "oneshot")
    assert job_reason(stack, "server") is None  # it listens: a server that is not restarted
    assert "declared" in job_reason(stack, "declared") and job_reason(stack, "notajob") is None
