"""The checker: what the history proves about messages and live updates, after heal and drain.

Messages are judged per key (the client idempotency key; retries of one message share it):
a key is *acked* if any attempt returned ok, *unknown* if none did but some attempt timed out or
never completed, *failed* if every attempt definitely failed. Against the effects observed:

- lost: acked, never observed (the bug this project exists to catch)
- unexpected: observed, never attempted
- failed_but_observed: every attempt definitely failed, yet the effect happened; a correctness bug
  too, since the client was told "no"
- recovered: unknown outcome, observed (fine: the system kept it)
- duplicated: observed more than once (fine only where the consumer dedupes the effect)

Clocks: effects carry the services' wall-clock unix time, operations carry the harness's wall
time (for latency) and its monotonic time (for "acked before invoked"). The stack runs on the
same host kernel as the harness, so the wall clocks agree to well under a millisecond.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import count, repeat
from operator import and_, eq, is_not
from typing import Any

import numpy as np

from harness.checks.check import Check
from harness.checks.grouping import first_occurrences
from harness.checks.latency import LatencySummary, summarize_sorted
from harness.record.history import FAIL, INFO, OK, PENDING, History, OpColumns, collector_paused

__all__ = [
    "Check",
    "Laggard",
    "LiveGap",
    "LiveVerdict",
    "MessageVerdict",
    "OrderViolation",
    "check_live",
    "check_messages",
]

SAMPLE_SIZE = 20

# A key's outcome over all its attempts: ok beats unknown beats failed.
_FAILED, _UNKNOWN, _ACKED = 1, 2, 3
_RANK_OF_OUTCOME = {PENDING: _UNKNOWN, OK: _ACKED, FAIL: _FAILED, INFO: _UNKNOWN}
_RANK_ARRAY = np.array([_RANK_OF_OUTCOME[code] for code in range(max(_RANK_OF_OUTCOME) + 1)], np.int8)
_NEVER = np.iinfo(np.int64).max  # the ack time of a key never acked


@dataclass(frozen=True, slots=True)
class OrderViolation:
    """`earlier_key` was acked before `later_key` was invoked, yet `later_key`'s effect came first."""

    ticket_id: Any
    earlier_key: str
    later_key: str


