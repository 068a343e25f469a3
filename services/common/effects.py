"""The effects log: every effect the worker produces, as the harness observes it.

One entry per effect *application*: a non-idempotent worker that applies an event twice
writes two entries, which is how the checker sees duplicates.
"""

from __future__ import annotations

import time

from services.common import keys

PROCESSED = "processed"  # message appended to the ticket's thread
EMAIL_DELIVERED = "email_delivered"
EMAIL_IMPORTED = "email_imported"
VIEW_COUNT_UPDATED = "view_count_updated"
BOT_REPLY = "bot_reply"
BULK_APPLIED = "bulk_applied"


def effect_fields(
    kind: str, event_id: str, ticket_id: int | str, message_id: str | None = None, **extra: str
) -> dict[str, str]:
    """The fields of one effects-stream entry (add them with XADD inside the effect's transaction)."""
    fields = {
        "kind": kind,
        "event_id": event_id,
        "ticket_id": str(ticket_id),
        "message_id": message_id or "",
        "at": f"{time.time():.6f}",
    }
    fields.update(extra)
    return fields


STREAM = keys.EFFECTS
