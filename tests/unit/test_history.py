"""The history records operations and observations faithfully, cheaply, and survives a JSONL round trip."""

from __future__ import annotations

import json
import threading

import pytest

from harness.record.history import History, HistoryError


def test_an_operation_is_invoked_then_completed_once_with_its_metadata():
    history = History()
    op = history.invoke("client-1", "post_message", "m1", ticket_id=7, attempt=1)
    op.ok(status=202)

    record = op.record()
    assert (record.process, record.kind, record.key, record.outcome) == (
        "client-1",
        "post_message",
        "m1",
        "ok",
    )
    assert record.meta == {"attempt": 1, "status": 202, "ticket_id": 7}
    assert record.ticket_id == 7
    assert record.complete_mono_ns >= record.invoke_mono_ns
    assert record.complete_wall >= record.invoke_wall > 1_600_000_000


def test_failed_and_unknown_outcomes_keep_their_error():
    history = History()
    history.invoke("c", "post_message", "m1").fail("400 bad request", status=400)
    history.invoke("c", "post_message", "m2").info("timeout after 5s")

    failed, unknown = history.ops()
    assert (failed.outcome, failed.error, failed.meta) == ("fail", "400 bad request", {"status": 400})
    assert (unknown.outcome, unknown.error) == ("info", "timeout after 5s")


def test_an_operation_never_completed_stays_pending():
    history = History()
    history.invoke("c", "post_message", "m1")

    (record,) = history.ops()
    assert record.outcome is None
    assert record.complete_wall is None


def test_completing_an_operation_twice_is_a_harness_bug():
    history = History()
    op = history.invoke("c", "post_message", "m1")
    op.ok()
    with pytest.raises(HistoryError, match="already completed as ok"):
        op.info("late timeout")


def test_observations_keep_kind_key_time_and_metadata_in_recording_order():
    history = History()
    history.observe("processed", "m1", 100.5, ticket_id=7)
    history.observe("live_update", "views:3", 101.0, client="a", channel="views", seq=3)

    first, second = history.observations()
    assert (first.kind, first.key, first.at, first.meta) == ("processed", "m1", 100.5, {"ticket_id": 7})
    assert second.meta == {"client": "a", "channel": "views", "seq": 3}
    assert [o.key for o in history.observations("live_update")] == ["views:3"]


def test_concurrent_recording_from_threads_loses_nothing():
    history = History()

    def record(worker: int) -> None:
        for n in range(2_000):
            history.invoke(f"w{worker}", "post_message", f"{worker}-{n}").ok()
            history.observe("processed", f"{worker}-{n}", 1.0)

    threads = [threading.Thread(target=record, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert history.op_count == 16_000
    assert history.observation_count == 16_000
    columns = history.op_columns()
    assert len(set(columns.key)) == 16_000
    assert all(code == 1 for code in columns.outcome)
    # index order is invocation order
    assert list(columns.invoke_mono_ns) == sorted(columns.invoke_mono_ns)


def test_jsonl_round_trip_preserves_every_field(tmp_path):
    history = History()
    history.invoke("c1", "create_ticket").ok(ticket_id=7, status=201)
    history.invoke("c1", "post_message", "m1", ticket_id=7, attempt=1).ok(status=202)
    history.invoke("c2", "post_message", "m2", ticket_id=7).fail("503", status=503)
    history.invoke("c2", "post_message", "m3", ticket_id=7).info("timeout")
    history.invoke("c3", "post_message", "m4")
    history.observe("processed", "m1", 1_700_000_000.123456, ticket_id=7)
    history.observe(
        "live_update", "views:1", 1_700_000_001.5, client="a", channel="views", seq=1, reset=False
    )
    path = tmp_path / "history.jsonl"

    history.write_jsonl(path)
    loaded = History.read_jsonl(path)

    assert list(loaded.ops()) == list(history.ops())
    assert list(loaded.observations()) == list(history.observations())
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    # An operation already complete when written takes one line; the pending one waits for its own.
    assert [line["type"] for line in lines] == ["op"] * 4 + ["invoke"] + ["observation"] * 2
    assert lines[0]["meta"] == {"status": 201, "ticket_id": 7}


def test_a_stream_appends_only_what_was_recorded_since_its_last_flush(tmp_path):
    history = History()
    path = tmp_path / "history.jsonl"
    with history.stream(path) as stream:
        first = history.invoke("c1", "post_message", "m1", ticket_id=1)
        stream.flush()
        assert [json.loads(line)["type"] for line in path.read_text().splitlines()] == ["invoke"]
        first.ok(status=202)
        history.observe("processed", "m1", 2.0, ticket_id=1)
        stream.flush()
        stream.flush()  # nothing new: nothing written twice

    assert [json.loads(line)["type"] for line in path.read_text().splitlines()] == [
        "invoke",
        "complete",
        "observation",
    ]
    assert list(History.read_jsonl(path).ops()) == list(history.ops())


def test_a_history_cut_mid_line_reads_as_the_history_up_to_the_cut(tmp_path):
    history = History()
    history.invoke("c1", "post_message", "m1").ok(status=202)
    history.invoke("c1", "post_message", "m2").ok(status=202)
    path = tmp_path / "history.jsonl"
    history.write_jsonl(path)
    path.write_text(path.read_text()[:-25])  # a kill -9 in the middle of the last write

    loaded, torn = History.read_jsonl_tolerant(path)

    assert torn is not None and "history.jsonl:2" in torn
    assert [(op.key, op.outcome) for op in loaded.ops()] == [("m1", "ok")]  # m2 never reached the disk
    with pytest.raises(HistoryError, match=r"history.jsonl:2"):
        History.read_jsonl(path)


def test_reading_a_malformed_history_names_the_line(tmp_path):
    path = tmp_path / "history.jsonl"
    observation = '{"type": "observation", "kind": "processed", "key": "m1", "at": 1.0}\n'
    path.write_text(observation + '{"type": "invoke"}\n' + observation)
    with pytest.raises(HistoryError, match=r"history.jsonl:2"):
        History.read_jsonl(path)


def test_columns_of_one_kind_come_in_recording_order_among_many_others():
    history = History()
    for n in range(300):
        history.observe("live_update", f"views:{n}", float(n), seq=n)
        if n % 100 == 0:
            history.observe("canary_processed", f"c{n}", float(n), canary=n)
    canaries = history.observation_columns("canary_processed")
    assert canaries.key == ["c0", "c100", "c200"]
    assert list(canaries.at) == [0.0, 100.0, 200.0]
    assert [meta["canary"] for meta in canaries.meta] == [0, 100, 200]
    assert len(history.observation_columns("live_update").key) == 300
    assert history.observation_columns("never_seen").key == []
