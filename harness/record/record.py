"""The record of a run: what reached disk while it happened, and all that any check may read.

A report directory holds, in the order they are written:

- `meta.json`: scenario, profile, seed, the settings the services ran with, the start time;
- `timeline.jsonl`: the story (phases, faults, marks, actions, alerts), one event a line,
  appended as each happens;
- `history.jsonl`: operations and effects (harness/record/history.py), appended at least
  once a second;
- `samples.jsonl`: named streams of measurements (`{"stream": "probe", ...}`), appended too;
- `summary.json` and `debrief.md`: the verdict, written last. A directory without
  `summary.json` is the record of a run that never finished: a partial record.

`RecordWriter` writes it during a run; `Record.load` reads it back. Checks read a `Record` only,
so `outage check` re-judges a run from its files exactly as the live run judged it.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.record.history import History, HistoryError, HistoryStream
from harness.record.timeline import Timeline, TimelineEvent

META = "meta.json"
TIMELINE = "timeline.jsonl"
HISTORY = "history.jsonl"
SAMPLES = "samples.jsonl"
SUMMARY = "summary.json"
FLUSH_INTERVAL_S = 0.5

_dumps = json.JSONEncoder(separators=(",", ":"), default=str).encode


class RecordError(RuntimeError):
    """A report directory that cannot be judged (missing or unreadable files)."""


def plain(value: dict[str, Any]) -> dict[str, Any]:
    """`value` as JSON gives it back: what a check reads live equals what it reads from disk."""
    return json.loads(_dumps(value))


@dataclass
class Record:
    """A run as recorded: its meta, history, timeline and sample streams."""

    meta: dict[str, Any]
    history: History
    timeline: list[TimelineEvent]
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    partial: bool = False
    problems: list[str] = field(default_factory=list)  # what made the record partial
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def scenario(self) -> str:
        return str(self.meta.get("scenario", ""))

    @property
    def profile(self) -> str:
        return str(self.meta.get("profile", ""))

    @property
    def seed(self) -> int:
        return int(self.meta.get("seed", 0))

    def events(self, kind: str | None = None) -> list[TimelineEvent]:
        return [e for e in self.timeline if kind is None or e.kind == kind]

    def marks(self, name: str) -> list[TimelineEvent]:
        """Every `run.mark(name)` of the run, in order."""
        return [e for e in self.timeline if e.kind == "mark" and e.data.get("mark") == name]

    def mark(self, name: str) -> TimelineEvent | None:
        """The first mark of that name, or None if the run never got there."""
        return next(iter(self.marks(name)), None)

    def mark_at(self, name: str) -> float | None:
        """Wall-clock time of the first mark of that name."""
        event = self.mark(name)
        return event.at if event else None

    def window(self, start: str, end: str) -> tuple[float, float] | None:
        """Wall-clock times of the first `start` mark and the first `end` mark after it."""
        opened = self.mark(start)
        if opened is None:
            return None
        closed = next((e for e in self.marks(end) if e.at >= opened.at), None)
        return (opened.at, closed.at) if closed else None

    def stream(self, name: str) -> list[dict[str, Any]]:
        return self.samples.get(name, [])

    @property
    def injected(self) -> TimelineEvent | None:
        """The first fault injected."""
        return next(iter(self.events("fault")), None)

    @property
    def recovered(self) -> TimelineEvent | None:
        """When the runbook was done and the system served again."""
        return next(iter(self.events("recovered")), None)

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """Compute once per record what several figures share."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    @classmethod
    def load(cls, report_dir: str | Path, *, finished: bool = False) -> Record:
        """Read a report directory; a torn last line or a missing summary makes it partial
        (`finished`: the run's own judging, before its summary is written)."""
        folder = Path(report_dir)
        if not folder.is_dir():
            raise RecordError(f"{folder}: no such report directory")
        problems: list[str] = []
        try:
            meta = json.loads((folder / META).read_text())
        except FileNotFoundError:
            raise RecordError(f"{folder}: no {META}: not the record of a run") from None
        except ValueError as exc:
            raise RecordError(f"{folder / META}: not JSON: {exc}") from None
        timeline = [TimelineEvent.from_dict(row) for row in _read_lines(folder / TIMELINE, problems)]
        history_path = _present(folder / HISTORY)
        if history_path is not None:
            try:
                history, torn = History.read_jsonl_tolerant(history_path)
            except HistoryError as exc:
                raise RecordError(str(exc)) from None
            if torn:
                problems.append(torn)
        else:
            history = History()
            problems.append(f"{folder / HISTORY}: missing")
        samples: dict[str, list[dict[str, Any]]] = {}
        for row in _read_lines(folder / SAMPLES, problems, required=False):
            samples.setdefault(str(row.pop("stream")), []).append(row)
        if not finished and not (folder / SUMMARY).exists():
            problems.insert(0, "the run never finished (no summary.json): the record ends where it stopped")
        return cls(meta, history, timeline, samples, partial=bool(problems), problems=problems)