@dataclass(frozen=True, slots=True)
class MessageVerdict:
    effect_kind: str
    dedupe_allowed: bool
    operations: int  # invocations, retries included
    attempted: int  # distinct keys
    acked: int
    failed: int
    unknown: int
    delivered: int  # attempted keys observed at least once
    lost: int
    unexpected: int
    duplicated: int  # keys observed more than once
    recovered: int
    failed_but_observed: int
    extra_applications: int  # observations beyond the first, over all keys
    order_violations: int  # keys whose effect overtook an earlier acked message on its ticket
    latency: LatencySummary  # first observation minus first invocation, seconds
    last_acked_effect_at: float | None  # wall time of the latest first-observation of an acked key
    lost_keys: tuple[str, ...] = ()  # samples, at most SAMPLE_SIZE each, in run order
    unexpected_keys: tuple[str, ...] = ()
    duplicated_keys: tuple[str, ...] = ()
    failed_but_observed_keys: tuple[str, ...] = ()
    order_violation_sample: tuple[OrderViolation, ...] = ()

    def replay_seconds(self, recovered_at: float) -> float | None:
        """Seconds from the recovery instant (wall time) until the last acked message was observed.

        0 when everything acked was already observed by then; None when no acked message was observed.
        """
        if self.last_acked_effect_at is None:
            return None
        return max(0.0, self.last_acked_effect_at - recovered_at)

    def as_summary(self) -> dict[str, int]:
        """The "messages" object of summary.json."""
        return {
            "attempted": self.attempted,
            "acked": self.acked,
            "failed": self.failed,
            "unknown": self.unknown,
            "delivered": self.delivered,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "unexpected": self.unexpected,
            "recovered": self.recovered,
        }

    def details(self) -> dict[str, Any]:
        """Everything, JSON-ready, for the report and the debrief."""
        return {
            **self.as_summary(),
            "effect_kind": self.effect_kind,
            "operations": self.operations,
            "failed_but_observed": self.failed_but_observed,
            "extra_applications": self.extra_applications,
            "order_violations": self.order_violations,
            "latency_s": self.latency.as_dict(),
            "samples": {
                "lost": list(self.lost_keys),
                "unexpected": list(self.unexpected_keys),
                "duplicated": list(self.duplicated_keys),
                "failed_but_observed": list(self.failed_but_observed_keys),
                "order_violations": [
                    {"ticket_id": v.ticket_id, "earlier": v.earlier_key, "later": v.later_key}
                    for v in self.order_violation_sample
                ],
            },
        }

    def to_checks(
        self,
        label: str = "messages",
        *,
        recovered_at: float | None = None,
        max_replay_s: float | None = None,
        max_p99_s: float | None = None,
        check_order: bool = False,
    ) -> list[Check]:
        """Pass/fail checks; replay and latency are checked only when given a budget.

        Per-ticket order is always measured (see `details`) but judged only with `check_order`:
        a quorum queue redelivers the messages of a consumer that went away without keeping
        their order, so only a scenario whose system promises order should fail on it."""
        checks = [
            Check(
                f"{label}.lost", self.lost == 0, _counted(self.lost, self.lost_keys), "0 acknowledged lost"
            ),
            Check(
                f"{label}.unexpected",
                self.unexpected == 0,
                _counted(self.unexpected, self.unexpected_keys),
                "0 observed that were never attempted",
            ),
            Check(
                f"{label}.failed_but_observed",
                self.failed_but_observed == 0,
                _counted(self.failed_but_observed, self.failed_but_observed_keys),
                "0 observed after a definite failure",
            ),
            Check(
                f"{label}.duplicated",
                self.dedupe_allowed or self.duplicated == 0,
                _counted(self.duplicated, self.duplicated_keys),
                "any (the consumer dedupes)" if self.dedupe_allowed else "0 applied twice",
            ),
        ]
        if check_order:
            checks.append(
                Check(
                    f"{label}.per_ticket_order",
                    self.order_violations == 0,
                    _counted(
                        self.order_violations,
                        [f"{v.later_key} before {v.earlier_key}" for v in self.order_violation_sample],
                    ),
                    "0 messages overtaking an earlier acknowledged one",
                )
            )
        if max_p99_s is not None:
            p99 = self.latency.p99
            checks.append(
                Check(
                    f"{label}.latency_p99",
                    p99 is None or p99 <= max_p99_s,
                    "no deliveries" if p99 is None else f"{p99:.3f}s",
                    f"<= {max_p99_s:g}s",
                )
            )
        if max_replay_s is not None:
            replay = self.replay_seconds(recovered_at) if recovered_at is not None else None
            if recovered_at is None:
                observed = "the system never recovered"
            else:
                observed = "no acknowledged message observed" if replay is None else f"{replay:.3f} s"
            checks.append(
                Check(
                    f"{label}.replay",
                    recovered_at is not None
                    and (self.acked == 0 or (replay is not None and replay <= max_replay_s)),
                    observed,
                    f"<= {max_replay_s:g} s after recovery",
                )
            )
        return checks


