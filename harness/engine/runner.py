"""Running a scenario: steady -> inject -> outage -> recover -> settle and drain -> check.

The runner owns the phases, the load, the observers and the probes; a scenario supplies the
injection and the runbook. Whatever happens, every fault is reverted before the run ends.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

from faults import base as fault_base
from faults.base import Fault
from harness.checks.checker import MessageVerdict, check_messages
from harness.checks.judge import Judgement, judge
from harness.engine.scenario import Scenario
from harness.engine.waiting import pause
from harness.observe.alerts import AlertEvaluator, AlertRule
from harness.observe.backlog import QUIET_S, BacklogNotDrained, leftovers, wait_until_drained
from harness.observe.broker_watch import BrokerWatch
from harness.observe.machine_share import watch_machine
from harness.observe.observer import EffectsObserver
from harness.observe.probes import PROBE_STREAM, Prober, ProbeSample
from harness.observe.schedule_lag import watch_schedule
from harness.record.history import History
from harness.record.record import Record, RecordWriter, plain
from harness.record.report import RunResult, write_report
from harness.record.timeline import Timeline
from harness.stack import credentials
from harness.stack.ledger import FaultLedger
from harness.stack.protocol import Stack
from harness.workloads.load import MessageLoad

LOAD_AGENT = "load-agent"
DRAIN_POLL_S = 1.0  # how often the drain looks for effects and for what still waits
LEFTOVER_WAIT_S = 180.0  # how long a run waits for an earlier run's backlog before it refuses to start


class HarnessError(RuntimeError):
    """The harness could not do its part (inject, revert, reach the stack): verdict `error`."""


@dataclass
class Run:
    """Everything a scenario step may use, and the record of what happened."""

    scenario: Scenario
    stack: Stack
    profile: str
    seed: int
    rng: random.Random
    history: History
    timeline: Timeline
    ledger: FaultLedger
    metrics: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float | None] = field(
        default_factory=lambda: {"time_to_detect_s": None, "time_to_recover_s": None, "replay_s": None}
    )
    tickets: list[int] = field(default_factory=list)
    load: MessageLoad | None = None
    prober: Prober | None = None
    observer: EffectsObserver | None = None
    alerts: AlertEvaluator | None = None
    injected_at: float | None = None  # run time (t) of the first injection
    recovered_at_wall: float | None = None  # when the runbook finished (wall clock)
    extra_loads: list[Callable[[asyncio.Event], Awaitable[None]]] = field(default_factory=list)
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    writer: RecordWriter | None = None
    _applied: list[tuple[Fault, str]] = field(default_factory=list)

    # -- helpers for scenario steps ----------------------------------------------------------------

    @property
    def settings(self) -> dict[str, str]:
        """The declared settings this run's profile sets: what scenario code may branch on."""
        return self.scenario.settings(self.profile)

    def add_load(self, load: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        """Another load to run beside the messages (call from `prepare`): it gets the stop event
        that the runner sets when the load phase ends, and is awaited before the drain."""
        self.extra_loads.append(load)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a blocking call (Docker, compose) without stalling the load."""
        return await asyncio.to_thread(function, *args, **kwargs)

    async def inject(self, fault: Fault, note: str = "") -> None:
        """Apply a fault: ledger first, then the fault, then the timeline."""
        if self.injected_at is None:
            self.injected_at = self.timeline.elapsed()
        try:
            entry = await self.call(fault_base.apply, fault, self.stack, self.ledger)
        except Exception as exc:
            raise HarnessError(f"injecting {fault.describe()} failed: {exc}") from exc
        self._applied.append((fault, entry))
        self.timeline.add("fault", note or f"injected {fault.describe()}", fault=fault.record())

    async def revert_faults(self) -> None:
        """Revert every fault still applied, newest first."""
        while self._applied:
            fault, entry = self._applied.pop()
            try:
                await self.call(fault_base.revert, fault, self.stack, self.ledger, entry)
            except Exception as exc:
                raise HarnessError(f"reverting {fault.describe()} failed: {exc}") from exc
            self.timeline.add("revert", f"reverted {fault.describe()}")

    def action(self, message: str, **data: Any) -> None:
        """A runbook action, as the on-call engineer would log it."""
        self.timeline.add("action", message, **data)

    def symptom(self, message: str, **data: Any) -> None:
        """Something the harness observed from the system itself."""
        self.timeline.add("symptom", message, **data)

    def mark(self, name: str, message: str = "", **data: Any) -> None:
        """A named moment of the run (e.g. "fix_deployed"), for checks to read from the record."""
        self.timeline.add("mark", message or name, mark=name, **data)

    def sample(self, stream: str, **fields: Any) -> None:
        """One measurement of a named stream, kept in the record for the checks (`record.stream`)."""
        row = plain(fields)
        self.samples.setdefault(stream, []).append(row)
        if self.writer is not None:
            self.writer.sample(stream, row)

    def mark_recovered(self, message: str = "runbook done; system serving again") -> None:
        self.recovered_at_wall = time.time()
        if self.injected_at is not None:
            self.timings["time_to_recover_s"] = round(self.timeline.elapsed() - self.injected_at, 3)
        self.timeline.add("recovered", message)

    def latest_sample(self) -> ProbeSample | None:
        return self.prober.samples[-1] if self.prober and self.prober.samples else None


ProgressCallback = Callable[[Run], None]
# Replaces the scenario's runbook: in a drill, people recover the stack and the harness waits.
RecoverStep = Callable[[Run], Awaitable[None]]


async def _create_tickets(api_url: str, count: int, subject: str = "load") -> list[int]:
    headers = {"Authorization": f"Bearer {credentials.agent_token(LOAD_AGENT)}"}
    async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=10) as client:
        ids = []
        for n in range(count):
            reply = await client.post(
                "/tickets", json={"subject": f"{subject} {n}", "customer": f"customer{n}@example.test"}
            )
            if reply.status_code != 201:
                raise HarnessError(f"could not create a ticket: HTTP {reply.status_code} {reply.text[:200]}")
            ids.append(int(reply.json()["id"]))
        return ids


async def _drain(
    run: Run,
    verdict_of: Callable[[], MessageVerdict],
    timeout: float,
    waiting: Callable[[], Awaitable[dict[str, int]]],
) -> None:
    """Wait until every acknowledged message was observed, or until nothing can bring the missing
    ones any more, or the timeout.

    Nothing can once no event waits in the outbox or on a queue (`waiting` is empty) and no new
    effect has come for QUIET_S: the rest were lost on the way, and waiting out the timeout would
    change no verdict, only the run's length."""
    assert run.observer is not None
    deadline = time.monotonic() + timeout
    seen, quiet_since = -1, time.monotonic()
    while True:
        await run.observer.read_available()
        verdict = verdict_of()
        if verdict.lost == 0:
            run.timeline.add("note", f"drained: all {verdict.acked} acknowledged messages observed")
            return
        now = time.monotonic()
        pending = await _still_waiting(waiting) if verdict.delivered == seen else "new effects"
        if pending:
            seen, quiet_since = verdict.delivered, now
        elif now - quiet_since >= QUIET_S:
            run.timeline.add(
                "note",
                f"drain ended with {verdict.lost} acknowledged messages unobserved: nothing waited in "
                f"the outbox or on a queue and no effect came for {QUIET_S:g} s",
            )
            return
        if now > deadline:
            run.timeline.add(
                "note",
                f"drain timed out with {verdict.lost} acknowledged messages unobserved; "
                f"last seen waiting: {pending}",
            )
            return
        await asyncio.sleep(DRAIN_POLL_S)


async def _still_waiting(waiting: Callable[[], Awaitable[dict[str, int]]]) -> str:
    """What still waits, told in words; empty when nothing does."""
    try:
        return ", ".join(f"{where}: {count}" for where, count in (await waiting()).items())
    except Exception as exc:  # the broker or Redis cannot say: something may still be on its way
        return f"unknown ({type(exc).__name__}: {exc})"


def new_run(scenario: Scenario, stack: Stack, profile: str, seed: int) -> Run:
    return Run(
        scenario=scenario,
        stack=stack,
        profile=profile,
        seed=seed,
        rng=random.Random(seed),
        history=History(),
        timeline=Timeline(),
        ledger=FaultLedger(),
    )


async def execute(
    run: Run, progress: ProgressCallback | None = None, recover: RecoverStep | None = None
) -> None:
    """Run the phases; raises HarnessError (or anything unexpected) when the harness fails.

    `recover` replaces the scenario's runbook (a drill: responders recover, the harness watches).
    """
    scenario, stack, profile, timing = run.scenario, run.stack, run.profile, run.scenario.timing
    stop_load, stop_watch = asyncio.Event(), asyncio.Event()
    background: list[asyncio.Task[None]] = []
    try:
        run.timeline.enter("setup")
        settings = scenario.settings(profile)
        await run.call(stack.configure, settings)
        await run.call(stack.wait_healthy, 240)
        run.timeline.add("note", f"profile {profile}: {settings}")
        endpoints = await run.call(stack.endpoints)
        try:
            await wait_until_drained(
                endpoints.redis,
                BrokerWatch(endpoints, run.timeline.elapsed),
                LEFTOVER_WAIT_S,
                lambda text: run.timeline.add("note", text),
            )
        except BacklogNotDrained as exc:
            raise HarnessError(str(exc)) from None
        run.tickets = await _create_tickets(endpoints.api, timing.tickets)
        canary = (await _create_tickets(endpoints.api, 1, subject="canary"))[0]
        await scenario.prepare(run)

        run.observer = EffectsObserver(
            endpoints.redis, run.history, tallied=scenario.tallied_effects, sample=run.sample
        )
        await run.observer.start_from_now()
        token = credentials.agent_token(LOAD_AGENT)
        run.prober = Prober(endpoints, run.timeline.elapsed, canary, token, locate=stack.endpoints)
        run.prober.listeners.append(lambda sample: run.sample(PROBE_STREAM, **sample.as_row()))
        run.load = MessageLoad(
            endpoints.api,
            credentials.agent_token(LOAD_AGENT),
            run.history,
            run.rng,
            timing.message_rate,
            run.tickets,
            timeout=scenario.client_timeout_s,
            retry_unknown=scenario.message_retry_unknown,
        )
        loads = [asyncio.create_task(run.load.run(stop_load))]
        loads += [asyncio.create_task(load(stop_load)) for load in run.extra_loads]
        background = [
            *loads,
            asyncio.create_task(run.observer.run(stop_watch)),
            asyncio.create_task(run.prober.run(stop_watch)),
            asyncio.create_task(_feed_canaries(run, stop_watch)),
            asyncio.create_task(watch_schedule(run.sample, stop_watch)),
            asyncio.create_task(watch_machine(run.sample, stop_watch)),
        ]
        if progress:
            background.append(asyncio.create_task(_report_progress(run, progress, stop_watch)))

        run.timeline.enter("steady")
        await run.sleep(timing.steady_s)

        run.timeline.enter("inject")
        _watch_alerts(run, scenario.alert_rules(run.settings))
        await scenario.inject(run)
        run.timeline.enter("outage")
        await scenario.during_outage(run)
        run.timeline.enter("recover")
        await (recover or scenario.recover)(run)
        await run.revert_faults()
        if run.recovered_at_wall is None:
            run.mark_recovered()
        await run.sleep(timing.after_recovery_s)

        run.timeline.enter("settle")
        stop_load.set()
        await asyncio.gather(*loads)
        await run.call(stack.wait_healthy, 240)
        message_kinds = scenario.message_op_kinds
        # The canaries stop with the load: one a second would keep the pipeline from ever looking empty.
        run.prober.stop_canaries()
        # Broker nodes restarted by the runbook answer on new host ports.
        settled_watch = BrokerWatch(await run.call(stack.endpoints), run.timeline.elapsed)
        async with aioredis.from_url(endpoints.redis, decode_responses=True) as redis_client:
            await _drain(
                run,
                lambda: check_messages(run.history, op_kind=message_kinds),
                timing.drain_timeout_s,
                lambda: leftovers(redis_client, settled_watch),
            )
        await scenario.drain(run)
    finally:
        stop_load.set()
        stop_watch.set()
        await asyncio.gather(*background, return_exceptions=True)
        try:
            await run.revert_faults()
        finally:
            if run.observer:
                await run.observer.close()


def _watch_alerts(run: Run, rules: list[AlertRule]) -> None:
    def fired(rule: AlertRule, sample: ProbeSample) -> None:
        run.timeline.add("alert", f"alert {rule.name} fired: {rule.description}", rule=rule.name)
        if run.timings["time_to_detect_s"] is None and run.injected_at is not None:
            run.timings["time_to_detect_s"] = round(max(0.0, sample.t - run.injected_at), 3)

    assert run.prober is not None
    run.alerts = AlertEvaluator(rules, fired)
    run.prober.listeners.append(run.alerts)


async def _feed_canaries(run: Run, stop: asyncio.Event) -> None:
    """Hand the prober every canary the observer saw processed, and every canary email delivered."""
    seen = {"canary_processed": 0, "canary_email_delivered": 0}
    while not stop.is_set():
        for kind, handed in seen.items():
            observations = run.history.observation_columns(kind)
            for at in observations.at[handed:]:
                if kind == "canary_processed":
                    run.prober.canary_processed(at)  # type: ignore[union-attr]
                else:
                    run.prober.canary_job_done(at)  # type: ignore[union-attr]
            seen[kind] = len(observations.at)
        await asyncio.sleep(0.5)


async def _report_progress(run: Run, progress: ProgressCallback, stop: asyncio.Event) -> None:
    while not stop.is_set():
        progress(run)
        await pause(stop, 1.0)


def run_scenario(
    scenario: Scenario,
    stack: Stack,
    profile: str = "hardened",
    seed: int = 1,
    report_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> RunResult:
    """Run a scenario, streaming its record to `report_dir` (a temporary one if None), and judge
    the record; a harness failure gives verdict `error`."""
    started = time.monotonic()
    report_dir = Path(report_dir) if report_dir else Path(tempfile.mkdtemp(prefix=f"outage-{scenario.id}-"))
    run = new_run(scenario, stack, profile, seed)
    start_record(run, report_dir)
    error = execute_recorded(run, lambda: execute(run, progress))
    judgement = close_and_judge(run, report_dir, error)
    meta = record_meta(scenario, profile, seed, run.timeline.started_at)
    result = RunResult.from_judgement(meta, judgement, time.monotonic() - started, error, report_dir)
    write_report(result, run, report_dir)
    return result


def start_record(run: Run, report_dir: Path) -> None:
    """Stream the run's record into `report_dir` from now on."""
    run.writer = RecordWriter(
        report_dir, record_meta(run.scenario, run.profile, run.seed, run.timeline.started_at)
    )
    run.writer.attach(run.timeline, run.history)


def execute_recorded(run: Run, phases: Callable[[], Awaitable[None]]) -> str | None:
    """Run the phases; a harness failure is written into the record and returned as text."""
    try:
        asyncio.run(phases())
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        run.timeline.add("error", f"harness failed: {error}", traceback=traceback.format_exc()[-4000:])
        return error
    return None


def close_and_judge(run: Run, report_dir: Path, error: str | None) -> Judgement:
    """Close the record and judge it as written; a harness failure makes the verdict `error`."""
    if run.writer is not None:
        run.writer.close()
    judgement = _judge_recorded(run, report_dir)
    if error is not None:
        judgement.verdict = "error"
    return judgement


def record_meta(scenario: Scenario, profile: str, seed: int, started_at: float) -> dict[str, Any]:
    """What meta.json says of a run: enough to find the scenario and its settings again."""
    return {
        "scenario": scenario.id,
        "title": scenario.title,
        "profile": profile,
        "seed": seed,
        "settings": scenario.settings(profile),
        "timing": dict(vars(scenario.timing)),
        "started_at": started_at,
    }


def _judge_recorded(run: Run, report_dir: Path) -> Judgement:
    """Judge the record as written to disk, exactly as `outage check` will."""
    try:
        judgement = judge(run.scenario, Record.load(report_dir, finished=True))
    except Exception as exc:  # an unreadable record: judge what is in memory, and say so
        run.timeline.add("error", f"the record could not be read back: {type(exc).__name__}: {exc}")
        messages = check_messages(run.history, op_kind=run.scenario.message_op_kinds)
        return Judgement("error", [], messages, dict(run.timings))
    return judgement