def _present(path: Path) -> Path | None:
    """The file, or its gzipped copy (records kept as test fixtures are compressed)."""
    for candidate in (path, path.with_name(path.name + ".gz")):
        if candidate.exists():
            return candidate
    return None


def read_text(path: Path) -> str:
    """A record file's text, gzipped or not."""
    if path.suffix == ".gz":
        return gzip.decompress(path.read_bytes()).decode("utf-8")
    return path.read_text(encoding="utf-8")


def _read_lines(path: Path, problems: list[str], required: bool = True) -> list[dict[str, Any]]:
    found = _present(path)
    if found is None:
        if required:
            problems.append(f"{path}: missing")
        return []
    path = found
    lines = read_text(path).splitlines()
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError as exc:
            if number == len(lines):  # the last write of a killed run
                problems.append(f"{path}:{number}: torn line ({exc})")
                break
            raise RecordError(f"{path}:{number}: not a JSON line: {exc}") from None
    return rows


class RecordWriter:
    """Streams a run's record into its report directory while the run goes.

    Timeline events are written as they happen; the history and the samples are flushed by a
    background thread every FLUSH_INTERVAL_S, so `tail -f` follows a run and a `kill -9` loses at
    most the last half second.
    """

    def __init__(self, report_dir: str | Path, meta: dict[str, Any]) -> None:
        self.report_dir = Path(report_dir)
        self.report_dir.mkdir(parents=True, exist_ok=True)
        for name in (SUMMARY, TIMELINE, HISTORY, SAMPLES):  # a directory reused holds one run only
            (self.report_dir / name).unlink(missing_ok=True)
        (self.report_dir / META).write_text(json.dumps(meta, indent=2, default=str) + "\n")
        self._lock = threading.Lock()
        self._timeline = open(self.report_dir / TIMELINE, "a", encoding="utf-8")  # noqa: SIM115
        self._samples = open(self.report_dir / SAMPLES, "a", encoding="utf-8")  # noqa: SIM115
        self._history: HistoryStream | None = None
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None

    def attach(self, timeline: Timeline, history: History) -> None:
        """Write every event of `timeline` and stream `history`, from now until `close`."""
        for event in timeline.events():
            self._write_event(event)
        timeline.sinks.append(self._write_event)
        self._history = history.stream(self.report_dir / HISTORY)
        self._flusher = threading.Thread(target=self._flush_periodically, name="record-flush", daemon=True)
        self._flusher.start()

    def _write_event(self, event: TimelineEvent) -> None:
        with self._lock:
            if not self._timeline.closed:
                self._timeline.write(_dumps(event.as_dict()) + "\n")
                self._timeline.flush()

    def sample(self, stream: str, row: dict[str, Any]) -> None:
        with self._lock:
            if not self._samples.closed:
                self._samples.write(_dumps({"stream": stream, **row}) + "\n")

    def flush(self) -> None:
        with self._lock:
            if not self._samples.closed:
                self._samples.flush()
        if self._history is not None:
            self._history.flush()

    def _flush_periodically(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL_S):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join()
        self.flush()
        with self._lock:
            self._timeline.close()
            self._samples.close()
        if self._history is not None:
            self._history.close()