@collector_paused()
def check_messages(
    history: History,
    effect_kind: str = "processed",
    dedupe_allowed: bool = False,
    *,
    op_kind: str | tuple[str, ...] | None = None,
    sample_size: int = SAMPLE_SIZE,
) -> MessageVerdict:
    """Judge every keyed operation (of `op_kind`, or of any kind in a tuple of them, if given) against
    the effects of `effect_kind`.

    Built for a million operations: the keys are numbered once (`first_occurrences`), and every
    step after that is a numpy pass over those numbers; no Python-level loop runs per operation.
    """
    ops = history.op_columns()
    effects = history.observation_columns(effect_kind)
    attempts = _Attempts(ops, op_kind)
    n, m = len(attempts.keys), len(effects.key)
    # Keys numbered over the attempts, then the effects: a number below n is the position of the
    # key's first attempt; a larger one is a key nobody attempted.
    numbers = first_occurrences(attempts.keys + effects.key)
    attempts.number(numbers[:n])
    effect_key = numbers[n:]
    firsts, ranks = attempts.firsts, attempts.best[attempts.firsts]

    # Each key's first effect (m where there is none), and the effects that repeat an earlier one.
    first_effect = np.full(n + m, m, np.int64)
    np.minimum.at(first_effect, effect_key, np.arange(m))
    repeated = effect_key[first_effect[effect_key] != np.arange(m)]
    duplicated = _in_order_of_first(repeated)
    unexpected = np.flatnonzero(effect_key == np.arange(n, n + m))  # first effects of such keys

    seen_at = first_effect[firsts]
    seen = seen_at < m
    lost = firsts[(ranks == _ACKED) & ~seen]
    # Attempted keys that took effect, in invocation order, with their first effect's position.
    delivered, delivered_ranks, positions = firsts[seen], ranks[seen], seen_at[seen]
    effect_times = np.asarray(effects.at)[positions]
    latencies = effect_times - np.asarray(ops.invoke_wall)[attempts.ops[delivered]]
    acked_effect_times = effect_times[delivered_ranks == _ACKED]
    failed_seen = delivered[delivered_ranks == _FAILED]

    def key_of(number: int) -> str:
        return attempts.keys[number] if number < n else effects.key[number - n]

    def sample(numbers: np.ndarray) -> tuple[str, ...]:
        return tuple(map(key_of, numbers[:sample_size].tolist()))

    violations, violation_sample = _order_violations(ops, attempts, delivered, positions, sample_size)
    return MessageVerdict(
        effect_kind=effect_kind,
        dedupe_allowed=dedupe_allowed,
        operations=n,
        attempted=len(firsts),
        acked=_count(ranks, _ACKED),
        failed=_count(ranks, _FAILED),
        unknown=_count(ranks, _UNKNOWN),
        delivered=len(delivered),
        lost=len(lost),
        unexpected=len(unexpected),
        duplicated=len(duplicated),
        recovered=_count(delivered_ranks, _UNKNOWN),
        failed_but_observed=len(failed_seen),
        extra_applications=len(repeated),
        order_violations=violations,
        latency=summarize_sorted(np.sort(latencies).tolist()),
        last_acked_effect_at=float(acked_effect_times.max()) if len(acked_effect_times) else None,
        lost_keys=sample(lost),
        unexpected_keys=sample(unexpected + n),
        duplicated_keys=sample(duplicated),
        failed_but_observed_keys=sample(failed_seen),
        order_violation_sample=tuple(violation_sample),
    )


