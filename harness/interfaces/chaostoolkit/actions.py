"""Chaos Toolkit actions: faults in and out, profile settings, customer messages, heal.

Every injection goes through the fault ledger like a scenario's, so `revert_fault`, the `heal`
rollback and `outage heal` all know what is still in place.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from faults.base import apply, fault_from_record
from harness.interfaces.chaostoolkit import sent_messages
from harness.stack import credentials
from harness.stack.compose_stack import ComposeStack
from harness.stack.ledger import FaultLedger


def inject_fault(kind: str, **parameters: Any) -> dict[str, Any]:
    """Inject the fault of this ledger kind (e.g. `kill` with `service`, `failpoint` with `name`, `value`)."""
    fault = fault_from_record({"kind": kind, **parameters})
    entry = apply(fault, ComposeStack(), FaultLedger())
    return {"entry": entry, "fault": fault.describe()}


def revert_fault(kind: str, **parameters: Any) -> dict[str, Any]:
    """Revert every outstanding injection of exactly this fault (none outstanding: nothing to do)."""
    wanted = fault_from_record({"kind": kind, **parameters})
    ledger, stack = FaultLedger(), ComposeStack()
    reverted = []
    for entry, record in ledger.outstanding():
        if fault_from_record(record) == wanted:
            wanted.revert(stack)
            ledger.record_revert(entry)
            reverted.append(entry)
    return {"fault": wanted.describe(), "reverted": reverted}


def use_profile(scenario: str, profile: str, timeout: float = 240) -> dict[str, str]:
    """Run the app services with a scenario's settings for a profile (hardened or vulnerable)."""
    from harness.engine.scenario import scenario_class

    settings = scenario_class(scenario)().settings(profile)
    stack = ComposeStack()
    stack.configure(settings)
    stack.wait_healthy(timeout)
    return settings


def send_messages(count: int = 100, tickets: int = 5, agent: str = "chaos-customer") -> dict[str, int]:
    """Post `count` customer messages over a few new tickets; remember each one the api acknowledged."""
    api = ComposeStack().endpoints().api
    headers = {"Authorization": f"Bearer {credentials.agent_token(agent)}"}
    acknowledged = failed = 0
    with httpx.Client(base_url=api, headers=headers, timeout=10) as client:
        ticket_ids = []
        for number in range(tickets):
            reply = client.post(
                "/tickets", json={"subject": f"chaos {number}", "customer": "chaos@example.com"}
            )
            reply.raise_for_status()
            ticket_ids.append(int(reply.json()["id"]))
        for number in range(count):
            ticket_id = ticket_ids[number % tickets]
            try:
                reply = client.post(
                    f"/tickets/{ticket_id}/messages",
                    json={"body": f"message {number}", "id": uuid.uuid4().hex},
                )
            except httpx.HTTPError:
                failed += 1
                continue
            if reply.status_code == 202:
                sent_messages.remember(ticket_id, reply.json()["id"])
                acknowledged += 1
            else:
                failed += 1
    return {"acknowledged": acknowledged, "failed": failed}


def forget_sent_messages() -> None:
    """Start the next experiment with no messages to account for."""
    sent_messages.forget()


def heal(timeout: float = 240) -> dict[str, Any]:
    """The rollback: what `outage heal` does; fails when something could not be repaired."""
    from harness.stack.heal import heal as heal_stack

    report = heal_stack(ComposeStack(), timeout=timeout, say=lambda _line: None)
    if report.errors:
        raise RuntimeError("heal could not repair everything: " + "; ".join(report.errors))
    return {"reverted": report.reverted, "repaired": report.repaired, "seconds": round(report.seconds, 1)}
