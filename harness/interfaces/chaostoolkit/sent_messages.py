"""The customer messages an experiment sent and the api acknowledged, kept between activities.

Chaos Toolkit runs each activity on its own, so the acknowledged ids are written to the stack's
state folder; the `messages_lost` probe reads them back, and `forget_sent_messages` clears them.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.stack.state_dir import project_state_dir


def record_path() -> Path:
    return project_state_dir() / "chaostoolkit-sent.jsonl"


def remember(ticket_id: int, message_id: str) -> None:
    with open(record_path(), "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"ticket_id": ticket_id, "message_id": message_id}) + "\n")


def acknowledged() -> dict[int, set[str]]:
    """Ticket id -> the message ids the api acknowledged for it."""
    path = record_path()
    by_ticket: dict[int, set[str]] = {}
    if not path.exists():
        return by_ticket
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line torn by a killed process acknowledged nothing we know of
        by_ticket.setdefault(int(entry["ticket_id"]), set()).add(str(entry["message_id"]))
    return by_ticket


def forget() -> None:
    record_path().unlink(missing_ok=True)
