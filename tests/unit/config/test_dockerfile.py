"""config/dockerfile.py: what a Dockerfile says (base image, command, ports, healthcheck)."""

from __future__ import annotations

from stacklet.config.dockerfile import parse_dockerfile, read_dockerfile


def test_final_stage_with_aliases_args_and_continuations():
    facts = parse_dockerfile("""\
ARG PG=15
FROM postgres:${PG}-alpine AS base
EXPOSE 9999
FROM base
# a comment
RUN apt-get update \\
 && apt-get install -y curl
EXPOSE 5432 5433/udp
VOLUME ["/var/lib/postgresql/data"]
HEALTHCHECK --interval=1s CMD pg_isready
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres", "-c", "fsync=off"]
""")
    assert facts.base_image == "postgres:15-alpine"  # the alias `base` followed back, the ARG expanded
    assert facts.expose == [5432]                     # the earlier stage's EXPOSE is forgotten; udp left out
    assert facts.volumes == ["/var/lib/postgresql/data"]
    assert facts.has_healthcheck
    assert facts.entrypoint == ["docker-entrypoint.sh"] and facts.cmd == ["postgres", "-c", "fsync=off"]


def test_shell_form_and_healthcheck_none():
    facts = parse_dockerfile("FROM debian:bookworm-slim\nHEALTHCHECK NONE\nCMD redis-server --port 6379\n")
    assert facts.cmd == ["/bin/sh", "-c", "redis-server", "--port", "6379"]
    assert not facts.has_healthcheck


def test_read_relative_dockerfile_and_unreadable(tmp_path):
    (tmp_path / "svc").mkdir()
    (tmp_path / "Dockerfile").write_text("FROM debian\nCMD [\"python3\", \"/app/main.py\"]\n")
    facts = read_dockerfile(tmp_path / "svc", "../Dockerfile")
    assert facts is not None and facts.cmd == ["python3", "/app/main.py"]
    assert read_dockerfile(tmp_path / "nowhere") is None
    assert read_dockerfile(tmp_path, inline="FROM redis:7\n").base_image == "redis:7"
