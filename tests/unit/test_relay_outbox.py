"""What the relay makes of outbox entries: their route, the backlog age, what a batch marks as sent."""

import dataclasses

import pytest

from services.common import broker
from services.common.config import Settings
from services.common.events import MESSAGE_CREATED, TICKET_BULK_UPDATED, Event
from services.relay.outbox import BatchProgress, age_seconds, stream_id_ms, to_entry

HARDENED = Settings()
NOT_ISOLATED = dataclasses.replace(HARDENED, bulk_isolation=False)


def _fields(event: Event) -> dict[str, str]:
    return {"event": event.encode().decode()}


def test_a_stream_id_carries_the_millisecond_it_was_appended():
    assert stream_id_ms("1700000000123-4") == 1700000000123


def test_backlog_age_is_measured_from_the_entry_id():
    assert age_seconds("1700000000000-0", now=1700000012.5) == pytest.approx(12.5)
    assert age_seconds("1700000000000-0", now=1699999999.0) == 0.0  # clock skew never goes negative


def test_a_message_event_goes_to_the_ordinary_queue_and_must_keep_its_order():
    entry = to_entry("1-0", _fields(Event(MESSAGE_CREATED, 1, message_id="m")), HARDENED)
    assert entry.routing_key == broker.EVENTS_ROUTING_KEY
    assert not entry.deferrable


def test_a_bulk_event_goes_to_the_bounded_bulk_queue_and_may_wait_when_it_is_full():
    entry = to_entry("1-0", _fields(Event(TICKET_BULK_UPDATED, 1, data={"status": "closed"})), HARDENED)
    assert entry.routing_key == broker.BULK_ROUTING_KEY
    assert entry.deferrable


def test_without_isolation_bulk_events_share_the_ordinary_queue():
    entry = to_entry("1-0", _fields(Event(TICKET_BULK_UPDATED, 1)), NOT_ISOLATED)
    assert entry.routing_key == broker.EVENTS_ROUTING_KEY
    assert not entry.deferrable


def test_the_published_body_is_the_event_exactly_as_spooled():
    event = Event(MESSAGE_CREATED, 3, message_id="m-3")
    assert to_entry("1-0", _fields(event), HARDENED).body == event.encode()


def test_an_undecodable_event_is_still_published_so_the_worker_rejects_and_counts_it():
    entry = to_entry("1-0", {"event": "{not json"}, HARDENED)
    assert entry.body == b"{not json"
    assert entry.routing_key == broker.EVENTS_ROUTING_KEY


def test_an_entry_without_an_event_has_nothing_to_publish():
    assert to_entry("1-0", {"something": "else"}, HARDENED) is None


def test_the_cursor_stops_at_the_last_entry_handled_before_a_failure():
    progress = BatchProgress()
    progress.mark_sent("1-0")
    progress.mark_deferred("2-0", {"event": "bulk"})
    progress.mark_sent("3-0")
    # "4-0" failed: it is neither handled nor behind the cursor, so the replay starts with it.
    assert progress.last_id == "3-0"
    assert progress.sent == ["1-0", "3-0"]
    assert sorted(progress.handled_ids()) == ["1-0", "2-0", "3-0"]


def test_a_batch_that_handled_nothing_leaves_the_cursor_alone():
    assert BatchProgress().last_id is None
