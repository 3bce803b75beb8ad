"""Names that come from data (a target's ``"name"``, a run or a profile) are labels, never
paths: this module is the one place that turns a label into a file name, and the one check
that a label is printable text of a sane length."""

from __future__ import annotations

import hashlib
import re
import unicodedata

MAX_LABEL = 200
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_UNSAFE_RUN = re.compile(r"[^a-z0-9._-]+")
_KEPT = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
_HASHED = re.compile(r".*-[0-9a-f]{12}")
"""The shape of a derived name: a label of that shape is hashed too, so none can pose as another's file."""


def label_problem(label: object) -> str | None:
    """Why ``label`` cannot be a name (None when it can): not text, empty, too long, or
    holding control characters (a newline, a NUL) that would break a line or a path."""
    if not isinstance(label, str):
        return f"must be text, not {type(label).__name__}"
    if not label.strip():
        return "must not be empty"
    if len(label) > MAX_LABEL:
        return f"is {len(label)} characters long (at most {MAX_LABEL})"
    if any(unicodedata.category(ch) in ("Cc", "Cs", "Cn") or ch in "\u2028\u2029" for ch in label):
        return "contains a control character"
    return None


def checked_label(value: str, what: str) -> str:
    """``value`` if it is a usable label, else a ValueError naming ``what`` (for validators)."""
    problem = label_problem(value)
    if problem:
        raise ValueError(f"{what} {problem}")
    return value


def is_safe_stem(name: str) -> bool:
    """A label that is already a plain file name of letters, digits, '.', '_' and '-'."""
    return _SAFE.fullmatch(name) is not None and not name.endswith(".")


def file_stem(label: str) -> str:
    """A file name for ``label`` that stays inside its folder whatever the label holds, and
    that no other label maps to: plain lower-case labels are kept as they are (``target_high``);
    anything else (a space, a slash, a capital, which a case-insensitive file system would fold
    onto its lower-case twin, or a label that already looks like a derived name,
    ``x_y-887fcea6a803``) becomes a readable slug plus a hash of the whole label."""
    if _KEPT.fullmatch(label) and not label.endswith(".") and not _HASHED.fullmatch(label):
        return label
    slug = _UNSAFE_RUN.sub("_", label.lower()).strip("._-")[:60] or "name"
    digest = hashlib.sha256(label.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{slug}-{digest}"
