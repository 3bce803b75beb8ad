"""FastAPI service: steer decisions from any application, and a page to see why.

The method (and its model) is loaded once, before the first request. Decisions run one at
a time through a bounded queue with deadlines (:mod:`pluralign.server.queue`); the
judgement cache answers repeated questions without the model. Every error is a JSON
``{"detail": ...}`` with a status that says whose fault it is.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from pluralign import __version__
from pluralign.api import Chooser
from pluralign.errors import (
    PluralignError,
    one_line,
    validation_message,
)
from pluralign.generators import make_generator
from pluralign.methods import build_method
from pluralign.server.config import ServerConfig
from pluralign.server.queue import DecisionQueue, QueueFull
from pluralign.server.routes import catalog, decisions, feedback, page, profile, runs, steer
from pluralign.server.state import ServiceState, status_for
from pluralign.userstore import UserStore

PUBLIC_PATHS = {"/", "/favicon.ico"}
OPENAI_PATHS = {"/v1/chat/completions", "/v1/rerank"}
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")


def _host_name(value: str) -> str:
    """The host part of a Host header (``[::1]:8000`` -> ``[::1]``, ``a.b:80`` -> ``a.b``)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    """Host check, API key, body size and read-time limits, and a JSON 500 for anything
    unforeseen.

    A plain ASGI middleware (not Starlette's BaseHTTPMiddleware), so a route still sees its
    client disconnect and can cancel the decision it was waiting for. The body is read here,
    whole, before the route runs: a body over the limit gets 413 however it is sent (chunked
    included), and one that trickles in gets 408 after ``body_timeout`` seconds.
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], config: ServerConfig) -> None:
        self.app = app
        self.config = config

    async def _json(
        self, send: Send, status: int, detail: str, headers: dict[str, str] | None = None, openai: bool = False
    ) -> None:
        if openai:  # the OpenAI-compatible routes answer in the OpenAI error shape
            kind = "invalid_request_error" if status < 500 else "server_error"
            body = json.dumps({"error": {"message": one_line(detail), "type": kind, "code": str(status)}}).encode()
        else:
            body = json.dumps({"detail": one_line(detail)}).encode()
        head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        head += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": body})

    def _host_allowed(self, headers: dict[str, str]) -> bool:
        allowed = self.config.limits.allowed_hosts
        if allowed is None:
            return True
        return _host_name(headers.get("host", "")) in allowed

    def _key_ok(self, headers: dict[str, str]) -> bool:
        key = self.config.api_key
        assert key is not None
        given = headers.get("x-api-key", "")
        scheme, _, token = headers.get("authorization", "").strip().partition(" ")
        if not given and scheme.lower() == "bearer":  # the scheme is case-insensitive (RFC 9110)
            given = token.strip()
        return hmac.compare_digest(given.encode("utf-8", "replace"), key.encode())

    async def _read_body(self, receive: Receive) -> tuple[bytes, list[Message]] | int:
        """The whole body, or the status that refuses it (413 too large, 408 too slow)."""
        limit, seen = self.config.limits.max_body_bytes, 0
        chunks: list[bytes] = []
        loop = asyncio.get_running_loop()
        ends = loop.time() + self.config.limits.body_timeout
        while True:
            left = ends - loop.time()
            if left <= 0:
                return 408
            try:
                message = await asyncio.wait_for(receive(), left)
            except TimeoutError:
                return 408
            if message["type"] != "http.request":
                return b"".join(chunks), [message]  # the client left while sending
            seen += len(message.get("body", b""))
            if seen > limit:
                return 413
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks), []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        config = self.config
        oa = scope["path"] in OPENAI_PATHS  # answer in the OpenAI error shape
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if not self._host_allowed(headers):
            await self._json(send, 400, "this Host header is not served here (see --allowed-host)", openai=oa)
            return
        if config.api_key and scope["path"] not in PUBLIC_PATHS and not self._key_ok(headers):
            await self._json(send, 401, "missing or wrong API key (send X-API-Key or Authorization: Bearer)", openai=oa)
            return
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > config.limits.max_body_bytes:
            await self._json(
                send,
                413,
                f"request body of {length} bytes exceeds the limit of {config.limits.max_body_bytes} bytes",
                openai=oa,
            )
            return
        read = await self._read_body(receive)
        if read == 413:
            await self._json(
                send,
                413,
                f"request body exceeds the limit of {config.limits.max_body_bytes} bytes",
                openai=oa,
            )
            return
        if read == 408:
            await self._json(
                send,
                408,
                f"the request body did not arrive within {config.limits.body_timeout:g} s",
                openai=oa,
            )
            return
        assert not isinstance(read, int)
        body, pending = read
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            if pending:
                return pending.pop(0)
            return await receive()

        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, replay, watched)
        except Exception as exc:  # never a bare 500: say what broke (secrets and paths removed)
            if not started:
                await self._json(send, 500, f"internal error: {one_line(exc)[:300]}", openai=oa)


def create_app(config: ServerConfig) -> FastAPI:
    service = ServiceState(
        config=config,
        users=UserStore(config.limits.db),
        queue=DecisionQueue(config.limits.max_queue, config.limits.decision_timeout),
        profile_queue=DecisionQueue(config.limits.max_queue, config.limits.profile_timeout, name="pluralign-profile"),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        method = config.preloaded or build_method(config.method, config.settings)  # once, before the first request
        service.chooser = Chooser(method, registry=config.registry)
        service.method_config = method.config()
        service.generator = make_generator(
            config.generator, config.settings.model, config.settings.values.get("threads")
        )
        yield
        service.queue.close()
        service.profile_queue.close()
        service.chooser.close()
        await service.generator.aclose()

    app = FastAPI(
        title="pluralign",
        version=__version__,
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
        return JSONResponse({"detail": validation_message(exc)}, status_code=422)

    for module in (decisions, steer, feedback, profile, catalog, runs, page):
        app.include_router(module.router)
    app.include_router(profile.saved)
    return app
