"""The events that travel from the api, through the outbox and the broker, to the worker."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

MESSAGE_CREATED = "message.created"
TICKET_BULK_UPDATED = "ticket.bulk_updated"
KNOWN_TYPES = frozenset({MESSAGE_CREATED, TICKET_BULK_UPDATED})
# A message carrying several events, one JSON object per line: how the bulk lane travels.
BATCH_CONTENT_TYPE = "application/x-ndjson"


class EventError(ValueError):
    """A payload that is not a well-formed event."""


@dataclass(frozen=True)
class Event:
    type: str
    ticket_id: int
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    message_id: str | None = None
    created_at: float = field(default_factory=time.time)
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def is_bulk(self) -> bool:
        return self.type == TICKET_BULK_UPDATED

    def encode(self) -> bytes:
        # The same JSON as asdict() would give, without its deep copy: a bulk action encodes 100,000s.
        body = {
            "type": self.type,
            "ticket_id": self.ticket_id,
            "event_id": self.event_id,
            "message_id": self.message_id,
            "created_at": self.created_at,
            "data": self.data,
        }
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes | str) -> Event:
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EventError(f"event is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise EventError("event must be a JSON object")
        missing = {"type", "ticket_id", "event_id"} - body.keys()
        if missing:
            raise EventError(f"event lacks {', '.join(sorted(missing))}")
        if body["type"] not in KNOWN_TYPES:
            raise EventError(f"unknown event type {body['type']!r}")
        try:
            return cls(
                type=body["type"],
                ticket_id=int(body["ticket_id"]),
                event_id=str(body["event_id"]),
                message_id=body.get("message_id"),
                created_at=float(body.get("created_at", 0.0)),
                data=dict(body.get("data") or {}),
            )
        except (TypeError, ValueError) as exc:
            raise EventError(f"event has a field of the wrong type: {exc}") from None


def encode_batch(bodies: Sequence[bytes]) -> bytes:
    """Events already encoded, as one message body: compact JSON never holds a raw newline."""
    return b"\n".join(bodies)


def decode_batch(raw: bytes) -> tuple[list[Event], list[EventError]]:
    """The events of a batch body, and what was wrong with each line that is not an event."""
    events: list[Event] = []
    problems: list[EventError] = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            events.append(Event.decode(line))
        except EventError as exc:
            problems.append(EventError(f"line {number} of the batch: {exc}"))
    return events, problems
