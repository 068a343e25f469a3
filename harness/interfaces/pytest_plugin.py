"""pytest plugin: the stack as fixtures, faults that always revert, scenarios as assertions.

Fixtures (all prefixed `outage_`, so they never shadow a project's own):
  outage_stack    a healthy stack: `api_url`, `live_url`, `redis_url`, `admin_token`,
                  `agent_token(name)`, `control` (the harness.stack.protocol.Stack, for faults)
  outage_fault    `with outage_fault(KillContainer("worker")):` applies a fault for the block,
                  reverts it however the block ends, and returns once the stack serves again
  outage_run      `outage_run(scenario_id=None, profile="hardened", seed=1, **timing)` runs a
                  scenario (the id defaults to the test's `incident` marker) and returns its
                  RunResult; the report's folder is `result.details["report_dir"]`
  outage_history  an empty harness.record.history.History

Options, each with an ini equivalent (the command line wins; `--no-...` turns an ini `true` off):
  --outage-use-running / outage_use_running  use the stack that is up; never start or stop it
  --outage-keep-stack  / outage_keep_stack   leave a stack the session started running
  --outage-stack-per-worker / outage_stack_per_worker
                                             under pytest-xdist, a stack per worker (see below)
  --outage-report-dir  / outage_report_dir   keep each scenario run's report in a subdirectory
                                             of this folder (default: pytest's temporary folders)
A stack that was already healthy when the session began is used and left running.

Tests that need the stack are skipped, with the reason, when no Docker engine answers.

pytest-xdist: by default workers share one stack. Every test that uses it holds an exclusive file
lock (`pytest.lock` in the stack's state folder) for its whole duration, so faults and scenario runs
of two workers never overlap; the first worker to arrive starts the stack if needed, and under xdist
the stack is left running at the end (no worker knows it is the last).
With --outage-stack-per-worker each worker has a stack of its own, the compose project
`<project>-<worker>` (for example `outage-lab-gw0`), exported as OUTAGE_PROJECT so the `outage`
commands a test runs reach it too. Tests then run side by side, at the cost of a RabbitMQ cluster
per worker; a worker takes down the stack it started. A test marked `alone` has the machine to
itself: no other worker's stack test runs while it does (a shared/exclusive file lock in the state
root), for scenarios whose checks are latency promises that a neighbour's load would break; with
`alone(neighbours="frozen")` the other workers' stacks are also paused (`docker pause`) until it
ends, for promises that even an idle neighbour breaks.

Markers:
  @pytest.mark.incident("scenario-id")  the test replays that incident
  @pytest.mark.chaos                    the test injects faults into the stack
  @pytest.mark.stack                    the test needs the running stack
  @pytest.mark.alone                    no other worker's stack test runs beside it (see above)
  @pytest.mark.alone(neighbours="frozen")  ...and the other workers' stacks are paused meanwhile
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness import control_http
from harness.stack import credentials

HEALTHY_TIMEOUT_S = 240.0
_DOCKER_PROBLEM = pytest.StashKey[str | None]()
_CLAIMED_DIRS = pytest.StashKey[set[str]]()
_BOOL_OPTIONS = {
    "outage_use_running": "use the running stack as it is; never start or stop it",
    "outage_keep_stack": "leave a stack the session started running after the session",
    "outage_stack_per_worker": "under pytest-xdist, give each worker a stack (compose project) of its own",
}
# The properties each scenario run records on its test (JUnit <property>, user_properties).
# A run the harness could not judge because it ran late itself is run once more, as a lab repeats a
# trial whose instrument failed; both records are kept (the second in "<name>-again2").
OBSERVER_BOUND_ATTEMPTS = 2
RUN_PROPERTIES = (
    "outage_scenario",
    "outage_profile",
    "outage_verdict",
    "outage_lost",
    "outage_stolen_cpu_s",
    "outage_report_dir",
)


@dataclass
class StackHandle:
    """What a test needs to talk to the stack, and the stack itself for faults."""

    control: Any  # a harness.stack.protocol.Stack
    api_url: str  # through the gateway, as users reach the api
    live_url: str
    redis_url: str
    admin_token: str

    def agent_token(self, name: str) -> str:
        return credentials.agent_token(name)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("outage", "Outage Lab")
    for name, help_text in _BOOL_OPTIONS.items():
        flag = "--" + name.replace("_", "-")
        group.addoption(flag, action="store_true", dest=name, default=None, help=help_text)
        group.addoption(
            "--no-" + flag[2:], action="store_false", dest=name, default=None, help=f"override {name} = true"
        )
        parser.addini(name, help_text, type="bool", default=False)
    group.addoption(
        "--outage-report-dir",
        dest="outage_report_dir",
        default=None,
        help="keep each scenario run's report in a subdirectory of this folder",
    )
    parser.addini("outage_report_dir", "keep scenario reports here (relative to the rootdir)", default="")


def _flag(config: pytest.Config, name: str) -> bool:
    """The command line's value when given, else the ini value."""
    chosen = config.getoption(name)
    return bool(config.getini(name)) if chosen is None else chosen


