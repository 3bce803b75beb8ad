"""Files under a folder pluralign owns (a run folder, the run browser's ``--runs``, the prefix
store): the folder is what the user named (it may itself be a link they made), but nothing below
it is reached through a link, a pipe or a device. Each step is opened relative to the one above
with ``O_NOFOLLOW``, so a link planted as ``input_output/`` in a run that came from an archive
cannot carry a read or a write outside, and writes are atomic (a temporary file renamed over the
name, a link under that name replaced, never written through)."""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pluralign.support import strict
from pluralign.support.errors import InputError, TooLargeError


def write_whole(fd: int, data: bytes, mode: int) -> None:
    """Give a new file descriptor ``mode``, write ``data`` to it, flush it to disk and close it:
    the step every atomic writer takes before its rename."""
    os.fchmod(fd, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _parts(rel: str | Path) -> list[str]:
    parts = Path(rel).parts
    if not parts or Path(rel).is_absolute() or any(p in ("", ".", "..") for p in parts):
        raise InputError(f"{rel}: not a plain path inside its folder")
    return list(parts)


def _folder_fd(root: Path, parts: Sequence[str], create: bool) -> int:
    """A descriptor on ``root/parts...``, every step below ``root`` a real folder (never a link)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts:
            if create:
                try:
                    os.mkdir(part, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
            step = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = step
        return fd
    except BaseException:
        os.close(fd)
        raise


def refusal(root: Path, rel: str | Path, exc: OSError, verb: str) -> InputError:
    path = root / rel
    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
        step = root
        for part in Path(rel).parts:  # name the first step that is a link or not a folder
            step = step / part
            if step.is_symlink():
                return InputError(f"{step} is a link; pluralign {verb} only its own files, never through links")
            if step != path and step.exists() and not step.is_dir():
                return InputError(f"{step} is not a folder; pluralign {verb} only its own files")
        return InputError(f"{path}: a link or a file lies on the way; pluralign {verb} only its own files")
    if exc.errno == errno.EINVAL:
        return InputError(f"{path} is not a regular file; pluralign {verb} only its own files")
    return InputError(f"cannot {verb.rstrip('s')} {path}: {exc.strerror or exc}")


def open_under(root: str | Path, rel: str | Path, flags: int = os.O_RDONLY) -> int:
    """A descriptor on the regular file ``root/rel``, reached without following any link below
    ``root`` (OSError otherwise: ELOOP for a link, EINVAL for a pipe, a device or a folder)."""
    parts = _parts(rel)
    folder = _folder_fd(Path(root), parts[:-1], create=bool(flags & os.O_CREAT))
    try:
        fd = os.open(parts[-1], flags | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644, dir_fd=folder)
    finally:
        os.close(folder)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", str(Path(root) / rel))
    os.set_blocking(fd, True)
    return fd


def exists_under(root: str | Path, rel: str | Path) -> bool:
    """Whether ``root/rel`` is there, looking without following links: a link, at its name or on
    the way, counts as there, so that reading it reports the link instead of finding nothing."""
    try:
        parts = _parts(rel)
        folder = _folder_fd(Path(root), parts[:-1], create=False)
    except FileNotFoundError:
        return False
    except OSError as exc:
        return exc.errno in (errno.ELOOP, errno.ENOTDIR)
    except InputError:
        return False
    try:
        os.stat(parts[-1], dir_fd=folder, follow_symlinks=False)
        return True
    except OSError:
        return False
    finally:
        os.close(folder)


def read_bytes_under(root: str | Path, rel: str | Path, what: str = "file", limit: int | None = None) -> bytes:
    """The bytes of ``root/rel`` (see :func:`open_under`), or an InputError naming it; a file over
    ``limit`` bytes is refused before it is read."""
    try:
        fd = open_under(root, rel)
    except FileNotFoundError:
        raise InputError(f"{what} {Path(root) / rel} does not exist") from None
    except OSError as exc:
        raise refusal(Path(root), rel, exc, "reads") from None
    with os.fdopen(fd, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if limit is not None and size > limit:
            raise TooLargeError(f"{what} {Path(root) / rel} is {size} bytes, over the limit of {limit}")
        return handle.read() if limit is None else handle.read(limit + 1)[:limit]


def read_json_under(root: str | Path, rel: str | Path, what: str = "file", limit: int | None = None) -> Any:
    """:func:`read_json` for a file under a folder pluralign owns."""
    path = Path(root) / rel
    try:
        return strict.loads(read_bytes_under(root, rel, what, limit))
    except json.JSONDecodeError as exc:
        raise InputError(f"{what} {path} is not valid JSON: {exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"{what} {path} is not UTF-8 text") from None
    except RecursionError:
        raise InputError(f"{what} {path} is nested too deeply to read") from None
    except ValueError as exc:
        raise InputError(f"{what} {path} cannot be read: {exc}") from None


def write_bytes_under(root: str | Path, rel: str | Path, data: bytes) -> None:
    """:func:`write_bytes_atomic` for ``root/rel``: folders on the way are created, never followed
    through a link; the file is replaced by rename (a link under its name is replaced, never
    written through; a pipe, a device or a socket under it is refused, not replaced)."""
    root = Path(root)
    parts = _parts(rel)
    try:
        root.mkdir(parents=True, exist_ok=True)
        folder = _folder_fd(root, parts[:-1], create=True)
    except OSError as exc:
        raise refusal(root, rel, exc, "writes") from None
    tmp = f".{parts[-1]}.{os.urandom(6).hex()}.tmp"
    try:
        try:
            mode = os.stat(parts[-1], dir_fd=folder, follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode):
                raise InputError(f"{root / rel} is a folder; pluralign writes only its own files")
            if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):  # a pipe, a device or a socket planted there
                raise InputError(f"{root / rel} is not a regular file; pluralign writes only its own files")
            keep = mode & 0o777 if stat.S_ISREG(mode) else 0o644
        except FileNotFoundError:
            keep = 0o644
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, keep, dir_fd=folder)
        try:
            write_whole(fd, data, keep)
            os.replace(tmp, parts[-1], src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=folder)
            except OSError:
                pass
            raise
    except OSError as exc:
        raise refusal(root, rel, exc, "writes") from None
    finally:
        os.close(folder)


def write_json_under(root: str | Path, rel: str | Path, data: Any, indent: int | None = 2) -> None:
    write_bytes_under(root, rel, (json.dumps(data, indent=indent, ensure_ascii=False) + "\n").encode("utf-8"))


def remove_under(root: str | Path, rel: str | Path) -> bool:
    """Remove the regular file ``root/rel`` (never through a link on the way); False if absent."""
    parts = _parts(rel)
    try:
        folder = _folder_fd(Path(root), parts[:-1], create=False)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise refusal(Path(root), rel, exc, "removes") from None
    try:
        os.unlink(parts[-1], dir_fd=folder)
        return True
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise refusal(Path(root), rel, exc, "removes") from None
    finally:
        os.close(folder)


def list_under(root: str | Path, rel: str | Path = ".") -> list[str]:
    """The names in the folder ``root/rel`` (none if it is missing); a link on the way is refused."""
    parts = [] if str(rel) in ("", ".") else _parts(rel)
    try:
        folder = _folder_fd(Path(root), parts, create=False)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise refusal(Path(root), rel, exc, "reads") from None
    try:
        return sorted(os.listdir(folder))
    finally:
        os.close(folder)