class _Attempts:
    """The message operations, in run order, and each key's attempts folded into one outcome."""

    def __init__(self, ops: OpColumns, op_kind: str | tuple[str, ...] | None) -> None:
        keys = ops.key
        if op_kind is None and None not in keys:
            self.ops = np.arange(len(keys))  # indices into the history's operations
            self.keys: list[str] = keys  # type: ignore[assignment]
        else:
            wanted = map(is_not, keys, repeat(None))
            if isinstance(op_kind, str):
                wanted = map(and_, wanted, map(eq, ops.kind, repeat(op_kind)))
            elif op_kind is not None:
                wanted = map(and_, wanted, map(frozenset(op_kind).__contains__, ops.kind))
            self.ops = np.flatnonzero(np.fromiter(wanted, bool, count=len(keys)))
            self.keys = list(map(keys.__getitem__, self.ops.tolist()))
        self.outcome = np.asarray(ops.outcome)[self.ops]
        self._complete_mono = ops.complete_mono_ns

    def number(self, key_number: np.ndarray) -> None:
        """Take each attempt's key number (the position of the key's first attempt)."""
        self.key_number = key_number
        is_first = key_number == np.arange(len(key_number))
        self.firsts = np.flatnonzero(is_first)  # one per key, in run order
        self.retries = np.flatnonzero(~is_first)
        # A key's outcome over all its attempts, at its first attempt's position: ok beats unknown
        # beats failed.
        self.best = _RANK_ARRAY[self.outcome]
        np.maximum.at(self.best, key_number[self.retries], self.best[self.retries])

    def earliest_acks(self, firsts: np.ndarray) -> np.ndarray:
        """For keys given by their first attempt's position: monotonic time of each one's earliest
        ok, or _NEVER."""
        acks = np.where(self.outcome == OK, np.asarray(self._complete_mono)[self.ops], _NEVER)
        np.minimum.at(acks, self.key_number[self.retries], acks[self.retries])
        return acks[firsts]


def _in_order_of_first(numbers: np.ndarray) -> np.ndarray:
    """The distinct numbers, in the order each first appears."""
    _, first_at = np.unique(numbers, return_index=True)
    return numbers[np.sort(first_at)]


def _count(values: np.ndarray, value: int) -> int:
    return int(np.count_nonzero(values == value))


def _order_violations(
    ops: OpColumns, attempts: _Attempts, delivered: np.ndarray, positions: np.ndarray, sample_size: int
) -> tuple[int, list[OrderViolation]]:
    """Per ticket: if A was acked before B was first invoked, A's effect must precede B's.

    Effect order is observation order (the effects stream's commit order). A ticket whose effects
    appear in invocation order cannot violate, so only the others are examined (found in one sort
    by ticket): walk their observed keys by invocation time, folding in the acks that happened
    before each; B violates when its effect precedes the latest effect among those acked messages.
    """
    tickets = list(map(ops.ticket.__getitem__, attempts.ops[delivered].tolist()))
    # Tickets are few beside the keys: a dict small enough to stay in cache numbers them 0, 1, ...
    numbering: defaultdict[Any, int] = defaultdict(count().__next__)
    ticket_number = np.fromiter(map(numbering.__getitem__, tickets), np.int64, count=len(tickets))
    # Each ticket's keys together, in invocation order (up to 65,536 tickets sort by radix).
    by_ticket = np.argsort(ticket_number.astype(np.min_scalar_type(len(numbering))), kind="stable")
    in_ticket, at = ticket_number[by_ticket], positions[by_ticket]
    overtaken = (in_ticket[1:] == in_ticket[:-1]) & (at[1:] < at[:-1])
    suspect = np.isin(ticket_number, in_ticket[1:][overtaken])
    if None in numbering:  # keys without a ticket have no order to keep
        suspect &= ticket_number != numbering[None]
    which = np.flatnonzero(suspect)
    if not len(which):
        return 0, []

    keys = attempts.keys
    first = delivered[which]
    acked = attempts.earliest_acks(first).tolist()
    invoked = np.asarray(ops.invoke_mono_ns)[attempts.ops[first]].tolist()
    by_ticket_entries: dict[Any, list[tuple[str, int, int, int]]] = {}
    rows = zip(which.tolist(), first.tolist(), positions[which].tolist(), acked, invoked, strict=True)
    for i, head, position, ack, invoke in rows:
        by_ticket_entries.setdefault(tickets[i], []).append((keys[head], position, ack, invoke))

    violations = 0
    sample: list[OrderViolation] = []
    for ticket, entries in by_ticket_entries.items():
        acks = sorted((ack, position, key) for key, position, ack, _ in entries if ack != _NEVER)
        next_ack = 0
        latest, latest_key = -1, ""
        for key, position, _, invoke in entries:  # in invocation order
            while next_ack < len(acks) and acks[next_ack][0] < invoke:
                _, acked_position, acked_key = acks[next_ack]
                if acked_position > latest:
                    latest, latest_key = acked_position, acked_key
                next_ack += 1
            if position < latest:
                violations += 1
                if len(sample) < sample_size:
                    sample.append(OrderViolation(ticket, latest_key, key))
    return violations, sample


