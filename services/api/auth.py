"""Who is calling: agents carry signed tokens, the admin carries `settings.admin_token`."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.api.errors import ApiError
from services.common import tokens
from services.common.config import Settings

ADMIN = "admin"
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True)
class Caller:
    name: str
    is_admin: bool

    def may_act_as(self, agent: str) -> bool:
        return self.is_admin or self.name == agent


def authenticate(authorization: str | None, settings: Settings) -> Caller:
    """The caller behind an Authorization header; raises a 401 ApiError otherwise."""
    if not authorization:
        raise ApiError(
            401, "missing_token", "send an 'Authorization: Bearer <token>' header", headers=_CHALLENGE
        )
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(
            401, "invalid_token", "the Authorization header must read 'Bearer <token>'", headers=_CHALLENGE
        )
    if hmac.compare_digest(token.encode(), settings.admin_token.encode()):
        return Caller(ADMIN, is_admin=True)
    agent = tokens.agent_from_token(token, settings.token_secret)
    if agent is None:
        raise ApiError(401, "invalid_token", "the bearer token is not valid", headers=_CHALLENGE)
    return Caller(agent, is_admin=False)


def require_admin(caller: Caller) -> None:
    if not caller.is_admin:
        raise ApiError(403, "forbidden", "this route needs the admin token")


# Documents bearer auth in /openapi.json; the check itself runs in services.api.routing, before
# the body is read, so an unauthenticated request learns nothing about validation.
bearer_scheme = HTTPBearer(
    auto_error=False, description="an agent token (`outage token --agent NAME`) or the admin token"
)


async def _current_caller(  # a coroutine: no worker thread for a lookup (see context.py)
    request: Request, _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)]
) -> Caller:
    return request.state.caller


CurrentCaller = Annotated[Caller, Depends(_current_caller)]
