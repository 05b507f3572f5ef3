"""The healthcheck run on demand: ready as soon as the command passes, Docker's verdicts kept otherwise."""

from __future__ import annotations

from stacklet.docker.models import ContainerInfo
from stacklet.runtime.readiness import HealthcheckOnDemand, healthcheck_command, strategy_for


def container(state: str = "running", health: str | None = "starting", test: list[str] | None = None,
              exit_code: int | None = None, failing_streak: int | None = None) -> ContainerInfo:
    """A container; an unhealthy one failed 3 checks in a row unless ``failing_streak`` says otherwise."""
    streak = failing_streak if failing_streak is not None else 3 if health == "unhealthy" else 0
    return ContainerInfo(id="c1", name="svc", state=state, health=health, exit_code=exit_code, failing_streak=streak,
                         healthcheck=test if test is not None else ["CMD-SHELL", "pg_isready -q"])


def test_the_command_is_the_healthchecks_own():
    assert healthcheck_command(container(test=["CMD", "pg_isready", "-q"])) == ["pg_isready", "-q"]
    assert healthcheck_command(container(test=["CMD-SHELL", "redis-cli ping"])) == ["/bin/sh", "-c", "redis-cli ping"]
    assert healthcheck_command(container(test=["NONE"])) == []


def test_ready_when_the_command_passes_while_docker_still_says_starting():
    runs: list[list[str]] = []
    strategy = HealthcheckOnDemand(lambda info, argv: runs.append(argv) or True)
    assert strategy.poll(container()).state == "waiting", "the command runs in a worker, the poll does not wait"
    strategy.pending.result(timeout=5)
    assert strategy.poll(container()).ready
    assert runs == [["/bin/sh", "-c", "pg_isready -q"]]


def test_a_failing_command_waits_and_is_not_rerun_within_the_interval():
    runs: list[list[str]] = []
    strategy = HealthcheckOnDemand(lambda info, argv: runs.append(argv) and False)
    assert strategy.poll(container()).state == "waiting"
    strategy.pending.result(timeout=5)
    assert strategy.poll(container()).state == "waiting"
    assert strategy.poll(container()).state == "waiting"
    assert len(runs) == 1, "run at most every ON_DEMAND_INTERVAL_S"


def test_dockers_verdicts_stand():
    never = HealthcheckOnDemand(lambda info, argv: (_ for _ in ()).throw(AssertionError("not run")))
    assert never.poll(container(health="unhealthy")).failed
    assert never.poll(container(state="exited", health="unhealthy", exit_code=1)).failed
    assert never.poll(container(health="healthy")).ready


def test_services_with_a_healthcheck_get_it_when_a_runner_is_given():
    assert isinstance(strategy_for(container(), run_check=lambda info, argv: True), HealthcheckOnDemand)
    assert not isinstance(strategy_for(container()), HealthcheckOnDemand)


def test_a_resumed_container_unhealthy_is_judged_again_by_its_command():
    """A resumed container's unhealthy, even one with failed checks behind it, may be stale after the unpause,
    so the command decides; a command that still fails keeps it waiting."""
    passing = strategy_for(container(health="unhealthy"), run_check=lambda info, argv: True, resumed=True)
    first = passing.poll(container(health="unhealthy"))
    assert first.state == "waiting" and "resumed" in first.detail
    passing.pending.result(timeout=5)
    assert passing.poll(container(health="unhealthy")).ready
    failing = HealthcheckOnDemand(lambda info, argv: False, resumed=True)
    failing.poll(container(health="unhealthy"))
    failing.pending.result(timeout=5)
    assert failing.poll(container(health="unhealthy")).state == "waiting"
    assert failing.poll(container(state="exited", health="unhealthy", exit_code=1)).failed, "an exit still fails"
    assert HealthcheckOnDemand(lambda info, argv: True).poll(container(health="unhealthy")).failed, \
        "a container that was not paused keeps Docker's verdict"


def test_an_unhealthy_a_pause_set_is_judged_by_the_command_without_waiting_for_dockers_tick():
    """Docker calls a paused container unhealthy with no failed check (failing streak 0) and says so after the
    unpause until its next check, up to a whole interval: the command decides at once, resumed or not."""
    from_pause = container(health="unhealthy", failing_streak=0)
    strategy = HealthcheckOnDemand(lambda info, argv: True)
    assert strategy.poll(from_pause).state == "waiting"
    strategy.pending.result(timeout=5)
    assert strategy.poll(from_pause).ready


class _Engine:
    """Runs healthcheck commands: those of ``passing`` containers exit 0; records what ran."""

    def __init__(self, passing: set[str]):
        self.passing = passing
        self.ran: list[str] = []

    def exec(self, container_id, argv, stdin=None, timeout_s=300):
        from stacklet.docker.models import ExecResult
        self.ran.append(container_id)
        return ExecResult(returncode=0 if container_id in self.passing else 1, stdout="", stderr="")


def test_the_health_rule_confirms_a_starting_container_by_running_its_command():
    from stacklet.labels import Label
    from stacklet.runtime.readiness import confirm_unjudged, health
    starting_ok = container().model_copy(update={"id": "ok"})
    starting_bad = container().model_copy(update={"id": "bad"})
    unhealthy = container(health="unhealthy").model_copy(update={"id": "sick", "failing_streak": 3})
    paused = container(health="unhealthy", failing_streak=0).model_copy(update={"id": "resumed"})  # a pause set it
    proxy = container().model_copy(update={"id": "proxy", "labels": {Label.ROLE: "linkproxy"}})
    engine = _Engine(passing={"ok", "bad", "sick", "resumed", "proxy"} - {"bad"})
    seen = {c.id: c for c in confirm_unjudged(engine, [starting_ok, starting_bad, unhealthy, paused, proxy])}
    assert seen["ok"].health == "healthy" and health(seen["ok"]).ready
    assert seen["bad"].health == "starting" and not health(seen["bad"]).ready
    assert seen["sick"].health == "unhealthy", "Docker's unhealthy from failed checks stands"
    assert seen["resumed"].health == "healthy" and "pause" in seen["resumed"].health_output
    assert sorted(engine.ran) == ["bad", "ok", "resumed"], \
        "only running containers Docker has not judged since they started or were resumed are checked (not proxies)"


def test_a_command_that_keeps_failing_is_run_less_and_less_often_up_to_once_a_second():
    from stacklet.runtime.readiness import ON_DEMAND_INTERVAL_S, ON_DEMAND_MAX_INTERVAL_S
    strategy = HealthcheckOnDemand(lambda info, argv: False)
    waits = []
    for _ in range(8):
        strategy.poll(container())
        strategy.pending.result(timeout=5)
        strategy.poll(container())  # reads the failure
        waits.append(strategy.interval)
        strategy.last_run = float("-inf")  # as if the wait were over
    assert waits[0] == ON_DEMAND_INTERVAL_S * 1.5 and waits == sorted(waits)
    assert waits[-1] == ON_DEMAND_MAX_INTERVAL_S
