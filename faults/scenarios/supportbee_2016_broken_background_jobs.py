"""SupportBee, July 2016: a Redis instrumentation library broke the background jobs.

A release wrapped the job runners' Redis client in instrumentation that broke it. Email imports and
deliveries stopped while the web app stayed up, so the only monitor, an HTTP uptime probe, stayed
green and alerted nobody. Finding it took hours; clearing the backlog after the fix took hours more.
The postmortem's facts, and what this scenario reproduces of each, are in
supportbee_2016_broken_background_jobs.md beside this module.

Two variants of the bad wrapper (two scenario ids): every Redis call raises (`raise_all`, the
postmortem's outage: jobs stop, none is lost), or the job fetch runs and then raises, after the job
has left the queue (`break_fetch`). The second goes beyond the postmortem, which says every email
was imported and sent in the end: it asks what a naive queue would have lost to such a wrapper.

The profiles differ only in declared settings:
- vulnerable: jobs are popped from lists (RELIABLE_JOBS=off: taken = gone) and the team is paged
  by the uptime probe only (JOB_ALERTS=off).
- hardened: jobs stay pending in a stream until done and are reclaimed from a broken consumer; job
  monitors (oldest job, completion rate, runner heartbeats, a canary job) page the team
  (JOB_ALERTS on, the default).
Both run the same runbook: roll the wrapper back with extra job runners to clear the backlog, wait
for the queues to settle, then scale back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

import redis

from faults.failpoints import Deploy
from harness.checks.check import Check
from harness.checks.checker import MessageVerdict, check_messages
from harness.checks.expect import AtMost, Expect, Measured, figure
from harness.engine.runner import Run
from harness.engine.scenario import Drill, Scenario, Timing
from harness.engine.waiting import WaitTimeout, wait_until
from harness.observe.alerts import AlertEvaluator, AlertRule, default_rules, job_rules, uptime_only
from harness.observe.probes import PROBE_STREAM, ProbeSample
from harness.record.history import History
from harness.record.record import Record
from harness.workloads.inbound_email import IMPORT_OP, InboundEmail
from services.common import effects, keys

DETECT_BUDGET_S = 60.0
CLEAR_BUDGET_S = 60.0  # from the rollback until the backlog is back to its steady size
SEND_MS = "50"  # each delivery hands the email to the mail provider: 2 runners do ~40 a second
BACKLOG_RUNNERS = "8"  # the runbook's runners while the backlog clears
IMPORT_RATE = 3.0  # inbound emails a second
SETTLED_BACKLOG = 10  # at least this many jobs may wait in a healthy queue (or twice its steady peak)
SETTLED_OLDEST_JOB_S = 5.0  # a queue whose oldest job is younger is served as it fills
DRAIN_QUIET_S = 8.0  # queues settled this long with emails still missing: those are gone for good
_MESSAGE_OPS = ("post_message", IMPORT_OP)
_NOT_JOB_INVARIANTS = {"per_ticket_order"}  # parallel runners and reclaims deliver in any order
ROLLED_BACK = "rolled_back"  # the mark of the rollback release being out


class BrokenBackgroundJobs(Scenario):
    id = "supportbee-2016-broken-background-jobs"
    title = "A Redis instrumentation deploy breaks the background jobs; the uptime probe stays green"
    source = (
        "SupportBee, 21 July 2016, 'Notes on the July 21 downtime': facts and fidelity in "
        "faults/scenarios/supportbee_2016_broken_background_jobs.md"
    )
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
            f"Deploy it with more job runners (JOB_RUNNERS={BACKLOG_RUNNERS}) so the backlog clears several "
            "times faster than jobs arrive.",
            "Watch the oldest-job age and the queue depth come back to normal; taken-but-unfinished jobs "
            "are reclaimed after 15 s idle.",
            "Scale the runners back, then check that every imported email was delivered exactly once.",
        ),
    )
    # The same in both profiles: each delivery hands the email to the mail provider, and the web
    # app answers slowly rather than shedding requests (shedding is another incident's mitigation;
    # here the web app stays up, as it did for SupportBee).
    _COMMON = {"EMAIL_SEND_MS": SEND_MS, "API_QUEUE_TIMEOUT_S": "3", "API_REQUEST_DEADLINE_S": "5"}
    profile_settings = {
        "hardened": _COMMON,
        # JOB_ALERTS: the monitoring the team had: an uptime check only, no alert on the jobs.
        "vulnerable": {**_COMMON, "RELIABLE_JOBS": "off", "JOB_ALERTS": "off"},
    }
    message_op_kinds = _MESSAGE_OPS
    expectations = (
        Expect(
            "detection.within_60s",
            "time_to_detect_s",
            AtMost(DETECT_BUDGET_S),
            why="the postmortem: the web app was up, the uptime monitor paged nobody and finding the "
            "cause took hours; job monitoring (its first remedy) must page within a minute",
        ),
        Expect(
            "backlog.cleared",
            "backlog_clear_s",
            AtMost(CLEAR_BUDGET_S),
            why="the postmortem: the backlog took hours to clear after the fix; the runbook's extra "
            "runners clear the outage's backlog within a minute of the rollback",
        ),
    )
    vulnerable_symptoms: ClassVar[tuple[str, ...]] = ("detection.within_60s",)

    def default_timing(self) -> Timing:
        return Timing(
            steady_s=10, outage_s=35, after_recovery_s=5, drain_timeout_s=60, message_rate=8, tickets=10
        )

    def alert_rules(self, settings: dict[str, str]) -> list[AlertRule]:
        """Job monitors beside the default rules, unless the team had an uptime check only."""
        if settings.get("JOB_ALERTS", "on") != "on":
            return uptime_only()
        rules = default_rules()
        return rules + [rule for rule in job_rules() if rule not in rules]

    # -- the incident -----------------------------------------------------------------------------

    async def prepare(self, run: Run) -> None:
        # The mail gateway is the product's: it enqueues where this profile's workers read.
        reliable = run.settings["RELIABLE_JOBS"] == "on"
        endpoints = await run.call(run.stack.endpoints)
        await run.call(_reset_queues_of_other_kind, endpoints.redis, reliable, run)
        inbound = InboundEmail(endpoints.redis, run.history, run.rng, IMPORT_RATE, run.tickets, reliable)
        run.add_load(inbound.run)

    async def inject(self, run: Run) -> None:
        """Release the worker with the Redis instrumentation that breaks its job runners."""
        release = Deploy(["worker"], {"REDIS_INSTRUMENTATION": self.instrumentation}, previous=run.settings)
        await run.inject(
            release, f"release with Redis instrumentation ({self.instrumentation}) on the worker"
        )

    async def during_outage(self, run: Run) -> None:
        """Let the outage run, noting every 15 s what the dashboards show."""
        waited = 0.0
        while waited < self.timing.outage_s:
            step = min(15.0, self.timing.outage_s - waited)
            await run.sleep(step)
            waited += step
            sample = run.latest_sample()
            if sample is not None:
                run.symptom(
                    f"uptime probe {'green' if sample.api_up else 'red'}; "
                    f"{sample.jobs_pending} jobs waiting, oldest {sample.oldest_job_age_s} s",
                    jobs_pending=sample.jobs_pending,
                )

    # -- the runbook (the same in both profiles) ----------------------------------------------------

    async def recover(self, run: Run) -> None:
        """Roll the release back with extra job runners, wait for the queues to settle, scale back."""
        run.action(f"roll back the instrumentation and deploy with {BACKLOG_RUNNERS} job runners")
        fix = Deploy(
            ["worker"],
            {"REDIS_INSTRUMENTATION": "off", "JOB_RUNNERS": BACKLOG_RUNNERS},
            previous=run.settings,
        )
        await run.inject(fix, f"fix release: instrumentation off, {BACKLOG_RUNNERS} job runners")
        # The clock for the backlog starts when the rollback is out, healthy or not yet.
        run.mark(ROLLED_BACK, "the rollback release is out")
        run.mark_recovered("the worker runs without the instrumentation again")
        settled = settled_backlog(s.jobs_pending for s in _before_injection(run))
        try:
            await wait_until(
                lambda: _queues_settled(run, settled),
                timeout=CLEAR_BUDGET_S,
                what=f"the job queues back to at most {settled} jobs",
                interval=0.5,
            )
            run.symptom("the job queues are back to their steady size")
        except WaitTimeout as exc:
            run.symptom(f"backlog not cleared: {exc}")
        run.action("scale the job runners back to normal")
        await run.revert_faults()

    async def drain(self, run: Run) -> None:
        """Wait until every accepted email was imported and every message's email delivered, or until
        the queues have stayed settled with emails still missing (those will never come)."""
        assert run.observer is not None
        observer = run.observer
        settled = settled_backlog(s.jobs_pending for s in _before_injection(run))
        quiet_since: list[float] = []

        async def done() -> str | None:
            await observer.read_available()
            missing = _missing_emails(run.history)
            if missing == 0:
                return "drained: every email imported and delivered"
            sample = run.latest_sample()
            if sample is None or not _settled(sample, settled, oldest_s=2.0):
                quiet_since.clear()
                return None
            quiet_since[:] = quiet_since or [sample.t]
            if sample.t - quiet_since[0] > DRAIN_QUIET_S:
                return f"queues empty; {missing} emails missing for good"
            return None

        try:
            run.timeline.add(
                "note", await wait_until(done, timeout=self.timing.drain_timeout_s, what="emails")
            )
        except WaitTimeout:
            run.timeline.add("note", "email drain timed out")

    # -- checks: the expectations above, plus each email's fate -------------------------------------

    def checks(self, record: Record) -> list[Check]:
        """The declared expectations, and the invariants of every email: each accepted import is
        imported once, each message on a ticket gets one email delivered, none twice."""
        checks = super().checks(record)
        checks += _job_checks(_recorded_imports(record), "emails_imported")
        checks += _job_checks(_recorded_deliveries(record), "emails_delivered")
        return checks

    # -- figures (pure functions of the record) ---------------------------------------------------

    @figure("s")
    def time_to_detect_s(self, record: Record) -> Measured:
        """Seconds from the release to the first alert, with the rule that fired."""
        injected = record.injected
        alert = next((a for a in record.events("alert") if injected and a.t >= injected.t), None)
        if injected is None or alert is None:
            green = self.uptime_green_pct(record)
            return Measured(None, f"no alert fired (uptime probe green {green}% of the outage)")
        return Measured(round(alert.t - injected.t, 1), str(alert.data.get("rule", alert.message)))

    @figure("s")
    def backlog_clear_s(self, record: Record) -> Measured:
        """Seconds from the rollback until a probe saw the queues back to their steady size."""
        rolled_back = record.mark(ROLLED_BACK)
        if rolled_back is None:
            return Measured(None, "never rolled back")
        settled = settled_backlog(s.jobs_pending for s in _probe_phase(record, "steady"))
        after = [s for s in _probes(record) if s.t >= rolled_back.t]
        cleared = next((s for s in after if _settled(s, settled, SETTLED_OLDEST_JOB_S)), None)
        if cleared is None:
            left = after[-1].jobs_pending if after else None
            return Measured(None, f"{left} jobs still waiting at the end of the run (settled: <= {settled})")
        return Measured(round(cleared.t - rolled_back.t, 1), f"<= {settled} jobs waiting")

    @figure("%")
    def uptime_green_pct(self, record: Record) -> float | None:
        """Share of the outage's probes whose uptime check was green."""
        outage = _probe_phase(record, "outage")
        return round(100.0 * sum(s.api_up for s in outage) / len(outage), 1) if outage else None

    @figure()
    def backlog_steady_peak(self, record: Record) -> int | None:
        return max((s.jobs_pending or 0 for s in _probe_phase(record, "steady")), default=None)

    @figure()
    def backlog_at_rollback(self, record: Record) -> int | None:
        outage = _probe_phase(record, "outage")
        return outage[-1].jobs_pending if outage else None

    @figure("s")
    def oldest_job_peak_s(self, record: Record) -> float | None:
        return max((s.oldest_job_age_s or 0.0 for s in _probes(record)), default=None)

    @figure("jobs/s")
    def steady_completion_rate(self, record: Record) -> float | None:
        return _rate(_probe_phase(record, "steady"))

    @figure("jobs/s")
    def clear_completion_rate(self, record: Record) -> float | None:
        """Jobs completed per second from the rollback until the backlog cleared (or the budget ran out)."""
        rolled_back = record.mark(ROLLED_BACK)
        if rolled_back is None:
            return None
        clear_s = self.backlog_clear_s(record).value
        end = rolled_back.t + (clear_s if clear_s is not None else CLEAR_BUDGET_S)
        return _rate([s for s in _probes(record) if rolled_back.t <= s.t <= end])

    @figure()
    def job_monitors_would_fire(self, record: Record) -> str:
        """Seconds after the release at which each job monitor fires over the outage's probes: what
        the job monitors saw, or, in a profile without them, would have seen."""
        injected = record.injected
        outage = _probe_phase(record, "outage")
        fired: dict[str, float] = {}
        evaluate = AlertEvaluator(job_rules(), lambda rule, sample: fired.setdefault(rule.name, sample.t))
        for sample in outage:
            evaluate(sample)
        start = injected.t if injected else 0.0
        return ", ".join(f"{name} +{t - start:.1f} s" for name, t in fired.items()) or "none"

    @figure()
    def inbound_accepted(self, record: Record) -> int:
        return _recorded_imports(record).acked

    @figure()
    def emails_imported_lost(self, record: Record) -> int:
        return _recorded_imports(record).lost

    @figure()
    def emails_delivered_lost(self, record: Record) -> int:
        return _recorded_deliveries(record).lost

    @figure()
    def emails_delivered_duplicated(self, record: Record) -> int:
        return _recorded_deliveries(record).duplicated


