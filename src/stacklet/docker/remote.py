"""Baselines on other engines: the engine named by a URL or a context, and what its baseline serves.

A slice forwards to a baseline that another engine runs; that baseline recorded its advertised
addresses in labels (``baseline up --advertise``), and this module reads them back.
"""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

from stacklet.docker.driver import Driver
from stacklet.errors import EngineUnavailable, PlanError
from stacklet.labels import AdvertisedBaseline, Label, advertised_ports


def engine_driver(engine: str) -> Driver:
    """A driver for ``engine``: a URL (``tcp://``, ``ssh://``, ``unix://``) or the name of a Docker context."""
    return Driver(host=engine) if "://" in engine else Driver(context=engine)


def read_baseline(driver: Driver, stack: str) -> AdvertisedBaseline:
    """What the baseline of ``stack`` on ``driver``'s engine serves, from its labels (empty when nothing runs)."""
    containers = driver.containers({Label.BASELINE: stack})
    first = containers[0].labels if containers else {}
    return AdvertisedBaseline(engine=driver.endpoint, stack=stack, started=first.get(Label.STARTED),
                              advertise=first.get(Label.ADVERTISE),
                              services={c.service: ports for c in containers if (ports := advertised_ports(c.labels))})


def remote_baseline(engine: str, stack: str) -> AdvertisedBaseline:
    """The advertised baseline of ``stack`` on ``engine``; fails fast naming the engine when it does not
    answer or serves nothing for ``stack``."""
    driver = engine_driver(engine)
    try:
        driver.engine_info()
    except EngineUnavailable as exc:
        raise EngineUnavailable(f"the baseline engine {engine} does not answer", hint=(
            "start that engine, or check the address in stack.yaml baseline.engine / --baseline-engine"),
            details=exc.details) from exc
    baseline = read_baseline(driver, stack)
    if not baseline.services:
        raise PlanError(f"no advertised baseline of stack {stack!r} runs on {engine}",
                        hint=f"start one there with `stacklet --host {engine} baseline up --stack {stack} "
                             "--advertise ADDRESS`")
    return baseline


def silent_addresses(addresses: dict[str, str], timeout_s: float = 3.0) -> dict[str, str]:
    """Those of ``addresses`` (name -> host:port) that refuse a TCP connection or do not accept one in time."""
    def answers(address: str) -> bool:
        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=timeout_s).close()
        except (OSError, ValueError):
            return False
        return True

    if not addresses:
        return {}
    with ThreadPoolExecutor(max_workers=min(16, len(addresses))) as pool:
        answered = dict(zip(addresses, pool.map(answers, addresses.values())))
    return {name: address for name, address in addresses.items() if not answered[name]}


def require_answers(baseline_services: dict[str, tuple[str, str]]) -> None:
    """Fail fast, naming the engine and the services, when advertised baseline services (name -> (engine,
    host:port)) do not answer from here."""
    silent = silent_addresses({name: address for name, (_, address) in baseline_services.items()})
    if silent:
        engines = sorted({baseline_services[name][0] for name in silent})
        listed = ", ".join(f"{name} at {address}" for name, address in sorted(silent.items()))
        raise EngineUnavailable(f"the baseline on {', '.join(engines)} does not answer for {listed}",
                                hint="start those services there (`stacklet --host ENGINE baseline up ...`), or "
                                     "check that this host reaches the advertise address")
