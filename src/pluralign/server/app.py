"""FastAPI service: steer decisions from any application, and a page to see why.

The method (and its model) is loaded once, before the first request. Decisions run one at
a time through a bounded queue with deadlines (:mod:`pluralign.server.queue`); the
judgement cache answers repeated questions without the model. Every error is a JSON
``{"detail": ...}`` with a status that says whose fault it is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from pluralign.api import Chooser
from pluralign.errors import (
    BackendUnavailableError,
    ContextLengthError,
    DeadlineExceeded,
    InputError,
    InvalidOutputError,
    PluralignError,
    UpstreamError,
    one_line,
)
from pluralign.methods import build_method
from pluralign.server.config import ServerConfig
from pluralign.server.queue import DecisionQueue, QueueFull
from pluralign.server.routes import catalog, decisions, page, profile, runs
from pluralign.server.state import ServiceState, key_is_valid

PUBLIC_PATHS = {"/", "/favicon.ico"}


def status_for(exc: PluralignError) -> int:
    if isinstance(exc, QueueFull):
        return 503
    if isinstance(exc, (InputError, ContextLengthError)):
        return 422
    if isinstance(exc, DeadlineExceeded):
        return 504
    if isinstance(exc, (UpstreamError, InvalidOutputError)):
        return 502
    if isinstance(exc, BackendUnavailableError):
        return 503
    return 500


def create_app(config: ServerConfig) -> FastAPI:
    service = ServiceState(config=config, queue=DecisionQueue(config.max_queue, config.decision_timeout))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        method = config.preloaded or build_method(config.method, config.settings)  # once, before the first request
        service.chooser = Chooser(method, registry=config.registry)
        service.method_config = method.config()
        yield
        service.queue.close()
        service.chooser.close()

    app = FastAPI(
        title="pluralign",
        version="0.2.0",
        description="Choose the response that fits a person's values (steerable pluralistic alignment).",
        lifespan=lifespan,
    )
    app.state.pluralign = service

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.url.path not in PUBLIC_PATHS and not key_is_valid(config, request):
            return JSONResponse(
                {"detail": "missing or wrong API key (send X-API-Key or Authorization: Bearer)"}, status_code=401
            )
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > config.max_body_bytes:
            return JSONResponse(
                {"detail": f"request body of {length} bytes exceeds the limit of {config.max_body_bytes} bytes"},
                status_code=413,
            )
        if request.method == "POST" and length is None:
            body = await request.body()
            if len(body) > config.max_body_bytes:
                return JSONResponse(
                    {"detail": f"request body exceeds the limit of {config.max_body_bytes} bytes"}, status_code=413
                )
        try:
            return await call_next(request)
        except Exception as exc:  # never a bare 500: say what broke
            return JSONResponse({"detail": f"internal error: {one_line(exc)[:300]}"}, status_code=500)

    @app.exception_handler(PluralignError)
    async def _pluralign_error(request: Request, exc: PluralignError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, QueueFull) else None
        return JSONResponse({"detail": one_line(exc)}, status_code=status_for(exc), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
        return JSONResponse({"detail": one_line(f"{where}: {message}" if where else message)}, status_code=422)

    for module in (decisions, profile, catalog, runs, page):
        app.include_router(module.router)
    return app
