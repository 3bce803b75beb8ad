"""Exceptions with messages a user can act on.

Every error that bad input can cause derives from :class:`PluralignError`; the CLI and
the HTTP service print its message as one line instead of a traceback.
"""

from __future__ import annotations


class PluralignError(Exception):
    """Base class: the message is one line that names the problem."""


class InputError(PluralignError):
    """Malformed or inconsistent user input (files, targets, probes)."""


class UnknownAttributeError(InputError):
    """A target or label names an attribute that is not defined."""


class JudgeError(PluralignError):
    """A judge backend could not produce a valid answer."""


class ModelNotFoundError(JudgeError):
    """A model alias or file could not be resolved."""


class BackendUnavailableError(JudgeError):
    """The server could not be reached, even after retries."""


class ContextLengthError(JudgeError):
    """The prompt does not fit the model's context window."""


class InvalidOutputError(JudgeError):
    """The model never produced JSON that obeys the schema."""


class CacheError(PluralignError):
    """The judgement cache is corrupted or cannot be opened."""


def one_line(exc: BaseException) -> str:
    """Collapse an exception message to one line for display."""
    text = " ".join(str(exc).split())
    return text or exc.__class__.__name__
