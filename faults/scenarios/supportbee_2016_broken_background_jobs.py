"""SupportBee, July 2016: a Redis instrumentation library broke the background jobs.

A release wrapped the job runners' Redis client in instrumentation that broke it. Email imports and
deliveries stopped while the web app stayed up, so the only monitor, an HTTP uptime probe, stayed
green and alerted nobody. Finding it took hours; clearing the backlog after the fix took hours more.

Two variants of the bad wrapper (two scenario ids): every Redis call raises (`raise_all`), or the
job fetch runs and then raises, after the job has left the queue (`break_fetch`).
- vulnerable: jobs are popped from lists (taken = gone) and the monitoring is the uptime probe only.
- hardened: jobs stay pending in a stream until done and are reclaimed from a broken consumer; job
  monitors (oldest job, completion rate, runner heartbeats, a canary job) fire within 60 s; the
  runbook rolls the wrapper back with extra job runners to clear the backlog, then scales back.
"""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar

import redis

from faults.failpoints import Deploy
from harness.checks.check import Check
from harness.checks.checker import MessageVerdict, check_messages
from harness.engine.runner import Run
from harness.engine.scenario import Drill, Scenario, Timing
from harness.observe.alerts import AlertEvaluator, AlertRule, default_rules, job_rules, uptime_only
from harness.observe.probes import ProbeSample
from harness.workloads.inbound_email import IMPORT_OP, InboundEmail
from services.common import effects, keys

DETECT_BUDGET_S = 60.0
CLEAR_BUDGET_S = 60.0  # from the rollback until the backlog is back to its steady size
SEND_MS = "50"  # each delivery hands the email to the mail provider: 2 runners do ~40 a second
BACKLOG_RUNNERS = "8"  # the hardened runbook's runners while the backlog clears
IMPORT_RATE = 3.0  # inbound emails a second
SETTLED_BACKLOG = 10  # at least this many jobs may wait in a healthy queue (or twice its steady peak)
_MESSAGE_OPS = ("post_message", IMPORT_OP)
_NOT_JOB_INVARIANTS = {"per_ticket_order"}  # parallel runners and reclaims deliver in any order