def report_root(config: pytest.Config) -> Path | None:
    """Where scenario reports are kept: --outage-report-dir, else the ini value, else nowhere."""
    chosen = config.getoption("outage_report_dir")
    if chosen:
        return Path(chosen).absolute()
    ini = config.getini("outage_report_dir")
    return (config.rootpath / ini) if ini else None


def _docker_problem() -> str | None:
    """None when a Docker engine answers; else why not, in words for a skip reason."""
    try:
        import docker

        docker.from_env(timeout=5).ping()
    except Exception as exc:
        where = os.environ.get("DOCKER_HOST", "the default socket")
        return f"no Docker engine answers at {where} ({type(exc).__name__})"
    return None


def _skip_without_docker(config: pytest.Config) -> None:
    if _DOCKER_PROBLEM not in config.stash:
        config.stash[_DOCKER_PROBLEM] = _docker_problem()
    problem = config.stash[_DOCKER_PROBLEM]
    if problem:
        pytest.skip(f"needs the Outage Lab stack: {problem}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "incident(id): the test replays the named incident scenario")
    config.addinivalue_line("markers", "chaos: the test injects faults into the stack")
    config.addinivalue_line("markers", "stack: the test needs the running Docker Compose stack")
    config.addinivalue_line(
        "markers",
        "alone(neighbours='idle'|'frozen'): with a stack per xdist worker, no other worker's stack test "
        "runs beside this one; 'frozen' also pauses the other workers' stacks while it runs",
    )
    config.stash[_CLAIMED_DIRS] = set()
    config.pluginmanager.register(ScenarioRunsSummary(), "outage-scenario-runs")
    worker = _own_stack_worker(config)
    if worker:
        from harness.stack.compose import project_name

        os.environ["OUTAGE_PROJECT"] = f"{project_name()}-{worker}"


def _own_stack_worker(config: pytest.Config) -> str | None:
    """The xdist worker's id when it runs against a stack of its own, else None."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return worker if worker and _flag(config, "outage_stack_per_worker") else None


def pytest_report_header(config: pytest.Config) -> list[str]:
    from harness.stack.compose import project_name

    mode = "use the running stack" if _flag(config, "outage_use_running") else "start the stack if needed"
    root = report_root(config)
    reports = str(root) if root else "pytest's temporary folders"
    return [f"outage: compose project {project_name()} ({mode}); scenario reports in {reports}"]


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("stack") is not None:
        _skip_without_docker(item.config)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # `alone` tests first: while they wait for the machine, the other workers are only starting.
    if _own_stack_worker(config):
        items.sort(key=lambda item: item.get_closest_marker("alone") is None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    if item.get_closest_marker("stack") is None or not _own_stack_worker(item.config):
        return (yield)
    alone = item.get_closest_marker("alone")
    neighbours = alone.kwargs.get("neighbours", "idle") if alone else "idle"
    if neighbours not in ("idle", "frozen"):
        raise pytest.UsageError(f"{item.nodeid}: alone(neighbours={neighbours!r}): say 'idle' or 'frozen'")
    with _machine_share(alone=alone is not None), _neighbours(frozen=neighbours == "frozen"):
        return (yield)


@contextmanager
def _machine_share(alone: bool) -> Iterator[None]:
    """Stack tests of per-worker stacks share the machine; an `alone` test takes it whole.

    A turnstile keeps an `alone` test from waiting forever behind a stream of shared holders:
    everyone passes the gate to take the machine, and the `alone` test holds the gate until no
    shared holder is left."""
    from harness.stack.state_dir import state_root

    root = state_root()
    root.mkdir(parents=True, exist_ok=True)
    with (root / "machine-gate.lock").open("a") as gate, (root / "machine.lock").open("a") as machine:
        fcntl.flock(gate, fcntl.LOCK_EX)
        fcntl.flock(machine, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        fcntl.flock(gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(machine, fcntl.LOCK_UN)


@contextmanager
def _neighbours(frozen: bool) -> Iterator[None]:
    """This worker's stack thawed (a worker that died holding the machine may have left it frozen),
    and with `frozen` the other workers' stacks paused for the block (harness.stack.neighbours)."""
    from harness.stack import neighbours
    from harness.stack.compose import project_name

    neighbours.thaw(project_name())
    with neighbours.frozen(neighbours.worker_siblings(project_name())) if frozen else nullcontext():
        yield


_lock_depth = 0


@contextmanager
def _stack_lock() -> Iterator[None]:
    """One test at a time against this project's stack, across pytest-xdist workers; a test that
    uses two stack fixtures takes it once."""
    global _lock_depth
    from harness.stack.state_dir import project_state_dir

    if _lock_depth:
        _lock_depth += 1
        try:
            yield
        finally:
            _lock_depth -= 1
        return
    path = project_state_dir() / "pytest.lock"
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        _lock_depth = 1
        try:
            yield
        finally:
            _lock_depth = 0
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def _outage_session_stack(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The Compose stack for the session: started unless --outage-use-running, stopped if started."""
    _skip_without_docker(request.config)
    from harness.stack.compose_stack import ComposeStack

    stack = ComposeStack()
    if _flag(request.config, "outage_use_running"):
        yield stack
        return
    shared_by_workers = "PYTEST_XDIST_WORKER" in os.environ and not _own_stack_worker(request.config)
    with _stack_lock():
        already_up = stack.status().healthy
        if not already_up:
            stack.up(build=False)
    yield stack
    # Only a stack this session started is taken down again, never one workers share (see above).
    if not (already_up or shared_by_workers or _flag(request.config, "outage_keep_stack")):
        stack.down(volumes=True)


def _wait_serving(handle: StackHandle, timeout: float = HEALTHY_TIMEOUT_S) -> None:
    """Healthy containers and one cluster, and the api answering /health through the gateway.

    The gateway's own health checks lag the api's return by a few seconds; a test that calls the
    api right after a fault should find it serving, as a user would.
    """
    import httpx

    from harness.engine.waiting import wait_until_sync

    def serving() -> bool:
        try:
            return control_http.get(f"{handle.api_url}/health", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    handle.control.wait_healthy(timeout=timeout)
    wait_until_sync(serving, timeout=timeout, what="the api serving /health (gateway)", interval=0.5)


_defaults_checked: set[str] = set()


def _run_with_defaults(stack: Any) -> bool:
    """Give the app services their default settings when a scenario profile (or, for a stack this
    session did not start, anything at all) may have changed them; compose recreates only what
    differs. True when it configured the stack."""
    if not (stack.settings or stack.project not in _defaults_checked):
        return False
    stack.configure({})
    _defaults_checked.add(stack.project)
    return True


@pytest.fixture
def outage_stack(_outage_session_stack: Any) -> Iterator[StackHandle]:
    """A healthy stack running the product's default settings, held for this test alone:
    `api_url` (through the gateway), `live_url`, `redis_url`, `admin_token`, `agent_token(name)`,
    and `control` (the Stack, for faults). An earlier test may have broken the stack or run a
    scenario profile on it, so this first puts the defaults back and waits until it is healthy."""
    with _stack_lock():
        reconfigured = _run_with_defaults(_outage_session_stack)
        handle = _healthy_handle(_outage_session_stack)
        if reconfigured:
            _wait_serving(handle)
        yield handle


def _healthy_handle(stack: Any) -> StackHandle:
    stack.wait_healthy(timeout=HEALTHY_TIMEOUT_S)
    endpoints = stack.endpoints()
    return StackHandle(
        control=stack,
        api_url=endpoints.api,
        live_url=endpoints.live,
        redis_url=endpoints.redis,
        admin_token=credentials.admin_token(),
    )


@pytest.fixture
def outage_history() -> Any:
    """An empty history to record operations and observations into."""
    from harness.record.history import History

    return History()


@pytest.fixture
def outage_fault(outage_stack: StackHandle) -> Callable[[Any], Any]:
    """`with outage_fault(KillContainer("worker")):` applies a fault for a block and always reverts
    it; leaving the block returns once the stack is healthy and the api serves through the gateway."""
    from faults.base import injected

    @contextmanager
    def apply(fault_to_inject: Any) -> Iterator[Any]:
        with injected(fault_to_inject, outage_stack.control) as applied:
            yield applied
        _wait_serving(outage_stack)

    return apply


def _run_dir(request: pytest.FixtureRequest, factory: pytest.TempPathFactory, name: str) -> Path:
    """A fresh folder for one run: under the report root if set (unique within the session)."""
    name = re.sub(r"[^\w.-]", "_", name)
    root = report_root(request.config)
    if root is None:
        return factory.mktemp(name)
    claimed = request.config.stash[_CLAIMED_DIRS]
    candidate, count = name, 1
    while candidate in claimed:
        count += 1
        candidate = f"{name}-{count}"
    claimed.add(candidate)
    path = root / candidate
    shutil.rmtree(path, ignore_errors=True)  # a previous session's run of the same name
    path.mkdir(parents=True)
    return path


@pytest.fixture
def outage_run(
    request: pytest.FixtureRequest,
    _outage_session_stack: Any,
    tmp_path_factory: pytest.TempPathFactory,
    record_property: Callable[[str, object], None],
) -> Iterator[Callable[..., Any]]:
    """`outage_run(scenario_id=None, profile="hardened", seed=1, **timing)` runs a scenario and
    returns its RunResult (`verdict`, `messages`, `checks`, `failed_checks`, `timings`, `metrics`);
    the id defaults to the test's `incident` marker; its report's folder is
    `result.details["report_dir"]`.

    The run sets its profile's settings itself, so the stack is not reset to the defaults
    first. Keyword `timing` values override the scenario's Timing fields. The report goes to a folder of
    its own under --outage-report-dir (else a temporary folder). Each run records
    `outage_scenario`, `outage_profile`, `outage_verdict`, `outage_lost` and `outage_report_dir` as
    properties of the test (JUnit XML) and joins the terminal summary.
    """
    from harness.engine.runner import run_scenario
    from harness.engine.scenario import scenario_class

    marker = request.node.get_closest_marker("incident")

    def run(scenario_id: str | None = None, profile: str = "hardened", seed: int = 1, **timing: float):
        chosen = scenario_id or (marker.args[0] if marker else None)
        if chosen is None:
            raise pytest.UsageError("outage_run needs a scenario id or an @pytest.mark.incident(id) marker")
        run_name = f"{chosen}-{profile}-seed{seed}"
        for attempt in range(1, OBSERVER_BOUND_ATTEMPTS + 1):
            scenario = scenario_class(chosen)()  # a fresh one per attempt: it keeps state while it runs
            for field_name, value in timing.items():
                if not hasattr(scenario.timing, field_name):
                    raise pytest.UsageError(f"unknown timing {field_name!r} for scenario {chosen}")
                setattr(scenario.timing, field_name, value)
            folder = run_name if attempt == 1 else f"{run_name}-again{attempt}"
            report_dir = _run_dir(request, tmp_path_factory, folder)
            result = run_scenario(scenario, stack.control, profile, seed, report_dir)
            result.details["report_dir"] = str(report_dir)
            lost = result.messages.get("lost", 0)
            shown = (chosen, profile, result.verdict, lost, _stolen(result), str(report_dir))
            for property_name, value in zip(RUN_PROPERTIES, shown, strict=True):
                record_property(property_name, value)
            if not _only_observer_bound(result):
                break
        return result

    with _stack_lock():
        stack = _healthy_handle(_outage_session_stack)
        yield run


def _only_observer_bound(result: Any) -> bool:
    """The run could not be judged only because the harness itself ran late while measuring
    (every unknown check is observer-bound): the experiment, not the product, failed."""
    from harness.checks.expect import observer_bound

    unknown = [check for check in result.checks if check.unknown]
    return result.verdict == "unknown" and bool(unknown) and all(observer_bound(c) for c in unknown)


def _stolen(result: Any) -> str:
    """CPU seconds the machine gave to other guests during the run: a latency verdict taken
    while it was large says as much about the machine as about the product."""
    machine = result.metrics.get("machine") or {}
    return str(machine.get("stolen_cpu_s", "-"))


def _runs_of(report: pytest.TestReport) -> list[dict[str, str]]:
    """The scenario runs a test recorded, in order, from its user properties."""
    runs: list[dict[str, str]] = []
    for name, value in report.user_properties:
        if name == RUN_PROPERTIES[0]:
            runs.append({})
        if name in RUN_PROPERTIES and runs:
            runs[-1][name.removeprefix("outage_")] = str(value)
    return runs


class ScenarioRunsSummary:
    """Collects the scenario runs of the session (from xdist workers too, through their reports'
    user properties) and prints them as one table at the end."""

    COLUMNS = ("scenario", "profile", "verdict", "lost", "stolen_cpu_s", "report_dir")
    _MARKUP = {"held": {"green": True}, "deviated": {"yellow": True}}

    def __init__(self) -> None:
        self.runs: list[dict[str, str]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call":  # the call phase's report carries the properties
            self.runs.extend(_runs_of(report))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.runs:
            return
        rows = [[run.get(column, "-") for column in self.COLUMNS] for run in self.runs]
        widths = [max(len(column), *(len(row[i]) for row in rows)) for i, column in enumerate(self.COLUMNS)]

        def line(cells: list[str]) -> str:
            return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

        terminalreporter.write_sep("=", "Outage Lab scenario runs")
        terminalreporter.write_line(line(list(self.COLUMNS)))
        for row in rows:
            terminalreporter.write_line(line(row), **self._MARKUP.get(row[2], {"red": True}))
