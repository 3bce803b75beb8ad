"""JSON Lines without ever losing a record.

Lines are appended one at a time with fsync. Reads never change a file: a corrupt or torn line
is read around, with a warning naming the file and the line. Only the appender, when it resumes
a file whose last line was torn by a crash, trims that one unfinished line.
"""

from __future__ import annotations

import io
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from pluralign.support import strict
from pluralign.support.errors import InputError, TooLargeError, one_line
from pluralign.support.files import open_own, open_read
from pluralign.support.folders import exists_under, open_under, refusal

log = logging.getLogger("pluralign.support.jsonl")


@dataclass
class JsonlRead:
    """The records of a JSON Lines file with their (1-based) line numbers, and the numbers of
    the lines skipped."""

    records: list[Any] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    bad_lines: list[int] = field(default_factory=list)
    torn_tail: bool = False


JsonlPolicy = Literal["skip", "strict"]
"""What a bad line means: ``skip`` it (a run's own log, where a torn write may leave one; the
reader warns), or ``strict``: an error naming the line (a file the user wrote)."""


def scan_jsonl(
    path: str | Path,
    policy: JsonlPolicy = "skip",
    what: str = "file",
    root: str | Path | None = None,
    limit: int | None = None,
) -> JsonlRead:
    """Every parsable line, split on newlines only (U+2028 inside a string is text); the file
    is left as it is. A missing file is empty under ``skip`` and an error under ``strict``.
    With ``root``, ``path`` is inside that folder and reached without links
    (:func:`pluralign.support.folders.open_under`); with ``limit``, a larger file is refused before it is read."""
    out = JsonlRead()
    if root is not None:
        if not exists_under(root, path) and policy == "skip":
            return out
        path = Path(root) / path
        try:
            handle: IO[bytes] = os.fdopen(open_under(root, Path(path).relative_to(root)), "rb")
        except OSError as exc:
            raise refusal(Path(root), Path(path).relative_to(root), exc, "reads") from None
    else:
        path = Path(path)
        if not path.exists() and policy == "skip":
            return out
        handle = open_read(path, what)
    if limit is not None:
        size = os.fstat(handle.fileno()).st_size
        if size > limit:
            handle.close()
            raise TooLargeError(f"{what} {path} is {size} bytes, over the limit of {limit}")
    with handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                out.records.append(strict.loads(raw))
                out.lines.append(number)
            except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8, a 5,000-digit number, deep nesting
                if policy == "strict":
                    raise InputError(f"{path}: line {number} {_why_unreadable(exc)}") from None
                out.bad_lines.append(number)
                if not raw.endswith(b"\n"):
                    out.torn_tail = True
    return out


def _why_unreadable(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"is not valid JSON ({exc.msg})"
    if isinstance(exc, UnicodeDecodeError):
        return "is not UTF-8 text"
    return f"cannot be read ({one_line(exc, 100)})"


def gunzip_jsonl(data: bytes, path: Path, what: str, limit: int | None = None) -> list[Any]:
    """The records of a gzipped JSON Lines file's bytes (a packed run log), bad lines skipped with
    a warning as :func:`read_jsonl` does; at most ``limit`` bytes are unpacked."""
    import gzip
    import zlib

    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as unpacked:
            raw = unpacked.read(limit + 1 if limit is not None else -1)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{what} {path} is not a gzip file ({exc})") from None
    if limit is not None and len(raw) > limit:
        raise TooLargeError(f"{what} {path} unpacks to more than the limit of {limit} bytes")
    records, bad = [], 0
    for line in raw.splitlines():
        if not line.strip():
            continue
        try:
            records.append(strict.loads(line))
        except (ValueError, RecursionError):
            bad += 1
    if bad:
        log.warning("%s %s: skipped %d unreadable line(s); the file was left unchanged", what, path, bad)
    return records


def read_jsonl(
    path: str | Path,
    what: str = "",
    policy: JsonlPolicy = "skip",
    root: str | Path | None = None,
    limit: int | None = None,
) -> list[Any]:
    """The records of a JSON Lines file; under ``skip`` bad lines are skipped with one warning
    per file, under ``strict`` the first is an error that names it (``root``, ``limit``: see
    :func:`scan_jsonl`)."""
    result = scan_jsonl(path, policy, what or "file", root, limit)
    if result.bad_lines:
        shown = ", ".join(str(n) for n in result.bad_lines[:5]) + (" ..." if len(result.bad_lines) > 5 else "")
        log.warning(
            "%s%s: skipped %d unreadable line(s) (line %s); the file was left unchanged",
            f"{what} " if what else "",
            path,
            len(result.bad_lines),
            shown,
        )
    return result.records


def repair_torn_tail(path: str | Path) -> bool:
    """Drop a final line that a crash left without its newline (and only that line).

    For appenders resuming a file; a complete but corrupt line in the middle is kept, so
    nothing after it is lost.
    """
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return False
    with open_own(path, "r+b") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 1))
        if handle.read(1) == b"\n":
            return False
        # find the start of the last line
        pos = size
        chunk = 1 << 16
        while pos > 0:
            start = max(0, pos - chunk)
            handle.seek(start)
            block = handle.read(pos - start)
            newline = block.rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            pos = start
        else:
            keep = 0
        handle.seek(keep)
        tail = handle.read()
        try:
            json.loads(tail)
        except (ValueError, RecursionError):
            handle.truncate(keep)
            log.warning("%s: dropped an unfinished last line (%d bytes) left by an interrupted write", path, len(tail))
            return True
        # a complete record that only lacks its newline: keep it and finish the line
        handle.seek(0, os.SEEK_END)
        handle.write(b"\n")
        return False


def append_jsonl(path: str | Path, record: Any) -> None:
    """Append one JSON line and fsync it: a finished item survives a crash."""
    with open_own(path, "a") as handle:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
