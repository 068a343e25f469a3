"""How fast the history records and the checker judges a large synthetic run; prints figures, asserts nothing.

    .venv/bin/python bench/checker_bench.py [--ops 1000000] [--live-updates 200000] [--jsonl] [--seed 1]

The run: messages over many tickets, most acked, some failed, some timed out; each acked message
observed once, except a few lost, a few applied twice, a few overtaken on their ticket, plus a
few effects nobody attempted. Memory is the process's resident set before and after recording.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.checks.checker import check_live, check_messages
from harness.record.history import History

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def build_message_history(ops: int, rng: random.Random) -> tuple[History, dict[str, int]]:
    """Record `ops` post_message operations and their effects through the public API."""
    history = History()
    tickets = max(1, ops // 50)
    planted = dict.fromkeys(
        ("lost", "duplicated", "failed_but_observed", "recovered", "overtaken", "retried"), 0
    )
    overtaken: list[tuple[str, float]] = []
    made = 0
    while made < ops:
        key = f"{rng.getrandbits(128):032x}"
        ticket = rng.randrange(tickets)
        roll = rng.random()
        op = history.invoke(f"client-{made % 64}", "post_message", key, ticket_id=ticket, attempt=1)
        made += 1
        if roll < 0.01:
            op.fail("rejected", status=400)
            observed = rng.random() < 0.005
            planted["failed_but_observed"] += observed
        elif roll < 0.035:
            op.info("timeout")
            if rng.random() < 0.3 and made < ops:  # retried with the same key, and got through
                history.invoke(f"client-{made % 64}", "post_message", key, ticket_id=ticket, attempt=2).ok(
                    status=202
                )
                made += 1
                planted["retried"] += 1
                observed = True
            else:
                observed = rng.random() < 0.5
                planted["recovered"] += observed
        else:
            op.ok(status=202)
            observed = rng.random() >= 0.001
            planted["lost"] += not observed
        if not observed:
            continue
        at = time.time() + rng.expovariate(20.0)
        if rng.random() < 0.0001:
            overtaken.append((key, at))  # its effect will come after later messages on its ticket
            planted["overtaken"] += 1
            continue
        history.observe("processed", key, at)
        if rng.random() < 0.005:
            history.observe("processed", key, at + 0.01)
            planted["duplicated"] += 1
    for key, at in overtaken:
        history.observe("processed", key, at)
    for n in range(100):
        history.observe("processed", f"never-attempted-{n}", time.time())
    planted["unexpected"] = 100
    return history, planted


def build_live_history(history: History, updates: int, rng: random.Random) -> None:
    """100 clients on two channels; a few missed and repeated updates, reconnects, snapshot resets."""
    clients = [f"agent-{n}" for n in range(100)]
    per_stream = max(1, updates // (len(clients) * 2))
    now = time.time()
    for client in clients:
        for channel in ("views", "typing"):
            session, seq = 1, 0
            while seq < per_stream:
                seq += 1
                roll = rng.random()
                extra = {}
                if roll < 0.0005:
                    continue  # a missed update: a gap
                if roll < 0.001:
                    session, seq = session + 1, min(seq + 5, per_stream)  # reconnected too late: a snapshot
                    extra = {"reset": True}
                elif roll < 0.0015:
                    session += 1  # reconnected and resumed
                for _ in range(2 if roll > 0.9995 else 1):  # now and then delivered twice
                    history.observe(
                        "live_update",
                        f"{channel}:{seq}",
                        now + seq * 0.001,
                        client=client,
                        channel=channel,
                        seq=seq,
                        session=session,
                        **extra,
                    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ops", type=int, default=1_000_000)
    parser.add_argument("--live-updates", type=int, default=200_000)
    parser.add_argument("--jsonl", action="store_true", help="also time export to and import from JSON lines")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    gc.collect()
    rss_before = _rss_bytes()
    started = time.perf_counter()
    history, planted = build_message_history(args.ops, rng)
    build_s = time.perf_counter() - started
    gc.collect()
    rss_history = _rss_bytes() - rss_before
    records = history.op_count + history.observation_count
    print(f"history: {history.op_count:,} operations, {history.observation_count:,} observations")
    print(
        f"  build (recording through the API, incl. synthetic data): {build_s:.2f}s,"
        f" {records / build_s:,.0f} records/s"
    )
    print(
        f"  resident memory of the history: {_mib(rss_history)}, {rss_history / records:.0f} bytes per record"
    )
    print(f"  planted: {planted}")

    started = time.perf_counter()
    verdict = check_messages(history)
    check_s = time.perf_counter() - started
    print(f"check_messages: {check_s:.2f}s, {history.op_count / check_s:,.0f} ops/s")
    print(f"  summary: {verdict.as_summary()}")
    print(
        f"  failed_but_observed={verdict.failed_but_observed} extra_applications={verdict.extra_applications}"
        f" order_violations={verdict.order_violations} operations={verdict.operations}"
    )
    lat = verdict.latency
    print(f"  latency: p50={lat.p50:.4f}s p90={lat.p90:.4f}s p99={lat.p99:.4f}s max={lat.max:.4f}s")
    print(f"  failed checks: {[c.name for c in verdict.to_checks() if not c.passed]}")

    if args.live_updates:
        live = History()
        build_live_history(live, args.live_updates, rng)
        started = time.perf_counter()
        live_verdict = check_live(live, reference_at=time.time())
        live_s = time.perf_counter() - started
        print(
            f"check_live: {live.observation_count:,} updates in {live_s:.2f}s,"
            f" {live.observation_count / live_s:,.0f} updates/s"
        )
        print(
            f"  gaps={live_verdict.gaps} missed={live_verdict.missed} duplicates={live_verdict.duplicates}"
            f" resets={live_verdict.resets} missed_across_reset={live_verdict.missed_across_reset}"
            f" sessions={live_verdict.sessions} laggards={live_verdict.laggard_count}"
        )

    if args.jsonl:
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "history.jsonl"
            started = time.perf_counter()
            history.write_jsonl(path)
            write_s = time.perf_counter() - started
            size = path.stat().st_size
            started = time.perf_counter()
            loaded = History.read_jsonl(path)
            read_s = time.perf_counter() - started
            same = check_messages(loaded).as_summary() == verdict.as_summary()
            print(
                f"jsonl: {_mib(size)}, write {write_s:.2f}s, read {read_s:.2f}s,"
                f" same verdict after reload: {same}"
            )

    print(f"peak resident memory of the process: {_mib(_peak_rss_bytes())}")


if __name__ == "__main__":
    main()
