"""The doors files pass through: one for reading a file the user names (bounded, never hanging
on a pipe or a device), atomic writes that replace only a file or a link, and the opener of
pluralign's own appended files. JSON Lines live in :mod:`pluralign.support.jsonl`."""

from __future__ import annotations

import errno
import fcntl
import io
import json
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Literal

from pluralign.support import strict
from pluralign.support.errors import InputError, TooLargeError
from pluralign.support.folders import write_whole

MAX_READ_BYTES = 1 << 30
"""The most a file the user names is read (1 GiB, far above any benchmark, run or target file):
a larger file, or an endless one (a device, a pipe that never ends), is refused, not read into memory."""


def open_read(path: str | Path, what: str = "file") -> io.BufferedReader:
    """The one door a file the user names is read through, or an InputError naming it.

    Opened without waiting: a named pipe with no writer (one planted in a run folder, say) reads
    as empty instead of hanging the reader. A folder or a device (``/dev/zero`` never ends) is
    refused in one line, before anything is read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except IsADirectoryError:
        raise InputError(f"{what} {path} is a directory, not a file") from None
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror}") from None
    mode = os.fstat(fd).st_mode
    if stat.S_ISDIR(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(mode) else "a device"
        raise InputError(f"{what} {path} is {kind}, not a file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_bytes(path: str | Path, what: str = "file", limit: int = MAX_READ_BYTES) -> bytes:
    """A file's bytes, at most ``limit`` of them (a TooLargeError names a larger file)."""
    too_large = TooLargeError(f"{what} {path} is larger than the limit of {limit:,} bytes")
    with open_read(path, what) as handle:
        try:
            info = os.fstat(handle.fileno())
            if stat.S_ISREG(info.st_mode):  # its size is known: refused unread
                if info.st_size > limit:
                    raise too_large
                data = handle.read(limit + 1)  # one byte more tells a file that grew past the limit
            else:  # a pipe: read in pieces, so no buffer of the limit's size is set aside
                pieces, size = [], 0
                while piece := handle.read1(1 << 16):
                    pieces.append(piece)
                    size += len(piece)
                    if size > limit:
                        raise too_large
                data = b"".join(pieces)
        except OSError as exc:
            raise InputError(f"cannot read {what} {path}: {exc.strerror}") from None
    if len(data) > limit:  # a file that grew while it was read
        raise too_large
    return data


def read_text(path: str | Path, what: str = "file", limit: int = MAX_READ_BYTES) -> str:
    """A file's text (UTF-8, universal newlines), or an InputError that names it and says why it
    could not be read."""
    data = read_bytes(path, what, limit)
    try:
        return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8").read()
    except UnicodeDecodeError:
        raise InputError(f"{what} {path} is not UTF-8 text") from None


def read_json(path: str | Path, what: str = "file") -> Any:
    """Parse a JSON file, or raise an InputError naming the file and the position of the fault."""
    text = read_text(path, what)
    try:
        return strict.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{what} {path} is not valid JSON: {exc}") from None
    except RecursionError:
        raise InputError(f"{what} {path} is nested too deeply to read") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise InputError(f"{what} {path} cannot be read: {exc}") from None


_OWN_FLAGS = {
    "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    "a+": os.O_RDWR | os.O_CREAT | os.O_APPEND,
    "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    "r+b": os.O_RDWR,
}


def open_regular(path: str | Path, flags: int) -> int:
    """``os.open`` that never follows a link, never waits on a pipe and returns a descriptor
    only on a regular file (else OSError): the one way pluralign opens a file of its own."""
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    os.set_blocking(fd, True)
    return fd


def open_own(path: str | Path, mode: Literal["a", "a+", "w", "r+b"]) -> IO[Any]:
    """Open a file pluralign appends to or rewrites in place, never through a link and never
    anything but a regular file: a link planted under one of its names (in a run folder that
    came from elsewhere, say) would otherwise carry the write outside the folder."""
    path = Path(path)
    try:
        fd = open_regular(path, _OWN_FLAGS[mode])
    except OSError as exc:
        if path.is_symlink():
            raise InputError(f"{path} is a link; pluralign writes only its own files, not through links") from None
        if path.exists() and not path.is_file():
            raise InputError(f"{path} is not a regular file; pluralign writes only its own files") from None
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
    return os.fdopen(fd, mode) if "b" in mode else os.fdopen(fd, mode, encoding="utf-8")


def regular_or_absent(path: str | Path, what: str) -> Path:
    """``path`` if it is a regular file reached without a link, or nothing yet: what a database
    pluralign opens must be (SQLite follows links and blocks on a pipe)."""
    path = Path(path)
    try:
        info = path.lstat()
    except FileNotFoundError:
        return path
    except OSError as exc:
        raise InputError(f"cannot open {what} {path}: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise InputError(f"{what} {path} is a link; name the file itself")
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise InputError(f"{what} {path} is {kind}")
    return path


@contextmanager
def exclusive(path: str | Path, busy: InputError) -> Iterator[IO[Any]]:
    """Hold an exclusive lock on ``path`` (a file of pluralign's own, created if missing, opened
    for appending, never through a link) while the block runs; ``busy`` is raised at once if
    another process holds it. The lock goes with the process, however it ends."""
    handle = open_own(path, "a+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise busy from None
    try:
        yield handle
    finally:
        handle.close()


def replaceable(path: str | Path) -> Path:
    """``path`` if an atomic write may put a file there: nothing yet, a file, or a link (the
    rename replaces the link, leaving what it points to). A folder, a device, a pipe or a socket
    is refused (run as root, ``--out /dev/null`` would otherwise replace the device). A command
    that writes several files checks them all with this before it writes the first."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a folder; name a file to write")
    try:
        kind = stat.S_IFMT(path.lstat().st_mode)
    except OSError:
        return path
    if kind not in (stat.S_IFREG, stat.S_IFLNK):
        raise InputError(f"{path} is not a regular file (a device, a pipe or a socket); name a file to write")
    return path


def output_folder(folder: str | Path, option: str = "--out") -> Path:
    """``folder`` if files may be written into it: a folder, or nothing yet (a file is refused)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{option} {folder} is a file, not a folder")
    return folder


def replaceable_in(folder: str | Path, names: Iterable[str], option: str = "--out") -> list[Path]:
    """The files ``names`` in ``folder``, checked before the first is written (see
    :func:`replaceable`): a command that writes several either writes them all or none."""
    folder = output_folder(folder, option)
    return [replaceable(folder / name) for name in names]


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename over it: a reader sees the
    old file or the new one, never half of it. A new file gets the usual 0644 permissions
    (an existing file keeps its own), not the 0600 of a temporary file. Only a file (or a link,
    which the rename replaces, leaving what it points to) is replaced: a device, a pipe or a
    socket is refused (run as root, ``--out /dev/null`` would otherwise replace the device)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """:func:`write_text_atomic` for bytes."""
    path = replaceable(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        write_whole(fd, data, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, data: Any, indent: int | None = 2) -> None:
    write_text_atomic(path, json.dumps(data, indent=indent, ensure_ascii=False) + "\n")
