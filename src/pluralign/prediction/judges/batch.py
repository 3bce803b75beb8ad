"""Hand judge requests to the engines that run whole studies: OpenAI Batch files.

``--backend batch`` answers nothing itself. Every request the judgement cache cannot answer
is written, one line each, to ``DIR/requests-NNN.jsonl`` in the OpenAI Batch format
(``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body"}``), with the
JSON schema in ``response_format`` and the sample's seed and temperature in the body: the
same body the openai backend sends. Run the files with ``vllm run-batch`` or the OpenAI
Batch API, then ``pluralign batch import`` validates each answer against its request and
stores it; when every sample of a request has a valid answer the whole judgement goes into
the judgement cache, and rerunning the eval command completes from there (a second export
holds only what is still missing, re-asks of invalid answers included).

What was exported is remembered in the cache file (tables ``batch_requests`` and
``batch_answers``), so an import knows each ``custom_id``'s request.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field

from pluralign.prediction.judges import BackendSpec, register_backend
from pluralign.prediction.judges.base import (
    RETRY_TEMPERATURE,
    JudgeRequest,
    JudgeResult,
    LocalBackend,
    Usage,
    parse_answer,
)
from pluralign.prediction.judges.cache import JudgementCache, request_key
from pluralign.prediction.judges.openai import ResponseFormatOption, chat_body, parse_completion
from pluralign.support.errors import BatchPending, InputError, InvalidOutputError, UpstreamError, one_line
from pluralign.support.files import open_own, open_read, output_folder
from pluralign.support.options import cli

MAX_LINES = 50_000
MAX_BYTES = 200 * 1024 * 1024
URL = "/v1/chat/completions"
NAME = "batch"

_TABLES = (
    "CREATE TABLE IF NOT EXISTS batch_requests (custom_id TEXT PRIMARY KEY, key TEXT NOT NULL, "
    "sample INTEGER NOT NULL, attempt INTEGER NOT NULL, n INTEGER NOT NULL, model TEXT NOT NULL, "
    "request TEXT NOT NULL, created REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS batch_answers (custom_id TEXT PRIMARY KEY, key TEXT NOT NULL, "
    "sample INTEGER NOT NULL, attempt INTEGER NOT NULL, valid INTEGER NOT NULL, text TEXT, "
    "prompt_tokens INTEGER, completion_tokens INTEGER, error TEXT, imported REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS batch_answers_key ON batch_answers (key)",
)


def _store(cache: JudgementCache) -> JudgementCache:
    for statement in _TABLES:
        cache.sql(statement)
    return cache


def custom_id(key: str, sample: int, attempt: int) -> str:
    return f"plg-{key[:40]}-{sample}-{attempt}"


def _attempt_request(request: JudgeRequest, attempt: int) -> JudgeRequest:
    """Re-asks of a greedy request sample (as the online backends do), or they repeat the same broken answer."""
    if attempt == 0 or request.settings.temperature > 0:
        return request
    settings = request.settings.model_copy(update={"temperature": RETRY_TEMPERATURE})
    return request.model_copy(update={"settings": settings})


class BatchBackend(LocalBackend):
    """Writes what is missing to batch files and answers nothing (raises BatchPending)."""

    name = NAME

    def __init__(self, model: str, batch_dir: Path, cache: JudgementCache, mode: str = "json_schema") -> None:
        self.model = model
        self.batch_dir = output_folder(batch_dir, "--batch-dir")
        self.cache = _store(cache)
        self.mode = mode
        self.files: list[Path] = []
        self.lines = 0
        self._handle: Any = None
        self._bytes = 0
        self._in_file = 0
        self._written: set[str] = set()

    def _next_file(self) -> None:
        if self._handle is not None:
            self._handle.close()
        self.batch_dir.mkdir(parents=True, exist_ok=True)
        numbers = [
            int(p.stem.split("-")[-1])
            for p in self.batch_dir.glob("requests-*.jsonl")
            if p.stem.split("-")[-1].isdigit()
        ]
        path = self.batch_dir / f"requests-{max(numbers, default=0) + 1:03d}.jsonl"
        self._handle = open_own(path, "w")
        self.files.append(path)
        self._bytes = 0
        self._in_file = 0

    def _write(self, cid: str, body: dict[str, Any]) -> None:
        line = json.dumps({"custom_id": cid, "method": "POST", "url": URL, "body": body}, ensure_ascii=False) + "\n"
        size = len(line.encode())
        if self._handle is None or self._in_file >= MAX_LINES or self._bytes + size > MAX_BYTES:
            self._next_file()
        self._handle.write(line)
        self._handle.flush()
        self._bytes += size
        self._in_file += 1
        self.lines += 1

    def generate(self, requests: Sequence[JudgeRequest]) -> list[JudgeResult]:
        """Export every missing sample of these requests; a request whose sample failed
        validation ``max_attempts`` times is an InvalidOutputError, as online."""
        with self.cache.transaction():
            for request in requests:
                self._export(request)
        raise BatchPending(f"{len(requests)} requests wait for batch answers")

    def _export(self, request: JudgeRequest) -> None:
        key = request_key(self.name, self.model, request)
        answers = self.cache.sql("SELECT sample, attempt, valid FROM batch_answers WHERE key = ?", (key,))
        for k in range(request.settings.n):
            mine = [(a, v) for s, a, v in answers if s == k]
            if any(v for _, v in mine):
                continue
            attempt = len(mine)
            if attempt >= request.settings.max_attempts:
                raise InvalidOutputError(
                    f"batch: no answer valid for the schema after {attempt} tries; see the imported results"
                )
            cid = custom_id(key, k, attempt)
            if cid in self._written:
                continue
            asked = _attempt_request(request, attempt)
            seed = request.settings.seed + k + 1000 * attempt
            body = chat_body(self.model, asked, seed, self.mode)
            self.cache.sql(
                "INSERT OR REPLACE INTO batch_requests VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (cid, key, k, attempt, request.settings.n, self.model, request.model_dump_json(), time.time()),
            )
            self._write(cid, body)
            self._written.add(cid)

    def pending_message(self) -> str:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if not self.lines:
            return "batch: nothing to export"
        files = " ".join(str(p) for p in self.files)
        results = " ".join(str(p.with_name(p.name.replace("requests-", "results-"))) for p in self.files)
        first = self.files[0]
        return (
            f"wrote {self.lines} requests to {files}. Next: run each file, e.g. "
            f"`vllm run-batch -i {first} -o {first.with_name(first.name.replace('requests-', 'results-'))} "
            f"--model {self.model}` (or the OpenAI Batch API, see the README), then "
            f"`pluralign batch import {results}` and run this same command again."
        )

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


@dataclass
class ImportReport:
    lines: int = 0
    valid: int = 0
    invalid: int = 0
    failed: int = 0
    unknown: int = 0
    unreadable: int = 0
    already: int = 0
    completed: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"{self.lines} result lines: {self.valid} valid answers stored, {self.invalid} invalid (re-asked by "
            f"the next export), {self.failed} error lines, {self.already} already imported, {self.unknown} with a "
            f"custom_id this cache never exported, {self.unreadable} unreadable; {self.completed} requests are "
            "now complete in the judgement cache"
        )
        return text


MAX_CUSTOM_ID = 200


def _note(report: ImportReport, message: str) -> None:
    if len(report.problems) < 5:
        report.problems.append(message)


def import_results(paths: Iterable[Path], cache: JudgementCache) -> ImportReport:
    """Validate and store batch result lines; complete requests go to the judgement cache.
    Nothing is lost: a bad line is counted and named, and the rest are imported."""
    _store(cache)
    report = ImportReport()
    touched: set[str] = set()
    with cache.transaction():
        for path in paths:
            _import_file(Path(path), cache, report, touched)
        for key in touched:
            if _complete(cache, key):
                report.completed += 1
    return report


def _import_file(path: Path, cache: JudgementCache, report: ImportReport, touched: set[str]) -> None:
    handle = io.TextIOWrapper(open_read(path, "batch results file"), encoding="utf-8")
    with handle:
        try:
            _import_lines(path, handle, cache, report, touched)
        except UnicodeDecodeError:
            raise InputError(f"{path} is not UTF-8 text; nothing was imported") from None


def _import_lines(path: Path, handle: Any, cache: JudgementCache, report: ImportReport, touched: set[str]) -> None:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        report.lines += 1
        where = f"{path}: line {number}"
        try:
            record = json.loads(line)
            cid = record["custom_id"]
        except (ValueError, RecursionError, KeyError, TypeError, IndexError):  # bad JSON, huge numbers, nesting
            report.unreadable += 1
            _note(report, f"{where} is not a complete batch result (truncated?)")
            continue
        if not isinstance(cid, str) or len(cid) > MAX_CUSTOM_ID:
            report.unreadable += 1
            _note(report, f"{where}: custom_id is not a string of at most {MAX_CUSTOM_ID} characters")
            continue
        rows = cache.sql("SELECT key, sample, attempt, request FROM batch_requests WHERE custom_id = ?", (cid,))
        if not rows:
            report.unknown += 1
            _note(report, f"{where}: custom_id {cid!r} was never exported to this cache (another run's file?)")
            continue
        if cache.sql("SELECT 1 FROM batch_answers WHERE custom_id = ?", (cid,)):
            report.already += 1
            continue
        key, sample, attempt, request_json = rows[0]
        request = JudgeRequest.model_validate_json(request_json)
        valid, text, usage, error = _judge_line(record, request)
        if error is not None and text is None:
            report.failed += 1
            _note(report, f"{where}: {error}")
            continue  # not stored: the next export asks the same attempt again
        cache.sql(
            "INSERT OR IGNORE INTO batch_answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                cid,
                key,
                sample,
                attempt,
                int(valid),
                text,
                usage.prompt_tokens,
                usage.completion_tokens,
                error,
                time.time(),
            ),
        )
        if valid:
            report.valid += 1
            touched.add(key)
        else:
            report.invalid += 1


def _judge_line(record: Any, request: JudgeRequest) -> tuple[bool, str | None, Usage, str | None]:
    """(valid, answer text, usage, error) of one result line."""
    if not isinstance(record, dict):
        return False, None, Usage(), "the line is not a JSON object"
    if record.get("error"):
        return False, None, Usage(), f"the batch reports an error: {one_line(str(record['error']), 200)}"
    response = record.get("response") or {}
    status = response.get("status_code") if isinstance(response, dict) else None
    if status != 200:
        return False, None, Usage(), f"the request failed with status {status}"
    try:
        answer = parse_completion(response.get("body"))
    except UpstreamError as exc:
        return False, None, Usage(), str(exc)
    try:
        parse_answer(answer.text, request.json_schema)
    except ValueError as exc:
        return False, answer.text, answer.usage, str(exc)
    return True, answer.text, answer.usage, None


def _complete(cache: JudgementCache, key: str) -> bool:
    """Put the request's judgement into the cache once every sample has a valid answer."""
    rows = cache.sql("SELECT request, n, model FROM batch_requests WHERE key = ? LIMIT 1", (key,))
    if not rows:
        return False
    request = JudgeRequest.model_validate_json(rows[0][0])
    n, model = rows[0][1], rows[0][2]
    answers = cache.sql(
        "SELECT sample, valid, text, prompt_tokens, completion_tokens FROM batch_answers "
        "WHERE key = ? ORDER BY sample, attempt",
        (key,),
    )
    outputs: list[dict[str, Any]] = []
    raws: list[str] = []
    usage = Usage()
    for k in range(n):
        good = [a for a in answers if a[0] == k and a[1]]
        if not good:
            return False
        text = good[0][2]
        outputs.append(parse_answer(text, request.json_schema))
        raws.append(text)
        usage = usage + Usage(prompt_tokens=good[0][3] or 0, completion_tokens=good[0][4] or 0)
    attempts = len(answers)
    result = JudgeResult(outputs=outputs, raw=raws, usage=usage, attempts=attempts)
    if cache.get(key) is None:
        cache.put(key, NAME, model, "batch", result)
    return True


class BatchOptions(ResponseFormatOption):
    """What can be set about writing OpenAI Batch request files."""

    batch_dir: Path | None = Field(
        default=None, description="Folder for OpenAI Batch request files (--backend batch).", json_schema_extra=cli()
    )


def _build(model: str, options: BatchOptions, cache: JudgementCache | None) -> BatchBackend:
    if options.batch_dir is None:
        raise InputError("--backend batch needs --batch-dir, the folder for the request files")
    if cache is None:
        raise InputError("--backend batch stores its answers in the judgement cache; drop --no-cache")
    mode = "json_object" if options.response_format == "json_object" else "json_schema"
    return BatchBackend(model, options.batch_dir, cache, mode)


register_backend(
    BackendSpec(
        name=NAME,
        summary="writes OpenAI Batch request files (vllm run-batch, OpenAI Batch API); import the results",
        build=_build,
        options=BatchOptions,
        answers_from_cache=True,
    )
)
