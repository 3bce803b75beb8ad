"""Prefix states: the judge's KV cells after the shared beginning of a prompt (the system
message and the few-shot examples), kept so that a later prompt with the same beginning
reads only what is new.

Only the cells of one sequence are kept (llama.cpp's per-sequence state), never the logits:
llama-cpp-python's own ``LlamaRAMCache`` stores whole states and took RSS to 6.4 GB in v0.1.
Two layers: in memory for a loaded backend (service, Python API, ``eval``), bounded by bytes
with least-recently-used eviction; and on disk under pluralign's home, so that a second
``pluralign choose`` in a new process starts from the stored prefix. A disk entry is keyed by
the model file's hash, the llama.cpp build and the exact prefix tokens, written atomically,
and carries a header that is checked on reading: a corrupt, truncated or foreign file is
ignored with a warning (and replaced by the next write), never trusted, never unpickled.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import struct
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pluralign.support.errors import InputError
from pluralign.support.files import open_regular, write_bytes_atomic
from pluralign.support.home import home

log = logging.getLogger("pluralign.prediction.judges")

MAGIC = b"pluralign-prefix"  # 16 bytes
FORMAT = 1
_HEADER = struct.Struct("<16sI32sIQ32s")  # magic, format, key, n_tokens, payload bytes, payload sha256
SUFFIX = ".prefix"
HITS_FILE = "hits.json"
DEFAULT_MEMORY_BYTES = 512 * 2**20
DEFAULT_DISK_BYTES = 2 * 2**30


def default_dir() -> Path:
    return home() / "prefixes"


def prefix_key(identity: str, tokens: Sequence[int]) -> bytes:
    """What a state is filed under: the model and build (``identity``) and the exact tokens."""
    digest = hashlib.sha256(identity.encode())
    digest.update(struct.pack(f"<{len(tokens)}i", *tokens))
    return digest.digest()


@dataclass
class PrefixStats:
    """This process's lookups."""

    in_context: int = 0
    memory_hits: int = 0
    disk_hits: int = 0
    misses: int = 0
    stored: int = 0


@dataclass
class PrefixStore:
    """Prefix states of one model and build (``identity``), in memory and, when ``folder`` is
    given, on disk."""

    identity: str
    folder: Path | None = None
    memory_bytes: int = DEFAULT_MEMORY_BYTES
    disk_bytes: int = DEFAULT_DISK_BYTES
    stats: PrefixStats = field(default_factory=PrefixStats)

    def __post_init__(self) -> None:
        self._memory: OrderedDict[bytes, bytes] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()

    def get(self, tokens: Sequence[int]) -> bytes | None:
        key = prefix_key(self.identity, tokens)
        with self._lock:
            data = self._memory.get(key)
            if data is not None:
                self._memory.move_to_end(key)
                self.stats.memory_hits += 1
        if data is None and self.folder is not None:
            data = _read_entry(self.folder / (key.hex() + SUFFIX), key, len(tokens))
            if data is not None:
                self.stats.disk_hits += 1
                self._remember(key, data)
        if data is None:
            self.stats.misses += 1
        else:
            _count_hit(self.folder)
        return data

    def put(self, tokens: Sequence[int], data: bytes) -> None:
        key = prefix_key(self.identity, tokens)
        self._remember(key, data)
        self.stats.stored += 1
        if self.folder is not None:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                header = _HEADER.pack(MAGIC, FORMAT, key, len(tokens), len(data), hashlib.sha256(data).digest())
                write_bytes_atomic(self.folder / (key.hex() + SUFFIX), header + data)
                _evict(self.folder, self.disk_bytes)
            except (OSError, InputError) as exc:  # a full or read-only disk costs speed, never a decision
                log.warning("prefix store %s: could not write (%s); going on without it", self.folder, exc)

    def _remember(self, key: bytes, data: bytes) -> None:
        if len(data) > self.memory_bytes:
            return
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                return
            self._memory[key] = data
            self._held += len(data)
            while self._held > self.memory_bytes:
                _, old = self._memory.popitem(last=False)
                self._held -= len(old)

    @property
    def memory_entries(self) -> int:
        return len(self._memory)


