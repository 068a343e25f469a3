"""pytest plugin: the stack as a session fixture, faults that always revert, scenarios as assertions.

Options (each with an ini equivalent):
  --outage-use-running  / outage_use_running  use the stack that is up; never start or stop it
  --outage-keep-stack   / outage_keep_stack   leave the stack running after the session
A stack that was already healthy when the session began is used and left running.
Markers:
  @pytest.mark.incident("scenario-id")  the test replays that incident
  @pytest.mark.chaos                    the test injects faults into the stack
  @pytest.mark.stack                    the test needs the running stack
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from harness.stack import credentials


@dataclass
class StackHandle:
    """What a test needs to talk to the stack, and the stack itself for faults."""

    control: object  # a harness.stack.protocol.Stack
    api_url: str
    live_url: str
    redis_url: str
    admin_token: str

    def agent_token(self, name: str) -> str:
        return credentials.agent_token(name)


def _flag(config: pytest.Config, name: str) -> bool:
    if config.getoption(name):  # the command-line option wins over the ini value
        return True
    return str(config.getini(name)).lower() in ("1", "true", "yes", "on")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("outage", "Outage Lab")
    group.addoption("--outage-use-running", action="store_true", help="use the running stack as it is")
    group.addoption("--outage-keep-stack", action="store_true", help="leave the stack up after the session")
    parser.addini("outage_use_running", "use the running stack as it is", default="false")
    parser.addini("outage_keep_stack", "leave the stack up after the session", default="false")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "incident(id): the test replays the named incident scenario")
    config.addinivalue_line("markers", "chaos: the test injects faults into the stack")
    config.addinivalue_line("markers", "stack: the test needs the running Docker Compose stack")


@pytest.fixture(scope="session")
def outage_stack(request: pytest.FixtureRequest) -> Iterator[object]:
    """The Compose stack, healthy. Started for the session unless --outage-use-running."""
    from harness.stack.compose_stack import ComposeStack

    stack = ComposeStack()
    use_running = _flag(request.config, "outage_use_running")
    keep = _flag(request.config, "outage_keep_stack")
    if use_running:
        stack.wait_healthy(timeout=240)
        yield stack
        return
    already_up = stack.status().healthy
    if not already_up:
        stack.up(build=False)
    yield stack
    # Only a stack this session started is taken down again.
    if not (already_up or keep):
        stack.down(volumes=True)


@pytest.fixture
def stack(outage_stack: object) -> StackHandle:
    """A healthy stack and its endpoints (waits for health: an earlier test may have broken it)."""
    outage_stack.wait_healthy(timeout=240)  # type: ignore[attr-defined]
    endpoints = outage_stack.endpoints()  # type: ignore[attr-defined]
    return StackHandle(
        control=outage_stack,
        api_url=endpoints.api,
        live_url=endpoints.live,
        redis_url=endpoints.redis,
        admin_token=credentials.admin_token(),
    )


@pytest.fixture
def outage_history() -> object:
    """An empty history to record operations and observations into."""
    from harness.record.history import History

    return History()


@pytest.fixture
def fault(stack: StackHandle) -> object:
    """`with fault(KillContainer("worker")):` applies a fault for a block and always reverts it."""
    from faults.base import injected

    def apply(fault_to_inject: object) -> object:
        return injected(fault_to_inject, stack.control)  # type: ignore[arg-type]

    return apply


@pytest.fixture
def outage_run(request: pytest.FixtureRequest, stack: StackHandle, tmp_path_factory: pytest.TempPathFactory):
    """Run a scenario and return its RunResult; the id defaults to the test's `incident` marker.

    The report goes to a temporary folder (its path is in `result.report_dir`).
    """
    from harness.engine.runner import run_scenario
    from harness.engine.scenario import scenario_class

    marker = request.node.get_closest_marker("incident")

    def run(scenario_id: str | None = None, profile: str = "hardened", seed: int = 1, **timing: float):
        chosen = scenario_id or (marker.args[0] if marker else None)
        if chosen is None:
            raise pytest.UsageError("outage_run needs a scenario id or an @pytest.mark.incident(id) marker")
        scenario = scenario_class(chosen)()
        for name, value in timing.items():
            if not hasattr(scenario.timing, name):
                raise pytest.UsageError(f"unknown timing {name!r} for scenario {chosen}")
            setattr(scenario.timing, name, value)
        report_dir = tmp_path_factory.mktemp(f"{chosen}-{profile}")
        result = run_scenario(scenario, stack.control, profile, seed, report_dir)  # type: ignore[arg-type]
        result.details["report_dir"] = str(report_dir)
        return result

    return run
