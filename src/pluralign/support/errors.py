"""Exceptions with messages a user can act on.

Every error that bad input can cause derives from :class:`PluralignError`; the CLI and
the HTTP service print its message as one line instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from pluralign.support.redact import redact


class PluralignError(Exception):
    """Base class: the message is one line that names the problem."""


class InputError(PluralignError):
    """Malformed or inconsistent user input (files, targets, probes)."""


class TooLargeError(InputError):
    """A file or an answer is larger than the limit set for it; it was not read whole."""


class UnsupportedParameter(InputError):
    """A request parameter this component cannot honour (it is refused, never dropped)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param


class UnknownAttributeError(InputError):
    """A target or label names an attribute that is not defined."""


class JudgeError(PluralignError):
    """A judge backend could not produce a valid answer."""


class ModelNotFoundError(JudgeError):
    """A model alias or file could not be resolved."""


class BackendUnavailableError(JudgeError):
    """The server could not be reached, even after retries."""


class UpstreamError(JudgeError):
    """The server answered, but with something that is not a usable chat completion."""


class DeadlineExceeded(JudgeError):
    """A decision or an upstream call ran past its deadline, or its client went away."""


class ContextLengthError(JudgeError):
    """The prompt does not fit the model's context window."""


class InvalidOutputError(JudgeError):
    """The model never produced JSON that obeys the schema."""


class BatchPending(JudgeError):
    """The batch backend recorded requests for export instead of answering them."""


class ClaimedElsewhere(JudgeError):
    """Another worker sharing the judgement cache is judging this request now."""


class CacheError(PluralignError):
    """The judgement cache is corrupted or cannot be opened."""


class CacheLockedError(CacheError):
    """Another process holds the cache's lock."""


class NotACacheError(CacheError):
    """The file named as a cache is something else; it is never written or removed."""


class DatabaseUnavailable(PluralignError):
    """The database server cannot be reached (or went away mid-request): nothing was written,
    the request can be sent again."""


class RunLockedError(InputError):
    """Another process is writing the same run folder."""


LINE_LIMIT = 1000
"""The longest message shown. Messages name what they refuse, and a name can come from the input
(an attribute, a field, a file's model): one of 50,000 characters came back whole, twice in an
OpenAI error (message and ``param``). A longer message is cut in its middle, so its beginning
(what is wrong) and its end (what is known) stay."""


def one_line(exc: BaseException | str, limit: int = LINE_LIMIT) -> str:
    """Collapse an exception message (or any text) to one line for display, secrets removed (before
    it is cut: a secret cut in two could pass the patterns), at most ``limit`` characters."""
    text = clip_middle(" ".join(redact(str(exc)).split()), limit)
    return text or (exc.__class__.__name__ if isinstance(exc, BaseException) else "")


def clip_middle(text: str, limit: int = LINE_LIMIT) -> str:
    """``text`` if it has at most ``limit`` characters; else its beginning and end, with how many
    characters were left out between them (the result has at most ``limit``)."""
    if len(text) <= limit:
        return text
    keep = max(limit - 40, 2)
    head, tail = keep * 2 // 3, keep // 3
    return f"{text[:head]} [... {len(text) - head - tail} characters ...] {text[len(text) - tail :]}"


def _is_union_branch(part: Any) -> bool:
    """Whether a location part is pydantic's name of a union's branch (``str``, ``list[TextPart]``,
    ``Document``), not a field: field names here are snake_case, branches are types."""
    return isinstance(part, str) and (part in _TYPE_NAMES or part[:1].isupper() or "[" in part or "-" in part)


_TYPE_NAMES = frozenset({"str", "int", "float", "bool", "bytes", "none", "any", "dict", "list"})


def first_problem(exc: Any) -> tuple[tuple[Any, ...], str, str]:
    """The first problem of a pydantic (or FastAPI) validation error as ``(where, message, type)``.

    A value that fits no branch of a union is one problem, not one per branch: the branch that got
    furthest (a list whose third part is wrong) is the one reported, and where every branch failed
    at the value itself their messages are joined ("a valid string or a valid list"). Branch names
    never appear in ``where``."""
    errors = list(exc.errors())
    if not errors:
        return (), "invalid value", "value_error"
    first = errors[0]
    loc = tuple(first.get("loc", ()))
    cut = next((i for i, part in enumerate(loc) if i and _is_union_branch(part)), None)
    head = loc[:cut] if cut is not None else loc
    branches = [e for e in errors if tuple(e.get("loc", ()))[:cut] == head and len(e.get("loc", ())) > len(head)]
    if cut is None or len({e["loc"][cut] for e in branches}) < 2:  # a union fails in every branch
        return loc, _message(first), str(first.get("type", ""))
    deepest = max(len(e["loc"]) for e in branches)
    if deepest > cut + 1:
        chosen = next(e for e in branches if len(e["loc"]) == deepest)
        where = head + tuple(p for p in tuple(chosen["loc"])[cut + 1 :] if not _is_union_branch(p))
        return where, _message(chosen), str(chosen.get("type", ""))
    wanted = list(dict.fromkeys(_message(e).removeprefix("Input should be ") for e in branches))
    return head, "Input should be " + " or ".join(wanted), str(first.get("type", ""))


def _message(error: Any) -> str:
    return str(error.get("msg", "invalid value")).removeprefix("Value error, ")


def validation_message(exc: Any, prefix: str = "", name: Callable[[str], str] | None = None) -> str:
    """The first problem of a pydantic ``ValidationError`` (or FastAPI's) as ``where: what``
    on one line; ``name`` turns the first part of ``where`` into what the user typed (a flag).
    FastAPI's leading ``body`` is left out: the field is what the sender wrote."""
    where_parts, msg, kind = first_problem(exc)
    loc = [str(p) for p in where_parts]
    if len(loc) > 1 and loc[0] == "body" and not isinstance(exc, ValidationError):
        loc = loc[1:]
    if loc and name is not None:
        loc = [name(loc[0])]
    if kind == "extra_forbidden":
        msg = "unknown field"
    where = ".".join(loc)
    text = f"{where}: {msg}" if where else msg
    return one_line(f"{prefix}{text}")
