"""The history records operations and observations faithfully, cheaply, and survives a JSONL round trip."""

from __future__ import annotations

import json
import threading

import pytest

from harness.record import history as history_module
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


def _varied_history() -> History:
    history = History()
    for n in range(40):
        op = history.invoke(f"c{n % 3}", "post_message", f"m{n}", ticket_id=n % 4 or None, attempt=1)
        if n % 5:
            op.ok(status=202)
        history.observe("processed", f"m{n}", 1_700_000_000.0 + n, **({"ticket_id": n % 4} if n % 2 else {}))
    return history


def test_a_file_read_in_pieces_gives_the_history_read_at_once(tmp_path, monkeypatch):
    history = _varied_history()
    path = tmp_path / "history.jsonl"
    with history.stream(path) as stream:  # pending operations: invoke lines, then complete lines
        history.invoke("c9", "post_message", "late", ticket_id=9)
        stream.flush()
        history._complete(40, 1, None, {"status": 202})

    monkeypatch.setattr(history_module, "_CHUNK_BYTES", 64)  # a piece every line or two
    in_pieces = History.read_jsonl(path)
    monkeypatch.undo()
    at_once = History.read_jsonl(path)

    assert list(in_pieces.ops()) == list(at_once.ops()) == list(history.ops())
    assert list(in_pieces.observations()) == list(at_once.observations()) == list(history.observations())


def test_a_bad_line_in_a_later_piece_is_named(tmp_path, monkeypatch):
    path = tmp_path / "history.jsonl"
    _varied_history().write_jsonl(path)
    lines = path.read_text().splitlines()
    lines[30] = lines[30].replace('"meta":{', '"meta":[{').replace("},", "}],", 1)  # meta not an object
    path.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(history_module, "_CHUNK_BYTES", 256)

    with pytest.raises(HistoryError, match=r"history.jsonl:31"):
        History.read_jsonl(path)


def test_an_operations_meta_read_from_a_file_keeps_its_ticket_apart(tmp_path):
    path = tmp_path / "history.jsonl"
    op_line = '{"type":"%s","i":%d,"process":"c","kind":"k","key":"%s","wall":1.0,"mono_ns":1,"meta":%s%s}\n'
    done = ',"outcome":"ok","cwall":2.0,"cmono_ns":2,"error":null'
    path.write_text(
        op_line % ("op", 0, "a", '{"ticket_id":null,"status":202}', done)
        + op_line % ("invoke", 1, "b", '{"attempt":1}', "")
        + op_line % ("invoke", 2, "c", "null", "")
        + '{"type":"complete","i":1,"outcome":"ok","wall":3.0,"mono_ns":3,"meta":{"ticket_id":7}}\n'
        + '{"type":"complete","i":2,"outcome":"fail","wall":3.0,"mono_ns":3,"error":"x",'
        + '"meta":{"status":400}}\n'
    )

    loaded = History.read_jsonl(path)

    a, b, c = loaded.ops()
    assert (a.meta, a.ticket_id) == ({"status": 202}, None)  # a null ticket is no ticket
    assert (b.meta, b.ticket_id, b.outcome) == ({"attempt": 1, "ticket_id": 7}, 7, "ok")
    assert (c.meta, c.outcome, c.error) == ({"status": 400}, "fail", "x")
    assert loaded.op_columns().ticket == [None, 7, None]


def test_a_history_read_back_writes_the_same_file(tmp_path, monkeypatch):
    history = _varied_history()
    history.invoke("c1", "post_message", "pending", ticket_id=2)
    first, second, third = (tmp_path / f"{n}.jsonl" for n in range(3))
    history.write_jsonl(first)

    History.read_jsonl(first).write_jsonl(second)
    monkeypatch.setattr(history_module, "_LINES_PER_ENCODE", 3)  # encoded a few lines at a time
    history.write_jsonl(third)

    assert first.read_bytes() == second.read_bytes() == third.read_bytes()


def test_operations_pending_at_one_flush_get_their_completion_at_a_later_one(tmp_path):
    history = History()
    path = tmp_path / "history.jsonl"
    with history.stream(path) as stream:
        early = [history.invoke("c", "post_message", f"early{n}") for n in range(3)]
        stream.flush()
        early[1].ok()
        history.invoke("c", "post_message", "new").ok()  # invoked and completed between flushes
        early[0].info("timeout")
        stream.flush()

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(line["type"], line["i"]) for line in lines] == [
        ("invoke", 0),
        ("invoke", 1),
        ("invoke", 2),
        ("op", 3),
        ("complete", 1),
        ("complete", 0),
    ]
    assert list(History.read_jsonl(path).ops()) == list(history.ops())


def test_a_meta_column_gives_each_operations_field_recorded_or_read_back(tmp_path):
    history = _varied_history()
    history.invoke("c", "create_ticket").ok(ticket_id=99, status=201)  # meta given at completion
    history.invoke("c", "post_message", "odd", status="status", attempt=2)  # a value named like a field
    path = tmp_path / "history.jsonl"
    history.write_jsonl(path)
    loaded = History.read_jsonl(path)

    for h in (history, loaded):
        for name in ("status", "attempt", "ticket_id", "absent"):
            assert h.op_meta_column(name) == [op.meta.get(name) for op in h.ops()]
