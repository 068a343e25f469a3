"""The gateway-throttling checks read the record only: built here second by second, each check is
shown passing on a run that kept its promise and failing on one that broke it."""

from __future__ import annotations

from typing import Any

import pytest

from faults.scenarios.proto_2023_gateway_throttling import GatewayThrottling
from harness.record.history import History
from harness.record.record import Record
from harness.record.timeline import TimelineEvent
from harness.workloads.pollers import LARGE, ORDINARY

T0 = 1_000_000.0
MARKS = {  # seconds after T0
    "load": 0.0,
    "release": 10.0,
    "release_live": 12.0,
    "fix": 30.0,
    "fix_restarted": 31.0,
    "fix_live": 32.0,
    "rollback": 44.0,
    "rollback_live": 46.0,
}
AFTER_RECOVERY_S = 8.0
END = MARKS["rollback_live"] + AFTER_RECOVERY_S


def _row(t: float, size: str, account: str, sent: int, ok: int, ms: list[float], **outcomes: int) -> dict:
    return {"t": int(T0 + t), "size": size, "account": account, "sent": sent, "first": sent, "ok": ok,
            "outcomes": outcomes, "ms": ms}  # fmt: skip


def _ordinary(t: float, ms: float = 20.0, polls: int = 20) -> dict:
    """Ten ordinary agents polling twice a second, every poll answered in `ms`."""
    return _row(t, ORDINARY, ORDINARY, polls, polls, [ms] * polls)


def _refused_large(t: float) -> dict:
    """The large account's poll refused fast (the deadline's 503)."""
    return _row(t, LARGE, "big0", 1, 0, [1100.0], **{"503": 1})


def _healthy_second(t: int) -> list[dict[str, Any]]:
    return [_ordinary(t), _row(t, LARGE, "big0", 1, 1, [40.0])]


def _record(**changes: Any) -> Record:
    """A run that kept every promise; `changes` replace its rows per second ({second: rows}),
    its bot replies (`bot_replies`) or the version deployed after the rollback (`deployed`)."""
    rows_by_second = {t: _healthy_second(t) for t in range(int(END))}
    for t in range(int(MARKS["release_live"]), int(MARKS["fix"])):  # the release: a fast refusal
        rows_by_second[t] = [_ordinary(t), _refused_large(t)]
    rows_by_second.update(changes.get("rows", {}))
    timeline = [TimelineEvent(at, T0 + at, "run", "mark", name, {"mark": name}) for name, at in MARKS.items()]
    timeline[0].data["client_timeout_s"] = 2.0
    timeline[-1].data["deployed"] = changes.get("deployed", "batched")
    history = History()
    for at in changes.get("bot_replies", [T0 + t + 0.5 for t in range(int(END))]):
        history.observe("bot_reply", "ticket-1", at=at)
    samples = {"poll": [row for t in sorted(rows_by_second) for row in rows_by_second[t]], "store": []}
    meta = {"scenario": GatewayThrottling.id, "profile": "hardened", "seed": 1,
            "timing": {"after_recovery_s": AFTER_RECOVERY_S}}  # fmt: skip
    return Record(meta, history, timeline, samples)


def _status(record: Record, name: str) -> str:
    return next(c.status for c in GatewayThrottling().checks(record) if c.name == name)


def test_a_run_that_kept_every_promise_passes_every_check():
    checks = GatewayThrottling().checks(_record())
    assert {c.name: c.status for c in checks} == {e.name: "passed" for e in GatewayThrottling.expectations}


def test_the_restart_releasing_the_pile_fails_the_request_rate():
    herd = {t: [_ordinary(t, polls=70)] for t in (31, 32, 33)}
    assert _status(_record(rows=herd), "restart.request_rate") == "failed"


def test_large_accounts_left_hanging_fail_even_when_ordinary_agents_are_served():
    hanging = {t: [_ordinary(t), _row(t, LARGE, "big0", 1, 0, [], timeout=1)] for t in range(12, 30)}
    assert _status(_record(rows=hanging), "large_accounts.answered_promptly") == "failed"
    assert _status(_record(rows=hanging), "ordinary_agents.p99") == "passed"


def test_ordinary_agents_waiting_behind_the_release_fail_their_service_level():
    queued = {t: [_ordinary(t, ms=900.0)] for t in range(12, 16)}
    assert _status(_record(rows=queued), "ordinary_agents.p99") == "failed"


def test_chatbots_silent_through_the_fix_fail_their_gap():
    replies = [T0 + t + 0.5 for t in range(int(END)) if not 30 <= t < 40]
    assert _status(_record(bot_replies=replies), "chatbot.longest_gap") == "failed"


@pytest.mark.parametrize("broken", ["still the release", "large accounts unserved"])
def test_a_rollback_that_leaves_the_release_or_an_unserved_account_fails(broken):
    if broken == "still the release":
        record = _record(deployed="per_ticket")
    else:
        unserved = {t: [_ordinary(t), _refused_large(t)] for t in range(44, int(END))}
        record = _record(rows=unserved)
    assert _status(record, "rollback.works") == "failed"


def test_a_run_that_never_rolled_back_cannot_pass_the_checks_that_need_it():
    record = _record()
    record.timeline = [e for e in record.timeline if e.data.get("mark") != "rollback_live"]
    assert _status(record, "rollback.works") != "passed"
    assert _status(record, "ordinary_agents.p99") != "passed"
