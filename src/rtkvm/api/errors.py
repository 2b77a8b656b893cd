"""HTTP errors of the API: one exception type and the handlers that render them.

Every error body is ``{"detail": "<what went wrong and what to change>"}``.
Deliberate rtkvm errors become 4xx; a validation error names the field.
This module must not contain route logic.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from rtkvm.errors import (
    InputError,
    InstanceGoneError,
    NoValidHostError,
    QuotaExceededError,
    RtkvmError,
)


class ErrorOut(BaseModel):
    """The body of every error response."""

    detail: str
    """What went wrong and what to change."""


RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": why}
    for status, why in {
        400: "A value cannot be used as given (the detail says which and why)",
        401: "No API token, or an unknown or revoked one",
        403: "The token's role or kind may not do this, or a quota is used up",
        404: "A named object does not exist or is not visible to the caller",
        409: "The change conflicts with the current state (exists, in use, does not fit)",
        422: "The request does not match its schema, or its values do not fit together",
        429: "Too many failed authentications from this address: wait and retry",
    }.items()
}
"""The error responses every authenticated operation declares in the OpenAPI schema."""


class ApiError(Exception):
    """An HTTP error with a message for the user."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def not_found(kind: str, ref: str, hint: str = "") -> ApiError:
    return ApiError(404, f"{kind} {ref!r} not found{hint}")


def conflict(message: str) -> ApiError:
    return ApiError(409, message)


def check_move(what: str, state: str, wanted: str, moves: dict[str, set[str]]) -> None:
    """Refuse (409) an agent's move of ``what`` from ``state`` to ``wanted`` that ``moves``
    does not allow, saying which moves it allows."""
    allowed = moves.get(state, set())
    if wanted not in allowed:
        raise ApiError(
            409,
            f"{what} is {state}: an agent may move it to "
            f"{', '.join(sorted(allowed)) or 'nothing'}, not {wanted}",
        )


def _status_of(exc: RtkvmError) -> int:
    if isinstance(exc, QuotaExceededError):
        return 403
    if isinstance(exc, NoValidHostError | InstanceGoneError):
        return 409
    if isinstance(exc, InputError):
        return 400
    return 422


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.exception_handler(RtkvmError)
    async def _rtkvm(_: Request, exc: RtkvmError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=_status_of(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
            problems.append(f"{where}: {err.get('msg', 'invalid')}")
        return JSONResponse({"detail": "bad request: " + "; ".join(problems)}, status_code=422)

    @app.exception_handler(DataError)
    async def _data(_: Request, exc: DataError) -> JSONResponse:
        # e.g. a NUL byte in a path or field: PostgreSQL refuses it, SQLite does not
        return JSONResponse(
            {"detail": "a value cannot be stored: remove control characters (NUL) from it"},
            status_code=400,
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        # a safety net: routes check first and say more; a race may still end here
        return JSONResponse(
            {"detail": "the change conflicts with data written meanwhile: reload and retry"},
            status_code=409,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )
