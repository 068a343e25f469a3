"""The event flood's checks read only the record: each is shown passing on a calm flood and failing
on the same record edited to carry the symptom it exists to catch."""

from __future__ import annotations

import time

import pytest

from faults.scenarios.helpscout_2017_event_flood import DRAIN_LIMIT_S, MIB, EventFlood
from harness.record.history import History
from harness.record.record import Record
from harness.record.timeline import TimelineEvent

TICKETS = 3
NODES = ("rabbit@rabbit1", "rabbit@rabbit2", "rabbit@rabbit3")


def _mark(record: Record, name: str, at: float, **data: object) -> None:
    t = at - record.meta["started_at"]
    record.timeline.append(TimelineEvent(t, at, "outage", "mark", name, {"mark": name, **data}))


def _broker(record: Record, at: float, used_mib: float, watermark_mib: float = 204.8) -> None:
    record.samples.setdefault("broker", []).append(
        {
            "t": at - record.meta["started_at"],
            "queued": 0,
            "memory": dict.fromkeys(NODES, int(used_mib * MIB)),
            "watermark": dict.fromkeys(NODES, int(watermark_mib * MIB)),
            "alarm": [],
        }
    )


@pytest.fixture
def record() -> Record:
    """A calm flood: every post answered at once, every view update in the tabs within 0.1 s,
    every ticket of the view closed 30 s after the bulk action."""
    started = time.time()
    record = Record({"scenario": EventFlood.id, "started_at": started - 10}, History(), [], {})
    _mark(record, "view_seeded", started - 5, tickets=TICKETS)
    _broker(record, started - 1, 75.0)
    _mark(record, "flood_started", started)
    for n in range(4):
        op = record.history.invoke(f"messages-{n}", "post_message", f"m{n}")
        op.ok(status=202)
        record.samples.setdefault("live_update", []).append({"message_id": f"m{n}", "at": time.time() + 0.1})
    _broker(record, started + 1, 80.0)
    _mark(record, "bulk_answered", started + 2, outcome="ok", events=TICKETS, seconds=2.0)
    _mark(record, "flood_window_closed", time.time() + 1)
    record.samples["effects"] = [{"kind": "bulk_applied", "second": int(started) + 30, "count": TICKETS}]
    _mark(record, "bulk_drain_ended", started + 40, ended="drained", closed=TICKETS)
    return record


def _status(record: Record) -> dict[str, str]:
    return {check.name: check.status for check in EventFlood().checks(record)}


def test_a_calm_flood_passes_every_check(record):
    assert set(_status(record).values()) == {"passed"}


def _reopen_window(record: Record) -> None:
    """Close the flood's window after the posts the test just added."""
    record.timeline.remove(record.mark("flood_window_closed"))
    _mark(record, "flood_window_closed", time.time() + 1)


def test_a_post_that_timed_out_during_the_flood_fails_the_error_check(record):
    record.history.invoke("messages-9", "post_message", "m9").info("timeout")
    _reopen_window(record)

    assert _status(record)["normal_traffic_errors_during_flood"] == "failed"


def test_a_post_never_answered_fails_the_error_and_latency_checks(record):
    record.history.invoke("messages-9", "post_message", "m9")
    _reopen_window(record)

    status = _status(record)

    assert status["normal_traffic_errors_during_flood"] == "failed"
    assert status["normal_traffic_p99_during_flood"] == "failed"


def test_a_memory_alarm_or_a_blocked_publisher_fails_no_publisher_blocked(record):
    _mark(record, "publisher_blocked", time.time(), connection="api (172.18.0.9:4242)", service="api")

    assert _status(record)["no_publisher_blocked"] == "failed"


def test_view_updates_that_reach_the_tabs_late_fail_live_updates_flowing(record):
    for row in record.samples["live_update"]:
        row["at"] += 30

    assert _status(record)["live_updates_flowing"] == "failed"


def test_view_updates_that_never_reach_the_tabs_fail_live_updates_flowing(record):
    del record.samples["live_update"][1:]

    assert _status(record)["live_updates_flowing"] == "failed"


def test_a_ticket_the_store_does_not_hold_closed_fails_the_no_loss_and_the_drain_checks(record):
    drained = record.mark("bulk_drain_ended")
    record.timeline.remove(drained)
    _mark(record, "bulk_drain_ended", drained.at, ended="stalled", closed=TICKETS - 1)

    status = _status(record)

    assert status["bulk_events_all_applied"] == "failed"
    assert status["bulk_backlog_drained"] == "failed"


def test_a_last_bulk_update_past_ten_minutes_fails_the_drain_check(record):
    started = record.mark_at("flood_started")
    record.samples["effects"].append(
        {"kind": "bulk_applied", "second": int(started + DRAIN_LIMIT_S) + 1, "count": 1}
    )

    status = _status(record)

    assert status["bulk_backlog_drained"] == "failed"
    assert status["bulk_events_all_applied"] == "passed"


def test_the_margin_is_the_watermark_minus_the_peak_and_goes_negative_past_it(record):
    flood = EventFlood()
    assert flood.peak_to_watermark_margin_mib(record).value == pytest.approx(204.8 - 80.0, abs=0.1)

    _broker(record, record.mark_at("flood_started") + 2, 210.0)

    assert flood.peak_to_watermark_margin_mib(record).value == pytest.approx(-5.2, abs=0.1)
    assert flood.broker_memory_at_rest_mib(record) == 75.0
