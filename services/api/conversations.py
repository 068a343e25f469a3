"""An agent's conversation list: paginated, or the bad release that reads each conversation on its own.

The release (`CONVERSATIONS_QUERY=per_ticket`) costs one round trip per conversation; with
pagination switched off it also ignores the page and reads them all, as the `api.slow_conversations`
failpoint always does.
"""

from __future__ import annotations

from typing import Any

from services.api.store import TicketStore


async def page(store: TicketStore, agent: str, cursor: int, limit: int) -> dict[str, Any]:
    """`limit` conversations from position `cursor`, newest activity first, in two round trips."""
    rows = await store.conversation_rows(agent, cursor, cursor + limit)  # one extra row: is there more?
    more = len(rows) > limit
    rows = rows[:limit]
    subjects = await store.subjects([row.ticket_id for row in rows])
    items = [
        {"ticket_id": row.ticket_id, "subject": subject, "last_activity": row.last_activity}
        for row, subject in zip(rows, subjects, strict=True)
        if subject is not None
    ]
    return {"items": items, "next_cursor": cursor + limit if more else None}


async def everything_one_by_one(store: TicketStore, agent: str) -> dict[str, Any]:
    """The bad release: ignores pagination and reads each ticket in its own round trip.

    Its cost grows with the number of conversations, so agents with large accounts time out
    while everyone else looks fine.
    """
    items = []
    for row in await store.conversation_rows(agent, 0, -1):
        ticket = await store.ticket(row.ticket_id)
        if ticket is not None:
            items.append(
                {"ticket_id": row.ticket_id, "subject": ticket["subject"], "last_activity": row.last_activity}
            )
    return {"items": items, "next_cursor": None}


async def page_one_by_one(store: TicketStore, agent: str, cursor: int, limit: int) -> dict[str, Any]:
    """The release's query bounded by pagination: one round trip per conversation of the page."""
    rows = await store.conversation_rows(agent, cursor, cursor + limit)
    more = len(rows) > limit
    items = []
    for row in rows[:limit]:
        ticket = await store.ticket(row.ticket_id)
        if ticket is not None:
            items.append(
                {"ticket_id": row.ticket_id, "subject": ticket["subject"], "last_activity": row.last_activity}
            )
    return {"items": items, "next_cursor": cursor + limit if more else None}
