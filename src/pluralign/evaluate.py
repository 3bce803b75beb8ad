"""Run a method over a benchmark and many targets: judge each item once, select per target.

The run directory is the unit of work and of resumption:
``run.json`` (what was asked), ``judgements.jsonl`` (appended and fsynced per item, so a
crash loses at most the item in flight), then, derived atomically at the end,
``decisions.jsonl``, ``results.json`` and ``input_output/<target>.json`` (the reference
implementation's format).
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pluralign.attributes import DEFAULT_REGISTRY, Attribute, AttributeRegistry
from pluralign.data.benchmark import Benchmark
from pluralign.errors import InputError
from pluralign.files import append_jsonl, read_json, read_jsonl, write_json_atomic, write_text_atomic
from pluralign.methods.base import CallStats, Judgement, Method
from pluralign.probes import Probe
from pluralign.scoring import Decision, TargetResult, judge_item, results_payload, summarize
from pluralign.selection import Metric
from pluralign.targets import AlignmentTarget

ALL_TARGETS = "*"
ProgressHook = Callable[[int, int], None]


def item_seed(seed: int, index: int) -> int:
    """A stable per-item seed, independent of which other items or targets are run."""
    return zlib.crc32(f"{seed}:{index}".encode())


def union_attributes(targets: Sequence[AlignmentTarget]) -> list[str]:
    names: list[str] = []
    for target in targets:
        names.extend(a for a in target.values if a not in names)
    return names


@dataclass
class EvalSummary:
    out_dir: Path
    results: list[TargetResult]
    n_items: int
    n_judged_now: int
    n_resumed: int
    stats: CallStats
    calls_saved_by_sharing: int
    seconds: float
    judge_seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


def _merge(old: Judgement, new: Judgement) -> Judgement:
    preds = None
    if old.predictions is not None and new.predictions is not None:
        preds = [{**a, **b} for a, b in zip(old.predictions, new.predictions, strict=True)]
    reasons = None
    if old.reasonings is not None and new.reasonings is not None:
        reasons = [{**a, **b} for a, b in zip(old.reasonings, new.reasonings, strict=True)]
    stats = old.stats.model_copy()
    stats.add(new.stats)
    return Judgement(
        predictions=preds,
        reasonings=reasons,
        samples={**old.samples, **new.samples},
        stats=stats,
    )


def check_labels(probes: Sequence[Probe], attributes: Sequence[str]) -> None:
    for i, probe in enumerate(probes):
        if probe.labels is None:
            raise InputError(f"eval item {i} has no labels; evaluation needs labelled items")
        for j, label in enumerate(probe.labels):
            missing = [a for a in attributes if a not in label]
            if missing:
                raise InputError(f"eval item {i}, response {j}: no label for {', '.join(missing)}")


class RunDir:
    """Reads and writes one evaluation run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def judgements_file(self) -> Path:
        return self.path / "judgements.jsonl"

    def prepare(self, identity: dict[str, Any], overwrite: bool) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        run_file = self.path / "run.json"
        if run_file.exists() and not overwrite:
            try:
                previous = json.loads(run_file.read_text())
            except json.JSONDecodeError:
                raise InputError(f"{run_file} is corrupted; pass --overwrite to start again") from None
            if previous.get("identity") != identity:
                raise InputError(
                    f"{self.path} holds a run with another method, benchmark or seed; "
                    "use another --out or pass --overwrite"
                )
        if overwrite:  # everything a run writes, so no stale record outlives it
            for name in ("judgements.jsonl", "decisions.jsonl", "results.json", "calls.jsonl"):
                (self.path / name).unlink(missing_ok=True)
            shutil.rmtree(self.path / "input_output", ignore_errors=True)
        write_json_atomic(run_file, {"identity": identity})

    def load_judgements(self) -> dict[tuple[int, str], Judgement]:
        done: dict[tuple[int, str], Judgement] = {}
        for record in read_jsonl(self.judgements_file):
            key = (int(record["item"]), str(record["key"]))
            judgement = Judgement.model_validate(record["judgement"])
            done[key] = _merge(done[key], judgement) if key in done else judgement
        return done

    def save_judgement(self, item: int, key: str, judgement: Judgement) -> None:
        append_jsonl(self.judgements_file, {"item": item, "key": key, "judgement": judgement.model_dump()})

    def write_outputs(
        self,
        probes: Sequence[Probe],
        targets: Sequence[AlignmentTarget],
        decisions: dict[str, list[Decision]],
        results: list[TargetResult],
        extra: dict[str, Any],
    ) -> None:
        lines = [d.model_dump_json() for t in targets for d in decisions[t.name]]
        write_text_atomic(self.path / "decisions.jsonl", "".join(line + "\n" for line in lines))
        payload = results_payload(results, extra)
        payload["target_values"] = {t.name: t.to_file_dict() for t in targets}
        write_json_atomic(self.path / "results.json", payload)
        for target in targets:
            write_json_atomic(
                self.path / "input_output" / f"{target.name}.json",
                [
                    {
                        "input": probes[d.item].model_dump(exclude_none=True),
                        "output": {
                            "selected_response_index": d.chosen,
                            "reasoning": d.reasoning,
                            "choice_info": {"predictions": d.predictions} if d.predictions is not None else {},
                        },
                    }
                    for d in decisions[target.name]
                ],
            )


