"""Run a method over a benchmark and many targets: judge each item once, select per target.

Two steps that read top to bottom:

1. :func:`judge_items` judges every item (once for the union of the targets' attributes,
   or once per target for target-dependent methods), appending each judgement to the run
   folder as it finishes, so a crash loses at most the items in flight and a rerun resumes.
2. :func:`select_and_score` selects a response per item and target from those judgements
   and scores the choices against the labels; :func:`select_and_score_groups` does the same
   for group targets (:mod:`pluralign.evaluation.group_metrics`: the share of the group matched).

:func:`evaluate` wires them to a run folder (:mod:`pluralign.evaluation.runs`).
"""

from __future__ import annotations

import contextvars
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from pluralign.choice.attributes import DEFAULT_REGISTRY, Attribute, AttributeRegistry
from pluralign.choice.groups import Goal, GroupTarget, select_group
from pluralign.choice.probes import Probe
from pluralign.choice.selection import Metric, TieRule
from pluralign.choice.targets import AlignmentTarget, union_attributes
from pluralign.evaluation.data.benchmark import Benchmark
from pluralign.evaluation.group_metrics import GroupDecision, GroupResult, grade_group_item, summarize_group
from pluralign.evaluation.metrics import Decision, TargetResult, grade_item, summarize
from pluralign.evaluation.runs import GroupOutputs, RunDir, RunResults
from pluralign.prediction.judges.calllog import record_calls
from pluralign.prediction.methods.base import CallStats, Judgement, Method
from pluralign.support.errors import BatchPending, ContextLengthError, InputError, InvalidOutputError, one_line
from pluralign.support.strict import check_seed

ALL_TARGETS = "*"
ProgressHook = Callable[[int, int], None]
ITEM_ERRORS = (InvalidOutputError, ContextLengthError)
"""Errors that concern one item (the judge never answered it validly, or it is too long);
``--on-invalid skip`` records them and carries on. Anything else (a dead server) stops."""


class OnInvalid(StrEnum):
    stop = "stop"
    skip = "skip"


def item_seed(seed: int, index: int) -> int:
    """A stable per-item seed, independent of which other items or targets are run."""
    return zlib.crc32(f"{seed}:{index}".encode())


@dataclass(frozen=True)
class EvalPlan:
    """The items, targets and attributes of a run, and the judgement keys per item."""

    probes: list[Probe]
    targets: list[AlignmentTarget]
    attributes: list[Attribute]
    target_dependent: bool
    groups: list[GroupTarget] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        return [t.name for t in self.targets] if self.target_dependent else [ALL_TARGETS]

    def needed(self, key: str) -> list[Attribute]:
        if key == ALL_TARGETS:
            return list(self.attributes)
        target = next(t for t in self.targets if t.name == key)
        return [a for a in self.attributes if a.name in target.values]

    def target_for(self, key: str) -> AlignmentTarget | None:
        return None if key == ALL_TARGETS else next(t for t in self.targets if t.name == key)


def make_plan(
    benchmark: Benchmark,
    method: Method,
    goals: Sequence[Goal],
    limit: int | None = None,
    registry: AttributeRegistry = DEFAULT_REGISTRY,
) -> EvalPlan:
    if not goals:
        raise InputError("no targets given")
    targets = [g for g in goals if isinstance(g, AlignmentTarget)]
    groups = [g for g in goals if isinstance(g, GroupTarget)]
    if groups and method.target_dependent:
        raise InputError(
            f"method {method.name} judges for one target at a time; a group target ({groups[0].name}) needs "
            "a method that judges once for everyone (spm, spm-zeroshot, regression, embedding, unaligned, random)"
        )
    if limit is not None and limit < 1:
        raise InputError(f"--limit must be at least 1, got {limit}")
    probes = benchmark.eval[:limit] if limit is not None else list(benchmark.eval)
    if not probes:
        raise InputError(f"the benchmark {benchmark.path} has no eval items")
    names = union_attributes([*targets, *(m.target for g in groups for m in g.members)])
    for i, probe in enumerate(probes):
        if probe.labels is None:
            raise InputError(f"eval item {i} has no labels; evaluation needs labelled items")
        for j, label in enumerate(probe.labels):
            missing = [a for a in names if a not in label]
            if missing:
                raise InputError(f"eval item {i}, response {j}: no label for {', '.join(missing)}")
    return EvalPlan(
        probes=probes,
        targets=targets,
        attributes=registry.require(names),
        target_dependent=method.target_dependent,
        groups=groups,
    )


