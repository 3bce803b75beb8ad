"""Admission: what every request passes before any work is done for it, in one place.

Two steps, the same for every route:

* :class:`Guard` (HTTP): the Host header, the service key (which names the caller's
  **namespace**), the body's size, the time it may take to arrive, a JSON content type on
  every request that carries a body, and the body itself read strictly (a key twice, NaN, a
  lone surrogate and deep nesting refused: :func:`pluralign.support.strict.loads`).
* :func:`pluralign.server.query.known_query` (every route's query string): a key the route
  does not read is refused (422 naming it), as a body's unknown field is.
* :class:`Admission` (work): texts and responses within the limits, attributes known and
  named once, groups within ``--max-group-members``, profile fits within the grid and work
  limits, and a place in the decision queue taken before anything is paid for (generation
  included).

A request refused here has changed nothing and cost nothing.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from fastapi import HTTPException

from pluralign.choice.attributes import Attribute
from pluralign.choice.target_data import group_members, target_from_data
from pluralign.choice.targets import Target
from pluralign.people.profile import MAX_PROFILES, ChoiceRecord, grid_size, work_units
from pluralign.people.userstore_schema import DEFAULT_NAMESPACE
from pluralign.server.config import ServerConfig
from pluralign.server.openai.errors import payload, status_of
from pluralign.server.telemetry import Telemetry, request_id
from pluralign.support import strict
from pluralign.support.errors import one_line

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PUBLIC_PATHS = {"/", "/favicon.ico"}
OPENAI_PATHS = {"/v1/chat/completions", "/v1/rerank", "/rerank", "/v2/rerank", "/v1/models"}


def is_openai_path(path: str) -> bool:
    """The routes that answer in the OpenAI error shape (the chat, rerank and model routes)."""
    return path in OPENAI_PATHS or path.startswith(("/v1/chat/completions/", "/v1/models/"))


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")
BODY_METHODS = {"POST", "PUT", "PATCH"}
READ_ONCE = ("host", "x-api-key", "authorization", "content-type", "idempotency-key")
"""The headers pluralign acts on: one given twice is refused (which of the two would be read is
the server's choice, and two keys may name two namespaces). ``X-Request-ID``, a label, is not."""


def _host_name(value: str) -> str:
    """The host part of a Host header (``[::1]:8000`` -> ``[::1]``, ``a.b:80`` -> ``a.b``)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def is_json_type(value: str) -> bool:
    """``application/json`` or ``application/<x>+json``, parameters (charset) allowed."""
    kind = value.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


def error_payload(status: int, detail: str, openai: bool) -> dict[str, Any]:
    """An error as the service answers it: ``{"detail"}``, or on the OpenAI-compatible routes
    the OpenAI shape (:mod:`pluralign.server.openai.errors`); one line, secrets removed."""
    if openai:
        return payload(status, detail)
    return {"detail": one_line(detail)}


def error_body(status: int, detail: str, openai: bool) -> bytes:
    return json.dumps(error_payload(status, detail, openai)).encode()


def header_twice(scope: Scope) -> str | None:
    """The first header of :data:`READ_ONCE` the request carries twice (None: each at most once)."""
    names = [k.decode("latin-1").lower() for k, _ in scope.get("headers", [])]
    return next((name for name in READ_ONCE if names.count(name) > 1), None)


class Guard:
    """The HTTP step of admission, and a JSON 500 for anything unforeseen.

    A plain ASGI middleware (not Starlette's BaseHTTPMiddleware), so a route still sees its
    client disconnect and can cancel the decision it was waiting for. The body is read here,
    whole, before the route runs: a body over the limit gets 413 however it is sent (chunked
    included), one that trickles in gets 408 after ``body_timeout`` seconds, one that is not
    JSON (or not declared as JSON, so that no web page can send it without a preflight) 415 or
    422. The caller's namespace (``scope["state"]["namespace"]``) is the one its key owns.
    Every answer, refusals included, carries the request's id (``X-Request-Id``: the client's
    own when it looks like one) and is counted and logged once (:mod:`.telemetry`).
    """

    def __init__(
        self, app: Callable[[Scope, Receive, Send], Awaitable[None]], config: ServerConfig, telemetry: Telemetry
    ) -> None:
        self.app = app
        self.config = config
        self.telemetry = telemetry

    async def _json(
        self, send: Send, status: int, detail: str, headers: dict[str, str] | None = None, openai: bool = False
    ) -> None:
        body = error_body(status, detail, openai)
        head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        head += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        shown = status_of(status) if openai else status
        await send({"type": "http.response.start", "status": shown, "headers": head})
        await send({"type": "http.response.body", "body": body})

    def _host_allowed(self, headers: dict[str, str]) -> bool:
        allowed = self.config.limits.allowed_hosts
        if allowed is None:
            return True
        return _host_name(headers.get("host", "")) in allowed

    def _header_problem(self, scope: Scope, headers: dict[str, str]) -> str | None:
        """Why the headers are refused before anything else (None: they pass)."""
        twice = header_twice(scope)
        if twice is not None:
            return f"the {twice} header is given twice; send it once"
        if not self._host_allowed(headers):
            return "this Host header is not served here (see --allowed-host)"
        return None

    def _namespace(self, headers: dict[str, str]) -> str | None:
        """The namespace whose key the request carries (None: no valid key). Every key is
        compared, in constant time, whatever matched first."""
        keys = self.config.keys
        if not keys:
            return DEFAULT_NAMESPACE
        given = headers.get("x-api-key", "")
        scheme, _, token = headers.get("authorization", "").strip().partition(" ")
        if not given and scheme.lower() == "bearer":  # the scheme is case-insensitive (RFC 9110)
            given = token.strip()
        found = None
        for namespace, key in keys.items():
            if hmac.compare_digest(given.encode("utf-8", "replace"), key.encode()):
                found = namespace
        return found

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

    def _body_problem(
        self, method: str, headers: dict[str, str], body: bytes, state: dict[str, Any]
    ) -> tuple[int, str] | None:
        """Why a body is refused before any route reads it (None: it is fine). The ``user`` a
        body names is noted in ``state`` as the request log's user label."""
        if method not in BODY_METHODS:
            return None
        if not is_json_type(headers.get("content-type", "")):
            return 415, "send the body as JSON with content-type: application/json"
        try:
            parsed = strict.loads(body)
        except json.JSONDecodeError as exc:
            return 422, f"the body is not JSON ({exc.msg} at character {exc.pos})"
        except UnicodeDecodeError:
            return 422, "the body is not UTF-8 text"
        except RecursionError:
            return 422, "the body is nested too deeply"
        except ValueError as exc:  # a key twice, NaN, a lone surrogate, a 5,000-digit number
            return 422, f"the body cannot be read: {one_line(exc, 200)}"
        if isinstance(parsed, dict) and isinstance(parsed.get("user"), str):
            state["user_label"] = parsed["user"][:128]
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == b"x-request-id"), None)
        rid = request_id(given)
        answered = {"status": 499}  # nginx's "the client closed the request": nothing was sent

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                answered["status"] = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", rid.encode())]}
            await send(message)

        started = time.perf_counter()
        try:
            await self._admit(scope, receive, stamped)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            state = scope.get("state", {})
            self.telemetry.request(
                {
                    "id": rid,
                    "method": scope.get("method", ""),
                    "route": route,
                    "status": answered["status"],
                    "seconds": round(time.perf_counter() - started, 4),
                    "namespace": state.get("namespace"),
                    "user": (scope.get("path_params") or {}).get("user") or state.get("user_label"),
                }
            )

    async def _admit(self, scope: Scope, receive: Receive, send: Send) -> None:
        config = self.config
        oa = is_openai_path(scope["path"])  # answer in the OpenAI error shape
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if (refused := self._header_problem(scope, headers)) is not None:
            await self._json(send, 400, refused, openai=oa)
            return
        namespace = self._namespace(headers)
        if namespace is None and scope["path"] not in PUBLIC_PATHS:
            await self._json(
                send, 401, "missing or wrong API key (send X-API-Key, or Authorization: Bearer with the key)", openai=oa
            )
            return
        scope.setdefault("state", {})["namespace"] = namespace or DEFAULT_NAMESPACE
        length = headers.get("content-length")
        limit = config.limits.max_body_bytes
        if length is not None and length.isdigit() and int(length) > limit:
            await self._json(send, 413, f"request body of {length} bytes exceeds the limit of {limit} bytes", openai=oa)
            return
        read = await self._read_body(receive)
        if read == 413:
            await self._json(send, 413, f"request body exceeds the limit of {limit} bytes", openai=oa)
            return
        if read == 408:
            timeout = config.limits.body_timeout
            await self._json(send, 408, f"the request body did not arrive within {timeout:g} s", openai=oa)
            return
        assert not isinstance(read, int)
        body, pending = read
        problem = self._body_problem(scope.get("method", "GET"), headers, body, scope["state"]) if not pending else None
        if problem is not None:
            await self._json(send, problem[0], problem[1], openai=oa)
            return
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
                await self._json(send, 500, f"internal error: {one_line(exc, 300)}", openai=oa)