class BrokenBackgroundJobs(Scenario):
    id = "supportbee-2016-broken-background-jobs"
    title = "A Redis instrumentation deploy breaks the background jobs; the uptime probe stays green"
    source = "SupportBee, 21 July 2016: notes on the July 21 downtime (incidents/supportbee-2016-07-*.txt)"
    instrumentation: ClassVar[str] = "raise_all"
    drill = Drill(
        briefing=(
            "A routine release adds instrumentation to see how the app uses Redis. The web app answers, the "
            "status page is green, agents can log in and reply. Customers' emails are arriving as usual."
        ),
        symptoms=(
            "the uptime probe of the web app stays green the whole time",
            "the email job queues grow and their oldest job gets older by the second",
            "jobs completed per second drops to zero while jobs wait",
            "the worker process beats but its job runners do not; its /health shows a last_error",
            "the canary message is processed, but its notification email is never sent",
        ),
        hints=(
            "What changed in the last release, and which Redis client do the job runners use?",
            "Look at the worker's /health: jobs.last_error and jobs.runner_heartbeats.",
            "Compare jobs queued with jobs completed; is a job that was taken still anywhere?",
        ),
        runbook=(
            "Roll the release back (REDIS_INSTRUMENTATION=off) without waiting for a fix forward.",
            "Deploy it with more job runners (JOB_RUNNERS=8) so the backlog clears several times faster "
            "than jobs arrive.",
            "Watch the oldest-job age and the queue depth come back to normal; taken-but-unfinished jobs "
            "are reclaimed after 15 s idle.",
            "Scale the runners back, then check that every imported email was delivered exactly once.",
        ),
    )
    profile_settings = {
        "hardened": {"EMAIL_SEND_MS": SEND_MS},
        # JOB_ALERTS: the monitoring the team had: an uptime check only, no alert on the jobs.
        "vulnerable": {"EMAIL_SEND_MS": SEND_MS, "RELIABLE_JOBS": "off", "JOB_ALERTS": "off"},
    }
    message_op_kinds = _MESSAGE_OPS

    def __init__(self, timing: Timing | None = None) -> None:
        super().__init__(timing)
        self._rolled_back_t: float | None = None
        self._cleared_t: float | None = None
        self.inbound: InboundEmail | None = None

    def default_timing(self) -> Timing:
        return Timing(
            steady_s=10, outage_s=35, after_recovery_s=5, drain_timeout_s=60, message_rate=8, tickets=10
        )

    def alert_rules(self, settings: dict[str, str]) -> list[AlertRule]:
        if settings.get("JOB_ALERTS", "on") != "on":
            return uptime_only()
        rules = default_rules()
        return rules + [rule for rule in job_rules() if rule not in rules]

    async def prepare(self, run: Run) -> None:
        reliable = self.settings(run.profile)["RELIABLE_JOBS"] == "on"
        endpoints = await run.call(run.stack.endpoints)
        await run.call(_reset_queues_of_other_kind, endpoints.redis, reliable, run)
        self.inbound = InboundEmail(endpoints.redis, run.history, run.rng, IMPORT_RATE, run.tickets, reliable)
        run.add_load(self.inbound.run)

    async def inject(self, run: Run) -> None:
        release = Deploy(
            ["worker"], {"REDIS_INSTRUMENTATION": self.instrumentation}, previous=self.settings(run.profile)
        )
        await run.inject(
            release, f"release with Redis instrumentation ({self.instrumentation}) on the worker"
        )

    async def during_outage(self, run: Run) -> None:
        deadline = time.monotonic() + self.timing.outage_s
        while (left := deadline - time.monotonic()) > 0:
            await run.sleep(min(15.0, left))
            sample = run.latest_sample()
            if sample is not None:
                run.symptom(
                    f"uptime probe {'green' if sample.api_up else 'red'}; "
                    f"{sample.jobs_pending} jobs waiting, oldest {sample.oldest_job_age_s} s",
                    jobs_pending=sample.jobs_pending,
                )

    async def recover(self, run: Run) -> None:
        settings = self.settings(run.profile)
        if run.profile == "hardened":
            run.action(f"roll back the instrumentation and deploy with {BACKLOG_RUNNERS} job runners")
            fix = Deploy(
                ["worker"],
                {"REDIS_INSTRUMENTATION": "off", "JOB_RUNNERS": BACKLOG_RUNNERS},
                previous=settings,
            )
            await run.inject(fix, f"fix release: instrumentation off, {BACKLOG_RUNNERS} job runners")
        else:
            run.action("roll back the instrumentation release")
            await run.revert_faults()
        # The clock for the backlog starts when the release is rolled back, healthy or not yet.
        self._rolled_back_t = run.timeline.elapsed()
        run.mark_recovered("the worker runs without the instrumentation again")
        self._cleared_t = await _wait_for_backlog_to_clear(run, CLEAR_BUDGET_S, _settled_backlog(run))
        if self._cleared_t is None:
            run.symptom(f"backlog not cleared {CLEAR_BUDGET_S:g} s after the rollback")
        else:
            run.symptom(f"backlog cleared {self._cleared_t - self._rolled_back_t:.1f} s after the rollback")
        if run.profile == "hardened":
            run.action("scale the job runners back to normal")
            await run.revert_faults()

    async def drain(self, run: Run) -> None:
        """Wait until every accepted email was imported and every message's email delivered, or until
        the queues are empty and nothing is left that could still arrive."""
        assert run.observer is not None
        deadline = time.monotonic() + self.timing.drain_timeout_s
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            await run.observer.read_available()
            missing = _imports(run).lost + _deliveries(run).lost
            if missing == 0:
                run.timeline.add("note", "drained: every email imported and delivered")
                return
            sample = run.latest_sample()
            settled = (
                sample is not None
                and (sample.jobs_pending or 0) <= _settled_backlog(run)
                and (sample.oldest_job_age_s or 0.0) < 2.0
            )
            quiet_since = (quiet_since or time.monotonic()) if settled else None
            if quiet_since is not None and time.monotonic() - quiet_since > 8:
                run.timeline.add("note", f"queues empty; {missing} emails missing for good")
                return
            await asyncio.sleep(1)
        run.timeline.add("note", "email drain timed out")

    def checks(self, run: Run) -> list[Check]:
        self._measure(run)
        detect = run.timings.get("time_to_detect_s")
        fired = run.alerts.fired if run.alerts else {}
        first = min(fired, key=fired.__getitem__) if fired else None
        uptime = run.metrics.get("uptime_probe", {})
        checks = [
            Check(
                "detection.within_60s",
                detect is not None and detect <= DETECT_BUDGET_S,
                f"{first} after {detect:.1f} s"
                if detect is not None
                else f"no alert fired (uptime probe green {uptime.get('green_pct', '?')}% of the outage)",
                f"an alert within {DETECT_BUDGET_S:g} s of the release",
            ),
        ]
        checks += _job_checks(_imports(run), "emails_imported")
        checks += _job_checks(_deliveries(run), "emails_delivered")
        clear_s = run.metrics.get("backlog", {}).get("clear_s")
        checks.append(
            Check(
                "backlog.cleared",
                clear_s is not None,
                f"{clear_s:.1f} s after the rollback" if clear_s is not None else "still waiting",
                f"back to steady within {CLEAR_BUDGET_S:g} s of the rollback",
            )
        )
        return checks

    def _measure(self, run: Run) -> None:
        samples = run.prober.samples if run.prober else []
        inject_t = run.injected_at
        steady = [s for s in samples if inject_t is None or s.t < inject_t]
        outage = [
            s
            for s in samples
            if inject_t is not None
            and s.t >= inject_t
            and (self._rolled_back_t is None or s.t < self._rolled_back_t)
        ]
        steady_rate = _rate(steady)
        backlog: dict[str, object] = {
            "peak": max((s.jobs_pending or 0 for s in samples), default=None),
            "steady_peak": max((s.jobs_pending or 0 for s in steady), default=None),
            "at_rollback": outage[-1].jobs_pending if outage else None,
            "oldest_job_peak_s": max((s.oldest_job_age_s or 0.0 for s in samples), default=None),
            "steady_completion_rate_per_s": steady_rate,
            "clear_s": None,
            "clear_rate_per_s": None,
            "clear_rate_vs_steady": None,
        }
        if self._rolled_back_t is not None:
            # Measured until the backlog cleared, or over the whole budget when it did not.
            end = self._cleared_t if self._cleared_t is not None else self._rolled_back_t + CLEAR_BUDGET_S
            clearing = [s for s in samples if self._rolled_back_t <= s.t <= end]
            clear_rate = _rate(clearing)
            if self._cleared_t is not None:
                backlog["clear_s"] = round(self._cleared_t - self._rolled_back_t, 3)
            else:
                backlog["left_after_budget"] = clearing[-1].jobs_pending if clearing else None
            backlog["clear_rate_per_s"] = clear_rate
            if clear_rate is not None and steady_rate:
                backlog["clear_rate_vs_steady"] = round(clear_rate / steady_rate, 2)
        run.metrics["backlog"] = backlog
        run.metrics["instrumentation"] = self.instrumentation
        run.metrics["uptime_probe"] = {
            "samples_in_outage": len(outage),
            "green_pct": round(100.0 * sum(s.api_up for s in outage) / len(outage), 1) if outage else None,
        }
        # What the job monitors saw (or, in a profile without them, would have seen) beside the uptime probe.
        run.metrics["job_monitor_view"] = _replay_rules(job_rules(), outage, inject_t)
        run.metrics["emails_imported"] = _imports(run).as_summary()
        run.metrics["emails_delivered"] = _deliveries(run).as_summary()
        run.metrics["inbound_accepted"] = self.inbound.accepted if self.inbound else 0