@dataclass
class JudgingOutcome:
    judgements: dict[tuple[int, str], Judgement] = field(default_factory=dict)
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
    """Judge what the run folder does not hold yet; record each result as it finishes."""
    done, _ = run.judgements()
    out = JudgingOutcome()
    lock = threading.Lock()

    def work(index: int) -> None:
        probe = plan.probes[index]
        for key in plan.keys:
            previous = done.get((index, key))
            missing = previous.missing(plan.needed(key)) if previous is not None else plan.needed(key)
            if previous is not None and not missing:
                with lock:
                    out.judgements[(index, key)] = previous
                    out.resumed += 1
                continue
            started = time.perf_counter()
            try:
                fresh = method.judge(probe, missing, plan.target_for(key), seed=item_seed(seed, index))
            except BatchPending:
                with lock:
                    out.pending += 1
                continue
            except ITEM_ERRORS as exc:
                if on_invalid == OnInvalid.stop:
                    raise
                with lock:
                    run.save_failure(index, key, one_line(exc))
                    out.failures[(index, key)] = one_line(exc)
                continue
            with lock:
                out.judge_seconds += time.perf_counter() - started
                run.save_judgement(index, key, fresh)
                out.judgements[(index, key)] = previous.merged(fresh) if previous is not None else fresh
                out.fresh.add(fresh.stats)
                out.judged_now += 1

    total = len(plan.probes)
    if workers <= 1:
        for finished, index in enumerate(range(total), start=1):
            work(index)
            if on_progress is not None:
                on_progress(finished, total)
        return out
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # each task runs in a copy of this context, so the call log and deadlines reach it
        futures = [pool.submit(contextvars.copy_context().run, work, i) for i in range(total)]
        try:
            for finished, future in enumerate(as_completed(futures), start=1):
                future.result()
                if on_progress is not None:
                    on_progress(finished, total)
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    return out


def select_and_score(
    plan: EvalPlan,
    method: Method,
    outcome: JudgingOutcome,
    metric: Metric | str = Metric.auto,
    ties: TieRule | str = TieRule.exact,
) -> tuple[dict[str, list[Decision]], list[TargetResult]]:
    """A decision per item and target from the judgements; failed items are recorded as such."""
    decisions: dict[str, list[Decision]] = {t.name: [] for t in plan.targets}
    for target in plan.targets:
        key = target.name if plan.target_dependent else ALL_TARGETS
        for index, probe in enumerate(plan.probes):
            assert probe.labels is not None
            judgement = outcome.judgements.get((index, key))
            if judgement is None:
                error = outcome.failures.get((index, key), "not judged")
                decisions[target.name].append(
                    grade_item(index, probe.labels, target, None, metric, ties=ties, failed=error)
                )
                continue
            choice = method.choose(judgement, target, metric, ties)
            decisions[target.name].append(
                grade_item(
                    index,
                    probe.labels,
                    target,
                    choice.index,
                    metric,
                    predictions=judgement.predictions,
                    tied=choice.tied,
                    reasoning=choice.reasoning,
                    ties=ties,
                )
            )
    results = [summarize(decisions[t.name], t, metric) for t in plan.targets]
    return decisions, results


def select_and_score_groups(
    plan: EvalPlan,
    outcome: JudgingOutcome,
    metric: Metric | str = Metric.auto,
    ties: TieRule | str = TieRule.exact,
) -> tuple[dict[str, list[GroupDecision]], list[GroupResult]]:
    """Per item and group, the group's pick (the largest predicted share, or a choice-style
    method's one choice) and the share of the group whose own choice, by labels, it matches."""
    decisions: dict[str, list[GroupDecision]] = {g.name: [] for g in plan.groups}
    for group in plan.groups:
        for index, probe in enumerate(plan.probes):
            assert probe.labels is not None
            judgement = outcome.judgements.get((index, ALL_TARGETS))
            chosen, shares, tied, failed = None, None, [], None
            if judgement is None:
                failed = outcome.failures.get((index, ALL_TARGETS), "not judged")
            elif judgement.predictions is not None:
                pick = select_group(judgement.predictions, group, metric, ties)
                chosen, shares, tied = pick.index, pick.shares, pick.tied
            elif judgement.choice is not None:
                chosen = judgement.choice
            else:
                failed = "the method gave neither predictions nor a choice"
            decisions[group.name].append(
                grade_group_item(
                    index,
                    probe.labels,
                    group,
                    chosen,
                    metric,
                    predictions=judgement.predictions if judgement is not None else None,
                    shares=shares,
                    tied=tied,
                    failed=failed,
                )
            )
    return decisions, [summarize_group(decisions[g.name], g) for g in plan.groups]


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
    group_results: list[GroupResult] = field(default_factory=list)


def _costs(plan: EvalPlan, outcome: JudgingOutcome) -> tuple[CallStats, int]:
    """Every judgement's cost (resumed included), and the requests saved by sharing scores."""
    totals = CallStats()
    for judgement in outcome.judgements.values():
        totals.add(judgement.stats)
    saved = 0
    if not plan.target_dependent and plan.attributes and totals.requests:
        # one run per target would send each target's attributes' requests again
        per_attribute = totals.requests / len(plan.attributes)
        per_goal = [len(t.values) for t in plan.targets] + [len(g.attributes) for g in plan.groups]
        saved = round(per_attribute * sum(per_goal)) - totals.requests
    return totals, saved


