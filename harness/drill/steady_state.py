"""The steady-state hypothesis a drill is judged against, and the clock that reads it.

The hypothesis is what an on-call engineer would call "the service is fine": the api is up and
ready, a canary message makes it end to end, the broker answers without a resource alarm, the
worker beats, and background jobs are neither stale nor piling up. The clock watches the probe
samples after the fault: the service is *mitigated* the first time the hypothesis holds again
after it broke, and *recovered* once it has held without a break for `hold_s`.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.observe.probes import ProbeSample

CANARY_FRESH_S = 15.0  # a canary processed this recently: messages flow end to end
WORKER_FRESH_S = 15.0
JOB_AGE_LIMIT_S = 30.0
OUTBOX_AGE_LIMIT_S = 30.0
# The hypothesis cannot see a break sooner than its slowest staleness limit after the fault.
SLOWEST_SIGNAL_S = max(CANARY_FRESH_S, WORKER_FRESH_S, JOB_AGE_LIMIT_S, OUTBOX_AGE_LIMIT_S)


def violations(sample: ProbeSample) -> list[str]:
    """What in this sample breaks the steady-state hypothesis (empty: it holds)."""
    found = []
    if not sample.api_up:
        found.append("api down")
    elif not sample.api_ready:
        found.append("api not ready")
    if sample.canary_age_s is None or sample.canary_age_s > CANARY_FRESH_S:
        found.append("canary not processed end to end")
    if sample.queue_depth is None:
        found.append("broker unreachable")
    if sample.broker_alarms:
        found.append("broker resource alarm")
    if sample.worker_heartbeat_age_s is None or sample.worker_heartbeat_age_s > WORKER_FRESH_S:
        found.append("worker heartbeat stale")
    if (sample.oldest_job_age_s or 0.0) > JOB_AGE_LIMIT_S:
        found.append("background jobs stale")
    if (sample.outbox_age_s or 0.0) > OUTBOX_AGE_LIMIT_S:
        found.append("outbox not draining")
    return found


@dataclass
class RecoveryClock:
    """Fed the probe samples taken after the fault began (run time `t`), in order.

    `broke_at`: the first sample that broke the hypothesis. `mitigated_at`: the first sample after
    that in which it held again. `recovered_at`: the start of the first unbroken stretch of
    `hold_s` in which it held (the clock stops there, confirmed `hold_s` later). Once the outage
    phase is over (`outage_over`), a fault the system absorbed without ever breaking the
    hypothesis counts as recovered: there was nothing to recover from. Absorbed, not merely not yet
    seen: the hypothesis must have held for SLOWEST_SIGNAL_S + `hold_s` since the fault, since a
    dead worker, say, shows only once its heartbeat is older than its limit.
    """

    hold_s: float
    broke_at: float | None = None
    mitigated_at: float | None = None
    recovered_at: float | None = None
    holding_since: float | None = None
    last_violations: tuple[str, ...] = ()
    outage_over: bool = False
    first_t: float | None = None

    def feed(self, sample: ProbeSample) -> None:
        if self.first_t is None:
            self.first_t = sample.t
        found = violations(sample)
        self.last_violations = tuple(found)
        if self.recovered_at is not None:
            return
        if found:
            if self.broke_at is None:
                self.broke_at = sample.t
            self.holding_since = None
            return
        if self.holding_since is None:
            self.holding_since = sample.t
        if self.broke_at is not None and self.mitigated_at is None:
            self.mitigated_at = sample.t
        absorbed = self.outage_over and sample.t - self.first_t >= SLOWEST_SIGNAL_S + self.hold_s
        if sample.t - self.holding_since >= self.hold_s and (self.broke_at is not None or absorbed):
            self.recovered_at = self.holding_since
            if self.mitigated_at is None:
                self.mitigated_at = self.holding_since

    @property
    def recovered(self) -> bool:
        return self.recovered_at is not None