def _counted(count: int, sample: Iterable[str]) -> str:
    if count == 0:
        return "0"
    shown = list(sample)
    more = "" if count <= len(shown) else ", ..."
    return f"{count}: {', '.join(shown)}{more}"


# -- live updates -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LiveGap:
    """A client jumped from `after_seq` to `next_seq` on a channel without a snapshot reset."""

    client: str
    channel: str
    after_seq: int
    next_seq: int
    session: Any
    on_resume: bool  # the jump happened on the first update of a new connection

    @property
    def missed(self) -> int:
        return self.next_seq - self.after_seq - 1


@dataclass(frozen=True, slots=True)
class Laggard:
    """A client whose last seen sequence never caught up with its channel's."""

    client: str
    channel: str
    last_seq: int
    channel_max: int


@dataclass(frozen=True, slots=True)
class LiveVerdict:
    updates: int
    clients: int
    streams: int  # (client, channel) pairs that received anything
    gaps: int  # jumps over sequence numbers without a reset
    missed: int  # sequence numbers skipped by those jumps and never received later
    duplicates: int  # the same sequence number received twice by a client
    out_of_order: int  # a sequence number received after a higher one (not a duplicate)
    resets: int  # snapshot resets the server sent
    missed_across_reset: int  # sequence numbers a reset skipped on a channel whose state it carries
    sessions: int  # connections, over all clients
    channel_max: dict[str, int]
    reconverge_s: float | None  # None without a reference instant, or while some client lags
    laggards: tuple[Laggard, ...] = ()
    gap_sample: tuple[LiveGap, ...] = ()
    laggard_count: int = 0
    # Updates a snapshot jumped over on a channel whose state it does not carry (typing, presence,
    # assignment): the client starts over without them, so they are missed for good.
    missed_by_snapshot: int = 0

    @property
    def missed_in_all(self) -> int:
        """Updates a client never got: holes never filled, and events a snapshot skipped."""
        return self.missed + self.missed_by_snapshot

    def details(self) -> dict[str, Any]:
        return {
            "updates": self.updates,
            "clients": self.clients,
            "streams": self.streams,
            "sessions": self.sessions,
            "gaps": self.gaps,
            "missed": self.missed,
            "duplicates": self.duplicates,
            "out_of_order": self.out_of_order,
            "resets": self.resets,
            "missed_across_reset": self.missed_across_reset,
            "missed_by_snapshot": self.missed_by_snapshot,
            "channel_max": dict(self.channel_max),
            "reconverge_s": self.reconverge_s,
            "laggards": self.laggard_count,
            "samples": {
                "gaps": [
                    {
                        "client": g.client,
                        "channel": g.channel,
                        "after_seq": g.after_seq,
                        "next_seq": g.next_seq,
                        "session": g.session,
                        "on_resume": g.on_resume,
                    }
                    for g in self.gap_sample
                ],
                "laggards": [
                    {
                        "client": lag.client,
                        "channel": lag.channel,
                        "last_seq": lag.last_seq,
                        "max": lag.channel_max,
                    }
                    for lag in self.laggards
                ],
            },
        }

    def to_checks(self, label: str = "live", *, max_reconverge_s: float | None = None) -> list[Check]:
        gap_text = [f"{g.client}/{g.channel} {g.after_seq}->{g.next_seq}" for g in self.gap_sample]
        lag_text = [
            f"{lag.client}/{lag.channel} at {lag.last_seq} of {lag.channel_max}" for lag in self.laggards
        ]
        checks = [
            Check(
                f"{label}.gaps",
                self.gaps == 0,
                _counted(self.gaps, gap_text) + (f" ({self.missed} updates missed)" if self.gaps else ""),
                "0 updates skipped without a snapshot reset",
            ),
            Check(
                f"{label}.duplicates", self.duplicates == 0, str(self.duplicates), "0 updates received twice"
            ),
            Check(
                f"{label}.out_of_order",
                self.out_of_order == 0,
                str(self.out_of_order),
                "0 updates out of order",
            ),
            Check(
                f"{label}.reconverged",
                self.laggard_count == 0,
                _counted(self.laggard_count, lag_text),
                "every client caught up with its channels",
            ),
        ]
        if max_reconverge_s is not None:
            checks.append(
                Check(
                    f"{label}.reconverge_time",
                    self.reconverge_s is not None and self.reconverge_s <= max_reconverge_s,
                    "never" if self.reconverge_s is None else f"{self.reconverge_s:.3f}s",
                    f"<= {max_reconverge_s:g}s",
                )
            )
        return checks