def evaluate(
    benchmark: Benchmark,
    method: Method,
    targets: Sequence[AlignmentTarget],
    out_dir: str | Path,
    limit: int | None = None,
    seed: int = 0,
    metric: Metric | str = Metric.euclidean,
    registry: AttributeRegistry = DEFAULT_REGISTRY,
    overwrite: bool = False,
    on_progress: ProgressHook | None = None,
    workers: int = 1,
) -> EvalSummary:
    """Judge every item (once per attribute union, or once per target for target-dependent
    methods), persist each judgement as it finishes, then select and score per target."""
    if not targets:
        raise InputError("no targets given")
    started = time.perf_counter()
    probes = benchmark.eval[:limit] if limit is not None else list(benchmark.eval)
    if not probes:
        raise InputError("the benchmark has no eval items")
    names = union_attributes(targets)
    attributes: list[Attribute] = registry.require(names)
    check_labels(probes, names)
    run = RunDir(out_dir)
    identity = {"method": method.config(), "benchmark": str(benchmark.path.resolve()), "seed": seed}
    run.prepare(identity, overwrite)
    done = run.load_judgements()
    keys = [t.name for t in targets] if method.target_dependent else [ALL_TARGETS]
    by_name = {t.name: t for t in targets}
    totals = CallStats()
    counters = {"judged": 0, "resumed": 0}
    judge_seconds = 0.0
    judgements: dict[tuple[int, str], Judgement] = {}
    lock = threading.Lock()

    def work(index: int) -> None:
        nonlocal judge_seconds
        probe = probes[index]
        for key in keys:
            target = by_name.get(key)
            needed = [a for a in attributes if (target is None or a.name in target.values)]
            previous = done.get((index, key))
            missing = needed
            if previous is not None:
                if previous.choice is not None:
                    missing = []
                elif previous.predictions is not None:
                    have = previous.predictions[0].keys()
                    missing = [a for a in needed if a.name not in have]
            if previous is not None and not missing:
                with lock:
                    judgements[(index, key)] = previous
                    counters["resumed"] += 1
                continue
            t0 = time.perf_counter()
            fresh = method.judge(probe, missing, target, seed=item_seed(seed, index))
            with lock:
                judge_seconds += time.perf_counter() - t0
                run.save_judgement(index, key, fresh)
                judgements[(index, key)] = _merge(previous, fresh) if previous is not None else fresh
                totals.add(fresh.stats)
                counters["judged"] += 1

    handler = logging.FileHandler(run.path / "calls.jsonl", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    call_log = logging.getLogger("pluralign.calls")
    call_log.addHandler(handler)
    previous_level = call_log.level
    call_log.setLevel(logging.INFO)
    try:
        finished = 0
        if workers <= 1:
            for index in range(len(probes)):
                work(index)
                finished += 1
                if on_progress is not None:
                    on_progress(finished, len(probes))
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(work, i) for i in range(len(probes))]
                try:
                    for future in as_completed(futures):
                        future.result()
                        finished += 1
                        if on_progress is not None:
                            on_progress(finished, len(probes))
                except BaseException:
                    for f in futures:
                        f.cancel()
                    raise
    finally:
        call_log.removeHandler(handler)
        call_log.setLevel(previous_level)
        handler.close()
    judged_now, resumed = counters["judged"], counters["resumed"]

    decisions: dict[str, list[Decision]] = {t.name: [] for t in targets}
    for target in targets:
        key = target.name if method.target_dependent else ALL_TARGETS
        for index, probe in enumerate(probes):
            judgement = judgements[(index, key)]
            choice = method.choose(judgement, target, metric)
            assert probe.labels is not None
            decisions[target.name].append(
                judge_item(
                    index,
                    probe.labels,
                    target,
                    choice.index,
                    metric,
                    predictions=judgement.predictions,
                    tied=choice.tied,
                    reasoning=choice.reasoning,
                )
            )
    results = [summarize(decisions[t.name], t, metric) for t in targets]
    all_stats = CallStats()
    for judgement in judgements.values():
        all_stats.add(judgement.stats)
    saved = 0
    if not method.target_dependent and names and all_stats.requests:
        # one run per target would send each target's attributes' requests again
        per_attribute = all_stats.requests / len(names)
        saved = round(per_attribute * sum(len(t.values) for t in targets)) - all_stats.requests
    seconds = time.perf_counter() - started
    extra = {
        "method": method.config(),
        "benchmark": str(benchmark.path),
        "n_items": len(probes),
        "seed": seed,
        "metric": str(metric),
        "llm_requests": all_stats.requests,
        "llm_calls": all_stats.calls,
        "llm_calls_cached": all_stats.cached,
        "llm_calls_saved_by_sharing": saved,
        "prompt_tokens": all_stats.prompt_tokens,
        "completion_tokens": all_stats.completion_tokens,
        "llm_seconds": round(all_stats.llm_seconds, 3),  # resumed items included, unlike wall_seconds
        "wall_seconds": round(seconds, 3),
    }
    run.write_outputs(probes, targets, decisions, results, extra)
    return EvalSummary(
        out_dir=run.path,
        results=results,
        n_items=len(probes),
        n_judged_now=judged_now,
        n_resumed=resumed,
        stats=totals,
        calls_saved_by_sharing=saved,
        seconds=seconds,
        judge_seconds=judge_seconds,
        extra=extra,
    )


