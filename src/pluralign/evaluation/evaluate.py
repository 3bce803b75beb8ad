"""Run a method over a benchmark and many targets: judge each item once, select per target.

Two steps that read top to bottom:

1. :func:`judge_items` judges every item (once for the union of the targets' attributes, or
   once per target for target-dependent methods), appending each assessment to the run folder as
   it finishes, so a crash loses at most the items in flight and a rerun resumes.
2. :func:`pluralign.evaluation.grading.select_and_score` selects a response per item and target
   (a person or a group: one road) from those assessments and grades the choices against the
   labels (:mod:`pluralign.evaluation.metrics`).

:func:`evaluate` wires them to a run folder (:mod:`pluralign.evaluation.runs`).
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from pluralign.choice.attributes import DEFAULT_REGISTRY, AttributeRegistry
from pluralign.choice.selection import Metric, Selection, TieRule
from pluralign.choice.targets import Target
from pluralign.evaluation.data.benchmark import Benchmark
from pluralign.evaluation.grading import select_and_score
from pluralign.evaluation.metrics import TargetResult
from pluralign.evaluation.plan import EvalPlan, item_seed, make_plan
from pluralign.evaluation.runs import RunDir
from pluralign.prediction.calibration import Calibration
from pluralign.prediction.judges.cache import defer_claimed
from pluralign.prediction.judges.calllog import record_calls
from pluralign.prediction.methods.base import Assessment, CallStats, Method
from pluralign.support.errors import (
    BatchPending,
    ClaimedElsewhere,
    ContextLengthError,
    InputError,
    InvalidOutputError,
    one_line,
)
from pluralign.support.strict import check_seed

ProgressHook = Callable[[int, int], None]
ITEM_ERRORS = (InvalidOutputError, ContextLengthError)
"""Errors that concern one item (the judge never answered it validly, or it is too long);
``--on-invalid skip`` records them and carries on. Anything else (a dead server) stops."""


class OnInvalid(StrEnum):
    stop = "stop"
    skip = "skip"


@dataclass
class JudgingOutcome:
    assessments: dict[tuple[int, str], Assessment] = field(default_factory=dict)
    failures: dict[tuple[int, str], str] = field(default_factory=dict)
    pending: int = 0
    fresh: CallStats = field(default_factory=CallStats)
    judged_now: int = 0
    resumed: int = 0
    judge_seconds: float = 0.0


def judge_items(
    plan: EvalPlan,
    method: Method,
    run: RunDir,
    seed: int = 0,
    on_invalid: OnInvalid = OnInvalid.skip,
    workers: int = 1,
    on_progress: ProgressHook | None = None,
) -> JudgingOutcome:
    """Judge what the run folder does not hold yet; record each result as it finishes. Items
    whose requests another worker sharing the judgement cache is judging are left for a second
    pass, by when their answers are mostly in the cache."""
    done, _ = run.assessments()
    out = JudgingOutcome()
    lock = threading.Lock()
    deferred: list[int] = []

    def work(index: int) -> None:
        probe = plan.probes[index]
        for key in plan.keys:
            with lock:
                if (index, key) in out.assessments:  # judged in the first pass
                    continue
            previous = done.get((index, key))
            missing = previous.missing(plan.needed(key)) if previous is not None else plan.needed(key)
            if previous is not None and not missing:
                with lock:
                    out.assessments[(index, key)] = previous
                    out.resumed += 1
                continue
            started = time.perf_counter()
            try:
                fresh = method.assess(probe, missing, plan.target_for(key), seed=item_seed(seed, index))
            except BatchPending:
                with lock:
                    out.pending += 1
                continue
            except ClaimedElsewhere:
                with lock:
                    deferred.append(index)
                return
            except ITEM_ERRORS as exc:
                if on_invalid == OnInvalid.stop:
                    raise
                with lock:
                    run.save_failure(index, key, one_line(exc))
                    out.failures[(index, key)] = one_line(exc)
                continue
            with lock:
                out.judge_seconds += time.perf_counter() - started
                run.save_assessment(index, key, fresh)
                out.assessments[(index, key)] = previous.merged(fresh) if previous is not None else fresh
                out.fresh.add(fresh.stats)
                out.judged_now += 1

    with defer_claimed():
        _each_item(work, range(len(plan.probes)), workers, on_progress)
    if deferred:
        _each_item(work, sorted(deferred), workers, on_progress)
    return out


def _each_item(
    work: Callable[[int], None], indices: Sequence[int], workers: int, on_progress: ProgressHook | None
) -> None:
    """``work`` on these item indices, in order or on ``workers`` threads, reporting progress."""
    total = len(indices)
    if workers <= 1:
        for finished, index in enumerate(indices, start=1):
            work(index)
            if on_progress is not None:
                on_progress(finished, total)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # each task runs in a copy of this context, so the call log and deadlines reach it
        futures = [pool.submit(contextvars.copy_context().run, work, i) for i in indices]
        try:
            for finished, future in enumerate(as_completed(futures), start=1):
                future.result()
                if on_progress is not None:
                    on_progress(finished, total)
        except BaseException:
            for f in futures:
                f.cancel()
            raise


@dataclass
class EvalSummary:
    out_dir: Path
    results: list[TargetResult]
    n_items: int
    n_judged_now: int
    n_resumed: int
    n_failed: int
    n_pending: int
    stats: CallStats
    calls_saved_by_sharing: int
    seconds: float
    judge_seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


def _costs(plan: EvalPlan, outcome: JudgingOutcome) -> tuple[CallStats, int]:
    """Every assessment's cost (resumed included), and the requests saved by sharing scores."""
    totals = CallStats()
    for assessment in outcome.assessments.values():
        totals.add(assessment.stats)
    saved = 0
    if not plan.target_dependent and plan.attributes and totals.requests:
        # one run per target would send each target's attributes' requests again
        per_attribute = totals.requests / len(plan.attributes)
        saved = round(per_attribute * sum(len(t.attributes) for t in plan.targets)) - totals.requests
    return totals, saved


