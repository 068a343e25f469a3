"""Alert rules over probe samples. The moment a rule first fires is when the team would know."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harness.observe.probes import ProbeSample


@dataclass(frozen=True)
class AlertRule:
    name: str
    description: str
    condition: Callable[[ProbeSample], bool]
    for_s: float = 0.0  # the condition must hold this long before the alert fires


def _older(value: float | None, limit: float) -> bool:
    return value is not None and value > limit


UPTIME = AlertRule("api_down", "the uptime check of the web app fails", lambda s: not s.api_up, for_s=3)
NOT_READY = AlertRule(
    "api_not_ready", "the api reports a dependency down", lambda s: not s.api_ready, for_s=5
)
CANARY = AlertRule(
    "canary_stale",
    "no canary message made it end to end for 20 s (dead-man switch)",
    lambda s: _older(s.canary_age_s, 20),
)
QUEUE_BACKLOG = AlertRule(
    "queue_backlog",
    "more than 5000 events waiting on the broker",
    lambda s: (s.queue_depth or 0) > 5000,
    for_s=10,
)
BROKER_UNREACHABLE = AlertRule(
    "broker_unreachable", "no broker node answers", lambda s: s.queue_depth is None, for_s=5
)
BROKER_ALARM = AlertRule(
    "broker_alarm", "a broker resource alarm blocks publishers", lambda s: bool(s.broker_alarms)
)
OUTBOX_BACKLOG = AlertRule(
    "outbox_backlog",
    "more than 500 events wait in the outbox",
    lambda s: (s.outbox_length or 0) > 500,
    for_s=5,
)
OUTBOX_AGE = AlertRule(
    "outbox_stale", "an event has waited in the outbox for over 30 s", lambda s: _older(s.outbox_age_s, 30)
)
WORKER_HEARTBEAT = AlertRule(
    "worker_heartbeat", "no worker heartbeat for 15 s", lambda s: _older(s.worker_heartbeat_age_s, 15)
)
JOB_AGE = AlertRule(
    "job_age", "the oldest background job waits over 30 s", lambda s: _older(s.oldest_job_age_s, 30)
)


# Background-job monitoring: what catches job runners that are broken while the web app is fine.
JOB_RUNNER_HEARTBEAT = AlertRule(
    "job_runner_heartbeat",
    "a live worker's job runner has not completed a loop for 15 s",
    lambda s: _older(s.job_runner_heartbeat_age_s, 15),
)
JOB_COMPLETION_STALLED = AlertRule(
    "job_completion_stalled",
    "jobs wait but fewer than 1 a second completes (10 s window)",
    lambda s: (s.jobs_pending or 0) > 0 and s.job_completion_rate is not None and s.job_completion_rate < 1.0,
    for_s=5,
)
CANARY_JOB = AlertRule(
    "canary_job_stale",
    "no canary email delivered by a background job for 20 s (dead-man switch)",
    lambda s: _older(s.canary_job_age_s, 20),
)


def default_rules() -> list[AlertRule]:
    return [
        UPTIME,
        NOT_READY,
        CANARY,
        QUEUE_BACKLOG,
        BROKER_UNREACHABLE,
        BROKER_ALARM,
        OUTBOX_BACKLOG,
        OUTBOX_AGE,
        WORKER_HEARTBEAT,
        JOB_AGE,
    ]


def job_rules() -> list[AlertRule]:
    """Monitoring of the background jobs: oldest job age, completion rate, runner heartbeats, canary job."""
    return [JOB_AGE, JOB_COMPLETION_STALLED, JOB_RUNNER_HEARTBEAT, CANARY_JOB]


def uptime_only() -> list[AlertRule]:
    """Monitoring that is only an HTTP uptime probe of the web app."""
    return [UPTIME]


class AlertEvaluator:
    """Feeds on samples; calls `on_fire(rule, sample)` the first time each rule fires."""

    def __init__(self, rules: list[AlertRule], on_fire: Callable[[AlertRule, ProbeSample], None]) -> None:
        self._rules = rules
        self._on_fire = on_fire
        self._since: dict[str, float] = {}
        self.fired: dict[str, float] = {}  # rule name -> run time (t) it first fired

    def __call__(self, sample: ProbeSample) -> None:
        for rule in self._rules:
            if rule.name in self.fired:
                continue
            try:
                holding = rule.condition(sample)
            except Exception:
                holding = False
            if not holding:
                self._since.pop(rule.name, None)
                continue
            since = self._since.setdefault(rule.name, sample.t)
            if sample.t - since >= rule.for_s:
                self.fired[rule.name] = sample.t
                self._on_fire(rule, sample)