class BrokenBackgroundJobFetch(BrokenBackgroundJobs):
    id = "supportbee-2016-broken-background-jobs-fetch"
    title = "A Redis instrumentation deploy breaks the job fetch after the job has been taken"
    instrumentation = "break_fetch"


def _imports(run: Run) -> MessageVerdict:
    return check_messages(run.history, effects.EMAIL_IMPORTED, op_kind=IMPORT_OP)


def _deliveries(run: Run) -> MessageVerdict:
    # Every message on a ticket, typed in the app or imported by email, sends one email.
    return check_messages(run.history, effects.EMAIL_DELIVERED, op_kind=_MESSAGE_OPS)


def _job_checks(verdict: MessageVerdict, label: str) -> list[Check]:
    return [c for c in verdict.to_checks(label) if c.name.rsplit(".", 1)[1] not in _NOT_JOB_INVARIANTS]


def _rate(samples: list[ProbeSample]) -> float | None:
    """Jobs completed per second between the first and the last sample that know the counter."""
    known = [s for s in samples if s.jobs_completed is not None]
    if len(known) < 2 or known[-1].at - known[0].at < 1:
        return None
    return round((known[-1].jobs_completed - known[0].jobs_completed) / (known[-1].at - known[0].at), 2)


def _replay_rules(
    rules: list[AlertRule], samples: list[ProbeSample], inject_t: float | None
) -> dict[str, float]:
    """Seconds after the release at which each rule fires over these samples."""
    fired: dict[str, float] = {}
    evaluator = AlertEvaluator(rules, lambda rule, sample: fired.setdefault(rule.name, sample.t))
    for sample in samples:
        evaluator(sample)
    return {name: round(t - (inject_t or 0.0), 1) for name, t in fired.items()}


def _settled_backlog(run: Run) -> int:
    """How many jobs may wait in a healthy queue: twice the steady phase's peak, at least SETTLED_BACKLOG."""
    samples = run.prober.samples if run.prober else []
    steady = [s.jobs_pending or 0 for s in samples if run.injected_at is None or s.t < run.injected_at]
    return max(SETTLED_BACKLOG, 2 * max(steady, default=0))


async def _wait_for_backlog_to_clear(run: Run, budget_s: float, settled: int) -> float | None:
    """The run time at which the queues are back to their steady size, or None after the budget."""
    deadline = time.monotonic() + budget_s
    while time.monotonic() < deadline:
        sample = run.latest_sample()
        if (
            sample is not None
            and sample.t > (run.timeline.elapsed() - 1.5)
            and (sample.jobs_pending or 0) <= settled
            and (sample.oldest_job_age_s or 0.0) < 5.0
        ):
            return sample.t
        await run.sleep(0.5)
    return None


def _reset_queues_of_other_kind(redis_url: str, reliable: bool, run: Run) -> None:
    """A stack that last ran the other profile holds its job keys as the other type (list vs stream),
    which this profile's worker cannot use: those leftovers of an earlier run are dropped."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        wanted = "stream" if reliable else "list"
        for key in (keys.JOBS_EMAIL, keys.JOBS_IMPORT):
            kind = client.type(key)
            if kind not in ("none", wanted):
                client.delete(key)
                run.timeline.add("note", f"dropped {key} ({kind}) left by a run of the other profile")
    finally:
        client.close()
