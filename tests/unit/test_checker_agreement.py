"""The checkers agree with a plain reading of their definitions on a history with every anomaly they
know, however the keys are grouped (by their hashes, or with a dict where hashes collide) and
whether the history was recorded here or read back from its JSON lines."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter

import pytest

from harness.checks import grouping
from harness.checks.checker import check_live, check_messages
from harness.checks.latency import summarize
from harness.record.history import History

RANK = {"ok": 3, "info": 2, None: 2, "fail": 1}  # ok beats unknown beats failed


def _history_with_every_anomaly(seed: int = 3) -> History:
    """Messages on tickets of a few each (and some on none): retried, failed, timed out, pending;
    effects lost, repeated, overtaking, after a definite failure, never attempted; operations
    without a key or of another kind; effects of another kind; live updates with gaps, repeats,
    late arrivals, resumed and reset sessions, and snapshots."""
    rng = random.Random(seed)
    history = History()
    effects: list[tuple[str, dict]] = []
    late: list[tuple[str, dict]] = []
    for n in range(3_000):
        key = f"m{n}"
        ticket = None if rng.random() < 0.1 else n // 8  # conversations of a few messages
        for attempt in range(1 + (rng.random() < 0.1)):
            op = history.invoke(f"c{n % 7}", "post_message", key, ticket_id=ticket, attempt=attempt)
            roll = rng.random()
            if roll < 0.75:
                op.ok(status=202)
            elif roll < 0.85:
                op.fail("rejected", status=400)
            elif roll < 0.95:
                op.info("timeout")  # else never completed: pending
        if rng.random() < 0.05:
            history.invoke("c0", "create_ticket").ok(ticket_id=n)  # no key
        if rng.random() < 0.05:
            history.invoke("c0", "bulk_close", f"b{n}").ok()  # another kind
        if rng.random() < 0.03:
            continue  # never observed
        meta = {"ticket_id": ticket} if ticket is not None else {}
        (late if rng.random() < 0.02 else effects).append((key, meta))
        if rng.random() < 0.03:  # applied twice: at once, or much later
            (late if rng.random() < 0.3 else effects).append((key, meta))
        if rng.random() < 0.2:
            history.observe("email_delivered", key, 1_700_000_000.0 + n)
        while effects and rng.random() < 0.8:  # effects trail the operations, a few swapped
            observed, observed_meta = effects.pop(rng.randrange(min(len(effects), 2)))
            history.observe("processed", observed, 1_700_000_000.0 + n / 10, **observed_meta)
    for key, meta in [*effects, *late, ("ghost-1", {}), ("ghost-2", {}), ("ghost-1", {})]:
        history.observe("processed", key, 1_700_000_500.0 + rng.random(), **meta)
    _live_updates(history, rng)
    return history


def _live_updates(history: History, rng: random.Random) -> None:
    for client in ("alice", "bob", "carol"):
        for channel, carried in (("views", True), ("typing", False)):
            session, seq, skipped = 1, 0, []
            while seq < 300:
                seq += 1
                roll = rng.random()
                meta = {"client": client, "channel": channel, "seq": seq, "session": session}
                if roll < 0.02:
                    skipped.append(meta)  # a gap, which a later update may fill
                    continue
                if roll < 0.03:
                    session, seq = session + 1, seq + 4
                    meta.update(session=session, seq=seq, reset=True)
                elif roll < 0.04:
                    session += 1
                    meta.update(session=session, snapshot=True, carried=carried)
                for _ in range(1 + (roll > 0.98)):  # now and then delivered twice
                    history.observe("live_update", f"{channel}:{meta['seq']}", 100.0 + seq, **meta)
                if skipped and roll > 0.9:  # a skipped update arriving late
                    late = skipped.pop(0)
                    history.observe("live_update", f"{channel}:{late['seq']}", 100.0 + seq, **late)


def _plainly(history: History, effect_kind: str = "processed", op_kind=None) -> tuple[dict, set[str]]:
    """check_messages's definitions, read literally: a loop over operations, then over effects.
    Returns its details, and the keys whose effect overtook an earlier acknowledged message."""
    first, best, acked_at = {}, {}, {}
    operations = 0
    for op in history.ops():
        if op.key is None or (op_kind is not None and op.kind not in op_kind):
            continue
        operations += 1
        first.setdefault(op.key, op)
        best[op.key] = max(best.get(op.key, 0), RANK[op.outcome])
        if op.outcome == "ok":
            acked_at[op.key] = min(acked_at.get(op.key, math.inf), op.complete_mono_ns)
    first_effect, repeats = {}, Counter()
    for position, effect in enumerate(history.observations(effect_kind)):
        if effect.key in first_effect:
            repeats[effect.key] += 1
        else:
            first_effect[effect.key] = (position, effect.at)
    delivered = [key for key in best if key in first_effect]
    lost = [key for key in best if best[key] == 3 and key not in first_effect]
    unexpected = [key for key in first_effect if key not in best]
    failed_seen = [key for key in delivered if best[key] == 1]
    acked_times = [first_effect[key][1] for key in delivered if best[key] == 3]
    latencies = [first_effect[key][1] - first[key].invoke_wall for key in delivered]
    on_ticket: dict = {}
    for key in delivered:
        on_ticket.setdefault(first[key].ticket_id, []).append(key)
    on_ticket.pop(None, None)  # no order to keep
    violations = set()
    for keys in on_ticket.values():
        for later, earlier in itertools.product(keys, keys):
            acked_before = acked_at.get(earlier, math.inf) < first[later].invoke_mono_ns
            if acked_before and first_effect[later][0] < first_effect[earlier][0]:
                violations.add(later)
    ranks = list(best.values())
    details = {
        "attempted": len(best),
        "acked": ranks.count(3),
        "failed": ranks.count(1),
        "unknown": ranks.count(2),
        "delivered": len(delivered),
        "lost": len(lost),
        "duplicated": len(repeats),
        "unexpected": len(unexpected),
        "recovered": sum(best[key] == 2 for key in delivered),
        "operations": operations,
        "failed_but_observed": len(failed_seen),
        "extra_applications": sum(repeats.values()),
        "order_violations": len(violations),
        "latency_s": summarize(latencies).as_dict(),
        "last_acked_effect_at": max(acked_times, default=None),
        "samples": {
            "lost": lost[:20],
            "unexpected": unexpected[:20],
            "duplicated": list(repeats)[:20],
            "failed_but_observed": failed_seen[:20],
        },
    }
    return details, violations


def _judged(history: History, op_kind=None) -> dict:
    verdict = check_messages(history, op_kind=op_kind)
    details = verdict.details()
    details["last_acked_effect_at"] = verdict.last_acked_effect_at
    return details


@pytest.fixture(scope="module")
def history() -> History:
    return _history_with_every_anomaly()


@pytest.mark.parametrize("op_kind", [None, ("post_message",)], ids=["any kind", "one kind"])
def test_the_message_checker_agrees_with_its_definitions(history, op_kind):
    judged = _judged(history, op_kind)
    plain, overtaking = _plainly(history, op_kind=op_kind)

    sample = judged["samples"].pop("order_violations")
    del judged["effect_kind"]
    assert judged == plain
    assert {violation["later"] for violation in sample} <= overtaking
    # Every anomaly is there, so the agreement covers each of them.
    assert all(judged[name] > 0 for name in ("lost", "duplicated", "unexpected", "failed_but_observed"))
    assert judged["order_violations"] > 0 and judged["recovered"] > 0 and judged["operations"] > 3_000


def test_grouping_after_a_hash_collision_gives_the_same_verdicts(history, monkeypatch):
    by_hash = _judged(history), check_live(history).details()

    monkeypatch.setattr(grouping, "_hash", lambda value: 0)  # every key collides: grouped by dict

    assert (_judged(history), check_live(history).details()) == by_hash


def test_a_history_read_back_from_its_file_gets_the_same_verdicts(history, tmp_path):
    path = tmp_path / "history.jsonl"
    history.write_jsonl(path)

    loaded = History.read_jsonl(path)

    assert _judged(loaded) == _judged(history)
    assert _judged(loaded, ("post_message",)) == _judged(history, ("post_message",))
    assert check_live(loaded).details() == check_live(history).details()
    live = check_live(history)
    assert live.gaps and live.duplicates and live.out_of_order and live.resets and live.missed_by_snapshot
