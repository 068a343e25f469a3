"""The verdict of a run, computed from its record alone.

`judge` is a pure function of a `Record` and the scenario's declarations (its figures and
expectations, the kinds of operations that carry messages): the live run and `outage check`
call it on the same files and get the same verdict. Every part is guarded: a check that raises
is `unknown` with its error, never a crash of the judging.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.checks.check import Check, verdict_of
from harness.checks.checker import MessageVerdict, check_messages
from harness.checks.expect import figure_methods, measure_figures, render
from harness.checks.latency import summarize
from harness.observe.machine_share import MACHINE_STREAM, machine_summary
from harness.observe.schedule_lag import LAG_STREAM, worst_lag_s
from harness.record.history import FAIL, INFO, OK

if TYPE_CHECKING:
    from harness.engine.scenario import Scenario
    from harness.record.record import Record


@dataclass
class Judgement:
    verdict: str  # held | deviated | unknown
    checks: list[Check]
    messages: MessageVerdict
    timings: dict[str, float | None]
    metrics: dict[str, Any] = field(default_factory=dict)


def judge(scenario: Scenario, record: Record) -> Judgement:
    """Every run's message checks plus the scenario's own expectations, judged on `record`."""
    messages = check_messages(record.history, op_kind=scenario.message_op_kinds)
    timings = run_timings(record, messages)
    budget: dict[str, Any] = dict(scenario.message_budget)
    if "max_replay_s" in budget:  # the replay is timed from the recovery the timeline records
        budget["recovered_at"] = record.recovered.at if record.recovered else None
    checks = _guarded("messages", lambda: messages.to_checks(**budget))
    checks += _guarded(scenario.id, lambda: scenario.checks(record))
    metrics = {**load_figures(record, scenario.message_op_kinds), **scenario_figures(scenario, record)}
    return Judgement(verdict_of(checks), checks, messages, timings, metrics)


def run_timings(record: Record, messages: MessageVerdict) -> dict[str, float | None]:
    """Time to detect (first alert after the first fault), to recover, and to replay the backlog."""
    injected, recovered = record.injected, record.recovered
    detect = recover = replay = None
    if injected is not None:
        alert = next((a for a in record.events("alert") if a.t >= injected.t), None)
        detect = round(alert.t - injected.t, 3) if alert else None
        recover = round(recovered.t - injected.t, 3) if recovered else None
    if recovered is not None:
        seconds = messages.replay_seconds(recovered.at)
        replay = round(seconds, 3) if seconds is not None else None
    return {"time_to_detect_s": detect, "time_to_recover_s": recover, "replay_s": replay}


def load_figures(record: Record, op_kinds: tuple[str, ...]) -> dict[str, Any]:
    """What the message load met: answers by status, latency of the answers, alerts fired; how
    late the harness's own loop ran at worst, which every latency above includes; and the CPU the
    machine lost to other guests and to disk waits while the run went on."""
    columns = record.history.op_columns()
    status_of, error_of = record.history.op_meta_column("status"), columns.error
    answered = (OK, FAIL, INFO)
    ops = [
        i
        for i, (kind, outcome) in enumerate(zip(columns.kind, columns.outcome, strict=True))
        if kind in op_kinds and outcome in answered
    ]
    statuses = Counter(
        str(status) if (status := status_of[i]) is not None else (error_of[i] or "error").split(":")[0]
        for i in ops
    )
    done, invoked = columns.complete_mono_ns, columns.invoke_mono_ns
    latencies = [(done[i] - invoked[i]) / 1e9 for i in ops if status_of[i] is not None]
    alerts = Counter(str(e.data.get("rule", e.message)) for e in record.events("alert"))
    latency = summarize(latencies).as_dict()
    return {
        "api_statuses": dict(statuses),
        "api_latency_s": latency,
        "alerts_fired": dict(alerts),
        "harness_loop_worst_lag_s": worst_lag_s(record.stream(LAG_STREAM)),
        "machine": machine_summary(record.stream(MACHINE_STREAM)),
    }


def scenario_figures(scenario: Scenario, record: Record) -> dict[str, Any]:
    """Every figure the scenario declares, rendered with its unit (an error says so)."""
    measure = measure_figures(scenario, record)
    shown: dict[str, Any] = {}
    for name, unit in figure_methods(type(scenario)).items():
        try:
            shown[name] = render(measure(name), unit)
        except Exception as exc:
            shown[name] = f"unknown: {type(exc).__name__}: {exc}"
    return shown


def _guarded(label: str, compute: Callable[[], list[Check]]) -> list[Check]:
    try:
        return compute()
    except Exception as exc:
        return [
            Check.not_judged(
                f"{label}.checks", "the checks could be computed", f"{type(exc).__name__}: {exc}"
            )
        ]
