"""Error bodies: every refusal is JSON `{"error": code, "detail": text, "fields"?: [...]}`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

# Codes for HTTP errors raised by the framework itself (unknown route, wrong method).
_CODE_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


class ApiError(HTTPException):
    """A refusal with a machine-readable code.

    It is a Starlette HTTPException on purpose: FastAPI lets those through while it reads the
    body, so the size limit can refuse a streamed body from inside `receive`.
    """

    def __init__(
        self,
        status_code: int,
        code: str,
        detail: str,
        fields: Sequence[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status_code, detail=detail, headers=headers)
        self.code = code
        self.fields = list(fields) if fields else None


def error_body(code: str, detail: str, fields: Sequence[dict[str, str]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": code, "detail": detail}
    if fields:
        body["fields"] = list(fields)
    return body


def error_response(error: HTTPException) -> JSONResponse:
    if isinstance(error, ApiError):
        body = error_body(error.code, str(error.detail), error.fields)
    else:
        code = _CODE_BY_STATUS.get(error.status_code, f"http_{error.status_code}")
        body = error_body(code, str(error.detail))
    return JSONResponse(body, status_code=error.status_code, headers=error.headers)


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} does not exist")


def from_validation(error: RequestValidationError) -> ApiError:
    """Malformed JSON is a 400; anything else wrong with the input is a 422 naming each field."""
    problems = error.errors()
    for problem in problems:
        if problem.get("type") == "json_invalid":
            position = problem["loc"][1] if len(problem["loc"]) > 1 else "?"
            reason = (problem.get("ctx") or {}).get("error", "JSON decode error")
            return ApiError(
                400, "malformed_json", f"request body is not valid JSON: {reason} at position {position}"
            )
    fields = [_field_problem(problem) for problem in problems]
    detail = "; ".join(f"{f['field']}: {f['problem']}" for f in fields)
    return ApiError(422, "invalid_request", detail, fields)


def _field_problem(problem: dict[str, Any]) -> dict[str, str]:
    location = [str(part) for part in problem.get("loc", ())]
    where = location[0] if location else "body"
    name = ".".join(location[1:])
    message = str(problem.get("msg", "invalid value")).removeprefix("Value error, ")
    if not name:
        # A problem with the body as a whole: missing, or not a JSON object.
        name = where
        if problem.get("type") == "missing":
            message = "request body is missing: send a JSON object with Content-Type: application/json"
        elif problem.get("type") in {"model_attributes_type", "dict_type", "model_type"}:
            message = "request body must be a JSON object sent with Content-Type: application/json"
    return {"field": name, "in": where, "problem": message}
