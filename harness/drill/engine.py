"""A drill: the run engine with the runbook left to people.

The same setup and steady load as `outage run`; the hidden fault goes in after a random (seeded)
delay; the harness does not apply the runbook. It watches the steady-state hypothesis instead
(steady_state.py): once the hypothesis has held again for `hold_s`, the clock stops, the backlog
drains and the checker judges the record exactly as for a run. At the time limit (or on `stop`)
an unrecovered drill ends: the harness heals the stack, still judges, and says it was not recovered.

Responders' acknowledgements, notes, hints and operator actions arrive from other threads (the
board's HTTP server); each goes into the run's timeline, which is thread-safe.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.drill.debrief import add_drill_story
from harness.drill.steady_state import RecoveryClock
from harness.drill.story import HINT_COST, DrillStory
from harness.engine.runner import (
    Run,
    close_and_judge,
    execute,
    execute_recorded,
    new_run,
    record_meta,
    start_record,
)
from harness.engine.scenario import Scenario
from harness.observe.monitoring import MonitoringSampler, append_point, live_connections
from harness.record.report import RunResult, write_report
from harness.record.timeline import TimelineEvent
from harness.stack.compose_stack import ComposeStack
from harness.stack.heal import heal

MAX_NOTE_BYTES = 4096
HEAL_TIMEOUT_S = 300
# What responders see of the timeline; the fault, the harness's own symptoms and phases stay hidden.
VISIBLE_KINDS = ("alert", "ack", "responder-note", "hint", "operator-action", "docker", "drill")


class DrillInputError(ValueError):
    """A responder's input was refused (a note too long, an empty note)."""


@dataclass(frozen=True)
class DrillOptions:
    profile: str = "hardened"
    seed: int = 1
    time_limit_s: float = 20 * 60
    hold_s: float = 30.0  # the steady state must hold this long again for the drill to be recovered
    min_delay_s: float = 10.0
    max_delay_s: float = 60.0  # the fault goes in after a delay drawn from [min, max] with the seed


def fault_delay(options: DrillOptions) -> float:
    """The seeded delay before the hidden fault: the same seed, the same drill."""
    low = min(options.min_delay_s, options.max_delay_s)
    return round(random.Random(f"drill-delay-{options.seed}").uniform(low, options.max_delay_s), 1)


