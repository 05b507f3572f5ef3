"""One Compose project (a generated file and its project name) on a driver's engine."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from stacklet.docker import whales
from stacklet.docker.errors import docker_error, docker_output

if TYPE_CHECKING:
    from stacklet.docker.driver import Driver


class ComposeProjectHandle:
    """One Compose project (a generated file and its project name) on the driver's engine."""

    def __init__(self, driver: Driver, compose_file: Path, project_name: str):
        self.driver = driver
        self.file = compose_file
        self.name = project_name
        self.client = whales.DockerClient(context=driver.context, host=driver.host, compose_files=[compose_file],
                                          compose_project_name=project_name)

    def build(self, services: list[str]) -> None:
        if services:
            self._call(lambda: self.client.compose.build(services, quiet=True), f"build {', '.join(services)}")

    def create(self) -> None:
        """Create missing containers and recreate those whose configuration or image changed (none started)."""
        self._call(lambda: self.client.compose.create(no_build=True, pull="missing"), "create the containers")

    def recreate(self, services: list[str]) -> None:
        """Recreate and start only ``services`` (no dependencies, no build); does not wait for health."""
        self._call(lambda: self.client.compose.up(services, detach=True, dependencies=False, force_recreate=True,
                                                  no_build=True, quiet=True),
                   f"recreate {', '.join(services)}")

    def up_wait(self, timeout_s: int) -> None:
        """Start everything in the project and wait until healthy (used for whole baselines)."""
        self._call(lambda: self.client.compose.up(detach=True, build=True, wait=True, wait_timeout=timeout_s,
                                                  quiet=True), "start the project")

    def down(self, remove_images: bool = True) -> None:
        self._call(lambda: self.client.compose.down(remove_orphans=True, volumes=True, timeout=3, quiet=True,
                                                    remove_images="local" if remove_images else None),
                   "remove the project")

    def _call(self, action, what: str) -> Any:
        try:
            return action()
        except whales.DockerException as exc:
            raise docker_error(f"{what} (project {self.name})", docker_output(exc), self.driver.endpoint,
                               hint=f"generated file: {self.file}") from exc
