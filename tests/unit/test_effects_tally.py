"""Effects a scenario names as tallied are counted per kind and second into the record's `effects`
stream, not kept one history row each; every other effect is still one observation."""

from __future__ import annotations

from harness.observe.observer import EffectsObserver
from harness.record.history import History


def _observer(rows: list[dict]) -> tuple[EffectsObserver, History]:
    history = History()
    observer = EffectsObserver(
        "redis://127.0.0.1:1", history, tallied=("bulk_applied",), sample=lambda _s, **row: rows.append(row)
    )
    return observer, history


def _effect(kind: str, at: float, key: str = "e") -> dict[str, str]:
    return {"kind": kind, "at": str(at), "event_id": key, "ticket_id": "7"}


def test_tallied_effects_become_one_row_per_second_and_no_history_rows():
    rows: list[dict] = []
    observer, history = _observer(rows)
    for at in (100.1, 100.5, 100.9, 101.2):
        observer._observe(_effect("bulk_applied", at))
    observer._observe(_effect("processed", 100.3, key="m1"))

    observer._sample_tally(closed_before=float("inf"))

    assert rows == [
        {"kind": "bulk_applied", "second": 100, "count": 3},
        {"kind": "bulk_applied", "second": 101, "count": 1},
    ]
    assert len(history.observation_columns("bulk_applied").at) == 0
    assert len(history.observation_columns("processed").at) == 1
    assert observer.counts["bulk_applied"] == 4


def test_a_second_still_open_is_kept_until_it_closes():
    rows: list[dict] = []
    observer, _ = _observer(rows)
    observer._observe(_effect("bulk_applied", 100.2))
    observer._observe(_effect("bulk_applied", 102.2))

    observer._sample_tally(closed_before=101)

    assert rows == [{"kind": "bulk_applied", "second": 100, "count": 1}]
