"""Background jobs as stored in Redis: their encoding, how the queue's age is read, and which
heartbeats are stale."""

import json

import pytest

from services.worker.__main__ import stale_beats
from services.worker.jobs import EMAIL_DELIVERY, EMAIL_IMPORT, Job, JobError, age_from_entry_id, list_job_age


def test_a_job_survives_the_trip_through_a_stream_entry():
    job = Job(EMAIL_IMPORT, {"ticket_id": 3, "body": "hello"}, job_id="j1", enqueued_at=12.5)
    back = Job.from_fields(job.to_fields(), entry_id="5-0")
    assert (back.kind, back.payload, back.job_id, back.enqueued_at, back.entry_id) == (
        EMAIL_IMPORT,
        {"ticket_id": 3, "body": "hello"},
        "j1",
        12.5,
        "5-0",
    )


def test_a_job_survives_the_trip_through_a_list_item():
    job = Job(EMAIL_DELIVERY, {"message_id": "m"}, job_id="j2", enqueued_at=1.0)
    assert Job.from_json(job.to_json()) == job


def test_every_job_gets_its_own_id_so_each_enqueued_delivery_is_a_distinct_email():
    assert Job(EMAIL_DELIVERY, {}).job_id != Job(EMAIL_DELIVERY, {}).job_id


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "email_delivery", "payload": "{}"},  # no job id
        {"job_id": "j", "kind": "sms", "payload": "{}"},  # unknown kind
        {"job_id": "j", "kind": "email_delivery", "payload": "[1]"},  # payload not an object
        {"job_id": "j", "kind": "email_delivery", "payload": "{broken"},
        {"job_id": "j", "kind": "email_delivery", "payload": "{}", "enqueued_at": "soon"},
    ],
)
def test_malformed_jobs_are_recognised(fields):
    with pytest.raises(JobError):
        Job.from_fields(fields)


def test_a_list_item_that_is_not_json_is_a_malformed_job():
    with pytest.raises(JobError):
        Job.from_json("not json")


def test_the_oldest_stream_job_is_as_old_as_its_entry_id():
    assert age_from_entry_id("1700000000000-0", now=1700000030.0) == pytest.approx(30.0)


def test_the_oldest_list_job_is_as_old_as_its_enqueue_time():
    raw = json.dumps({"job_id": "j", "kind": "email_delivery", "payload": "{}", "enqueued_at": "100.0"})
    assert list_job_age(raw, now=160.0) == pytest.approx(60.0)
    assert list_job_age(None, now=160.0) == 0.0


def test_heartbeats_of_workers_gone_for_five_minutes_are_pruned_and_live_ones_kept():
    now = 10_000.0
    beats = {
        "worker-old": f"{now - 301:.3f}",  # a container recreated under a new id
        "worker-old/jobs-0": f"{now - 400:.3f}",
        "worker-new": f"{now - 0.5:.3f}",
        "worker-new/jobs-0": f"{now - 120:.3f}",  # a stuck runner is a symptom to keep, not garbage
        "garbled": "not a time",
    }
    assert sorted(stale_beats(beats, now)) == ["garbled", "worker-old", "worker-old/jobs-0"]
