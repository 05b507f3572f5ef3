"""Per-container resource use during a check run: peak memory, CPU, restarts and OOM kills.

``UsageSampler`` reads ``docker stats`` (through the driver) in a background thread while the
checks run; ``container_metrics`` is pure and turns its samples and the containers' state before
and after the run into one ``ContainerMetrics`` per service.
"""

from __future__ import annotations

import threading

from stacklet.docker.models import ContainerEvent, ContainerInfo, ContainerUsage
from stacklet.docker.protocol import EngineDriver
from stacklet.errors import StackletError
from stacklet.checks.verdict import ContainerMetrics

SAMPLE_PAUSE_S = 0.5  # between two samples; one `docker stats --no-stream` itself takes about a second
MIB = 1024 * 1024


class UsageSampler:
    """Samples the memory and CPU of containers until stopped (at least once, when stopped)."""

    def __init__(self, driver: EngineDriver, container_ids: list[str]):
        self.driver = driver
        self.container_ids = container_ids
        self.samples: list[ContainerUsage] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="usage-sampler", daemon=True)

    def __enter__(self) -> "UsageSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        if not self.samples:
            self._sample()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(SAMPLE_PAUSE_S)

    def _sample(self) -> None:
        try:
            self.samples += self.driver.stats(self.container_ids)
        except StackletError as exc:
            self.errors.append(exc.message)


def container_metrics(before: dict[str, ContainerInfo], after: dict[str, ContainerInfo],
                      samples: list[ContainerUsage], events: list[ContainerEvent]) -> list[ContainerMetrics]:
    """One record per service: its peak memory and CPU over the samples, restarts and OOM kills during the run."""
    found = []
    for service, now in sorted(after.items()):
        then = before.get(service)
        mine = [s for s in samples if s.container == now.id]
        ooms = sum(1 for e in events if e.action == "oom" and (e.container == now.id or e.service == service))
        oom_killed = ooms or int(now.oom_killed and not (then and then.oom_killed))
        cpu = [s.cpu_percent for s in mine]
        found.append(ContainerMetrics(
            service=service, container=now.name, samples=len(mine),
            peak_memory_mib=round(max(s.memory_bytes for s in mine) / MIB, 1) if mine else None,
            peak_cpu_percent=round(max(cpu), 1) if cpu else None,
            mean_cpu_percent=round(sum(cpu) / len(cpu), 1) if cpu else None,
            restarts=max(0, now.restarts - (then.restarts if then else 0)), oom_kills=oom_killed))
    return found
