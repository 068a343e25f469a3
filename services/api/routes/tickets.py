"""Tickets and their messages, presence, typing and assignment."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path

from services.api import models
from services.api.auth import CurrentCaller
from services.api.context import Context
from services.api.documented_errors import WITH_BODY, refusals
from services.api.errors import not_found
from services.api.routing import agent_router

router = agent_router()

TicketId = Annotated[int, Path(ge=1, description="ticket id")]


@router.post(
    "/tickets",
    status_code=201,
    response_model=models.Ticket,
    tags=["tickets"],
    responses=refusals(*WITH_BODY),
)
async def create_ticket(new: models.NewTicket, context: Context, _caller: CurrentCaller) -> dict[str, Any]:
    ticket, view_count = await context.store.create_ticket(
        new.subject, new.customer, new.view, new.bot, new.assignee
    )
    await context.store.publish_live("views", {"view": new.view, "count": view_count})
    return ticket


@router.get(
    "/tickets/{ticket_id}",
    response_model=models.TicketWithMessages,
    tags=["tickets"],
    responses=refusals(404),
)
async def get_ticket(ticket_id: TicketId, context: Context, _caller: CurrentCaller) -> dict[str, Any]:
    ticket = await context.store.ticket_with_messages(ticket_id)
    if ticket is None:
        raise not_found(f"ticket {ticket_id}")
    return ticket


@router.post(
    "/tickets/{ticket_id}/messages",
    status_code=202,
    response_model=models.MessageAccepted,
    tags=["tickets"],
    responses=refusals(*WITH_BODY, 404),
)
async def post_message(
    ticket_id: TicketId, new: models.NewMessage, context: Context, _caller: CurrentCaller
) -> dict[str, Any]:
    """Answers 202 only once the message (and, with the outbox, its event) is stored in Redis."""
    outbox = context.settings.outbox
    stored = await context.store.add_message(ticket_id, new.body, new.author, new.id, spool_event=outbox)
    if stored is None:
        raise not_found(f"ticket {ticket_id}")
    if stored.event is not None:
        if outbox:
            context.metrics.count_events([stored.event], via="outbox")
        else:
            await context.emit([stored.event])  # a broker failure here answers 503
    return {"id": stored.message_id, "ticket_id": ticket_id, "event_id": stored.event_id}


@router.post(
    "/tickets/{ticket_id}/presence",
    response_model=models.Presence,
    tags=["agents"],
    responses=refusals(*WITH_BODY, 404),
)
async def update_presence(
    ticket_id: TicketId, update: models.PresenceUpdate, context: Context, caller: CurrentCaller
) -> dict[str, Any]:
    agents = await context.store.set_presence(ticket_id, caller.name, viewing=update.action == "open")
    if agents is None:
        raise not_found(f"ticket {ticket_id}")
    await context.store.publish_live("presence", {"ticket_id": ticket_id, "agents": agents})
    return {"ticket_id": ticket_id, "agents": agents}


@router.post(
    "/tickets/{ticket_id}/typing",
    status_code=202,
    response_model=models.Typing,
    tags=["agents"],
    responses=refusals(404),
)
async def typing(ticket_id: TicketId, context: Context, caller: CurrentCaller) -> dict[str, Any]:
    if not await context.store.ticket_exists(ticket_id):
        raise not_found(f"ticket {ticket_id}")
    await context.store.publish_live("typing", {"ticket_id": ticket_id, "agent": caller.name})
    return {"ticket_id": ticket_id, "agent": caller.name}


@router.put(
    "/tickets/{ticket_id}/assignee",
    response_model=models.Assignment,
    tags=["agents"],
    responses=refusals(*WITH_BODY, 404),
)
async def assign(
    ticket_id: TicketId, update: models.AssigneeUpdate, context: Context, _caller: CurrentCaller
) -> dict[str, Any]:
    if not await context.store.assign(ticket_id, update.agent):
        raise not_found(f"ticket {ticket_id}")
    await context.store.publish_live("assignment", {"ticket_id": ticket_id, "agent": update.agent})
    return {"ticket_id": ticket_id, "agent": update.agent}
