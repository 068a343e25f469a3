"""The live-upgrade checks that no real run makes fail, shown failing on an edited copy of a kept record
(they pass in both profiles): an update applied twice, one applied late, a channel Redis says went
further than any tab."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from harness.checks.recheck import recheck

KEPT = Path(__file__).resolve().parents[1] / "records" / "gorgias-2023-live-updates-upgrade" / "vulnerable"


@pytest.fixture
def record_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "record"
    shutil.copytree(KEPT, copy)
    return copy


def _history_lines(record: Path) -> list[dict]:
    text = gzip.decompress((record / "history.jsonl.gz").read_bytes()).decode()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _write_history(record: Path, lines: list[dict]) -> None:
    text = "".join(json.dumps(line) + "\n" for line in lines)
    (record / "history.jsonl.gz").write_bytes(gzip.compress(text.encode()))


def _status(record: Path, check: str) -> str:
    return next(c.status for c in recheck(record).result.checks if c.name == check)


def _up_to_date_tab(record: Path) -> str:
    """A tab on the current build: the live checks judge those."""
    text = gzip.decompress((record / "samples.jsonl.gz").read_bytes()).decode()
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return next(row["tab"] for row in rows if row["stream"] == "tabs" and not row["stale"])


def _updates_of_one_live_tab(record: Path, lines: list[dict]) -> list[int]:
    """Positions of the plain updates (not snapshot baselines) of an up-to-date tab on the views channel."""
    tab = _up_to_date_tab(record)
    return [
        n
        for n, line in enumerate(lines)
        if line["type"] == "observation"
        and line["kind"] == "live_update"
        and not line["meta"].get("snapshot")
        and line["meta"]["channel"] == "views"
        and line["meta"]["client"] == tab
    ]


def test_the_unedited_record_passes_the_three_checks(record_copy):
    for check in ("live.duplicates", "live.out_of_order", "live.caught_up"):
        assert _status(record_copy, check) == "passed"


def test_an_update_applied_twice_fails_live_duplicates(record_copy):
    lines = _history_lines(record_copy)
    lines.append(lines[_updates_of_one_live_tab(record_copy, lines)[0]])
    _write_history(record_copy, lines)

    assert _status(record_copy, "live.duplicates") == "failed"


def test_an_update_applied_after_a_later_one_fails_live_out_of_order(record_copy):
    lines = _history_lines(record_copy)
    early = lines.pop(_updates_of_one_live_tab(record_copy, lines)[0])
    lines.append(early)
    _write_history(record_copy, lines)

    assert _status(record_copy, "live.out_of_order") == "failed"


def test_a_channel_that_went_further_than_every_tab_fails_live_caught_up(record_copy):
    timeline = record_copy / "timeline.jsonl"
    events = [json.loads(line) for line in timeline.read_text().splitlines()]
    for event in events:
        if event.get("data", {}).get("mark") == "channel_truth":
            event["data"]["sequences"]["views"] += 1000  # beyond all the run published
    timeline.write_text("".join(json.dumps(e) + "\n" for e in events))

    assert _status(record_copy, "live.caught_up") == "failed"