@dataclass(slots=True)
class _Stream:
    """What one client has received on one channel so far."""

    top: int = -1  # highest sequence received since the last baseline
    reached_at: float = 0.0  # when `top` was received
    session: Any = None
    seen: set[int] = field(default_factory=set)
    open_gaps: list[list[int]] = field(default_factory=list)  # [first missing, last missing, filled later]
    settled_missed: int = 0  # missed from gaps before a sequence restart


def check_live(
    history: History,
    *,
    kind: str = "live_update",
    reference_at: float | None = None,
    clients: Iterable[str] | None = None,
    channel_max: dict[str, int] | None = None,
    sample_size: int = SAMPLE_SIZE,
) -> LiveVerdict:
    """Judge the live updates every client received, per client and channel, in the order received.

    `reference_at` (wall time, e.g. the heal instant) enables the time to reconverge: when every
    client's last seen sequence had reached its channel's maximum. The maximum is the highest
    sequence any client saw, unless `channel_max` gives the true one (e.g. read from Redis).

    An observation whose meta says `snapshot` (or `reset`) is a baseline, not an update: the client
    starts over from that position. The updates it jumps over count as missed only on a channel
    whose state the snapshot does not carry (meta `carried` false); a plain snapshot that restores
    the view counts has skipped nothing the agent needs.
    """
    wanted = set(clients) if clients is not None else None
    updates = gaps = duplicates = out_of_order = resets = missed_across_reset = missed_by_snapshot = 0
    streams: dict[tuple[str, str], _Stream] = {}
    sessions: set[tuple[str, Any]] = set()
    gap_sample: list[LiveGap] = []
    observed = history.observation_columns(kind)
    for key, at, meta in zip(observed.key, observed.at, observed.meta, strict=True):
        meta = meta or {}
        client = str(meta.get("client", ""))
        if wanted is not None and client not in wanted:
            continue
        channel, seq = _channel_and_seq(key, meta)
        session = meta.get("session")
        sessions.add((client, session))
        stream = streams.get((client, channel))
        if stream is None:
            stream = streams[client, channel] = _Stream()
        on_resume = stream.top >= 0 and session != stream.session
        stream.session = session
        if meta.get("snapshot") or meta.get("reset"):
            # A snapshot is a baseline, not an update: the client starts over from its position.
            if seq == stream.top and seq in stream.seen:
                # A new session starting where the last one ended skipped nothing; the same
                # snapshot twice in one session is a duplicate.
                duplicates += not on_resume
                continue
            if meta.get("reset"):
                resets += 1
            if stream.top >= 0 and seq < stream.top:
                # The channel's sequence restarted: settle what was missed and take a new baseline.
                stream.settled_missed += _unfilled(stream.open_gaps)
                stream.open_gaps.clear()
                stream.seen.clear()
            elif stream.top >= 0 and not meta.get("carried", True):
                # The snapshot carries no state for this channel: the updates it jumped over are lost.
                missed_by_snapshot += seq - stream.top
            elif stream.top >= 0 and meta.get("reset"):
                missed_across_reset += seq - stream.top - 1
            stream.top, stream.reached_at = seq, at
            stream.seen.add(seq)
            continue
        updates += 1
        if seq in stream.seen:
            duplicates += 1
            continue
        stream.seen.add(seq)
        if seq < stream.top:
            out_of_order += 1
            for gap in stream.open_gaps:
                if gap[0] <= seq <= gap[1]:
                    gap[2] += 1
            continue
        if 0 <= stream.top < seq - 1:
            gaps += 1
            stream.open_gaps.append([stream.top + 1, seq - 1, 0])
            if len(gap_sample) < sample_size:
                gap_sample.append(LiveGap(client, channel, stream.top, seq, session, on_resume))
        stream.top, stream.reached_at = seq, at

    maxima: dict[str, int] = {}
    for (_, channel), stream in streams.items():
        maxima[channel] = max(maxima.get(channel, -1), stream.top)
    if channel_max:
        maxima.update(channel_max)

    laggards: list[Laggard] = []
    laggard_count = 0
    caught_up_at: float | None = None
    for (client, channel), stream in streams.items():
        if stream.top < maxima[channel]:
            laggard_count += 1
            if len(laggards) < sample_size:
                laggards.append(Laggard(client, channel, stream.top, maxima[channel]))
        elif caught_up_at is None or stream.reached_at > caught_up_at:
            caught_up_at = stream.reached_at
    reconverge_s = None
    if reference_at is not None and laggard_count == 0 and caught_up_at is not None:
        reconverge_s = max(0.0, caught_up_at - reference_at)

    return LiveVerdict(
        updates=updates,
        clients=len({client for client, _ in streams}),
        streams=len(streams),
        gaps=gaps,
        missed=sum(s.settled_missed + _unfilled(s.open_gaps) for s in streams.values()),
        duplicates=duplicates,
        out_of_order=out_of_order,
        resets=resets,
        missed_across_reset=missed_across_reset,
        sessions=len(sessions),
        channel_max=maxima,
        reconverge_s=reconverge_s,
        laggards=tuple(laggards),
        gap_sample=tuple(gap_sample),
        laggard_count=laggard_count,
        missed_by_snapshot=missed_by_snapshot,
    )


