"""What a failed docker call means: the one table from docker's error output to stacklet's exceptions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stacklet.errors import DockerError, EngineUnavailable

if TYPE_CHECKING:
    from python_on_whales.exceptions import DockerException

ENGINE_HINT = ("start Docker (scripts/bootstrap.sh docker does it on Debian), or point DOCKER_HOST / "
               "--context at a running engine")
SSH_HINT = ("check that `ssh HOST docker version` answers without a prompt: Docker and stacklet run your ssh "
            "client in batch mode, with your ssh config (key, known host key)")
# what Docker prints when its ssh helper (`ssh HOST docker system dial-stdio`) failed
SSH_HELPER_FAILED = "docker system dial-stdio"


# The one table from what docker prints to stacklet's exception tree (first match wins):
# (text in docker's error output, exception class, message, hint). ``{what}`` is the action tried,
# ``{endpoint}`` the engine.
DOCKER_ERRORS: list[tuple[str, type[DockerError], str, str]] = [
    ("cannot connect to the docker daemon", EngineUnavailable, "no Docker engine answers at {endpoint}", ENGINE_HINT),
    ("connection refused", EngineUnavailable, "no Docker engine answers at {endpoint}", ENGINE_HINT),
    (SSH_HELPER_FAILED, EngineUnavailable, "no Docker engine answers over ssh at {endpoint}", SSH_HINT),
    ("error during connect", EngineUnavailable, "no Docker engine answers at {endpoint}", ENGINE_HINT),
    ("port is already allocated", DockerError, "docker failed to {what}: a port is already in use",
     "stop what uses that port on the engine's host, or let stacklet pick free ports (do not pin host ports)"),
    ("pull access denied", DockerError, "docker failed to {what}: an image could not be pulled",
     "build or load the image locally (no registry may be reachable from the engine)"),
    ("failed to resolve source metadata", DockerError, "docker failed to {what}: a base image could not be pulled",
     "build or load the base image locally (no registry may be reachable from the engine)"),
    ("no space left on device", DockerError, "docker failed to {what}: the engine's disk is full",
     "free space: `stacklet gc`, `docker image prune`"),
]


def docker_error(what: str, details: str, endpoint: str, hint: str = "see details") -> DockerError:
    """The stacklet error for a failed docker call, from ``DOCKER_ERRORS`` (a plain DockerError otherwise)."""
    lowered = details.lower()
    for text, kind, message, known_hint in DOCKER_ERRORS:
        if text in lowered:
            return kind(message.format(what=what, endpoint=endpoint), hint=known_hint, details=details)
    return DockerError(f"docker failed to {what}", hint=hint, details=details)


def engine_hint(details: str) -> str:
    """What to do about an engine that does not answer: check ssh when Docker's ssh helper failed, else start it."""
    return SSH_HINT if SSH_HELPER_FAILED in details.lower() else ENGINE_HINT


def is_missing(details: str) -> bool:
    """Whether docker's error says the object does not exist (a race with its removal, not a failure)."""
    lowered = details.lower()
    return "no such" in lowered or "not found" in lowered or "is not connected" in lowered


def is_already_done(details: str) -> bool:
    """Whether docker's error says what was asked is already so (a container already on a network)."""
    return "already exists" in details.lower()


def docker_output(exc: DockerException) -> str:
    """The last lines of what a failed docker call printed (its stderr, else the exception's text)."""
    text = (getattr(exc, "stderr", None) or str(exc) or "").strip()
    return "\n".join(text.splitlines()[-15:])