def run_identities(method: Method, benchmark: Benchmark, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """What a resumed run must have been asked: the method, the benchmark by what it holds, the
    seed; and the same as v0.2 recorded it (the benchmark by its path), which resumes where
    that path still holds the benchmark."""
    identity = {"method": method.config(), "benchmark": benchmark.fingerprint, "seed": seed}
    return identity, {**identity, "benchmark": str(benchmark.path.resolve())}


def evaluate(
    benchmark: Benchmark,
    method: Method,
    targets: Sequence[Goal],
    out_dir: str | Path,
    limit: int | None = None,
    seed: int = 0,
    metric: Metric | str = Metric.auto,
    registry: AttributeRegistry = DEFAULT_REGISTRY,
    overwrite: bool = False,
    on_progress: ProgressHook | None = None,
    workers: int = 1,
    on_invalid: OnInvalid | str = OnInvalid.skip,
    ties: TieRule | str = TieRule.exact,
) -> EvalSummary:
    """Judge, then select and score; everything lands in ``out_dir`` (resumable). ``targets``
    may hold groups (:class:`~pluralign.choice.groups.GroupTarget`), scored by the share matched."""
    started = time.perf_counter()
    plan = make_plan(benchmark, method, targets, limit, registry)
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
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
        decisions, results = select_and_score(plan, method, outcome, metric, ties)
        group_decisions, group_results = select_and_score_groups(plan, outcome, metric, ties)
        totals, saved = _costs(plan, outcome)
        seconds = time.perf_counter() - started
        extra = {
            "method": method.config(),
            "benchmark": str(benchmark.path),
            "n_items": len(plan.probes),
            "n_failed": summary.n_failed,
            "seed": seed,
            "metric": str(metric),
            "ties": str(ties),
            "llm_requests": totals.requests,
            "llm_calls": totals.calls,  # every invocation of this run, resumed items included
            "llm_calls_now": outcome.fresh.calls,
            "llm_calls_cached": totals.cached,
            "llm_calls_saved_by_sharing": saved,
            "prompt_tokens": totals.prompt_tokens,
            "completion_tokens": totals.completion_tokens,
            "llm_seconds": round(totals.llm_seconds, 3),  # resumed items included, unlike wall_seconds
            "wall_seconds": round(seconds, 3),
        }
        run.write_outputs(
            plan.probes,
            plan.targets,
            decisions,
            results,
            extra,
            GroupOutputs(groups=plan.groups, decisions=group_decisions, results=group_results),
        )
    summary.results = results
    summary.group_results = group_results
    summary.calls_saved_by_sharing = saved
    summary.seconds = seconds
    summary.extra = extra
    return summary


def rescore(
    run_dir: str | Path, metric: Metric | str | None = None, ties: TieRule | str | None = None
) -> list[TargetResult]:
    """Recompute metrics from a run's saved decisions (no model, no benchmark needed)."""
    from pluralign.choice.targets import target_from_data

    run = RunDir(run_dir)
    saved: RunResults = run.results()
    metric = metric or saved.metric
    ties = ties or saved.ties
    targets = {}
    for name, value in saved.target_values.items():
        targets[name] = target_from_data(value, name)
    grouped: dict[str, list[Decision]] = {name: [] for name in targets}
    for decision in run.decisions():
        target = targets.get(decision.target)
        if target is None:
            continue
        # Recompute correctness from the stored labels rather than trusting the file.
        grouped[decision.target].append(
            grade_item(
                decision.item,
                decision.labels,
                target,
                decision.chosen,
                metric,
                predictions=decision.predictions,
                tied=decision.tied,
                ties=ties,
                failed=decision.failed,
            )
        )
    return [summarize(grouped[name], t, metric) for name, t in targets.items()]


def rescore_groups(run_dir: str | Path, metric: Metric | str | None = None) -> list[GroupResult]:
    """Recompute a run's group figures from its saved group decisions and labels."""
    from pluralign.choice.groups import goal_from_data

    run = RunDir(run_dir)
    saved: RunResults = run.results()
    metric = metric or saved.metric
    groups = {}
    for name, value in saved.group_values.items():
        goal = goal_from_data(value, name)
        if isinstance(goal, GroupTarget):
            groups[name] = goal
    grouped: dict[str, list[GroupDecision]] = {name: [] for name in groups}
    for decision in run.group_decisions():
        group = groups.get(decision.group)
        if group is None:
            continue
        grouped[decision.group].append(
            grade_group_item(
                decision.item,
                decision.labels,
                group,
                decision.chosen,
                metric,
                predictions=decision.predictions,
                shares=decision.shares,
                tied=decision.tied,
                failed=decision.failed,
            )
        )
    return [summarize_group(grouped[name], g) for name, g in groups.items()]
