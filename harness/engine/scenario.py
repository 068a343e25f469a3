"""A scenario: one outage as data (where it comes from, the drill material, the profiles) plus the
few steps that inject its root cause and apply its runbook.

The runner owns the phases (steady, inject, outage, recover, settle and drain, check); a scenario
fills in the steps. Scenarios register themselves by subclassing `Scenario` with an `id`.
Your own scenarios: put modules in a folder and point `OUTAGE_SCENARIO_PATH` at it (README).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from harness.checks.check import Check
from harness.checks.expect import Expect, evaluate, figure_methods, measure_figures
from harness.observe.schedule_lag import LAG_STREAM, worst_lag_s
from services.common.config import hardened_settings

if TYPE_CHECKING:
    from harness.engine.runner import Run
    from harness.observe.alerts import AlertRule
    from harness.record.record import Record

PROFILES = ("hardened", "vulnerable")

# The mitigations' hardened values (declared once, in services/common/config.py); a vulnerable
# profile overrides some of them.
HARDENED_SETTINGS: dict[str, str] = hardened_settings()


class ScenarioError(Exception):
    """A scenario is malformed or cannot be found."""


@dataclass(frozen=True)
class Drill:
    """What an on-call team gets: a briefing, the symptoms to find, hints, and the runbook."""

    briefing: str
    symptoms: tuple[str, ...]
    hints: tuple[str, ...]
    runbook: tuple[str, ...]


@dataclass
class Timing:
    """How long each phase lasts, in seconds. Scenarios set defaults; callers may scale them."""

    steady_s: float = 5.0
    outage_s: float = 10.0
    after_recovery_s: float = 5.0  # load keeps flowing this long after the runbook
    drain_timeout_s: float = 90.0
    message_rate: float = 20.0  # messages per second, open loop
    tickets: int = 20


_REGISTRY: dict[str, type[Scenario]] = {}


class Scenario(ABC):
    id: ClassVar[str]
    title: ClassVar[str]
    source: ClassVar[str]  # the postmortem it replays
    drill: ClassVar[Drill]
    # Settings each profile runs the app services with (on top of HARDENED_SETTINGS).
    profile_settings: ClassVar[dict[str, dict[str, str]]] = {"hardened": {}, "vulnerable": {}}
    # The history's operation kinds that put a message on a ticket (judged against `processed`).
    message_op_kinds: ClassVar[tuple[str, ...]] = ("post_message",)
    # The customers' integrations also retry a post whose outcome is unknown (a time-out, a 5xx),
    # with the same idempotency key: a third-party client, the same in both profiles.
    message_retry_unknown: ClassVar[bool] = False
    # How long those clients wait for an answer before giving up on a request (the same in both
    # profiles). A scenario whose api declares a longer request deadline lets them wait for it.
    client_timeout_s: ClassVar[float] = 2.0
    # Budgets on the message checks every run gets, where the scenario promises them
    # (keyword arguments of MessageVerdict.to_checks: max_replay_s, max_p99_s, check_order).
    message_budget: ClassVar[dict[str, float | bool]] = {}
    # The scenario's own checks, as data over the figures its `@figure` methods measure.
    expectations: ClassVar[tuple[Expect, ...]] = ()
    # The checks the vulnerable profile must fail: the incident's symptom, as the harness names it.
    vulnerable_symptoms: ClassVar[tuple[str, ...]] = ()
    # Effect kinds counted per second into the record's `effects` stream, not one history row each:
    # for floods of effects that no check follows one by one.
    tallied_effects: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "id" in cls.__dict__:
            for attribute in ("title", "source", "drill"):
                if not hasattr(cls, attribute):
                    raise ScenarioError(f"scenario {cls.id} ({cls.__module__}) lacks `{attribute}`")
            _REGISTRY[cls.id] = cls

    def __init__(self, timing: Timing | None = None) -> None:
        self.timing = timing or self.default_timing()

    # -- what a scenario may override -------------------------------------------------------------

    def default_timing(self) -> Timing:
        return Timing()

    def settings(self, profile: str) -> dict[str, str]:
        if profile not in PROFILES:
            raise ScenarioError(f"unknown profile {profile!r}; profiles are {', '.join(PROFILES)}")
        return {**HARDENED_SETTINGS, **self.profile_settings.get(profile, {})}

    def alert_rules(self, settings: dict[str, str]) -> list[AlertRule]:
        """The monitoring a run has, from its declared settings (default: the full set)."""
        from harness.observe.alerts import default_rules

        return default_rules()

    async def prepare(self, run: Run) -> None:  # noqa: B027 - an optional hook, empty by default
        """Before the steady phase: seed data the load needs (default: none beyond tickets)."""

    @abstractmethod
    async def inject(self, run: Run) -> None:
        """Inject the incident's root cause."""

    async def during_outage(self, run: Run) -> None:
        """While the fault is in place (default: let the load run for outage_s)."""
        await run.sleep(self.timing.outage_s)

    async def recover(self, run: Run) -> None:
        """Apply the runbook (default: revert every fault the scenario injected)."""
        await run.revert_faults()

    async def drain(self, run: Run) -> None:
        """After the messages drained: wait for the scenario's own effects (default: nothing more)."""
        return None

    def checks(self, record: Record) -> list[Check]:
        """The scenario's expectations judged on the record (a pure function of it)."""
        units = figure_methods(type(self))
        lag = worst_lag_s(record.stream(LAG_STREAM))
        return evaluate(self.expectations, measure_figures(self, record), units, observer_lag_s=lag)


def scenario_class(scenario_id: str) -> type[Scenario]:
    discover()
    try:
        return _REGISTRY[scenario_id]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise ScenarioError(f"no scenario {scenario_id!r}; known scenarios: {known}") from None


def all_scenarios() -> list[type[Scenario]]:
    discover()
    return [_REGISTRY[key] for key in sorted(_REGISTRY)]


def discover() -> None:
    """Import the built-in scenarios and those in the folders of OUTAGE_SCENARIO_PATH."""
    import faults.scenarios as builtin

    for module in pkgutil.iter_modules(builtin.__path__):
        importlib.import_module(f"{builtin.__name__}.{module.name}")
    for folder in filter(None, os.environ.get("OUTAGE_SCENARIO_PATH", "").split(os.pathsep)):
        for path in sorted(Path(folder).glob("*.py")):
            _load_file(path)


def _load_file(path: Path) -> None:
    name = f"outage_user_scenarios.{path.stem}"
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ScenarioError(f"{path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[name]
        raise ScenarioError(f"{path}:{exc.lineno}: {exc.msg}") from None
    except ScenarioError:
        del sys.modules[name]
        raise
    except Exception as exc:
        del sys.modules[name]
        line = exc.__traceback__.tb_next.tb_lineno if exc.__traceback__ and exc.__traceback__.tb_next else "?"
        raise ScenarioError(f"{path}:{line}: {type(exc).__name__}: {exc}") from None
