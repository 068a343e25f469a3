"""Admin: application failpoints (admin token only)."""

from __future__ import annotations

from typing import Any

from services.api import models
from services.api.context import Context
from services.api.documented_errors import WITH_BODY, refusals
from services.api.errors import ApiError
from services.api.routing import admin_router
from services.common import failpoints

router = admin_router()


@router.get("/admin/failpoints", response_model=models.Failpoints, tags=["admin"])
async def list_failpoints(context: Context) -> dict[str, Any]:
    return {"failpoints": await context.store.failpoints(), "known": failpoints.KNOWN}


@router.put(
    "/admin/failpoints/{name}",
    response_model=models.FailpointSet,
    tags=["admin"],
    responses=refusals(*WITH_BODY, 404),
)
async def set_failpoint(name: str, update: models.FailpointUpdate, context: Context) -> dict[str, Any]:
    _check_known(name)
    await context.store.set_failpoint(name, update.value)
    context.failpoints.forget()
    return {"name": name, "value": update.value}


@router.delete(
    "/admin/failpoints/{name}",
    response_model=models.FailpointCleared,
    tags=["admin"],
    responses=refusals(404),
)
async def clear_failpoint(name: str, context: Context) -> dict[str, Any]:
    _check_known(name)
    removed = await context.store.clear_failpoint(name)
    context.failpoints.forget()
    return {"name": name, "removed": removed}


def _check_known(name: str) -> None:
    if name not in failpoints.KNOWN:
        known = ", ".join(sorted(failpoints.KNOWN))
        raise ApiError(404, "unknown_failpoint", f"no failpoint named {name!r}; known failpoints: {known}")
