"""Grading: a decision per item and target from the assessments (or from a run's saved
decisions), one road for a person and a group."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pluralign.choice.selection import Metric, Selection, TieRule
from pluralign.choice.target_data import target_from_data
from pluralign.choice.targets import Target
from pluralign.evaluation.metrics import Decision, TargetResult, grade_item, summarize
from pluralign.evaluation.plan import EvalPlan
from pluralign.evaluation.runs import RunDir, RunResults
from pluralign.prediction.methods.base import Assessment, Method, choose_from


def select_and_score(
    plan: EvalPlan,
    method: Method,
    assessments: dict[tuple[int, str], Assessment],
    failures: dict[tuple[int, str], str],
    metric: Metric | str = Metric.auto,
    ties: TieRule | str = TieRule.exact,
    selection: Selection | str = Selection.closest,
) -> tuple[dict[str, list[Decision]], list[TargetResult]]:
    """A decision per item and target (person or group) from the assessments; failed items are
    recorded as such."""
    decisions: dict[str, list[Decision]] = {t.name: [] for t in plan.targets}
    for target in plan.targets:
        key = plan.key_of(target)
        for index, probe in enumerate(plan.probes):
            assert probe.labels is not None
            assessment = assessments.get((index, key))
            if assessment is None:
                error = failures.get((index, key), "not judged")
                decisions[target.name].append(
                    grade_item(index, probe.labels, target, None, metric, ties=ties, failed=error)
                )
                continue
            choice = method.choose(assessment, target, metric, ties, selection)
            decisions[target.name].append(
                grade_item(
                    index,
                    probe.labels,
                    target,
                    choice.index,
                    metric,
                    predictions=assessment.predictions,
                    tied=choice.tied,
                    reasoning=choice.reasoning,
                    ties=ties,
                    shares=choice.shares if assessment.predictions is not None else None,
                )
            )
    results = [summarize(decisions[t.name], t, metric) for t in plan.targets]
    return decisions, results


Adjust = Callable[[int, Assessment], Assessment]
"""What is done to an item's assessment before it is chosen from again (a calibration)."""


def rescore(
    run_dir: str | Path,
    metric: Metric | str | None = None,
    ties: TieRule | str | None = None,
    selection: Selection | str | None = None,
    adjust: Adjust | None = None,
) -> list[TargetResult]:
    """Recompute a run's figures from its saved decisions and labels (no model, no benchmark),
    for its people and its groups alike; with ``selection`` or ``adjust``, each choice made
    again from the run's (adjusted) assessments."""
    grouped, targets, metric = regrade(run_dir, metric, ties, selection, adjust)
    return [summarize(grouped[name], t, metric) for name, t in targets.items()]


def regrade(
    run_dir: str | Path,
    metric: Metric | str | None = None,
    ties: TieRule | str | None = None,
    selection: Selection | str | None = None,
    adjust: Adjust | None = None,
) -> tuple[dict[str, list[Decision]], dict[str, Target], Metric | str]:
    """A run's decisions graded again (correctness from the stored labels, never from the file),
    chosen again from its assessments when ``selection`` is given, each first passed through
    ``adjust`` when that is given."""
    if adjust is not None and selection is None:
        selection = Selection.closest
    run = RunDir(run_dir)
    saved: RunResults = run.results()
    metric = metric or saved.metric
    ties = ties or saved.ties
    assessments = run.assessments()[0] if selection is not None else {}
    targets = {name: target_from_data(value, name) for name, value in saved.target_values.items()}
    grouped: dict[str, list[Decision]] = {name: [] for name in targets}
    for decision in run.decisions():
        target = targets.get(decision.target)
        if target is None:
            continue
        chosen, tied, shares, predictions = decision.chosen, decision.tied, decision.shares, decision.predictions
        assessment = assessments.get((decision.item, "*")) or assessments.get((decision.item, decision.target))
        if selection is not None and assessment is not None and decision.failed is None:
            if adjust is not None:
                assessment = adjust(decision.item, assessment)
                predictions = assessment.predictions
            choice = choose_from(assessment, target, metric, ties, selection)
            chosen, tied = choice.index, choice.tied
            shares = choice.shares if decision.shares is not None else None
        grouped[decision.target].append(
            grade_item(
                decision.item,
                decision.labels,
                target,
                chosen,
                metric,
                predictions=predictions,
                tied=tied,
                ties=ties,
                failed=decision.failed,
                shares=shares,
            )
        )
    return grouped, targets, metric
