"""The query-string step of admission: every route's first dependency refuses a query key the
route does not read, in one line and before any work, as a body's unknown field is refused
(``/v1/runs/x?ofset=5`` once showed the first page; ``/v1/choose?samples=5`` once chose with
the default samples), and so is a key given twice (the route would read one of them). ``_``,
a cache-buster, passes everywhere; a route that reads keys of its own (OpenAI's ``metadata[key]``,
the page's tracking parameters) says so with :func:`reads_query`."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

F = TypeVar("F", bound=Callable[..., Any])
OWN_QUERY = "__pluralign_own_query__"
ANY_QUERY = r".*"
CACHE_BUSTER = "_"


def reads_query(pattern: str) -> Callable[[F], F]:
    """Mark a route that reads query keys matching ``pattern`` itself (OpenAI's ``metadata[key]``;
    a web page's tracking parameters): :func:`known_query` lets those through."""

    def mark(endpoint: F) -> F:
        setattr(endpoint, OWN_QUERY, re.compile(pattern))
        return endpoint

    return mark


def _query_names(dependant: Dependant) -> set[str]:
    names = {field.alias for field in dependant.query_params}
    for below in dependant.dependencies:
        names |= _query_names(below)
    return names


async def known_query(request: Request) -> None:
    """Every route's first dependency: a query key the route does not read is refused in one line
    (``/v1/runs/x?ofset=5`` once showed the first page), before any work."""
    route = request.scope.get("route")
    if not request.query_params or not isinstance(route, APIRoute):
        return
    known = _query_names(route.dependant) | {CACHE_BUSTER}
    own = getattr(route.endpoint, OWN_QUERY, None)
    seen: set[str] = set()
    for key, value in request.query_params.multi_items():
        if key not in known and not (own is not None and own.fullmatch(key)):
            error = {"type": "extra_forbidden", "loc": ("query", key), "msg": "unknown field", "input": value}
            raise RequestValidationError([error])
        if key in seen and key != CACHE_BUSTER:  # the route would read one of the two, in silence
            raise RequestValidationError([{"type": "value_error", "loc": ("query", key), "msg": "given twice"}])
        seen.add(key)
