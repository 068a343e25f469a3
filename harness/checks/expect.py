"""Checks as data: a scenario names figures it measures from the record and declares budgets on them.

    class MyScenario(Scenario):
        expectations = (
            Expect("gateway.ordinary_p99", "ordinary_p99_ms", AtMost(300),
                   why="the product's promise: ordinary agents keep answers under 300 ms"),
        )

        @figure("ms")
        def ordinary_p99_ms(self, record: Record) -> float | None: ...

A figure is a pure function of the record. A figure that raises makes the checks on it
`unknown` (with the error), never a crash of the judging; a figure of None ("never happened",
"not measured") fails its budget, so no check is unable to fail.

Every duration is measured on the harness's own clock, by its own event loop: when that loop ran
late (the record's `harness_lag` stream), a reply that came on time is stamped late by as much. A
duration over its ceiling by less than the loop's worst lateness therefore cannot be told from the
observer's own delay, and its check is `unknown` (OBSERVER_BOUND), not failed; a miss larger than
the lateness still fails.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from harness.checks.check import Check

if TYPE_CHECKING:
    from harness.record.record import Record

F = TypeVar("F", bound=Callable[..., Any])
FIGURE_UNIT = "__outage_figure_unit__"
OBSERVER_BOUND = "over its ceiling by less than the harness's own lateness"
_SECONDS_PER = {"s": 1.0, "ms": 0.001}  # the units of a duration the harness timed


@dataclass(frozen=True, slots=True)
class Measured:
    """A figure with the words that explain it, e.g. Measured(0.35, "553/1590 acknowledged")."""

    value: float | int | bool | None
    detail: str = ""


def figure(unit: str = "") -> Callable[[F], F]:
    """Mark a scenario method `(self, record) -> value` as a named figure, in `unit`."""

    def mark(function: F) -> F:
        setattr(function, FIGURE_UNIT, unit)
        return function

    return mark


def figure_methods(cls: type) -> dict[str, str]:
    """The figures a class declares (through its bases too): name -> unit."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        for name, member in vars(klass).items():
            if callable(member) and hasattr(member, FIGURE_UNIT):
                found[name] = getattr(member, FIGURE_UNIT)
    return found


class Rule(ABC):
    """A budget on one figure."""

    symbol: str = ""

    def __init__(self, limit: float | bool | int) -> None:
        self.limit = limit

    @abstractmethod
    def holds(self, value: float | bool | int) -> bool:
        """Whether a measured value keeps this budget."""

    def describe(self, unit: str) -> str:
        return f"{self.symbol} {_number(self.limit)}{_unit(unit)}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.limit!r})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.limit == other.limit  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.limit))


class AtMost(Rule):
    symbol = "<="

    def holds(self, value: float | bool | int) -> bool:
        return value <= self.limit


class AtLeast(Rule):
    symbol = ">="

    def holds(self, value: float | bool | int) -> bool:
        return value >= self.limit


class Equals(Rule):
    symbol = "=="

    def holds(self, value: float | bool | int) -> bool:
        return value == self.limit

    def describe(self, unit: str) -> str:
        if isinstance(self.limit, bool):
            return "yes" if self.limit else "no"
        return super().describe(unit)


@dataclass(frozen=True)
class Expect:
    """A named invariant or budget over one figure of the record."""

    name: str
    figure: str
    rule: Rule
    why: str  # where the limit comes from: the postmortem, the product's promise, a physical fact


def render(value: Any, unit: str) -> str:
    """A figure's value as reports print it: numbers with their unit, yes/no, or 'never'."""
    if isinstance(value, Measured):
        shown = render(value.value, unit)
        return f"{shown} ({value.detail})" if value.detail else shown
    if value is None:
        return "never / not measured"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return f"{_number(value)}{_unit(unit)}"
    return str(value)


def evaluate(
    expectations: tuple[Expect, ...],
    measure: Callable[[str], Any],
    units: dict[str, str],
    observer_lag_s: float | None = None,
) -> list[Check]:
    """Judge each expectation on its figure; `measure(name)` computes (and may raise).

    `observer_lag_s`: the harness loop's worst lateness during the run; a duration ceiling missed
    by less than it is `unknown` (see the module's docstring)."""
    checks = []
    for expect in expectations:
        unit = units.get(expect.figure, "")
        expected = expect.rule.describe(unit)
        try:
            value = measure(expect.figure)
        except Exception as exc:  # a checker that throws yields unknown (Jepsen), not a crash
            checks.append(Check.not_judged(expect.name, expected, f"{type(exc).__name__}: {exc}", expect.why))
            continue
        raw = value.value if isinstance(value, Measured) else value
        passed = (
            raw is not None and not (isinstance(raw, float) and math.isnan(raw)) and expect.rule.holds(raw)
        )
        if not passed and _within_observer_lag(expect.rule, raw, unit, observer_lag_s):
            lateness = f"{_number(observer_lag_s or 0.0)} s"
            checks.append(
                Check.not_judged(
                    expect.name, expected, f"{render(value, unit)}, {OBSERVER_BOUND} ({lateness})", expect.why
                )
            )
            continue
        checks.append(Check(expect.name, passed, render(value, unit), expected, expect.why))
    return checks


def observer_bound(check: Check) -> bool:
    """Whether a check is unknown only because the harness ran late while it measured."""
    return check.unknown and OBSERVER_BOUND in check.observed


def _within_observer_lag(rule: Rule, raw: Any, unit: str, observer_lag_s: float | None) -> bool:
    """A duration over its ceiling by no more than the observer's lateness (in the figure's unit)."""
    seconds_per = _SECONDS_PER.get(unit)
    if not observer_lag_s or seconds_per is None or not isinstance(rule, AtMost):
        return False
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        return False
    return raw - observer_lag_s / seconds_per <= rule.limit


def _number(value: float | int | bool) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.1f}"


def _unit(unit: str) -> str:
    if not unit:
        return ""
    return unit if unit == "%" else f" {unit}"


def measure_figures(scenario: object, record: Record) -> Callable[[str], Any]:
    """A memoizing `measure` over a scenario's figure methods for one record."""
    cache: dict[str, Any] = {}

    def measure(name: str) -> Any:
        if name not in cache:
            method = getattr(scenario, name, None)
            if method is None or not hasattr(method, FIGURE_UNIT):
                raise KeyError(f"no figure {name!r} in {type(scenario).__name__}")
            cache[name] = method(record)
        return cache[name]

    return measure