class BrokenBackgroundJobFetch(BrokenBackgroundJobs):
    """Beyond the postmortem: a wrapper that raises after the job has been taken off the queue.

    SupportBee says every email was imported and sent in the end; this variant asks what a naive
    list queue would have lost to such a wrapper, and shows that a reliable queue loses nothing."""

    id = "supportbee-2016-broken-background-jobs-fetch"
    title = (
        "A Redis instrumentation deploy breaks the job fetch after the job has been taken "
        "(beyond the postmortem: emails can be lost)"
    )
    instrumentation = "break_fetch"
    # The delivery queue's runners lose what they took; an import taken and lost is an email
    # delivered to nobody as well, so the deliveries are where the loss always shows.
    vulnerable_symptoms = ("detection.within_60s", "emails_delivered.lost")


def _imports(history: History) -> MessageVerdict:
    return check_messages(history, effects.EMAIL_IMPORTED, op_kind=IMPORT_OP)


def _deliveries(history: History) -> MessageVerdict:
    # Every message on a ticket, typed in the app or imported by email, sends one email.
    return check_messages(history, effects.EMAIL_DELIVERED, op_kind=_MESSAGE_OPS)


def _recorded_imports(record: Record) -> MessageVerdict:
    return record.memo("imports", lambda: _imports(record.history))