def _read_entry(path: Path, key: bytes, n_tokens: int) -> bytes | None:
    """The payload of a valid entry, or None (missing; or not ours, torn or corrupt: warned).
    Only a regular file is read (never through a link, never a pipe, which would block the
    judge, or a device such as /dev/zero), and never more than its header says it holds."""
    try:
        fd = open_regular(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError as exc:
        why = "a link or not a regular file" if exc.errno in (errno.ELOOP, errno.EINVAL) else exc.strerror
        log.warning("prefix store: %s is %s; computing the prefix again", path, why)
        return None
    with os.fdopen(fd, "rb") as handle:
        raw = handle.read(_HEADER.size)
        if len(raw) == _HEADER.size:
            size = _HEADER.unpack_from(raw)[4]
            if size <= os.fstat(handle.fileno()).st_size:  # a header cannot make us read what is not there
                raw += handle.read(size + 1)
    problem = _problem(raw, key, n_tokens)
    if problem:
        log.warning("prefix store: %s %s; computing the prefix again", path, problem)
        return None
    return raw[_HEADER.size :]


def _problem(raw: bytes, key: bytes, n_tokens: int) -> str | None:
    if len(raw) < _HEADER.size:
        return "is truncated"
    magic, fmt, stored_key, stored_tokens, size, digest = _HEADER.unpack_from(raw)
    if magic != MAGIC:
        return "is not a pluralign prefix state"
    if fmt != FORMAT:
        return f"has format {fmt}, not {FORMAT}"
    if stored_key != key or stored_tokens != n_tokens:
        return "belongs to another prefix"
    payload = raw[_HEADER.size :]
    if len(payload) != size:
        return "is truncated"
    if hashlib.sha256(payload).digest() != digest:
        return "is corrupt"
    return None


def _is_entry(path: Path) -> bool:
    """One of ours: our suffix and our magic (nothing else in the folder is ever removed)."""
    if path.suffix != SUFFIX or not path.is_file() or path.is_symlink():
        return False
    try:
        with open(path, "rb") as handle:
            return handle.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def entries(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if _is_entry(p)]


def _evict(folder: Path, budget: int) -> None:
    """Oldest first until the folder's entries fit ``budget`` bytes."""
    found = sorted(((p.stat(), p) for p in entries(folder)), key=lambda sp: sp[0].st_mtime)
    total = sum(info.st_size for info, _ in found)
    for info, path in found:
        if total <= budget:
            break
        path.unlink(missing_ok=True)
        total -= info.st_size


def _open_hits(folder: Path, flags: int) -> int | None:
    """A descriptor on the hit count file if it is a regular file reached without a link."""
    try:
        return open_regular(folder / HITS_FILE, flags)
    except OSError:
        return None


def _our_hits(text: str) -> int | None:
    """The count if ``text`` is our own ``{"hits": n}`` (or nothing yet), else None."""
    try:
        data = json.loads(text) if text else {"hits": 0}
    except ValueError:
        return None
    ours = isinstance(data, dict) and set(data) == {"hits"} and type(data["hits"]) is int
    return data["hits"] if ours else None


def _count_hit(folder: Path | None) -> None:
    """Add one to the store's hit count. The count file is rewritten only when it is ours: a
    regular file (never through a link) holding nothing or our own ``{"hits": n}``; anything
    else under that name is left as it is and the hit goes uncounted."""
    if folder is None or not folder.is_dir():
        return
    fd = _open_hits(folder, os.O_RDWR | os.O_CREAT)
    if fd is None:
        return  # a link, a pipe, a folder, or no write access: statistics are not worth a failure
    with os.fdopen(fd, "r+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            hits = _our_hits(handle.read(100))
            if hits is not None:
                handle.seek(0)
                handle.truncate()
                handle.write(json.dumps({"hits": hits + 1}))
        except (OSError, UnicodeDecodeError):
            pass


@dataclass(frozen=True)
class StoreStats:
    path: Path
    entries: int
    bytes: int
    hits: int


def disk_stats(folder: Path | None = None) -> StoreStats:
    """What ``pluralign cache stats`` reports of the prefix store (hits over every process)."""
    folder = folder or default_dir()
    found = entries(folder)
    hits = 0
    fd = _open_hits(folder, os.O_RDONLY)
    if fd is not None:
        with os.fdopen(fd, encoding="utf-8", errors="replace") as handle:
            hits = _our_hits(handle.read(100)) or 0
    return StoreStats(folder, len(found), sum(p.stat().st_size for p in found), hits)


def clear(folder: Path | None = None) -> int:
    """Remove the store's entries (only files that prove to be ours); the count removed."""
    folder = folder or default_dir()
    found = entries(folder)
    for path in found:
        path.unlink(missing_ok=True)
    fd = _open_hits(folder, os.O_RDONLY)
    if fd is not None:  # the count goes too, if it is ours
        with os.fdopen(fd, encoding="utf-8", errors="replace") as handle:
            ours = _our_hits(handle.read(100)) is not None
        if ours:
            (folder / HITS_FILE).unlink(missing_ok=True)
    return len(found)


def environment_key() -> str:
    """Changes when the bytes of a state could change meaning: the process's llama.cpp."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info()
    return f"llama-cpp-python {llama_cpp.__version__}; {os.uname().machine}; " + hashlib.sha256(info).hexdigest()[:16]
