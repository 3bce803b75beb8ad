"""Length control for any run: does the method know more than how long the responses are?

On HelpSteer2 the longer response tends to carry the higher label, so a method that reads
length alone scores well above chance. Three instruments tell length from signal:

* **pairwise ordering** per attribute: on response pairs whose labels differ, the share the
  method's predictions order as the labels do (a tie in the predictions counts half), beside
  the share "the longer response is higher" gets on the same pairs;
* **length-matched accuracy**: the run's accuracy in bins of the item's length spread,
  |log(longest / shortest)| in characters, beside the length baseline's (``length``, fit on the
  benchmark's train set) on the same decisions;
* **length-adjusted signal** per attribute: a logistic model of "response i's label is above
  response j's" on the log-length difference, and on it plus the method's predicted difference;
  the likelihood-ratio test of the added term (chi-squared, 1 degree of freedom) says whether
  the predictions explain anything length does not. Its assumption: given the lengths, the label
  order depends on the predictions through one logistic term (as AlpacaEval's length-controlled
  win rate assumes of its length term); pairs are treated as independent, which pairs from one
  item are not, so read the p-value as a screen, not a proof.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import combinations, pairwise
from pathlib import Path

from pydantic import BaseModel

from pluralign.choice.attributes import Attribute
from pluralign.choice.probes import Probe
from pluralign.choice.selection import select
from pluralign.choice.targets import AlignmentTarget
from pluralign.evaluation.data.benchmark import Benchmark
from pluralign.evaluation.metrics import Decision
from pluralign.evaluation.runs import RunDir
from pluralign.prediction.methods.length import LengthMethod, log_length
from pluralign.support.errors import InputError
from pluralign.support.markdown import escape_cell

SPREAD_BINS = (0.0, 0.2, 0.46, 1.0, math.inf)
"""Edges of the |log length ratio| bins (HelpSteer2's eval items: median 0.42; 0.46 is where the
evidence study found spm and embedding at chance below)."""


class PairwiseOrdering(BaseModel):
    attribute: str
    pairs: int
    method: float | None
    longer_is_higher: float | None


class SpreadBin(BaseModel):
    low: float
    high: float
    decisions: int
    method: float | None
    length: float | None


class AdjustedSignal(BaseModel):
    attribute: str
    pairs: int
    coefficient: float | None
    p_value: float | None


class LengthControl(BaseModel):
    ordering: list[PairwiseOrdering]
    spread: list[SpreadBin]
    signal: list[AdjustedSignal]

    @property
    def overall(self) -> SpreadBin:
        """The run and the length baseline over every scored decision (all bins together)."""
        n = sum(b.decisions for b in self.spread)

        def mean(values: list[tuple[float | None, int]]) -> float | None:
            return sum(v * k for v, k in values if v is not None) / n if n else None

        return SpreadBin(
            low=0.0,
            high=math.inf,
            decisions=n,
            method=mean([(b.method, b.decisions) for b in self.spread]),
            length=mean([(b.length, b.decisions) for b in self.spread]),
        )


def _share(hits: Sequence[float]) -> float | None:
    return 100.0 * sum(hits) / len(hits) if hits else None


def _agree(a: float, b: float) -> float:
    """1 when ``a`` has the sign of ``b``, 0 against it, a half when ``a`` is a tie."""
    return 0.5 if a == 0 else float((a > 0) == (b > 0))


def _pairs(
    decisions: Sequence[Decision], probes: Sequence[Probe], attribute: str
) -> list[tuple[float, float | None, float]]:
    """(log-length difference, predicted difference or None, label difference) for each pair of
    one item's responses whose labels for ``attribute`` differ; each item once."""
    seen: set[int] = set()
    out = []
    for d in decisions:
        if d.item in seen or d.labels is None or d.item >= len(probes):
            continue
        seen.add(d.item)
        responses = probes[d.item].responses
        for i, j in combinations(range(len(responses)), 2):
            li, lj = d.labels[i].get(attribute), d.labels[j].get(attribute)
            if li is None or lj is None or li == lj:
                continue
            pred = None
            if d.predictions is not None and attribute in d.predictions[i] and attribute in d.predictions[j]:
                pred = d.predictions[i][attribute] - d.predictions[j][attribute]
            out.append((log_length(responses[i]) - log_length(responses[j]), pred, li - lj))
    return out


