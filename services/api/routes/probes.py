"""Health, readiness and metrics: no token needed."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from services.api import models
from services.api.context import Context
from services.api.publishing import BrokerUnavailable

router = APIRouter(tags=["probes"])

_REDIS_TIMEOUT_S = 2.0
_BROKER_TIMEOUT_S = 5.0


@router.get("/health", response_model=models.Health)
async def health(context: Context) -> dict[str, Any]:
    """The process is up; says which resilience switches it runs with."""
    return {"status": "alive", "service": "api", "switches": context.settings.switches()}


@router.get(
    "/ready",
    response_model=models.Readiness,
    responses={503: {"model": models.NotReady, "description": "a dependency is not answering"}},
)
async def ready(context: Context) -> JSONResponse:
    """200 when Redis answers (and the broker, when the api publishes to it directly)."""
    checks: dict[str, str] = {}
    if context.admission.draining:  # about to restart: send no new work here
        checks["draining"] = "draining before a restart"
    try:
        await asyncio.wait_for(context.store.ping(), _REDIS_TIMEOUT_S)
        checks["redis"] = "ok"
    except Exception as exc:  # any failure means not ready, and says why
        checks["redis"] = f"unreachable: {_describe(exc)}"
    if context.publisher is not None:
        try:
            await asyncio.wait_for(context.publisher.probe(), _BROKER_TIMEOUT_S)
            checks["broker"] = "ok"
        except (BrokerUnavailable, TimeoutError) as exc:
            checks["broker"] = f"unreachable: {_describe(exc)}"
    failed = {name: state for name, state in checks.items() if state != "ok"}
    if failed:
        detail = "; ".join(f"{name} {state}" for name, state in failed.items())
        body = {"error": "not_ready", "detail": detail, "checks": checks}
        return JSONResponse(body, status_code=503)
    return JSONResponse({"status": "ready", "checks": checks})


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}, "description": "metrics"}
    },
)
async def metrics(context: Context) -> Response:
    """Prometheus text; the outbox length is read from Redis on each scrape."""
    try:
        length = await asyncio.wait_for(context.store.outbox_length(), _REDIS_TIMEOUT_S)
        context.metrics.outbox_length.set(length)
    except Exception:  # a scrape must work while Redis is down: the gauge keeps its last value
        context.metrics.outbox_unreadable.inc()
    return Response(context.metrics.render(), media_type=CONTENT_TYPE_LATEST)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
