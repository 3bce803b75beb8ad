"""One client for the OpenAI chat protocol, shared by the judge (:mod:`.judges.openai`) and the
generator (:mod:`.generators.openai`): one retry policy, one set of error messages.

It is httpx, not the ``openai`` SDK, because the judge needs what the SDK does not give: a bound
on the *whole* answer (the SDK's timeout is per read, which a server that drips bytes never
trips), a cap on its size, requests spread round-robin over replicas, and cancellation as soon as
the decision's deadline passes. Like the SDK it retries 408, 409, 429 and 5xx answers and
refused connections with exponential backoff, honouring ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import itertools
import math
import random
import re
import ssl
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pluralign.prediction.places import Places, wake
from pluralign.support import deadline
from pluralign.support.errors import (
    BackendUnavailableError,
    ContextLengthError,
    DeadlineExceeded,
    InputError,
    UpstreamError,
    one_line,
)
from pluralign.support.redact import redact

if TYPE_CHECKING:  # httpx loads when a client sends, not when the CLI reads its options
    import httpx

T = TypeVar("T")

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
SERVER_FAULTS = {500}
"""Retried, and then a fault of the server (502 to our clients); the other retried statuses say
the server is busy or cannot be reached (503)."""
_CTX_PATTERNS = (
    re.compile(r"maximum context length is (\d+) tokens.*?(?:requested|resulted in) (\d+) tokens", re.S),
    re.compile(r"Requested tokens \((\d+)\) exceed context window of (\d+)"),
)


MAX_RESPONSE_BYTES = 16_000_000
"""A larger answer is not a judgement (an endless stream, a runaway server): it is cut off."""


def retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait from ``Retry-After`` (a number or an HTTP date); None for anything else ("soon")."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
        return max(0.0, seconds) if math.isfinite(seconds) else None
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def check_base_url(url: str) -> str:
    """A base URL httpx can use (http or https with a host), or a one-line error; the URL is
    shown without its user and password."""
    import httpx

    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise InputError(f"--base-url {redact(url)!r} is not a valid URL ({redact(str(exc))})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host or any(ch.isspace() for ch in url):
        raise InputError(f"--base-url {redact(url)!r} must be an http:// or https:// URL with a host")
    if parsed.fragment:
        raise InputError(f"--base-url {redact(url)!r} has a fragment (#...), which no request sends")
    head, mark, query = url.partition("?")
    return head.rstrip("/") + mark + query


def endpoint(base: str, path: str) -> str:
    """``path`` after a base URL's path and before its query: a query the server asks for (Azure's
    ``?api-version=``, a proxy's token) stays the query of every request."""
    head, mark, query = base.partition("?")
    return f"{head}{path}{mark}{query}"


class UpstreamStatusError(UpstreamError):
    """The server answered with a status that is not retried (its status kept for the caller)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def status_error(who: str, status: int, response: httpx.Response, body: str) -> UpstreamStatusError:
    """What a non-retryable answer means for the person who configured the URL."""
    shown = one_line(body, 200)
    if 300 <= status < 400:
        where = redact(response.headers.get("location", "?"))
        message = f"{who} answered a redirect ({status}) to {where}; give the final URL as --base-url"
    elif status in (401, 403):
        message = f"{who} refused the API key ({status}): check the key's environment variable"
    elif status == 404:
        message = f"{who} has no /chat/completions (404): check its base URL (it usually ends in /v1)"
    else:
        message = f"{who} answered {status}: {shown}"
    return UpstreamStatusError(message, status)


def context_error(text: str) -> ContextLengthError | None:
    """The error an OpenAI-compatible server's context-overflow message means (None: not one)."""
    first = _CTX_PATTERNS[0].search(text)
    if first:
        have, need = int(first.group(1)), int(first.group(2))
    else:
        second = _CTX_PATTERNS[1].search(text)
        if not second:
            return None
        need, have = int(second.group(1)), int(second.group(2))
    return ContextLengthError(
        f"prompt needs {need} tokens but the model's context holds {have} ({need - have} too many)"
    )


class TooLarge(Exception):
    """The server's answer passed MAX_RESPONSE_BYTES."""


