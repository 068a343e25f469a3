"""Agents: availability and the conversation list."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query

from services.api import conversations, models
from services.api.auth import CurrentCaller
from services.api.context import Context
from services.api.documented_errors import WITH_BODY, refusals
from services.api.errors import ApiError
from services.api.failpoint_reader import SLOW_CONVERSATIONS
from services.api.routing import agent_router
from services.common import tokens

router = agent_router()

# Far beyond any list, and small enough that Redis takes cursor + limit as a list position.
MAX_CURSOR = 1_000_000_000

AgentPath = Annotated[str, Path(pattern=tokens.AGENT_NAME.pattern, description="agent name")]


@router.put(
    "/agents/{name}/availability",
    response_model=models.Availability,
    tags=["agents"],
    responses=refusals(*WITH_BODY, 403),
)
async def set_availability(
    name: AgentPath, update: models.AvailabilityUpdate, context: Context, caller: CurrentCaller
) -> dict[str, Any]:
    if not caller.may_act_as(name):
        raise ApiError(403, "forbidden", f"only {name} or the admin may set {name}'s availability")
    await context.store.set_availability(name, update.status)
    await context.store.publish_live("availability", {"agent": name, "status": update.status})
    return {"agent": name, "status": update.status}


@router.get("/agents/{name}/conversations", response_model=models.ConversationPage, tags=["agents"])
async def list_conversations(
    name: AgentPath,
    context: Context,
    _caller: CurrentCaller,
    cursor: Annotated[
        int, Query(ge=0, le=MAX_CURSOR, description="position to start from (a previous next_cursor)")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> dict[str, Any]:
    if await context.failpoints.get(SLOW_CONVERSATIONS):
        return await conversations.everything_one_by_one(context.store, name)
    if context.settings.conversations_query == "per_ticket":  # the release
        if context.settings.conversations_pagination:
            return await conversations.page_one_by_one(context.store, name, cursor, limit)
        return await conversations.everything_one_by_one(context.store, name)
    return await conversations.page(context.store, name, cursor, limit)