def rescore(run_dir: str | Path, metric: Metric | str | None = None) -> list[TargetResult]:
    """Recompute metrics from a run's saved decisions (no model, no benchmark needed)."""
    path = Path(run_dir)
    results_file = path / "results.json"
    decisions_file = path / "decisions.jsonl"
    if not decisions_file.exists() or not results_file.exists():
        raise InputError(f"{path} has no decisions.jsonl and results.json; is it a finished run?")
    saved = read_json(results_file, "results file")
    metric = metric or saved.get("metric", "euclidean")
    from pluralign.targets import target_from_data

    targets = {name: target_from_data(v, name) for name, v in saved.get("target_values", {}).items()}
    grouped: dict[str, list[Decision]] = {name: [] for name in targets}
    for record in read_jsonl(decisions_file):
        decision = Decision.model_validate(record)
        target = targets.get(decision.target)
        if target is not None:
            # Recompute correctness from the stored labels rather than trusting the file.
            fresh = judge_item(
                decision.item,
                decision.labels,
                target,
                decision.chosen,
                metric,
                predictions=decision.predictions,
                tied=decision.tied,
            )
            grouped[decision.target].append(fresh)
    return [summarize(grouped[name], t, metric) for name, t in targets.items()]


def _read_input_output(path: Path) -> list[Any]:
    records = read_json(path, "input_output file")
    if not isinstance(records, list) or not records:
        raise InputError(f"{path}: expected a non-empty list of {{input, output}} records")
    return records


def input_output_attributes(path: str | Path) -> list[str]:
    """Attribute names labelled in an input_output.json (for the high/low targets)."""
    try:
        return list(_read_input_output(Path(path))[0]["input"]["labels"][0])
    except (KeyError, TypeError, IndexError):
        raise InputError(f"{path}: first record has no input.labels") from None


def score_input_output(
    path: str | Path, target: AlignmentTarget, metric: Metric | str = Metric.euclidean
) -> TargetResult:
    """Score the reference implementation's ``input_output.json`` against a target."""
    path = Path(path)
    records = _read_input_output(path)
    from pluralign.selection import select

    decisions = []
    for i, record in enumerate(records):
        try:
            probe = Probe.model_validate(record["input"])
            output = record["output"]
            preds = output.get("choice_info", {}).get("predictions")
        except (KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"{path}: record {i} lacks {exc}") from None
        except ValueError as exc:
            raise InputError(f"{path}: record {i}: {' '.join(str(exc).split())}") from None
        if probe.labels is None:
            raise InputError(f"{path}: record {i} has no labels")
        chosen = select(preds, target, metric).index if preds else int(output["selected_response_index"])
        decisions.append(judge_item(i, probe.labels, target, chosen, metric, predictions=preds))
    return summarize(decisions, target, metric)
