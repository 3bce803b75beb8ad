"""One error shape for every OpenAI-compatible route, as OpenAI's clients read it:
``{"error": {"message", "type", "param", "code"}}``, with a 400 (not a 422) for bad input, so the
``openai`` client raises ``BadRequestError``; a string ``code``; the field at fault in ``param``;
``Retry-After`` on a refusal to wait out. Statuses follow :func:`pluralign.server.state.status_for`."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from pluralign.server.openai.protocol import ErrorDetail, ErrorResponse
from pluralign.server.statuses import retry_after, status_for
from pluralign.support.errors import (
    ContextLengthError,
    PluralignError,
    UnsupportedParameter,
    clip_middle,
    first_problem,
    one_line,
)

CODES = {
    400: "invalid_value",
    401: "invalid_api_key",
    404: "not_found",
    408: "request_timeout",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "rate_limit_exceeded",
    500: "internal_error",
    502: "upstream_error",
    503: "overloaded",
    504: "timeout",
}


def kind(status: int) -> str:
    """The OpenAI error ``type`` of a status."""
    if status == 401:
        return "authentication_error"
    if status == 429:
        return "rate_limit_error"
    if status < 500:
        return "invalid_request_error"
    return "upstream_error" if status == 502 else "server_error"


def status_of(status: int) -> int:
    """The status an OpenAI client expects: bad input is a 400 (its ``BadRequestError``)."""
    return 400 if status == 422 else status


PARAM_LIMIT = 200
"""The longest ``param`` shown (an unknown field's name is the sender's)."""


def payload(status: int, message: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    status = status_of(status)
    field = None if param is None else clip_middle(param, PARAM_LIMIT)  # a field's name can come from the request
    detail = ErrorDetail(message=one_line(message), type=kind(status), param=field, code=code or CODES.get(status))
    return ErrorResponse(error=detail).model_dump()


def openai_error(
    status: int,
    message: str,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(payload(status, message, param, code), status_code=status_of(status), headers=headers)


LOCATIONS = ("body", "query", "path", "header", "cookie")
"""Where FastAPI says a field came from: not part of the field's name."""


def _field(loc: tuple[Any, ...]) -> str:
    """A location as OpenAI names a field: ``messages[0].content``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def invalid(exc: Any) -> JSONResponse:
    """A request that does not fit the protocol (a pydantic or FastAPI validation error): the first
    problem, naming the field (a body field called ``query`` is the field ``query``)."""
    loc, message, kind = first_problem(exc)
    if loc and loc[0] in LOCATIONS and not isinstance(exc, ValidationError):
        loc = loc[1:]
    field = _field(loc)
    if kind == "extra_forbidden":
        return openai_error(400, f"Unrecognized request argument supplied: {field}", field, "unsupported_parameter")
    return openai_error(400, f"{field}: {message}" if field else message, field or None, "invalid_value")


FIELD = re.compile(r"^([A-Za-z_]\w*(?:\[\d+\]|\.[A-Za-z_]\w*)*): ")
"""The service's bad-input messages start with the field they name (``where: what``)."""


def param_of(message: str) -> str | None:
    """The request field a bad-input message names, for OpenAI's ``param``."""
    found = FIELD.match(message)
    return found.group(1) if found else None


def error_of(exc: BaseException) -> JSONResponse:
    """The OpenAI-shaped answer to a failure of a route's work."""
    if isinstance(exc, HTTPException):
        message = str(exc.detail)
        param = param_of(message) if exc.status_code in (400, 422) else None
        return openai_error(exc.status_code, message, param, headers=dict(exc.headers or {}))
    if isinstance(exc, ValidationError):
        return invalid(exc)
    if isinstance(exc, UnsupportedParameter):
        return openai_error(400, str(exc), exc.param, "unsupported_parameter")
    if isinstance(exc, ContextLengthError):
        return openai_error(400, str(exc), "messages", "context_length_exceeded")
    if isinstance(exc, PluralignError):
        status = status_for(exc)
        param = param_of(str(exc)) if status in (400, 422) else None
        return openai_error(status, str(exc), param, headers=retry_after(exc))
    raise exc


async def shaped(work: Callable[[], Awaitable[Any]]) -> Response:
    """Run a route's body; every failure comes back in the OpenAI error shape."""
    try:
        result = await work()
    except (HTTPException, ValidationError, PluralignError) as exc:
        return error_of(exc)
    if isinstance(result, Response):
        return result
    return JSONResponse(result.model_dump(exclude_none=False) if hasattr(result, "model_dump") else result)


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error statuses a route answers, each with the one error body, for /openapi.json."""
    return {status: {"model": ErrorResponse} for status in statuses}