def _recorded_deliveries(record: Record) -> MessageVerdict:
    return record.memo("deliveries", lambda: _deliveries(record.history))


def _missing_emails(history: History) -> int:
    return _imports(history).lost + _deliveries(history).lost


def _job_checks(verdict: MessageVerdict, label: str) -> list[Check]:
    return [c for c in verdict.to_checks(label) if c.name.rsplit(".", 1)[1] not in _NOT_JOB_INVARIANTS]


def settled_backlog(steady_pending: Iterable[int | None]) -> int:
    """How many jobs may wait in a healthy queue: twice the steady phase's peak, at least SETTLED_BACKLOG."""
    return max(SETTLED_BACKLOG, 2 * max((n or 0 for n in steady_pending), default=0))


def _settled(sample: ProbeSample, settled: int, oldest_s: float) -> bool:
    return (sample.jobs_pending or 0) <= settled and (sample.oldest_job_age_s or 0.0) < oldest_s


def _queues_settled(run: Run, settled: int) -> bool:
    """The newest probe sample is fresh and shows the queues back to their steady size."""
    sample = run.latest_sample()
    return (
        sample is not None
        and sample.t > run.timeline.elapsed() - 1.5
        and _settled(sample, settled, SETTLED_OLDEST_JOB_S)
    )


def _before_injection(run: Run) -> list[ProbeSample]:
    samples = run.prober.samples if run.prober else []
    return [s for s in samples if run.injected_at is None or s.t < run.injected_at]


def _probes(record: Record) -> list[ProbeSample]:
    return record.memo("probes", lambda: [ProbeSample.from_row(row) for row in record.stream(PROBE_STREAM)])


def _probe_phase(record: Record, phase: str) -> list[ProbeSample]:
    """Probe samples of the steady phase (before the release) or of the outage (release to rollback)."""
    injected, rolled_back = record.injected, record.mark(ROLLED_BACK)
    start = injected.t if injected else float("inf")
    if phase == "steady":
        return [s for s in _probes(record) if s.t < start]
    end = rolled_back.t if rolled_back else float("inf")
    return [s for s in _probes(record) if start <= s.t < end]


def _rate(samples: list[ProbeSample]) -> float | None:
    """Jobs completed per second between the first and the last sample that know the counter."""
    known = [s for s in samples if s.jobs_completed is not None]
    if len(known) < 2 or known[-1].at - known[0].at < 1:
        return None
    return round((known[-1].jobs_completed - known[0].jobs_completed) / (known[-1].at - known[0].at), 2)


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