def _cost_fields(totals: CallStats, fresh: CallStats, saved: int, seconds: float) -> dict[str, Any]:
    """What a run cost, as results.json records it."""
    return {
        "llm_requests": totals.requests,
        "llm_calls": totals.calls,  # every invocation of this run, resumed items included
        "llm_calls_now": fresh.calls,
        "llm_calls_cached": totals.cached,
        "llm_calls_saved_by_sharing": saved,
        "prompt_tokens": totals.prompt_tokens,
        "completion_tokens": totals.completion_tokens,
        "llm_seconds": round(totals.llm_seconds, 3),  # resumed items included, unlike wall_seconds
        "wall_seconds": round(seconds, 3),
    }


def run_identities(method: Method, benchmark: Benchmark, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """What a resumed run must have been asked: the method, the benchmark by what it holds, the
    seed; and the same as v0.2 recorded it (the benchmark by its path), which resumes where
    that path still holds the benchmark."""
    identity = {"method": method.config(), "benchmark": benchmark.fingerprint, "seed": seed}
    return identity, {**identity, "benchmark": str(benchmark.path.resolve())}


def _refuse_early(method: Method, plan: EvalPlan, workers: int | None, calibration: Calibration | None) -> int:
    """What is refused before any judging: no worker, a calibration of another judge or one that
    misses an attribute. The items to judge at once (default: as many as keep the judge busy)."""
    workers = method.items_at_once() if workers is None else workers
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    if calibration is not None:
        calibration.check_judge(method.config())
        calibration.check_attributes([a.name for a in plan.attributes])
    return workers


def calibrated(
    calibration: Calibration | None, assessments: dict[tuple[int, str], Assessment]
) -> dict[tuple[int, str], Assessment]:
    """Each assessment through ``calibration`` (the run's files keep them as judged)."""
    return {k: calibration.apply(a) for k, a in assessments.items()} if calibration else assessments


def evaluate(
    benchmark: Benchmark,
    method: Method,
    targets: Sequence[Target],
    out_dir: str | Path,
    limit: int | None = None,
    seed: int = 0,
    metric: Metric | str = Metric.auto,
    registry: AttributeRegistry = DEFAULT_REGISTRY,
    overwrite: bool = False,
    on_progress: ProgressHook | None = None,
    workers: int | None = None,
    on_invalid: OnInvalid | str = OnInvalid.skip,
    ties: TieRule | str = TieRule.exact,
    selection: Selection | str = Selection.closest,
    calibration: Calibration | None = None,
) -> EvalSummary:
    """Judge, then select and grade; everything lands in ``out_dir`` (resumable). ``targets`` may
    hold groups (:class:`~pluralign.choice.targets.GroupTarget`), graded by the share matched."""
    started = time.perf_counter()
    plan = make_plan(benchmark, method, targets, limit, registry)
    workers = _refuse_early(method, plan, workers, calibration)
    run = RunDir(out_dir)
    run.check_writable(overwrite)
    identity, by_place = run_identities(method, benchmark, check_seed(seed))
    with run.lock():
        run.prepare(identity, overwrite, earlier=by_place)
        with record_calls(run.calls_path):
            outcome = judge_items(plan, method, run, seed, OnInvalid(on_invalid), workers, on_progress)
        summary = EvalSummary(
            out_dir=run.path,
            results=[],
            n_items=len(plan.probes),
            n_judged_now=outcome.judged_now,
            n_resumed=outcome.resumed,
            n_failed=len({i for i, _ in outcome.failures}),
            n_pending=outcome.pending,
            stats=outcome.fresh,
            calls_saved_by_sharing=0,
            seconds=0.0,
            judge_seconds=outcome.judge_seconds,
        )
        if outcome.pending:  # the batch backend: nothing to score until the answers are imported
            summary.seconds = time.perf_counter() - started
            return summary
        assessments = calibrated(calibration, outcome.assessments)
        decisions, results = select_and_score(plan, method, assessments, outcome.failures, metric, ties, selection)
        totals, saved = _costs(plan, outcome)
        seconds = time.perf_counter() - started
        asked = {"n_failed": summary.n_failed, "seed": seed, "metric": str(metric), "ties": str(ties)}
        asked |= {"selection": str(selection)} if str(selection) != Selection.closest else {}
        asked |= {"calibration": calibration.digest()} if calibration is not None else {}
        extra = {"method": method.config(), "benchmark": str(benchmark.path), "n_items": len(plan.probes), **asked}
        extra |= _cost_fields(totals, outcome.fresh, saved, seconds)
        run.write_outputs(plan.probes, plan.targets, decisions, results, extra)
    summary.results = results
    summary.calls_saved_by_sharing = saved
    summary.seconds = seconds
    summary.extra = extra
    return summary
