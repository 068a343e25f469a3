"""The api's FastAPI application, built by `create_app`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException
from starlette.routing import Match

from services.api.admission import Admission
from services.api.context import ApiContext, context_of
from services.api.cooldowns import deployment, keep_cooldowns, restore_cooldowns
from services.api.deadline import DeadlineAwareRedis
from services.api.errors import ApiError, error_response, from_validation
from services.api.failpoint_reader import FailpointReader
from services.api.limits import BodySizeLimit
from services.api.metrics import ApiMetrics, RequestMetrics
from services.api.publishing import BrokerUnavailable, DirectPublisher
from services.api.routes import admin, agents, probes, tickets, views
from services.api.store import TicketStore
from services.common.config import Settings


def create_app(settings: Settings, redis_client: redis.asyncio.Redis | None = None) -> FastAPI:
    """The api for these settings.

    Nothing here connects: Redis is first touched by a request that needs it, so requests
    refused earlier (auth, size, validation) work without any server. A given `redis_client`
    must decode responses and is left open; one made here is closed on shutdown.
    """
    client = redis_client if redis_client is not None else _redis_client(settings)
    store = TicketStore(client, live_history=settings.live_history)
    metrics = ApiMetrics()
    publisher = None if settings.outbox else DirectPublisher(settings)
    admission = Admission.from_settings(settings)
    deployed = deployment(settings)
    keep_cooldowns(admission, store, deployed)
    context = ApiContext(
        settings=settings,
        store=store,
        failpoints=FailpointReader(store.failpoints),
        metrics=metrics,
        publisher=publisher,
        admission=admission,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if settings.api_deadline_cooldown_s > 0:
            await restore_cooldowns(admission, store, deployed)
        yield
        if publisher is not None:
            publisher.close()
        if redis_client is None:
            await client.aclose()

    app = FastAPI(
        title="Outage Lab helpdesk api",
        version="1.0",
        description="Tickets, messages, views, agents, bulk actions. Send `Authorization: Bearer <token>`.",
        lifespan=lifespan,
    )
    app.state.context = context
    _install_error_handlers(app)
    for module in (probes, tickets, views, agents, admin):
        app.include_router(module.router)
    app.include_router(views.admin_routes)
    # The last added runs first: metrics see every answer, including a 413 from the size limit.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, metrics=metrics)
    app.add_middleware(RequestMetrics, metrics=metrics)
    return app


def _redis_client(settings: Settings) -> redis.asyncio.Redis:
    # One retry on a dropped connection (Redis restarted): every write the api makes is safe to
    # repeat (message ids are fixed before the write); timeouts are not retried.
    return DeadlineAwareRedis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_connect_timeout=2,
        socket_timeout=10,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 1),
        retry_on_error=[RedisConnectionError],
    )


def _framework_error(request: Request, error: HTTPException) -> HTTPException:
    """Say which route was asked for when the router itself refuses."""
    where = f"{request.method} {request.url.path}"
    if error.status_code == 404 and error.detail == "Not Found":
        return ApiError(404, "not_found", f"no route {where}; see /openapi.json")
    if error.status_code == 405:
        allow = {"Allow": ", ".join(_methods_for(request))}
        return ApiError(405, "method_not_allowed", f"{where}: method not allowed", headers=allow)
    return error


def _methods_for(request: Request) -> list[str]:
    """Every method some route serves at this path (the router names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, APIRoute) and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods or set()
    return sorted(methods)


def _install_error_handlers(app: FastAPI) -> None:
    def answer(request: Request, error: HTTPException) -> JSONResponse:
        if not isinstance(error, ApiError):
            error = _framework_error(request, error)
        code = error.code if isinstance(error, ApiError) else str(error.status_code)
        context_of(request).metrics.count_error(code)
        return error_response(error)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, error: HTTPException) -> JSONResponse:
        return answer(request, error)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return answer(request, from_validation(error))

    @app.exception_handler(BrokerUnavailable)
    async def _broker_down(request: Request, error: BrokerUnavailable) -> JSONResponse:
        return answer(request, ApiError(503, "broker_unavailable", str(error)))

    @app.exception_handler(RedisError)
    async def _store_down(request: Request, error: RedisError) -> JSONResponse:
        if isinstance(error, RedisConnectionError | RedisTimeoutError):
            return answer(request, ApiError(503, "store_unavailable", f"Redis is not answering: {error}"))
        return answer(request, ApiError(500, "store_error", f"Redis refused a command: {error}"))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        detail = f"unexpected {type(error).__name__}; see the api log"
        return answer(request, ApiError(500, "internal", detail))
