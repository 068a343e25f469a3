"""Chaos Toolkit probes: the steady state of the stack, and a recorded run's checks."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from harness.interfaces.chaostoolkit import sent_messages
from harness.stack import credentials
from harness.stack.compose_stack import ComposeStack


def api_health() -> int:
    """The status code of GET /health through the gateway (0 when nothing answers)."""
    try:
        return httpx.get(f"{ComposeStack().endpoints().api}/health", timeout=5).status_code
    except httpx.HTTPError:
        return 0


def queue_depth() -> int:
    """Messages waiting on the broker's events queues (ready and unacknowledged)."""
    for url in ComposeStack().endpoints().management.values():
        try:
            queues = httpx.get(f"{url}/api/queues", auth=credentials.broker_login(), timeout=5)
        except httpx.HTTPError:
            continue
        if queues.status_code == 200:
            return sum(int(q.get("messages") or 0) for q in queues.json() if q["name"].startswith("events."))
    raise ConnectionError("no broker node answered")


def messages_lost(wait_s: float = 60, agent: str = "chaos-customer") -> int:
    """Messages the api acknowledged (since the record was last cleared) that never reached their thread.

    Waits up to `wait_s` for the worker to catch up, so a message merely late is not counted.
    """
    acknowledged = sent_messages.acknowledged()
    api = ComposeStack().endpoints().api
    headers = {"Authorization": f"Bearer {credentials.agent_token(agent)}"}
    deadline = time.monotonic() + wait_s
    with httpx.Client(base_url=api, headers=headers, timeout=10) as client:
        while True:
            missing = 0
            for ticket_id, ids in acknowledged.items():
                try:
                    reply = client.get(f"/tickets/{ticket_id}")
                    reply.raise_for_status()
                except httpx.HTTPError:
                    missing += len(ids)
                    continue
                processed = {m["id"] for m in reply.json()["messages"] if m["processed"]}
                missing += len(ids - processed)
            if missing == 0 or time.monotonic() >= deadline:
                return missing
            time.sleep(2)


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
