"""Views: their open-ticket count, bulk actions over every ticket, and seeding for load tests."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Annotated, Any

from fastapi import Path

from services.api import models
from services.api.auth import CurrentCaller
from services.api.context import Context
from services.api.documented_errors import WITH_BODY, refusals
from services.api.routing import admin_router, agent_router
from services.common.events import TICKET_BULK_UPDATED, Event

router = agent_router()
admin_routes = admin_router()

# Events per step of a bulk action: small enough that the other requests barely notice one.
BULK_CHUNK = 250

ViewPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,100}$", description="view name")]


@router.get("/views/{name}/count", response_model=models.ViewCount, tags=["views"])
async def view_count(name: ViewPath, context: Context, _caller: CurrentCaller) -> dict[str, Any]:
    return {"view": name, "count": await context.store.view_count(name)}


@router.post(
    "/views/{name}/bulk",
    status_code=202,
    response_model=models.BulkAccepted,
    tags=["views"],
    responses=refusals(*WITH_BODY),
)
async def bulk_action(
    name: ViewPath, action: models.BulkAction, context: Context, _caller: CurrentCaller
) -> dict[str, Any]:
    """One event per ticket of the view, on the same path as message events, a chunk at a time.

    Between chunks the request hands the event loop back, so message posts arriving during a
    huge bulk action wait for at most one chunk, never for the whole view. With bulk isolation
    the action also waits whenever its lane is full: it proceeds at the pace the relay drains."""
    data = {"action": action.action} if action.tag is None else {"action": action.action, "tag": action.tag}
    emitted = 0
    action_id = uuid.uuid4().hex  # one random id per action; each event's id adds its ticket
    async for chunk in context.store.view_ticket_chunks(name, size=BULK_CHUNK):
        now = time.time()
        events = [
            Event(TICKET_BULK_UPDATED, ticket_id, f"{action_id}-{ticket_id}", created_at=now, data=data)
            for ticket_id in chunk
        ]
        await context.emit(events)
        emitted += len(chunk)
        await asyncio.sleep(0)  # the emit may not have suspended: let other requests run
    return {"view": name, "events": emitted}


@admin_routes.post(
    "/views/{name}/seed",
    status_code=201,
    response_model=models.Seeded,
    tags=["views"],
    responses=refusals(*WITH_BODY),
)
async def seed_view(name: ViewPath, seed: models.SeedRequest, context: Context) -> dict[str, Any]:
    """A load-test fixture: many tickets in one view, written with pipelines."""
    count = await context.store.seed_view(name, seed.tickets, seed.assignee)
    await context.store.publish_live("views", {"view": name, "count": count})
    return {"created": seed.tickets}
