"""The history of a run: every operation the harness performed and every effect it observed.

An operation is invoked, then completes once: `ok` (definitely happened), `fail` (definitely did
not happen) or `info` (outcome unknown, e.g. a timeout). An operation never completed is unknown
too. Observations are effects the system produced (a processed message, a delivered email, a live
update), stamped with the wall-clock unix time the system reported.

Storage is columnar (parallel lists and typed arrays, one slot per operation) so a million
operations cost about a hundred bytes each plus their key strings; `Op` is only a handle.
"""

from __future__ import annotations

import functools
import gc
import gzip
import threading
import time
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import compress, count, repeat
from operator import is_
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

# Outcome codes as stored in the outcome column.
PENDING = 0
OK = 1
FAIL = 2
INFO = 3
OUTCOME_NAMES = {PENDING: None, OK: "ok", FAIL: "fail", INFO: "info"}
_OUTCOME_CODES = {name: code for code, name in OUTCOME_NAMES.items()}

# Meta that the checker needs for every operation gets its own column.
_TICKET = "ticket_id"
_NEWLINE = ord("\n")


@contextmanager
def collector_paused() -> Iterator[None]:
    """For work on a whole history, which builds millions of objects and lists of millions, and no
    cycles: each pass of the cyclic collector would only rescan them (reading every element)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class HistoryError(RuntimeError):
    """The harness used the history wrongly (e.g. completed an operation twice)."""


@dataclass(frozen=True, slots=True)
class OpRecord:
    """One operation, read back from the history (for reports and tests, not the checker's hot path)."""

    index: int
    process: str
    kind: str
    key: str | None
    outcome: str | None  # "ok", "fail", "info", or None while pending
    invoke_mono_ns: int
    invoke_wall: float
    complete_mono_ns: int | None
    complete_wall: float | None
    error: str | None
    meta: dict[str, Any]

    @property
    def ticket_id(self) -> Any:
        return self.meta.get(_TICKET)


@dataclass(frozen=True, slots=True)
class Observation:
    index: int
    kind: str
    key: str
    at: float  # wall-clock unix seconds, as the producing service (or client) reported it
    meta: dict[str, Any]


class OpColumns(NamedTuple):
    """A consistent snapshot of the operation columns, index-aligned; what the checker scans."""

    process: list[str]
    kind: list[str]
    key: list[str | None]
    ticket: list[Any]
    outcome: array  # codes PENDING/OK/FAIL/INFO
    invoke_mono_ns: array
    invoke_wall: array
    complete_mono_ns: array  # 0 while pending
    complete_wall: array
    error: list[str | None]


class ObservationColumns(NamedTuple):
    kind: list[str]
    key: list[str]
    at: array
    meta: list[dict[str, Any] | None]  # None when the observation carried no metadata


class Op:
    """Handle on an invoked operation; complete it exactly once."""

    __slots__ = ("_history", "index")

    def __init__(self, history: History, index: int) -> None:
        self._history = history
        self.index = index

    def ok(self, **meta: Any) -> None:
        self._history._complete(self.index, OK, None, meta)

    def fail(self, error: str, **meta: Any) -> None:
        """The operation definitely did not take effect (e.g. a 4xx, a refused connection)."""
        self._history._complete(self.index, FAIL, error, meta)

    def info(self, error: str, **meta: Any) -> None:
        """The outcome is unknown (e.g. a timeout after the request was sent, a 5xx)."""
        self._history._complete(self.index, INFO, error, meta)

    def record(self) -> OpRecord:
        return self._history.op(self.index)

    def __repr__(self) -> str:
        return f"Op({self.index})"


def _pack_meta(meta: dict[str, Any]) -> tuple | None:
    # A flat (k1, v1, k2, v2) tuple is less than half the size of a small dict.
    if not meta:
        return None
    packed: list[Any] = []
    for name, value in meta.items():
        packed.append(name)
        packed.append(value)
    return tuple(packed)


def _unpack_meta(packed: tuple | bytes | None) -> dict[str, Any]:
    if not packed:
        return {}
    if packed.__class__ is bytes:  # an operation's meta as read from a file, ticket included
        return _META_DECODER.decode(packed)
    pairs = iter(packed)
    return dict(zip(pairs, pairs, strict=False))  # packed in pairs


class History:
    """Operations and observations of one run. Thread-safe; every record is a few appends under a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: dict[str, str] = {}  # one shared string per process/kind name
        # operation columns
        self._process: list[str] = []
        self._kind: list[str] = []
        self._key: list[str | None] = []
        self._ticket: list[Any] = []
        self._meta: list[tuple | None] = []
        self._error: list[str | None] = []
        self._outcome = array("b")
        self._invoke_mono = array("q")
        self._invoke_wall = array("d")
        self._complete_mono = array("q")
        self._complete_wall = array("d")
        self._completion_order = array("q")  # op indices in the order they completed, for streaming
        # observation columns
        self._obs_kind: list[str] = []
        self._obs_key: list[str] = []
        self._obs_at = array("d")
        self._obs_meta: list[tuple | None] = []
        # Indices of each kind's observations: a rare kind is read without scanning a flood of others.
        self._obs_by_kind: dict[str, list[int]] = {}

    # -- recording ------------------------------------------------------------------------------

    def invoke(self, process: str, kind: str, key: str | None = None, **meta: Any) -> Op:
        """Record that `process` starts an operation; `key` is the id its effects will carry."""
        ticket = meta.pop(_TICKET, None)
        packed = _pack_meta(meta)
        with self._lock:
            names = self._names
            process = names.setdefault(process, process)
            kind = names.setdefault(kind, kind)
            index = len(self._process)
            self._process.append(process)
            self._kind.append(kind)
            self._key.append(key)
            self._ticket.append(ticket)
            self._meta.append(packed)
            self._error.append(None)
            self._outcome.append(PENDING)
            # Clocks are read under the lock so that index order is invocation order.
            self._invoke_mono.append(time.monotonic_ns())
            self._invoke_wall.append(time.time())
            self._complete_mono.append(0)
            self._complete_wall.append(0.0)
        return Op(self, index)

    def _complete(
        self,
        index: int,
        outcome: int,
        error: str | None,
        meta: dict[str, Any],
        at: tuple[int, float] | None = None,  # (monotonic ns, wall) when read back; now otherwise
    ) -> None:
        ticket = meta.pop(_TICKET, None)
        with self._lock:
            if self._outcome[index] != PENDING:
                previous = OUTCOME_NAMES[self._outcome[index]]
                raise HistoryError(f"operation {index} already completed as {previous}")
            mono, wall = at if at is not None else (time.monotonic_ns(), time.time())
            self._complete_mono[index] = mono
            self._complete_wall[index] = wall
            self._outcome[index] = outcome
            self._error[index] = error
            self._completion_order.append(index)
            if ticket is not None:
                self._ticket[index] = ticket
            if meta:
                merged = _unpack_meta(self._meta[index])
                merged.pop(_TICKET, None)  # in a meta read from a file; the column holds the ticket
                merged.update(meta)
                self._meta[index] = _pack_meta(merged)

    def observe(self, kind: str, key: str, at: float, **meta: Any) -> None:
        """Record an effect the system produced; `at` is wall-clock unix seconds.

        Record observations of one kind in the order the system committed them (e.g. effects
        stream order): per-ticket order is judged on that order, not on `at`.
        """
        packed = _pack_meta(meta)
        with self._lock:
            self._obs_by_kind.setdefault(kind, []).append(len(self._obs_kind))
            self._obs_kind.append(self._names.setdefault(kind, kind))
            self._obs_key.append(key)
            self._obs_at.append(at)
            self._obs_meta.append(packed)

    # -- reading --------------------------------------------------------------------------------

    @property
    def op_count(self) -> int:
        return len(self._process)

    @property
    def observation_count(self) -> int:
        return len(self._obs_kind)

    def op(self, index: int) -> OpRecord:
        with self._lock:
            outcome = self._outcome[index]
            meta = _meta_with_ticket(self, index)
            done = outcome != PENDING
            return OpRecord(
                index=index,
                process=self._process[index],
                kind=self._kind[index],
                key=self._key[index],
                outcome=OUTCOME_NAMES[outcome],
                invoke_mono_ns=self._invoke_mono[index],
                invoke_wall=self._invoke_wall[index],
                complete_mono_ns=self._complete_mono[index] if done else None,
                complete_wall=self._complete_wall[index] if done else None,
                error=self._error[index],
                meta=meta,
            )

    def ops(self) -> Iterator[OpRecord]:
        for index in range(self.op_count):
            yield self.op(index)

    def observation(self, index: int) -> Observation:
        with self._lock:
            return Observation(
                index=index,
                kind=self._obs_kind[index],
                key=self._obs_key[index],
                at=self._obs_at[index],
                meta=_unpack_meta(self._obs_meta[index]),
            )

    def observations(self, kind: str | None = None) -> Iterator[Observation]:
        for index in range(self.observation_count):
            if kind is None or self._obs_kind[index] == kind:
                yield self.observation(index)

    def op_columns(self) -> OpColumns:
        """Copies of the operation columns, consistent with each other, for a single-pass scan."""
        with self._lock:
            return OpColumns(
                process=self._process[:],
                kind=self._kind[:],
                key=self._key[:],
                ticket=self._ticket[:],
                outcome=self._outcome[:],
                invoke_mono_ns=self._invoke_mono[:],
                invoke_wall=self._invoke_wall[:],
                complete_mono_ns=self._complete_mono[:],
                complete_wall=self._complete_wall[:],
                error=self._error[:],
            )

    def op_meta_column(self, name: str) -> list[Any]:
        """One meta field of every operation, None where it has none: what `op(i).meta.get(name)`
        gives for each, without building a record per operation."""
        with self._lock:
            if name == _TICKET:
                return self._ticket[:]
            metas = self._meta[:]
        values: list[Any] = [None] * len(metas)
        read = [i for i, packed in enumerate(metas) if packed.__class__ is bytes]
        # Metas read from a file: only the one field is decoded, for all of them in one call.
        decoded = _meta_field_decoder(name).decode_lines(b"\n".join(map(metas.__getitem__, read)))
        for i, field in zip(read, decoded, strict=True):
            values[i] = field.value
        for i, packed in enumerate(metas):
            if packed.__class__ is tuple and name in (names := packed[0::2]):
                values[i] = packed[2 * names.index(name) + 1]
        return values

    def observation_columns(self, kind: str | None = None) -> ObservationColumns:
        """Copies of the observation columns, only those of `kind` if given, in recording order."""
        with self._lock:
            if kind is None or len(self._obs_by_kind.get(kind, ())) == len(self._obs_kind):
                kinds, keys = self._obs_kind[:], self._obs_key[:]
                ats, metas = self._obs_at[:], self._obs_meta[:]
            else:
                indices = self._obs_by_kind.get(kind, [])
                kinds = [self._obs_kind[i] for i in indices]
                keys = [self._obs_key[i] for i in indices]
                ats = array("d", (self._obs_at[i] for i in indices))
                metas = [self._obs_meta[i] for i in indices]
        unpacked = [_unpack_meta(m) if m else None for m in metas] if any(metas) else [None] * len(metas)
        return ObservationColumns(kind=kinds, key=keys, at=ats, meta=unpacked)

    # -- JSON lines -----------------------------------------------------------------------------
    #
    # The file is a log in the order things were recorded, so it can be appended while the run
    # goes. `op` is an operation whose outcome was known when it was written (invoke and completion
    # in one line); `invoke` is one still pending then, and its `complete` line follows later;
    # `observation` is an effect. A file cut anywhere reads as the history up to the cut:
    # operations whose completion never reached it are pending (unknown).

    def stream(self, path: str | Path) -> HistoryStream:
        """A writer that appends to `path` whatever was recorded since its last `flush`."""
        return HistoryStream(self, path)

    def write_jsonl(self, path: str | Path) -> None:
        """The whole history as JSON lines (the same format a stream writes), replacing the file."""
        Path(path).unlink(missing_ok=True)
        with self.stream(path) as stream:
            stream.flush()

    @classmethod
    def read_jsonl(cls, path: str | Path) -> History:
        """Read a history file; raises HistoryError naming the line that is not a history line."""
        history, torn = cls.read_jsonl_tolerant(path)
        if torn is not None:
            raise HistoryError(torn)
        return history

    @classmethod
    def read_jsonl_tolerant(cls, path: str | Path) -> tuple[History, str | None]:
        """Read a history file whose last line may be cut short (a run killed mid-write).

        Returns the history and, if the final line was torn, what was wrong with it; a bad line
        anywhere else still raises HistoryError."""
        raw = Path(path).read_bytes()
        if str(path).endswith(".gz"):
            raw = gzip.decompress(raw)
        # Views, not copies: a million-operation record is some 400 MB of JSON.
        end = len(raw)
        while end and raw[end - 1] == _NEWLINE:
            end -= 1
        cut = raw.rfind(b"\n", 0, end)
        whole, tail = memoryview(raw)[: max(cut, 0)], memoryview(raw)[cut + 1 : end]
        history = cls()
        with collector_paused():
            try:
                for chunk in _line_chunks(raw, max(cut, 0)):
                    history._load_entries(_DECODER.decode_lines(chunk))
            except (msgspec.DecodeError, KeyError, TypeError, ValueError, IndexError):
                history = cls()
                history._load_lines_one_by_one(bytes(whole), path)  # names the bad line
            if tail.nbytes and bytes(tail).strip():
                try:
                    history._load_entries(_DECODER.decode_lines(tail))
                except (msgspec.DecodeError, KeyError, TypeError, ValueError, IndexError) as exc:
                    last_number = raw.count(b"\n", 0, max(cut, 0)) + (2 if cut > 0 else 1)
                    return history, f"{path}:{last_number}: not a history line: {exc}"
        return history, None

    def _load_lines_one_by_one(self, whole: bytes, path: str | Path) -> None:
        for number, line in enumerate(whole.split(b"\n"), 1):
            if not line.strip():
                continue
            try:
                self._load_entries([_DECODER.decode(line)])
            except (msgspec.DecodeError, KeyError, TypeError, ValueError, IndexError) as exc:
                raise HistoryError(f"{path}:{number}: not a history line: {exc}") from None

    def _load_entries(self, entries: list[_Line]) -> None:
        """Append decoded lines to the columns (a history being read is not shared yet: no lock).

        Column by column, in comprehensions: a million-operation record is read at the pace of its
        JSON, not of a Python call per line."""
        heads = [e for e in entries if e.__class__ is _OpLine or e.__class__ is _InvokeLine]
        first = len(self._process)
        indices = [e.i for e in heads]
        if indices != list(range(first, first + len(heads))):
            wrong = next(n for n, i in enumerate(indices, first) if n != i)
            raise ValueError(f"operation {indices[wrong - first]} where {wrong} was next")
        names = self._names
        self._process.extend([names.setdefault(e.process, e.process) for e in heads])
        self._kind.extend([names.setdefault(e.kind, e.kind) for e in heads])
        self._key.extend([e.key for e in heads])
        # An operation's meta stays the JSON text it was read as; only its ticket is decoded now,
        # for all the chunk's operations in one call.
        metas = [e.meta for e in heads]
        tickets = _TICKET_DECODER.decode_lines(b"\n".join(metas))
        self._ticket.extend([m.ticket_id if m is not None else None for m in tickets])
        self._meta.extend([None if (text := bytes(m)) in _NO_META else text for m in metas])
        self._invoke_mono.extend([e.mono_ns for e in heads])
        self._invoke_wall.extend([e.wall for e in heads])
        done = [e for e in heads if e.__class__ is _OpLine]  # lines that carry their completion too
        if len(done) == len(heads):
            self._outcome.extend([_OUTCOME_CODES[e.outcome] for e in heads])
            self._error.extend([e.error for e in heads])
            self._complete_mono.extend([e.cmono_ns for e in heads])
            self._complete_wall.extend([e.cwall for e in heads])
            self._completion_order.extend(indices)
        else:  # some still pending (`invoke` lines): their `complete` line follows later
            op = _OpLine
            self._outcome.extend([_OUTCOME_CODES[e.outcome] if e.__class__ is op else PENDING for e in heads])
            self._error.extend([e.error if e.__class__ is op else None for e in heads])
            self._complete_mono.extend([e.cmono_ns if e.__class__ is op else 0 for e in heads])
            self._complete_wall.extend([e.cwall if e.__class__ is op else 0.0 for e in heads])
            self._completion_order.extend([e.i for e in done])
        if len(heads) == len(entries):
            return
        for entry in entries:  # completions of pending operations, in the order they came
            if entry.__class__ is _CompleteLine:
                self._load_completion(entry)
        seen = [e for e in entries if e.__class__ is _ObservationLine]
        first = len(self._obs_kind)
        kinds = [names.setdefault(e.kind, e.kind) for e in seen]
        for kind in dict.fromkeys(kinds):  # a few kinds: each one's indices picked out in C
            self._obs_by_kind.setdefault(kind, []).extend(
                compress(count(first), map(is_, kinds, repeat(kind)))
            )
        self._obs_kind.extend(kinds)
        self._obs_key.extend([e.key for e in seen])
        self._obs_at.extend([e.at for e in seen])
        self._obs_meta.extend([_pack_meta(e.meta) if e.meta else None for e in seen])

    def _load_completion(self, entry: _CompleteLine) -> None:
        outcome = _OUTCOME_CODES[entry.outcome]
        try:
            self._complete(entry.i, outcome, entry.error, dict(entry.meta or {}), (entry.mono_ns, entry.wall))
        except HistoryError as exc:
            raise ValueError(str(exc)) from None


def _line_chunks(raw: bytes, end: int) -> Iterator[memoryview]:
    """`raw[:end]` in pieces of about _CHUNK_BYTES that end at a line's end.

    A piece's decoded lines are turned into columns and freed before the next is decoded: the
    objects stay in the processor's cache, and a million-operation record never has millions of
    line objects alive at once."""
    view = memoryview(raw)
    start = 0
    while start < end:
        stop = raw.find(b"\n", min(start + _CHUNK_BYTES, end), end)
        stop = end if stop < 0 else stop + 1
        yield view[start:stop]
        start = stop


_CHUNK_BYTES = 1 << 18
# What an operation's meta reads as when it has none.
_NO_META = (b"null", b"{}")
_NULL = msgspec.Raw(b"null")


# The four kinds of history line, told apart by their "type" field.
class _InvokeLine(msgspec.Struct, tag_field="type", tag="invoke", kw_only=True):
    i: int
    process: str
    kind: str
    key: str | None = None
    wall: float
    mono_ns: int
    meta: msgspec.Raw = _NULL  # a JSON object (or null), decoded when the operation is looked at


class _OpLine(_InvokeLine, tag="op", kw_only=True):
    """An invocation written with its completion (the outcome was known by the flush)."""

    outcome: str
    cwall: float
    cmono_ns: int
    error: str | None = None


class _CompleteLine(msgspec.Struct, tag_field="type", tag="complete", kw_only=True):
    i: int
    outcome: str
    wall: float
    mono_ns: int
    error: str | None = None
    meta: dict[str, Any] | None = None


class _ObservationLine(msgspec.Struct, tag_field="type", tag="observation", kw_only=True):
    kind: str
    key: str
    at: float
    meta: dict[str, Any] | None = None


class _MetaTicket(msgspec.Struct, gc=False):
    """The one field of an operation's meta that is read with the file: its column's value."""

    ticket_id: Any = None  # the name _TICKET


@functools.cache
def _meta_field_decoder(name: str) -> msgspec.json.Decoder:
    """Decodes one field of meta objects (as `value`), skipping the rest."""
    field = msgspec.defstruct("_MetaField", [("value", Any, None)], rename={"value": name}, gc=False)
    return msgspec.json.Decoder(field)


_Line = _OpLine | _InvokeLine | _CompleteLine | _ObservationLine
_DECODER = msgspec.json.Decoder(_Line)
_TICKET_DECODER = msgspec.json.Decoder(_MetaTicket | None)
_META_DECODER = msgspec.json.Decoder(dict[str, Any])
_ENCODER = msgspec.json.Encoder()


class HistoryStream:
    """Appends a history's new events to a JSON-lines file; `flush` is cheap when nothing is new."""

    def __init__(self, history: History, path: str | Path) -> None:
        self._history = history
        self._file = open(path, "ab")  # noqa: SIM115 - closed by close()
        self._invokes = 0
        self._completions = 0
        self._observations = 0

    def __enter__(self) -> HistoryStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def flush(self) -> None:
        """Write the operations invoked, completed and the effects observed since the last flush.

        An operation already complete when its invoke is written takes one `op` line; one still
        pending takes an `invoke` line now and a `complete` line in a later flush. Lines are
        encoded _LINES_PER_ENCODE at a time, so a whole history is never held as objects at once."""
        h, encoded = self._history, []
        with h._lock, collector_paused():
            invokes, completions, observations = len(h._process), len(h._completion_order), len(h._obs_kind)
            for start in range(self._invokes, invokes, _LINES_PER_ENCODE):
                encoded.append(
                    _ENCODER.encode_lines(_op_lines(h, start, min(start + _LINES_PER_ENCODE, invokes)))
                )
            # Operations invoked before the last flush were written pending: their completions
            # get lines of their own. The others were complete when written, in one line.
            reopened = [i for i in h._completion_order[self._completions : completions] if i < self._invokes]
            for start in range(0, len(reopened), _LINES_PER_ENCODE):
                encoded.append(
                    _ENCODER.encode_lines(
                        [_complete_line(h, i) for i in reopened[start : start + _LINES_PER_ENCODE]]
                    )
                )
            for start in range(self._observations, observations, _LINES_PER_ENCODE):
                stop = min(start + _LINES_PER_ENCODE, observations)
                encoded.append(_ENCODER.encode_lines(_observation_lines(h, start, stop)))
        self._invokes, self._completions, self._observations = invokes, completions, observations
        self._file.writelines(encoded)
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self.flush()
            self._file.close()


_LINES_PER_ENCODE = 1 << 16


def _op_lines(h: History, start: int, stop: int) -> list[dict[str, Any]]:
    """The `op` (or, still pending, `invoke`) lines of operations start..stop-1; under h's lock."""
    columns = zip(
        range(start, stop),
        h._process[start:stop],
        h._kind[start:stop],
        h._key[start:stop],
        h._invoke_wall[start:stop],
        h._invoke_mono[start:stop],
        [_meta_with_ticket(h, i) for i in range(start, stop)],
        h._outcome[start:stop],
        h._complete_wall[start:stop],
        h._complete_mono[start:stop],
        h._error[start:stop],
        strict=True,
    )
    lines = []
    for i, process, kind, key, wall, mono_ns, meta, outcome, cwall, cmono_ns, error in columns:
        line = {
            "type": "invoke",
            "i": i,
            "process": process,
            "kind": kind,
            "key": key,
            "wall": wall,
            "mono_ns": mono_ns,
            "meta": meta,
        }
        if outcome != PENDING:  # already complete: one line for both
            line["type"] = "op"
            line["outcome"] = OUTCOME_NAMES[outcome]
            line["cwall"] = cwall
            line["cmono_ns"] = cmono_ns
            line["error"] = error
        lines.append(line)
    return lines


def _complete_line(h: History, i: int) -> dict[str, Any]:
    return {
        "type": "complete",
        "i": i,
        "outcome": OUTCOME_NAMES[h._outcome[i]],
        "wall": h._complete_wall[i],
        "mono_ns": h._complete_mono[i],
        "error": h._error[i],
        "meta": _meta_with_ticket(h, i),
    }


def _observation_lines(h: History, start: int, stop: int) -> list[dict[str, Any]]:
    kinds, keys, ats, metas = h._obs_kind, h._obs_key, h._obs_at, h._obs_meta
    columns = zip(kinds[start:stop], keys[start:stop], ats[start:stop], metas[start:stop], strict=True)
    return [
        {
            "type": "observation",
            "kind": kind,
            "key": key,
            "at": at,
            "meta": _unpack_meta(meta) if meta else {},
        }
        for kind, key, at, meta in columns
    ]


def _meta_with_ticket(h: History, i: int) -> dict[str, Any]:
    """An operation's meta as recorded, with its ticket (kept in a column of its own) put back."""
    packed, ticket = h._meta[i], h._ticket[i]
    meta = _unpack_meta(packed) if packed else {}
    if ticket is not None:
        meta[_TICKET] = ticket
    elif packed.__class__ is bytes:
        meta.pop(_TICKET, None)  # a `"ticket_id": null` read from a file
    return meta
