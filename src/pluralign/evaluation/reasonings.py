"""Reasonings for a train set's labels, written by an LLM (the paper's code does the same
with Mistral-7B), so few-shot examples explain their scores instead of using placeholders.

For every train response and attribute the judge sees the question, the response and the
human rating, and writes one sentence. Progress is appended to
``train.reasonings.jsonl`` beside ``train.json`` after every item and ``train.json`` is
rewritten atomically as it goes, so an interrupted run resumes where it stopped; answers
also go through the judgement cache.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field

from pluralign.choice.attributes import AttributeRegistry
from pluralign.choice.probes import Probe, load_probes, save_probes
from pluralign.prediction import prompts as prompt_module
from pluralign.prediction.judges.base import AnswerOptions, Backend, GenerationSettings, JudgeRequest
from pluralign.prediction.prompts import PromptOptions, PromptSet
from pluralign.support.errors import InputError
from pluralign.support.files import exclusive
from pluralign.support.jsonl import append_jsonl, read_jsonl, repair_torn_tail
from pluralign.support.options import cli

PROGRESS = "train.reasonings.jsonl"
SAVE_EVERY = 10


class ReasoningOptions(PromptOptions, AnswerOptions):
    """How the judge writes reasonings: greedy, one sentence (200 tokens is ample)."""

    temperature: float = Field(
        default=0.0, ge=0.0, le=2.0, description="Sampling temperature.", json_schema_extra=cli(group="generation")
    )
    max_tokens: int = Field(
        default=200, ge=16, le=4096, description="Most tokens per reasoning.", json_schema_extra=cli(group="generation")
    )


@dataclass
class ReasoningStats:
    items: int = 0
    written: int = 0
    kept: int = 0
    resumed: int = 0


def add_reasonings(
    benchmark_dir: Path,
    backend: Backend,
    registry: AttributeRegistry,
    options: ReasoningOptions | None = None,
    seed: int = 0,
    overwrite: bool = False,
    limit: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ReasoningStats:
    """Fill ``reasonings`` in ``benchmark_dir/train.json`` for every labelled response."""
    train_file = benchmark_dir / "train.json"
    if not train_file.exists():
        raise InputError(f"{benchmark_dir} has no train.json")
    probes = load_probes(train_file)
    if not probes:
        raise InputError(f"{train_file} holds no items")
    options = options or ReasoningOptions()
    prompt_set = PromptSet(options.prompts)
    progress_file = benchmark_dir / PROGRESS
    busy = InputError(
        f"another pluralign process is writing reasonings for {benchmark_dir}; wait for it (one writer per "
        "benchmark, so neither rewrites train.json with fewer reasonings)"
    )
    with exclusive(progress_file, busy):  # the progress log is appended, never replaced: a stable lock
        return _add_reasonings(
            train_file, progress_file, backend, registry, options, prompt_set, seed, overwrite, limit, on_progress
        )  # fmt: skip


def _add_reasonings(
    train_file: Path,
    progress_file: Path,
    backend: Backend,
    registry: AttributeRegistry,
    options: ReasoningOptions,
    prompt_set: PromptSet,
    seed: int,
    overwrite: bool,
    limit: int | None,
    on_progress: Callable[[int, int], None] | None,
) -> ReasoningStats:
    probes = load_probes(train_file)  # read again under the lock: another writer may have just finished
    repair_torn_tail(progress_file)
    done: dict[int, list[dict[str, str]]] = {}
    for record in read_jsonl(progress_file, "reasoning progress"):
        if (
            isinstance(record, dict)
            and isinstance(record.get("item"), int)
            and isinstance(record.get("reasonings"), list)
        ):
            done[record["item"]] = record["reasonings"]
    stats = ReasoningStats()
    schema = prompt_module.reasoning_schema()
    todo = range(len(probes)) if limit is None else range(min(limit, len(probes)))
    updated = list(probes)
    for count, index in enumerate(todo, start=1):
        probe = probes[index]
        if probe.labels is None:
            raise InputError(f"{train_file}: item {index} has no labels to explain")
        stats.items += 1
        if index in done and not overwrite:
            updated[index] = _with(probe, done[index])
            stats.resumed += 1
        else:
            reasons = _reasonings_for(
                probe, index, backend, registry, prompt_set, schema, options, seed, overwrite, stats
            )
            append_jsonl(progress_file, {"item": index, "reasonings": reasons})
            updated[index] = _with(probe, reasons)
            if count % SAVE_EVERY == 0:
                save_probes(train_file, updated)
        if on_progress is not None:
            on_progress(count, len(todo))
    save_probes(train_file, updated)
    return stats


def _with(probe: Probe, reasonings: list[dict[str, str]]) -> Probe:
    return probe.model_copy(update={"reasonings": reasonings})


def _reasonings_for(
    probe: Probe,
    index: int,
    backend: Backend,
    registry: AttributeRegistry,
    prompt_set: PromptSet,
    schema: dict[str, object],
    options: ReasoningOptions,
    seed: int,
    overwrite: bool,
    stats: ReasoningStats,
) -> list[dict[str, str]]:
    assert probe.labels is not None
    out: list[dict[str, str]] = []
    batch: list[tuple[int, str, JudgeRequest]] = []
    for j, (response, label) in enumerate(zip(probe.responses, probe.labels, strict=True)):
        existing = dict(probe.reasonings[j]) if probe.reasonings is not None else {}
        out.append({} if overwrite else existing)
        for name, value in label.items():
            if not overwrite and existing.get(name):
                stats.kept += 1
                continue
            attribute = registry[name]
            messages = prompt_module.conversation(
                prompt_set.reasoning_system(attribute),
                [],
                prompt_set.reasoning_user(attribute, probe.question, response, value),
            )
            settings = GenerationSettings(
                temperature=options.temperature,
                max_tokens=options.max_tokens,
                seed=seed + index,
                max_attempts=options.max_attempts,
            )
            batch.append((j, name, JudgeRequest(messages=messages, json_schema=schema, settings=settings)))
    results = backend.generate([r for _, _, r in batch])
    for (j, name, _), result in zip(batch, results, strict=True):
        out[j][name] = " ".join(str(result.data["reasoning"]).split())
        stats.written += 1
    return out