def text_of(response: httpx.Response) -> str:
    return response.content.decode("utf-8", errors="replace")


async def post_bounded(client: httpx.AsyncClient, url: str, body: dict[str, Any], timeout: float) -> httpx.Response:
    """POST with the answer read in chunks, refused past MAX_RESPONSE_BYTES."""
    import httpx

    async with client.stream("POST", url, json=body, timeout=timeout) as response:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise TooLarge(f"answer larger than {MAX_RESPONSE_BYTES} bytes")
            chunks.append(chunk)
    # the chunks are already decoded: the copy must not claim an encoding or a length of its own
    headers = [(k, v) for k, v in response.headers.items() if k.lower() not in ("content-encoding", "content-length")]
    return httpx.Response(response.status_code, headers=headers, content=b"".join(chunks), request=response.request)


async def gather_or_stop(coroutines: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """Every result, or the first failure, with the others stopped and waited for while the loop
    and the client are still open (not left to ``asyncio.run``'s shutdown, which would print their
    connection errors after the one-line error)."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 4
    backoff: float = 0.5
    max_backoff: float = 30.0


Refit = Callable[["httpx.Response"], "dict[str, Any] | None"]
"""Given a refused answer, the body to send again at once (None: no second try): the judge's
fallback from ``json_schema`` to ``json_object`` for servers that know only the older form."""


class ChatClient:
    """POSTs chat completions to one or more base URLs (round-robin) with the retry policy."""

    def __init__(
        self,
        base_urls: Sequence[str],
        api_key: str = "",
        timeout: float = 120.0,
        retry: RetryPolicy | None = None,
        concurrency: int = 8,
        who: str | None = None,
    ) -> None:
        self.base_urls = [check_base_url(u) for u in base_urls]
        self._shown = {u: redact(u) for u in self.base_urls}
        self._api_key = api_key
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.concurrency = concurrency
        self.who = who
        self._rr = itertools.cycle(range(len(self.base_urls)))
        self._rr_lock = threading.Lock()
        self.places = Places(concurrency * len(self.base_urls))
        """Requests in flight to these servers, from every thread (``eval`` judges items at once)."""
        self._ssl: ssl.SSLContext | None = None

    def session(self) -> httpx.AsyncClient:
        """An httpx client for one event loop, as many connections as requests may be in flight."""
        import httpx

        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        limits = httpx.Limits(max_connections=self.concurrency * len(self.base_urls))
        if self._ssl is None:  # reading the certificate store is most of a new client's cost: once
            self._ssl = httpx.create_ssl_context()
        return httpx.AsyncClient(timeout=self.timeout, headers=headers, limits=limits, verify=self._ssl)

    async def reachable(self, timeout: float = 3.0) -> str | None:
        """None when every server answers ``GET /models`` (any answer but a refused key or a
        fault of its own counts: some servers do not list models); else what is wrong with the
        first that does not, its URL redacted."""
        import httpx

        async with self.session() as http:
            for url in self.base_urls:
                try:
                    response = await http.get(endpoint(url, "/models"), timeout=timeout)
                except (httpx.RequestError, TimeoutError) as exc:
                    return f"{self._shown[url]} is unreachable ({type(exc).__name__})"
                if response.status_code in (401, 403):
                    return f"{self._shown[url]} refused the key ({response.status_code})"
                if response.status_code >= 500:
                    return f"{self._shown[url]} answered {response.status_code}"
        return None

    def _next_url(self) -> str:
        with self._rr_lock:
            return self.base_urls[next(self._rr)]

    async def complete(
        self, http: httpx.AsyncClient, body: dict[str, Any], refit: Refit | None = None
    ) -> httpx.Response:
        """The server's 200 answer to ``body``, after retries; every other outcome is an error that
        says whose fault it is (:class:`UpstreamStatusError`, :class:`ContextLengthError`, ...)."""
        import httpx

        last, answered = "", None  # the status of the last try, if the server answered at all
        for attempt in range(self.retry.max_retries + 1):
            deadline.check()
            url = self._next_url()
            who = self.who or self._shown[url]
            timeout = deadline.bound(self.timeout)
            try:
                response = await self._send(http, endpoint(url, "/chat/completions"), body, timeout)
                again = refit(response) if refit is not None and response.status_code != 200 else None
                if again is not None:
                    body = again
                    response = await self._send(http, endpoint(url, "/chat/completions"), body, timeout)
            except (TimeoutError, httpx.RequestError, TooLarge) as exc:
                last, answered = await self._failed(who, exc, timeout), None
                wait = None
            else:
                if response.status_code == 200:
                    return response
                text = text_of(response)[:2000]
                ctx = context_error(text)
                if ctx is not None:
                    raise ctx
                if response.status_code not in RETRY_STATUS:
                    raise status_error(who, response.status_code, response, text)
                last = f"{who} answered {response.status_code}: {one_line(text, 200)}"
                wait, answered = retry_after(response), response.status_code
            if attempt < self.retry.max_retries:
                await self._pause(attempt, wait, last)
        tries = self.retry.max_retries + 1
        if answered in SERVER_FAULTS:  # it answered, with a fault of its own: a bad gateway for our clients
            raise UpstreamError(
                f"{self.who or 'the server'} failed {tries} {'time' if tries == 1 else 'times'} ({last})"
            )
        raise BackendUnavailableError(f"server unreachable after {tries} tries ({last})")

    async def _failed(self, who: str, exc: BaseException, timeout: float) -> str:
        """What a try that got no answer says (after the deadline's check, if it bounded the try)."""
        import httpx

        timed_out = isinstance(exc, (httpx.TimeoutException, TimeoutError))
        if timed_out and timeout < self.timeout:
            # the decision's deadline, not --timeout, bounded this call: it is that deadline which
            # passed (a hair later than the call's own timer)
            limit = deadline.current()
            left = limit.remaining() if limit is not None else None
            if left is not None and 0 < left < 1.0:
                await asyncio.sleep(left)
        deadline.check()
        kind = exc.__class__.__name__ + (f" (no complete answer within {timeout:g} s)" if timed_out else "")
        return one_line(f"{who}: {kind} {exc}".strip(), 300)

    async def _pause(self, attempt: int, wait: float | None, last: str) -> None:
        policy = self.retry
        delay = min(policy.max_backoff, policy.backoff * 2**attempt) * (0.5 + random.random() / 2)
        pause = min(policy.max_backoff, wait) if wait is not None else delay
        limit = deadline.current()
        left = limit.remaining() if limit is not None else None
        if left is not None and pause >= left:
            raise DeadlineExceeded(f"the server did not answer in time ({last})")
        await asyncio.sleep(pause)

    async def _send(self, http: httpx.AsyncClient, url: str, body: dict[str, Any], timeout: float) -> httpx.Response:
        """POST and read the whole answer within ``timeout`` seconds overall (httpx's own timeout
        is per read, which a server that drips bytes never trips), abandoned as soon as the
        current deadline passes or its request is cancelled."""
        # httpx's own per-read timeout a little earlier than the overall bound, so a server that
        # sends nothing is reported as httpx's ReadTimeout and one that drips as the overall bound
        per_read = max(0.05, timeout * 0.9) if timeout >= self.timeout else timeout
        request = asyncio.wait_for(post_bounded(http, url, body, per_read), timeout)
        limit = deadline.current()
        if limit is None:
            return await request
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(request)
        stopped = loop.create_future()  # woken by a cancel from another thread: nothing polls
        forget = limit.on_cancel(functools.partial(loop.call_soon_threadsafe, wake, stopped))
        try:
            while True:
                left = limit.remaining()
                wait = None if left is None else max(0.0, left) + 0.001
                done, _ = await asyncio.wait({task, stopped}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
                if task in done:
                    return task.result()
                if limit.expired():
                    task.cancel()
                    limit.check()
        finally:
            forget()
            if not task.done():
                task.cancel()
                await asyncio.wait({task})  # it ends here, not in asyncio.run's shutdown
            if not task.cancelled():
                task.exception()  # retrieved: no "exception was never retrieved" in the log
