"""The refusals each route can answer, as /openapi.json documents them.

Every refusal has one body, `ErrorBody`; this module says which status codes a route may answer
and why, so that a client generated from the spec knows every answer it can get.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class FieldProblem(BaseModel):
    field: str = Field(description="the field, dotted for nested ones, or `body` for the body as a whole")
    in_: str = Field(alias="in", description="where it was sent: body, path, query or header")
    problem: str


class ErrorBody(BaseModel):
    error: str = Field(description="a machine-readable code, e.g. invalid_request, missing_token, not_found")
    detail: str = Field(description="what is wrong, for a person")
    fields: list[FieldProblem] | None = Field(
        default=None, description="each invalid field (422 invalid_request only)"
    )


_RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}
}
_CHALLENGE = {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}}

_WHY: dict[int, tuple[str, dict[str, Any] | None]] = {
    400: ("the body is not valid JSON, or Content-Length is not a length", None),
    401: ("no bearer token, or one that is not valid", _CHALLENGE),
    403: ("the token is valid but may not do this", None),
    404: ("the resource does not exist", None),
    413: ("the body is larger than the api accepts", None),
    422: ("a field, path or query parameter is invalid; `fields` names each", None),
    429: ("this caller already has as many requests in flight on this route as it may", _RETRY_AFTER),
    500: ("the store refused a command, or an unexpected error (see the api log)", None),
    503: (
        "overloaded, past its deadline, or a dependency (Redis, the broker) is not answering",
        _RETRY_AFTER,
    ),
}

# What every authenticated route may answer, whatever it does.
AUTHENTICATED = (401, 422, 500, 503)
WITH_BODY = (400, 413)


def refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for these status codes, each with the error body."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status in sorted(set(statuses)):
        description, headers = _WHY[status]
        entry: dict[str, Any] = {"model": ErrorBody, "description": description}
        if headers:
            entry["headers"] = headers
        documented[status] = entry
    return documented