class Admission:
    """The work step of admission: every route calls these before it does anything costly."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.limits = config.limits

    def probe(self, question: str, responses: Sequence[str], what: str = "") -> None:
        """A question and responses within the service's size limits (422 naming the limit)."""
        where = f"{what}: " if what else ""
        if len(responses) > self.limits.max_responses:
            raise HTTPException(
                422, f"{where}{len(responses)} responses exceed the limit of {self.limits.max_responses}"
            )
        longest = max([len(question), *map(len, responses)])
        if longest > self.limits.max_text_chars:
            raise HTTPException(
                422, f"{where}a text of {longest} characters exceeds the limit of {self.limits.max_text_chars}"
            )

    def attributes(self, names: Sequence[str], what: str = "attributes") -> list[Attribute]:
        """Known attributes, each named once (the registry refuses the rest in one line)."""
        return self.config.registry.require(names, what)

    def samples(self, samples: int | None) -> dict[str, Any] | None:
        """A request's samples, within the service's --max-samples (as method overrides)."""
        if samples is None:
            return None
        if samples > self.limits.max_samples:
            raise HTTPException(422, f"samples: at most {self.limits.max_samples} on this service, got {samples}")
        return {"samples": samples}

    def target(self, raw: Any, name: str = "target") -> Target:
        """A request's target or group, within the service's --max-group-members."""
        members = group_members(raw)
        if members is not None:
            if len(members) > self.limits.max_group_members:
                raise HTTPException(
                    422,
                    f"a group of {len(members)} profiles exceeds the limit of {self.limits.max_group_members}",
                )
            return target_from_data(raw, "group", self.config.registry)
        return target_from_data(raw, name, self.config.registry)

    def grid(self, attrs: Sequence[Attribute]) -> None:
        """The candidate profiles a fit over ``attrs`` would build, within --max-profile-grid."""
        size = grid_size(attrs)
        if size > min(MAX_PROFILES, self.limits.max_profile_grid):
            raise HTTPException(
                422,
                f"{len(attrs)} attributes make {size:,} candidate profiles (the limit is "
                f"{self.limits.max_profile_grid:,}); name fewer attributes",
            )

    def profile_work(self, attrs: Sequence[Attribute], records: Sequence[ChoiceRecord]) -> None:
        """A fit or a next question within --max-profile-grid and --max-profile-work."""
        self.grid(attrs)
        work = work_units(attrs, records)
        if work > self.limits.max_profile_work:
            raise HTTPException(
                422,
                f"this request needs {work:,} units of work (profiles x responses), more than the limit of "
                f"{self.limits.max_profile_work:,}; send fewer choices or attributes",
            )

    def profile_window(self, attrs: Sequence[Attribute], history: Sequence[ChoiceRecord]) -> list[ChoiceRecord]:
        """The latest choices of a stored history that one fit may read: at most
        --max-profile-choices, and no more than --max-profile-work allows (a long history is fitted
        on its most recent part, never refused, and never allowed to hold the worker longer)."""
        self.grid(attrs)
        window = list(history[-self.limits.max_profile_choices :])
        budget = self.limits.max_profile_work // max(1, grid_size(attrs))
        used, start = 0, len(window)
        while start > 0 and used + len(window[start - 1].responses) <= budget:
            start -= 1
            used += len(window[start].responses)
        if start == len(window):
            newest = work_units(attrs, window[-1:])
            raise HTTPException(
                422,
                f"this choice alone needs {newest:,} units of work (profiles x responses), more than the limit of "
                f"{self.limits.max_profile_work:,}; name fewer attributes",
            )
        return window[start:]