def _channel_and_seq(key: str, meta: dict[str, Any]) -> tuple[str, int]:
    # Prefer the metadata; the key "<channel>:<seq>" is the fallback.
    channel, _, seq = key.rpartition(":")
    return str(meta.get("channel", channel)), int(meta.get("seq", seq))


def _unfilled(open_gaps: list[list[int]]) -> int:
    return sum(last - first + 1 - filled for first, last, filled in open_gaps)


RETRIED_AFTER_UNKNOWN = (
    "acknowledged on a retry after an attempt of unknown outcome (stored, never published)"
)
FIRST_ATTEMPT = "acknowledged on its first attempt, then lost on the way"


def lost_paths(history: History, op_kinds: tuple[str, ...], effect_kind: str = "processed") -> Counter[str]:
    """Acknowledged messages never observed, counted by the path that lost them: acknowledged on
    a retry whose earlier attempt had an unknown outcome, or acknowledged at once."""
    columns = history.op_columns()
    observed = set(history.observation_columns(effect_kind).key)
    unknown_before: dict[str | None, bool] = {}
    path: dict[str | None, str] = {}
    for i, kind in enumerate(columns.kind):
        if kind not in op_kinds:
            continue
        key, outcome = columns.key[i], columns.outcome[i]
        if outcome == OK and key not in path and key not in observed:
            path[key] = RETRIED_AFTER_UNKNOWN if unknown_before.get(key) else FIRST_ATTEMPT
        elif outcome in (INFO, PENDING):
            unknown_before[key] = True
    return Counter(path.values())
