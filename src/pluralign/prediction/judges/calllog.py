"""Where every model call's raw answer is recorded, when someone asks for it.

An evaluation opens ``with record_calls(path):``; answers made inside are appended to that
file as JSON lines. A context variable, not a global logger, so two runs in one process
(or a server beside a run) never write into each other's logs.
"""

from __future__ import annotations

import contextvars
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pluralign.support.files import open_own


class CallLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._handle = open_own(path, "a")

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            self._handle.write(line)
            self._handle.flush()

    def close(self) -> None:
        with self._lock:
            self._handle.close()


_sink: contextvars.ContextVar[CallLog | None] = contextvars.ContextVar("pluralign_call_log", default=None)


def record(record: dict[str, Any]) -> None:
    sink = _sink.get()
    if sink is not None:
        sink.write(record)


def active() -> bool:
    return _sink.get() is not None


@contextmanager
def record_calls(path: Path) -> Iterator[CallLog]:
    log = CallLog(path)
    token = _sink.set(log)
    try:
        yield log
    finally:
        _sink.reset(token)
        log.close()