class DrillSession:
    def __init__(
        self, scenario: Scenario, stack: ComposeStack, options: DrillOptions, report_dir: Path
    ) -> None:
        self.scenario = scenario
        self.stack = stack
        self.options = options
        self.report_dir = report_dir
        self.delay_s = fault_delay(options)
        scenario.timing.steady_s = self.delay_s
        self.run: Run = new_run(scenario, stack, options.profile, options.seed)
        self.story = DrillStory()
        self.clock = RecoveryClock(options.hold_s)
        self.result: RunResult | None = None
        self.status = "starting"  # starting | running | draining | finished
        self.finished = threading.Event()
        self._stop_requested = threading.Event()
        self._lock = threading.Lock()
        self._sampler = MonitoringSampler()
        self.monitoring: list[dict[str, Any]] = []
        self._live_connections: int | None = None
        self._fed = 0  # probe samples already fed to the clock

    # -- what responders do (any thread) ----------------------------------------------------------

    def acknowledge(self, who: str = "responder") -> dict[str, Any]:
        with self._lock:
            if self.story.acknowledged_at is not None:
                return {"acknowledged": True, "already": True, "t": self.story.acknowledged_at}
            event = self.run.timeline.add("ack", f"acknowledged by {who}", who=who)
            self.story.acknowledged_at = event.t
            self._entry(event)
        return {"acknowledged": True, "already": False, "t": event.t}

    def note(self, text: str, who: str = "responder") -> dict[str, Any]:
        text = text.strip()
        if not text:
            raise DrillInputError("an empty note says nothing")
        size = len(text.encode("utf-8"))
        if size > MAX_NOTE_BYTES:
            raise DrillInputError(f"a note is at most {MAX_NOTE_BYTES} bytes; this one is {size}")
        with self._lock:
            event = self.run.timeline.add("responder-note", text, who=who)
            self._entry(event)
        return {"t": event.t, "note": text}

    def hint(self) -> dict[str, Any]:
        hints = self.scenario.drill.hints
        with self._lock:
            if self.story.hints_used >= len(hints):
                return {"hint": None, "used": self.story.hints_used, "left": 0, "cost": HINT_COST}
            text = hints[self.story.hints_used]
            self.story.hints_used += 1
            event = self.run.timeline.add("hint", f"hint {self.story.hints_used}: {text}")
            self._entry(event)
            used = self.story.hints_used
        return {"hint": text, "used": used, "left": len(hints) - used, "cost": HINT_COST}

    def operator_action(self, name: str, args: list[str], outcome: str, ok: bool) -> dict[str, Any]:
        with self._lock:
            event = self.run.timeline.add(
                "operator-action",
                f"outage act {' '.join([name, *args])}: {outcome}",
                action=name,
                args=args,
                ok=ok,
            )
            self._entry(event)
        return {"t": event.t}

    def docker_event(self, service: str, action: str) -> None:
        with self._lock:
            event = self.run.timeline.add(
                "docker", f"container {service}: {action} (Docker event)", service=service
            )
            self._entry(event)

    def request_stop(self) -> None:
        self._stop_requested.set()

    def _entry(self, event: TimelineEvent) -> None:
        self.story.entries.append({"t": event.t, "kind": event.kind, "message": event.message})

    # -- what responders see ----------------------------------------------------------------------

    def visible_events(self) -> list[dict[str, Any]]:
        return [
            {"t": e.t, "kind": e.kind, "message": e.message}
            for e in self.run.timeline.events()
            if e.kind in VISIBLE_KINDS
        ]

    def public_status(self) -> dict[str, Any]:
        elapsed = self.run.timeline.elapsed()
        status: dict[str, Any] = {
            "status": self.status,
            "clock_s": round(elapsed, 1),
            "time_limit_s": self.options.time_limit_s,
            "remaining_s": round(max(0.0, self.options.time_limit_s - elapsed), 1),
            "briefing": self.scenario.drill.briefing,
            "acknowledged": self.story.acknowledged_at is not None,
            "hints_used": self.story.hints_used,
            "hints_total": len(self.scenario.drill.hints),
            "hint_cost": HINT_COST,
            "steady_state": "holds" if not self.clock.last_violations else "broken",
            "violations": list(self.clock.last_violations),
            "ended": self.story.ended,
        }
        if self.finished.is_set():
            status["score"] = self.story.score()
            status["verdict"] = self.result.verdict if self.result else "error"
            status["report_dir"] = str(self.report_dir)
            status["durations"] = self.story.durations()
        return status

    # -- the drill itself -------------------------------------------------------------------------

    def play(self) -> RunResult:
        """Run the drill to its end and write its report (blocking)."""
        started = time.monotonic()
        run = self.run
        self.report_dir.mkdir(parents=True, exist_ok=True)
        (self.report_dir / "monitoring.jsonl").unlink(missing_ok=True)
        run.timeline.add("drill", "drill started; the briefing was handed out")
        threading.Thread(target=self._watch_live_connections, name="live-connections", daemon=True).start()
        start_record(run, self.report_dir)
        error = execute_recorded(
            run, lambda: execute(run, progress=self._tick, recover=self._wait_for_responders)
        )
        if error is not None and self.story.ended == "running":
            self.story.ended = "error"  # how the drill ended stays told; the verdict says `error`
        judgement = close_and_judge(run, self.report_dir, error)
        self.story.lost = judgement.messages.lost
        self.story.fault_at = run.injected_at
        # The record gives detection (the first alert); the drill adds the people's milestones.
        judgement.timings.update({k: v for k, v in self.story.durations().items() if k != "time_to_detect_s"})
        judgement.metrics["drill"] = self.story_summary()
        meta = record_meta(run.scenario, run.profile, run.seed, run.timeline.started_at)
        result = RunResult.from_judgement(meta, judgement, time.monotonic() - started, error, self.report_dir)
        self.result = result
        write_report(result, run, self.report_dir)
        add_drill_story(self.report_dir, self)
        self.status = "finished"
        self.finished.set()
        return result

    def story_summary(self) -> dict[str, Any]:
        story = self.story.as_dict()
        story.pop("entries")
        return {
            **story,
            "hold_s": self.options.hold_s,
            "time_limit_s": self.options.time_limit_s,
            "fault_delay_s": self.delay_s,
        }

    def _tick(self, run: Run) -> None:
        """Every second: one monitoring point, and the steady-state clock fed once the fault is in."""
        if self.status == "starting" and run.timeline.phase == "steady":
            self.status = "running"
        latest = run.latest_sample()
        stats = run.load.stats if run.load else None
        point = self._sampler.point(run.timeline.elapsed(), stats, latest, self._live_connections)
        self.monitoring.append(point)
        append_point(self.report_dir, point)
        self._feed_clock()
        if self.story.detected_at is None:
            alert = run.timeline.first("alert")
            if alert is not None:
                self.story.detected_at = alert.t

    def _watch_live_connections(self) -> None:
        """The live server's connection gauge, read beside the event loop (a blocking HTTP call)."""
        live_url = None
        while not self.finished.wait(2.0):
            try:
                live_url = live_url or self.stack.endpoints().live
            except Exception:
                continue  # the stack is still coming up
            self._live_connections = live_connections(live_url)

    def _feed_clock(self) -> None:
        run = self.run
        if run.injected_at is None or run.prober is None:
            return
        self.story.fault_at = run.injected_at
        samples = run.prober.samples
        while self._fed < len(samples):
            sample = samples[self._fed]
            self._fed += 1
            if sample.t < run.injected_at:
                continue
            mitigated_before = self.clock.mitigated_at
            self.clock.feed(sample)
            if mitigated_before is None and self.clock.mitigated_at is not None:
                self.story.mitigated_at = self.clock.mitigated_at
                run.timeline.add(
                    "drill", "the steady state holds again (mitigated)", at_t=self.clock.mitigated_at
                )

    async def _wait_for_responders(self, run: Run) -> None:
        """The drill's recover step: wait for the steady state, the time limit or a stop."""
        self.clock.outage_over = True
        while True:
            self._feed_clock()
            if self.clock.recovered:
                await self._recovered(run)
                return
            if self._stop_requested.is_set():
                self.story.ended = "stopped"
                break
            if run.timeline.elapsed() >= self.options.time_limit_s:
                self.story.ended = "time-limit"
                break
            await asyncio.sleep(0.5)
        self.status = "draining"
        reason = "stopped by the facilitator" if self.story.ended == "stopped" else "time limit reached"
        run.timeline.add("drill", f"{reason}: not recovered; the harness heals the stack")
        await self._heal(run)
        run.mark_recovered("healed by the harness: the responders did not recover the stack")
        run.timings["time_to_recover_s"] = None

    async def _recovered(self, run: Run) -> None:
        self.status = "draining"
        self.story.ended = "recovered"
        self.story.recovered_at = self.clock.recovered_at
        since = self.clock.recovered_at
        run.mark_recovered(
            f"recovered: the steady state has held for {self.options.hold_s:g} s since t={since:.1f}"
        )
        # The service came back when the hold began: replay is measured from there.
        run.recovered_at_wall = run.timeline.started_at + (since or 0.0)
        run.timeline.add("drill", "the clock stops: recovered; the backlog drains and the record is judged")
        status = await run.call(self.stack.status)
        if not status.healthy:
            run.timeline.add(
                "drill",
                f"the service is back but the stack is not whole ({'; '.join(status.problems())}): "
                "the harness finishes the repair",
            )
            await self._heal(run)

    async def _heal(self, run: Run) -> None:
        """Revert the drill's faults and repair what is left, saying each step (the debrief lists them)."""
        before = len(run.timeline.events("revert"))
        await run.revert_faults()
        for event in run.timeline.events("revert")[before:]:
            run.timeline.add("heal", f"the harness {event.message}")
        report = await run.call(
            heal, self.stack, run.ledger, HEAL_TIMEOUT_S, lambda text: run.timeline.add("heal", text)
        )
        for line in report.repaired:
            run.timeline.add("heal", f"the harness repaired: {line}")
        for line in report.errors:
            run.timeline.add("heal", f"heal problem: {line}")
