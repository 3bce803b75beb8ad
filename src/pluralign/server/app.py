"""FastAPI service: steer decisions from any application, and a page to see why.

The method (and its model) is loaded once, before the first request. Decisions run one at
a time through a bounded queue with deadlines (:mod:`pluralign.server.queue`); the
judgement cache answers repeated questions without the model. Every error is a JSON
``{"detail": ...}`` with a status that says whose fault it is.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
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
from pluralign.server.state import ServiceState

PUBLIC_PATHS = {"/", "/favicon.ico"}
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyTooLarge(Exception):
    pass


class Guard:
    """API key, body size limits, and a JSON 500 for anything unforeseen.

    A plain ASGI middleware (not Starlette's BaseHTTPMiddleware), so a route still sees its
    client disconnect and can cancel the decision it was waiting for.
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], config: ServerConfig) -> None:
        self.app = app
        self.config = config

    async def _json(self, send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        body = json.dumps({"detail": detail}).encode()
        head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        head += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        config = self.config
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if config.api_key and scope["path"] not in PUBLIC_PATHS:
            given = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
            if not hmac.compare_digest(given.encode(), config.api_key.encode()):
                await self._json(send, 401, "missing or wrong API key (send X-API-Key or Authorization: Bearer)")
                return
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > config.max_body_bytes:
            await self._json(
                send, 413, f"request body of {length} bytes exceeds the limit of {config.max_body_bytes} bytes"
            )
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > config.max_body_bytes:
                    raise BodyTooLarge
            return message

        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if not started:
                await self._json(send, 413, f"request body exceeds the limit of {config.max_body_bytes} bytes")
        except Exception as exc:  # never a bare 500: say what broke
            if not started:
                await self._json(send, 500, f"internal error: {one_line(exc)[:300]}")


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

    app.add_middleware(Guard, config=config)

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