def logistic_fit(x: Sequence[Sequence[float]], y: Sequence[float]) -> tuple[list[float], float]:
    """Coefficients and maximised log-likelihood of a logistic regression (Newton steps, a tiny
    ridge so a separable sample stays finite)."""
    import numpy as np

    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    w = np.zeros(xs.shape[1])
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(xs @ w)))
        hess = xs.T @ (xs * (p * (1 - p))[:, None]) + 1e-6 * np.eye(xs.shape[1])
        step = np.linalg.solve(hess, xs.T @ (ys - p) - 1e-6 * w)
        w += step
        if float(np.abs(step).max()) < 1e-10:
            break
    z = xs @ w
    return [float(v) for v in w], float(np.sum(ys * z - np.logaddexp(0.0, z)))


def adjusted_signal(pairs: Sequence[tuple[float, float | None, float]], attribute: str) -> AdjustedSignal:
    """The likelihood-ratio test of the predicted difference beyond the length difference."""
    usable = [(dl, dp, dy) for dl, dp, dy in pairs if dp is not None]
    if len(usable) < 10:
        return AdjustedSignal(attribute=attribute, pairs=len(usable), coefficient=None, p_value=None)
    y = [1.0 if dy > 0 else 0.0 for _, _, dy in usable]
    _, base = logistic_fit([[1.0, dl] for dl, _, _ in usable], y)
    coefficients, full = logistic_fit([[1.0, dl, float(dp or 0.0)] for dl, dp, _ in usable], y)
    statistic = max(0.0, 2.0 * (full - base))
    p = math.erfc(math.sqrt(statistic / 2.0))  # the chi-squared survival function, 1 degree of freedom
    return AdjustedSignal(attribute=attribute, pairs=len(usable), coefficient=coefficients[-1], p_value=p)


def _spread(responses: Sequence[str]) -> float:
    lengths = [log_length(r) for r in responses]
    return max(lengths) - min(lengths)


def spread_bins(
    decisions: Sequence[Decision],
    probes: Sequence[Probe],
    length: LengthMethod,
    targets: Mapping[str, Mapping[str, float]],
) -> list[SpreadBin]:
    """The run's accuracy and the length baseline's on the same scored decisions, by spread."""
    wanted = {name: AlignmentTarget(values=dict(values)) for name, values in targets.items()}
    attributes = [Attribute(name=a, description=a) for a in dict.fromkeys(a for v in targets.values() for a in v)]
    baseline: dict[int, list[dict[str, float]]] = {}  # an item's length predictions, for every target
    rows: list[tuple[float, float, float]] = []
    for d in decisions:
        if d.skipped or d.chosen is None or d.item >= len(probes) or d.target not in wanted:
            continue
        probe = probes[d.item]
        if d.item not in baseline:
            baseline[d.item] = length.assess(probe, attributes).predictions or []
        pick = select(baseline[d.item], wanted[d.target]).index
        rows.append((_spread(probe.responses), float(d.chosen in d.correct), float(pick in d.correct)))
    out = []
    for low, high in pairwise(SPREAD_BINS):
        inside = [r for r in rows if low <= r[0] < high]
        out.append(
            SpreadBin(
                low=low,
                high=high,
                decisions=len(inside),
                method=_share([r[1] for r in inside]),
                length=_share([r[2] for r in inside]),
            )
        )
    return out


