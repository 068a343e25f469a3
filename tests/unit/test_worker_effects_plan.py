"""The atomic step the worker runs per event: which keys it touches and which switches shape it."""

import dataclasses
import json

import pytest

from services.common import effects, keys
from services.common.config import Settings
from services.common.events import (
    MESSAGE_CREATED,
    TICKET_BULK_UPDATED,
    Event,
    EventError,
    decode_batch,
    encode_batch,
)
from services.worker.apply import DEFAULT_VIEW, bulk_changes, script_call
from services.worker.jobs import EMAIL_DELIVERY, Job

HARDENED = Settings()
VULNERABLE = dataclasses.replace(HARDENED, idempotent_consumer=False, reliable_jobs=False)

# Positions of the message.created script's arguments.
GUARD, MESSAGE_ID, PROCESSED_EFFECT, BOT_EFFECT, VIEW, VIEW_EFFECT, JOB_MODE, JOB = 0, 2, 3, 4, 5, 6, 7, 8


def _message(**data) -> Event:
    return Event(MESSAGE_CREATED, 42, event_id="ev-1", message_id="msg-1", data=data)


def _pairs(flat_json: str) -> dict[str, str]:
    flat = json.loads(flat_json)
    return dict(zip(flat[::2], flat[1::2], strict=True))


def test_the_idempotent_consumer_guards_the_step_with_the_events_processed_marker():
    call = script_call(_message(), HARDENED)
    assert call.keys[0] == keys.processed_event("ev-1")
    assert call.args[GUARD] == "1"


def test_without_the_idempotent_consumer_a_redelivered_event_applies_again():
    assert script_call(_message(), VULNERABLE).args[GUARD] == "0"


def test_a_message_is_appended_to_its_tickets_thread_and_logged_as_processed():
    call = script_call(_message(), HARDENED)
    assert keys.ticket_thread(42) in call.keys
    assert call.args[MESSAGE_ID] == "msg-1"
    processed = _pairs(call.args[PROCESSED_EFFECT])
    assert processed["kind"] == effects.PROCESSED
    assert (processed["event_id"], processed["ticket_id"], processed["message_id"]) == ("ev-1", "42", "msg-1")


def test_the_email_delivery_job_is_queued_in_the_same_step():
    job = Job(EMAIL_DELIVERY, {"message_id": "msg-1"}, job_id="job-1")
    reliable = script_call(_message(), HARDENED, job)
    assert keys.JOBS_EMAIL in reliable.keys
    assert reliable.args[JOB_MODE] == "stream"
    assert _pairs(reliable.args[JOB])["job_id"] == "job-1"
    naive = script_call(_message(), VULNERABLE, job)
    assert naive.args[JOB_MODE] == "list"
    assert Job.from_json(naive.args[JOB]) == job


def test_only_a_bot_conversation_gets_an_automated_reply():
    assert script_call(_message(), HARDENED).args[BOT_EFFECT] == ""
    reply = _pairs(script_call(_message(bot=True), HARDENED).args[BOT_EFFECT])
    assert reply["kind"] == effects.BOT_REPLY


def test_the_view_count_goes_to_the_events_view_or_the_inbox():
    assert script_call(_message(view="urgent"), HARDENED).args[VIEW] == "urgent"
    call = script_call(_message(), HARDENED)
    assert call.args[VIEW] == DEFAULT_VIEW
    assert _pairs(call.args[VIEW_EFFECT])["kind"] == effects.VIEW_COUNT_UPDATED


def test_a_message_event_without_a_message_id_cannot_apply():
    with pytest.raises(EventError):
        script_call(Event(MESSAGE_CREATED, 1), HARDENED)


def test_a_bulk_event_changes_the_ticket_and_logs_it():
    event = Event(TICKET_BULK_UPDATED, 9, event_id="bulk-1", data={"action": "close"})
    call = script_call(event, HARDENED)
    assert call.keys[:2] == [keys.processed_event("bulk-1"), keys.ticket(9)]
    assert _pairs(call.args[2]) == {"status": "closed"}
    assert _pairs(call.args[3])["kind"] == effects.BULK_APPLIED


@pytest.mark.parametrize(
    ("data", "changes"),
    [
        ({"action": "close"}, {"status": "closed"}),
        ({"action": "reopen"}, {"status": "open"}),
        ({"action": "tag", "tag": "vip"}, {"tag": "vip"}),
        ({"status": "pending"}, {"status": "pending"}),
    ],
)
def test_each_bulk_action_of_the_api_sets_its_ticket_field(data, changes):
    assert bulk_changes(Event(TICKET_BULK_UPDATED, 1, data=data)) == changes


@pytest.mark.parametrize("data", [{"action": "explode"}, {"action": "tag"}, {}])
def test_a_bulk_event_the_worker_cannot_apply_is_malformed(data):
    with pytest.raises(EventError):
        bulk_changes(Event(TICKET_BULK_UPDATED, 1, data=data))


def test_a_bulk_batch_travels_as_one_message_and_comes_back_as_its_events_in_order():
    events = [Event(TICKET_BULK_UPDATED, n, data={"action": "close"}) for n in range(1, 101)]
    decoded, problems = decode_batch(encode_batch([event.encode() for event in events]))
    assert decoded == events
    assert problems == []


def test_a_malformed_line_of_a_batch_is_named_and_the_other_events_survive():
    good = [Event(TICKET_BULK_UPDATED, n, data={"action": "close"}) for n in (1, 2)]
    body = encode_batch([good[0].encode(), b"{not json", good[1].encode()])
    decoded, problems = decode_batch(body)
    assert decoded == good
    assert [str(problem).split(":")[0] for problem in problems] == ["line 2 of the batch"]
