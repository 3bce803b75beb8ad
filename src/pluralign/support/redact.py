"""Secrets never reach an error, a log line or a response: every message shown to a person
or a client passes through :func:`redact` (``errors.one_line`` calls it).

Two layers. The **registry**: every secret the configuration names (an API key read from an
environment variable, the password or token in a URL) is registered here when the options
that name it are validated (:data:`SecretEnv`, :data:`SecretURL`), whichever component reads
it later, so an upstream that echoes a key back is shown without it. The **patterns**: what
looks like a credential wherever it appears: the user and password of a URL (up to the last
``@`` of the authority, so a raw ``@`` in a password is covered), credential-like query
parameters (``?token=``, ``&sig=``), ``Authorization``/``Bearer`` values, ``sk-...`` keys and
``api_key=...`` style pairs."""

from __future__ import annotations

import os
import re
import threading
from typing import Annotated

from pydantic import AfterValidator

MASK = "***"
_SCHEMES = r"(?:bearer|basic|digest|token)"
_QUERY_WORDS = r"(?=[a-z0-9_.-]*?(?:token|sig|signature|secret|password|passwd|pwd|key|auth|credential))[a-z0-9_.-]*"
"""A parameter name that holds a credential word. The word is looked for ahead, lazily, from the
name's start, and the name is then read once: a pattern that backtracks into the name for the
word takes time quadratic in its length (``"?" + "key" * 16_666`` took 4.3 s)."""
_PATTERNS = (
    # user:password@ of a URL, up to the last @ before the authority ends (a space, a quote or
    # the end of the URL): a password with a raw @ is masked whole. Tried only where a word
    # starts, up to its first "://", never again from inside it: tried from every letter, a
    # word of 50,000 letters took 18 s (every message passes here, the service's included)
    (
        re.compile(r"(?i)(?<![^\s\"'<>])((?>[^\s\"'<>]*?://))[^\s\"'<>]*@(?=[^\s\"'<>@]*(?:[\s\"'<>]|$))"),
        r"\1" + MASK + "@",
    ),
    (re.compile(rf"(?i)([?&;]{_QUERY_WORDS}=)[^&#\s\"'<>]+"), r"\1" + MASK),
    # a scheme and a credential: anything but a short plain word ("Bearer and the key" is a sentence)
    (re.compile(rf"(?i)\b({_SCHEMES})(\s+|%20)(?![a-z]{{1,11}}(?:[\s\"',;&)]|$))(?!\))[^\s\"',;&)]+"), r"\1\2" + MASK),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{4,}"), "sk-" + MASK),
    (
        re.compile(
            r"(?i)\b(api[_-]?key|x-api-key|access[_-]?token|password|passwd|secret|authorization)"
            rf"(\"?'?\s*[:=]\s*\"?'?)(?!{_SCHEMES}\b)[^\s\"',;&}}]+"
        ),
        r"\1\2" + MASK,
    ),
)
_known: set[str] = set()
_lock = threading.Lock()
MIN_SECRET = 4
"""Shorter values are not registered: masking every "abc" in every message would say more than it hides."""


def register_secret(value: str | None) -> None:
    """A value that must never be shown (an API key, a URL's password)."""
    if value and len(value) >= MIN_SECRET:
        with _lock:
            _known.add(value)


def register_env(name: str | None) -> str | None:
    """Register the value of the environment variable ``name`` (an option that names where a
    key lives); returns the name, for use as a validator."""
    if name:
        register_secret(os.environ.get(name))
    return name


def register_url(url: str | None) -> str | None:
    """Register the password (or token user) and the credential-like query values of a URL."""
    if not url:
        return url
    match = re.match(r"(?i)[a-z][a-z0-9+.-]*://([^\s]*)@[^\s@]*$", url) or re.match(
        r"(?i)[a-z][a-z0-9+.-]*://([^/?#\s]*)@", url
    )
    if match:
        name, sep, password = match.group(1).partition(":")
        register_secret(password if sep else name)
    for found in re.finditer(rf"(?i)[?&;]{_QUERY_WORDS}=([^&#\s]+)", url):
        register_secret(found.group(1))
    return url


SecretEnv = Annotated[str, AfterValidator(register_env)]
"""An option that names an environment variable holding a secret: its value is registered for
redaction the moment the option is validated."""

SecretURL = Annotated[str, AfterValidator(register_url)]
"""An option holding a URL that may carry credentials: they are registered for redaction."""


def redact(text: str) -> str:
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:  # registered values first: a pattern could cut one in half and leave the rest
        text = text.replace(value, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