def length_control(
    decisions: Sequence[Decision],
    probes: Sequence[Probe],
    train: Sequence[Probe],
    attributes: Sequence[str],
    targets: Mapping[str, Mapping[str, float]],
) -> LengthControl:
    """Every instrument for one run's decisions on ``probes`` (the benchmark's eval items)."""
    ordering, signal = [], []
    for attribute in attributes:
        pairs = _pairs(decisions, probes, attribute)
        with_preds = [(dl, dp, dy) for dl, dp, dy in pairs if dp is not None]
        ordering.append(
            PairwiseOrdering(
                attribute=attribute,
                pairs=len(pairs),
                method=_share([_agree(float(dp or 0.0), dy) for _, dp, dy in with_preds]) if with_preds else None,
                longer_is_higher=_share([_agree(dl, dy) for dl, _, dy in pairs]),
            )
        )
        signal.append(adjusted_signal(pairs, attribute))
    spread = spread_bins(decisions, probes, LengthMethod(train), targets)
    return LengthControl(ordering=ordering, spread=spread, signal=signal)


def for_run(run: str | Path, benchmark: Benchmark, items: Sequence[Probe] | None = None) -> LengthControl:
    """Length control of a run folder on the benchmark it was run on (``items``: the eval items in
    the run's order, when it ran on a subset). Refused in one line when the run's fingerprint or
    labels show other items."""
    run_dir = RunDir(Path(run))
    fingerprint = run_dir.identity().get("benchmark")
    if fingerprint is not None and fingerprint != benchmark.fingerprint:
        raise InputError(f"{run} was run on another benchmark than {benchmark.path} (its items differ)")
    if benchmark.train is None:
        raise InputError(f"length control needs {benchmark.path}/train.json to fit the length baseline")
    probes = list(items) if items is not None else benchmark.eval
    decisions = [d for d in run_dir.decisions() if d.failed is None]
    for d in decisions:
        if d.item >= len(probes) or (probes[d.item].labels or []) != d.labels:
            raise InputError(
                f"{run}: item {d.item} is not {benchmark.path}'s item {d.item} (a run on a subset: "
                "pass its items in the run's order through the library, as bench/evidence.py does)"
            )
    results = run_dir.results()
    targets = {t.name: dict(t.target) for t in results.targets if not t.is_group and t.target}
    attributes = list(decisions[0].labels[0]) if decisions else []
    return length_control(decisions, probes, benchmark.train, attributes, targets)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def markdown(control: LengthControl, title: str = "Length control") -> list[str]:
    """The three instruments as Markdown tables (the report's section; the CLI prints the same);
    the title and the attribute names are data, printed as literal text."""
    overall = control.overall
    lines = [
        f"### {escape_cell(title)}",
        "",
        f"Accuracy pooled over the {overall.decisions} scored decisions: {_pct(overall.method)}%; the length baseline "
        f"(each attribute a line in log length, fit on the train set) on the same: {_pct(overall.length)}%.",
        "",
        "Pairwise ordering on pairs whose labels differ (%):",
        "",
    ]
    lines += ["| attribute | pairs | method | longer is higher |", "|---|---|---|---|"]
    lines += [
        f"| {escape_cell(o.attribute)} | {o.pairs} | {_pct(o.method)} | {_pct(o.longer_is_higher)} |"
        for o in control.ordering
    ]
    lines += ["", "Accuracy by length spread, |log(longest / shortest)| (%):", ""]
    lines += ["| spread | decisions | method | length baseline |", "|---|---|---|---|"]
    for b in control.spread:
        span = f"{b.low:g} to {b.high:g}" if math.isfinite(b.high) else f"{b.low:g} and over"
        lines.append(f"| {span} | {b.decisions} | {_pct(b.method)} | {_pct(b.length)} |")
    lines += ["", "Signal beyond length (logistic, likelihood-ratio test of the predicted difference):", ""]
    lines += ["| attribute | pairs | coefficient | p |", "|---|---|---|---|"]
    for s in control.signal:
        coefficient = "-" if s.coefficient is None else f"{s.coefficient:+.2f}"
        p = "-" if s.p_value is None else f"{s.p_value:.3g}"
        lines.append(f"| {escape_cell(s.attribute)} | {s.pairs} | {coefficient} | {p} |")
    return [*lines, ""]
