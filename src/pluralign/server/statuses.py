"""Whose fault an error is, as an HTTP status: the one table for the whole service (its own routes
and the OpenAI-compatible ones alike)."""

from __future__ import annotations

from pluralign.people.userstore import HistoryChanged, UserForgotten
from pluralign.server.queue import QueueFull
from pluralign.support.errors import (
    BackendUnavailableError,
    ContextLengthError,
    DatabaseUnavailable,
    DeadlineExceeded,
    InputError,
    InvalidOutputError,
    PluralignError,
    UpstreamError,
)


def status_for(exc: PluralignError) -> int:
    """Whose fault an error is, as an HTTP status (the one table for the whole service)."""
    if isinstance(exc, (QueueFull, HistoryChanged, DatabaseUnavailable)):
        return 503
    if isinstance(exc, ContextLengthError):  # the request is too long for the model: the client's to shorten
        return 400
    if isinstance(exc, UserForgotten):
        return 409
    if isinstance(exc, InputError):
        return 422
    if isinstance(exc, DeadlineExceeded):
        return 504
    if isinstance(exc, (UpstreamError, InvalidOutputError)):
        return 502
    if isinstance(exc, BackendUnavailableError):
        return 503
    return 500


def retry_after(exc: PluralignError) -> dict[str, str] | None:
    """The Retry-After header a refusal carries (a full queue, a busy user)."""
    if isinstance(exc, QueueFull):
        return {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, HistoryChanged):
        return {"Retry-After": "1"}
    if isinstance(exc, DatabaseUnavailable):  # nothing was written: the same request can be sent again
        return {"Retry-After": "5"}
    return None
