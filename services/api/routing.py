"""Route classes that authenticate before FastAPI reads the body.

`AgentRoute` accepts any valid token (admin included), `AdminRoute` only the admin token.
Agent routes are also where the `api.latency_ms` failpoint holds successful answers back, and
where admission control (services/api/admission.py) limits, queues, sheds and times out requests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar

from fastapi import APIRouter, Request, Response, Security
from fastapi.routing import APIRoute

from services.api.auth import authenticate, bearer_scheme, require_admin
from services.api.context import context_of
from services.api.documented_errors import AUTHENTICATED, refusals


class _AuthenticatedRoute(APIRoute):
    admin_only: ClassVar[bool] = False

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()
        admin_only = self.admin_only
        route = f"{sorted(self.methods or ())} {self.path}"

        async def authenticated(request: Request) -> Response:
            context = context_of(request)
            caller = authenticate(request.headers.get("authorization"), context.settings)
            if admin_only:
                require_admin(caller)
            request.state.caller = caller
            if admin_only:  # admin routes bypass admission, so a drill can always act
                return await handler(request)

            async def work() -> Response:
                response = await handler(request)
                # After the work, so requests refused by validation never need Redis; admin
                # routes are exempt so a drill can always switch the failpoint off again.
                await context.failpoints.hold_if_asked()
                return response

            return await context.admission.run(route, caller.name, work)

        return authenticated


class AgentRoute(_AuthenticatedRoute):
    admin_only = False


class AdminRoute(_AuthenticatedRoute):
    admin_only = True


def agent_router() -> APIRouter:
    # 429: admission control limits one caller's requests in flight on a route.
    return APIRouter(route_class=AgentRoute, responses=refusals(*AUTHENTICATED, 429))


def admin_router() -> APIRouter:
    # 403: an agent's token is valid, but not here.
    return APIRouter(
        route_class=AdminRoute,
        responses=refusals(*AUTHENTICATED, 403),
        dependencies=[Security(bearer_scheme)],
    )
