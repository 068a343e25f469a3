"""pytest plugin: the stack as a session fixture, faults that always revert, scenarios as assertions.

Options (each with an ini equivalent):
  --outage-use-running  / outage_use_running  use the stack that is up; never start or stop it
  --outage-keep-stack   / outage_keep_stack   leave the stack running after the session
Markers:
  @pytest.mark.incident("scenario-id")  the test replays that incident
  @pytest.mark.chaos                    the test injects faults into the stack
  @pytest.mark.stack                    the test needs the running stack
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from harness import credentials


@dataclass
class StackHandle:
    """What a test needs to talk to the stack, and the stack itself for faults."""

    control: object  # a harness.stack.Stack
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
    from harness.compose_stack import ComposeStack

    stack = ComposeStack()
    use_running = _flag(request.config, "outage_use_running")
    keep = _flag(request.config, "outage_keep_stack")
    if use_running:
        stack.wait_healthy(timeout=240)
    else:
        stack.up(build=False)
    yield stack
    if not (use_running or keep):
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
