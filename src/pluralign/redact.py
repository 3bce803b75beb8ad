"""Secrets never reach an error, a log line or a response: every message shown to a person
or a client passes through :func:`redact` (``errors.one_line`` calls it).

It removes what looks like a credential wherever it appears: the user and password of a
URL, ``Authorization``/``Bearer`` values, ``sk-...`` keys, ``api_key=...`` style pairs, and
any value registered with :func:`register_secret` (the keys pluralign read from the
environment), so an upstream that echoes a header back is shown without it."""

from __future__ import annotations

import re
import threading

MASK = "***"
_PATTERNS = (
    (re.compile(r"(?i)([a-z][a-z0-9+.-]*://)[^/\s@]*@"), r"\1" + MASK + "@"),
    (re.compile(r"(?i)\b(bearer|basic|token)(\s+|%20)[^\s\"',;&]+"), r"\1\2" + MASK),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{4,}"), "sk-" + MASK),
    (
        re.compile(
            r"(?i)\b(api[_-]?key|x-api-key|access[_-]?token|password|passwd|secret|authorization)"
            r"(\"?'?\s*[:=]\s*\"?'?)[^\s\"',;&}]+"
        ),
        r"\1\2" + MASK,
    ),
)
_known: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """A value that must never be shown (an API key read from the environment)."""
    if value and len(value) >= 4:
        with _lock:
            _known.add(value)


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        text = text.replace(value, MASK)
    return text


def shorten(text: str, limit: int = 200) -> str:
    """Redacted, on one line, and cut to ``limit`` characters: how an upstream body is shown."""
    from pluralign.errors import one_line

    flat = one_line(text)
    return flat if len(flat) <= limit else flat[:limit] + "..."
