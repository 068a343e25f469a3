"""Chaos Toolkit probes: the steady state of the stack, and a recorded run's checks."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

from harness import control_http
from harness.interfaces.chaostoolkit import sent_messages
from harness.observe.backlog import QUIET_S, leftovers
from harness.observe.broker_watch import BrokerWatch
from harness.stack import credentials
from harness.stack.compose_stack import ComposeStack
from harness.stack.protocol import Endpoints


def api_health() -> int:
    """The status code of GET /health through the gateway (0 when nothing answers)."""
    try:
        return control_http.get(f"{ComposeStack().endpoints().api}/health", timeout=5).status_code
    except httpx.HTTPError:
        return 0


def queue_depth() -> int:
    """Messages waiting on the broker's events queues (ready and unacknowledged)."""
    for url in ComposeStack().endpoints().management.values():
        try:
            queues = control_http.get(f"{url}/api/queues", auth=credentials.broker_login(), timeout=5)
        except httpx.HTTPError:
            continue
        if queues.status_code == 200:
            return sum(int(q.get("messages") or 0) for q in queues.json() if q["name"].startswith("events."))
    raise ConnectionError("no broker node answered")


def messages_lost(wait_s: float = 60, agent: str = "chaos-customer") -> int:
    """Messages the api acknowledged (since the record was last cleared) that never reached their thread.

    Waits up to `wait_s` for the worker to catch up, so a message merely late is not counted; stops
    waiting sooner once nothing can bring the missing ones (the run's drain rule: no event in the
    outbox or on a queue, and none arrived for QUIET_S).
    """
    acknowledged = sent_messages.acknowledged()
    endpoints = ComposeStack().endpoints()
    deadline = time.monotonic() + wait_s
    last_missing, quiet_since = -1, time.monotonic()
    with _api_client(endpoints, agent) as client:
        while True:
            missing = sum(len(ids - processed) for ids, processed in _processed(client, acknowledged))
            now = time.monotonic()
            if missing != last_missing or _events_waiting(endpoints):
                last_missing, quiet_since = missing, now
            if missing == 0 or now >= deadline or now - quiet_since >= QUIET_S:
                return missing
            time.sleep(2)


def messages_processed(at_least: int = 1, wait_s: float = 60, agent: str = "chaos-customer") -> int:
    """How many acknowledged messages have reached their thread, once at least `at_least` have.

    A method waits on it before harming the worker, so the worker is consuming (and holds messages)
    when the fault lands, not still starting. Raises when too few arrive within `wait_s`.
    """
    acknowledged = sent_messages.acknowledged()
    deadline = time.monotonic() + wait_s
    with _api_client(ComposeStack().endpoints(), agent) as client:
        while True:
            done = sum(len(ids & processed) for ids, processed in _processed(client, acknowledged))
            if done >= at_least:
                return done
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{done} of {at_least} messages reached their thread within {wait_s:g} s")
            time.sleep(0.2)


def _api_client(endpoints: Endpoints, agent: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {credentials.agent_token(agent)}"}
    return httpx.Client(base_url=endpoints.api, headers=headers, timeout=10)


def _processed(client: httpx.Client, acknowledged: dict[int, set[str]]) -> list[tuple[set[str], set[str]]]:
    """Per ticket: the acknowledged message ids, and the ids its thread shows processed (none when
    the api cannot answer)."""
    pairs = []
    for ticket_id, ids in acknowledged.items():
        try:
            reply = client.get(f"/tickets/{ticket_id}")
            reply.raise_for_status()
            processed = {m["id"] for m in reply.json()["messages"] if m["processed"]}
        except httpx.HTTPError:
            processed = set()
        pairs.append((ids, processed))
    return pairs


def _events_waiting(endpoints: Endpoints) -> bool:
    """True while an event waits in an outbox stream or on an events queue, or nobody can say."""
    try:
        return bool(asyncio.run(_leftovers(endpoints)))
    except Exception:  # the broker or Redis cannot answer: something may still be on its way
        return True


async def _leftovers(endpoints: Endpoints) -> dict[str, int]:
    client = aioredis.from_url(endpoints.redis, decode_responses=True)
    try:
        return await leftovers(client, BrokerWatch(endpoints, time.monotonic))
    finally:
        await client.aclose()


def scenario_checks(report_dir: str) -> dict[str, Any]:
    """A recorded run judged again from its report directory (as `outage check` does).

    Returns the verdict and each failed check, so a tolerance can require `"verdict": "held"`.
    """
    from harness.checks.recheck import recheck

    judged = recheck(Path(report_dir))
    return {
        "verdict": judged.result.verdict,
        "partial": judged.partial,
        "failed": [
            {"name": c.name, "observed": c.observed, "expected": c.expected}
            for c in judged.result.failed_checks()
        ],
    }
