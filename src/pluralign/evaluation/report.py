"""Markdown report and PNG plots for one or more evaluation runs."""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pluralign.evaluation.data.benchmark import Benchmark
from pluralign.evaluation.length_control import for_run, markdown
from pluralign.evaluation.runs import RunDir
from pluralign.support.errors import InputError
from pluralign.support.files import replaceable_in, write_bytes_atomic, write_text_atomic
from pluralign.support.markdown import escape_cell


def _load(run: Path) -> dict[str, Any]:
    """A run's results and decisions as plain dicts, read through the run folder's owner."""
    folder = RunDir(run)
    results = folder.results().model_dump()
    every = results["targets"]  # people and groups on one road; shown in their own sections
    results["targets"] = [t for t in every if t.get("members") is None]
    results["groups"] = [t for t in every if t.get("members") is not None]
    people = {t["name"] for t in results["targets"]}
    decisions = [d.model_dump() for d in folder.decisions() if d.failed is None and d.target in people]
    method = results.get("method", {})
    label = method.get("method", run.name) if isinstance(method, dict) else str(method)
    if isinstance(method, dict) and method.get("model"):
        label += f" ({method['model']})"
    return {"run": run, "label": f"{label} [{run.name}]", "results": results, "decisions": decisions}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


OUTPUTS = ("report.md", "accuracy.png", "accuracy_by_k.png", "calibration.png", "radar.png")
"""Every file a report may write into its folder."""


def _save(plt: Any, fig: Any, path: Path) -> None:
    """A figure as a PNG, written the way every output is (atomically, never into a pipe or a
    device planted under its name): matplotlib would open the path itself."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    write_bytes_atomic(path, buffer.getvalue())


def accuracy_by_attribute_count(run: dict[str, Any]) -> dict[int, float]:
    by_k: dict[int, list[float]] = defaultdict(list)
    for t in run["results"]["targets"]:
        if t["accuracy"] is not None:
            by_k[len(t["target"])].append(t["accuracy"])
    return {k: float(np.mean(v)) for k, v in sorted(by_k.items())}


def write_report(
    runs: Sequence[str | Path], out: str | Path, item: int = 0, benchmark: Benchmark | None = None
) -> Path:
    """Write ``report.md`` and PNGs into ``out``; return the Markdown path. With the runs'
    ``benchmark``, each run's length control too (its accuracy beside the length baseline's)."""
    if not runs:
        raise InputError("give at least one run directory")
    out = Path(out)
    replaceable_in(out, OUTPUTS)  # all of them before any run is read or file written
    loaded = [_load(Path(r)) for r in runs]
    controls = [(r["label"], for_run(r["run"], benchmark)) for r in loaded] if benchmark is not None else []
    out.mkdir(parents=True, exist_ok=True)
    plt = _plt()
    lines = ["# pluralign report", "", *_summary_table(loaded), "", *_group_section(loaded)]
    lines += _accuracy_section(plt, loaded, out)
    lines += _accuracy_by_count_section(plt, loaded, out)
    with_preds = [r for r in loaded if any(d.get("predictions") for d in r["decisions"])]
    if with_preds:
        lines += _prediction_error_section(plt, with_preds, out)
        lines += _radar_section(with_preds[0], item, out)
    if controls:
        lines += ["## Length control", ""]
        lines += [line for label, control in controls for line in markdown(control, label)]
    path = out / "report.md"
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path


def _summary_table(loaded: Sequence[dict[str, Any]]) -> list[str]:
    lines = [
        "| run | items | targets | mean accuracy % | LLM calls | cached | prompt tok | completion tok | wall s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in loaded:
        res = r["results"]
        mean = res.get("mean_accuracy")
        shown = "-" if mean is None else f"{mean:.2f}"
        lines.append(
            f"| {escape_cell(r['label'])} | {res.get('n_items') or '-'} | {len(res['targets'])} | "
            f"{shown} | {res.get('llm_calls', 0)} | {res.get('llm_calls_cached', 0)} | "
            f"{res.get('prompt_tokens', 0)} | {res.get('completion_tokens', 0)} | {res.get('wall_seconds', 0):.0f} |"
        )
    return lines


def _group_section(loaded: Sequence[dict[str, Any]]) -> list[str]:
    """Group targets: the share of the group whose own choice the pick matches."""
    rows = [(r["label"], g) for r in loaded for g in r["results"].get("groups", [])]
    if not rows:
        return []
    lines = [
        "## Groups",
        "",
        "| run | group | members | matched share % | 95% CI | best possible % | items scored |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, g in rows:
        share, best, ci = g.get("accuracy"), g.get("best_share"), g.get("accuracy_ci95")
        cells = [
            escape_cell(label),
            escape_cell(g["name"]),
            str(g["members"]),
            "-" if share is None else f"{share:.2f}",
            "-" if not ci else f"{ci[0]:.1f}-{ci[1]:.1f}",
            "-" if best is None else f"{best:.2f}",
            str(g["n_scored"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def _accuracy_section(plt: Any, loaded: Sequence[dict[str, Any]], out: Path) -> list[str]:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    means = [r["results"].get("mean_accuracy") or 0 for r in loaded]
    ax.barh([r["label"] for r in loaded], means, color="#4c72b0")
    ax.axvline(50, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("mean alignment accuracy (%)")
    ax.set_xlim(0, 100)
    fig.tight_layout()
    _save(plt, fig, out / "accuracy.png")
    return ["", "## Accuracy", "", "![accuracy](accuracy.png)", ""]


def _accuracy_by_count_section(plt: Any, loaded: Sequence[dict[str, Any]], out: Path) -> list[str]:
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 3.5))
    lines = [
        "## Accuracy by number of target attributes",
        "",
        "| run | " + " | ".join(str(k) for k in range(1, 7)) + " |",
        "|---|" + "---|" * 6,
    ]
    for r in loaded:
        by_k = accuracy_by_attribute_count(r)
        ax.plot(list(by_k), list(by_k.values()), marker="o", label=r["label"])
        cells = " | ".join(f"{by_k[k]:.1f}" if k in by_k else "-" for k in range(1, 7))
        lines.append(f"| {escape_cell(r['label'])} | {cells} |")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # a number of attributes is whole
    ax.set_xlabel("attributes in target")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7)
    fig.tight_layout()
    _save(plt, fig, out / "accuracy_by_k.png")
    return [*lines, "", "![accuracy by k](accuracy_by_k.png)", ""]


def _label_pairs(run: dict[str, Any]) -> dict[str, list[tuple[float, float]]]:
    """(true, predicted) per attribute, each item once (its predictions are the same for every target)."""
    pairs: dict[str, list[tuple[float, float]]] = defaultdict(list)
    seen = set()
    for d in run["decisions"]:
        if not d.get("predictions") or d["item"] in seen:
            continue
        seen.add(d["item"])
        for pred, lab in zip(d["predictions"], d["labels"], strict=True):
            for a, v in pred.items():
                if a in lab:
                    pairs[a].append((lab[a], v))
    return pairs


def _prediction_error_section(plt: Any, with_preds: Sequence[dict[str, Any]], out: Path) -> list[str]:
    lines = ["## Prediction error", "", "| run | attribute | MSE | MAE | n |", "|---|---|---|---|---|"]
    fig, axes = plt.subplots(1, len(with_preds), figsize=(4 * len(with_preds), 4), squeeze=False)
    for ax, r in zip(axes[0], with_preds, strict=True):
        for a, pts in sorted(_label_pairs(r).items()):
            true, pred = np.array(pts).T
            lines.append(
                f"| {escape_cell(r['label'])} | {escape_cell(a)} | {np.mean((pred - true) ** 2):.4f} | "
                f"{np.mean(np.abs(pred - true)):.4f} | {len(pts)} |"
            )
            jitter = np.random.default_rng(0).uniform(-0.02, 0.02, len(true))
            ax.scatter(true + jitter, pred, s=8, alpha=0.5, label=a)
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
        ax.set_xlabel("true value")
        ax.set_ylabel("predicted value")
        ax.set_title(r["label"], fontsize=8)
        ax.legend(fontsize=6)
    fig.tight_layout()
    _save(plt, fig, out / "calibration.png")
    return [*lines, "", "![calibration](calibration.png)", ""]


def _radar_section(run: dict[str, Any], item: int, out: Path) -> list[str]:
    decision = next((d for d in run["decisions"] if d["item"] == item and d.get("predictions")), None)
    if decision is None:
        return []
    target = run["results"]["target_values"][decision["target"]]
    target_values = target.get("values", target) if isinstance(target, dict) else target
    radar(
        decision["predictions"],
        target_values,
        out / "radar.png",
        title=f"item {item}, target {decision['target']} (chosen: {decision['chosen']})",
    )
    return [f"## Item {item}: predicted profiles against target `{decision['target']}`", "", "![radar](radar.png)", ""]


def radar(predictions: Sequence[dict[str, float]], target: dict[str, float], path: Path, title: str = "") -> None:
    """Each response's predicted profile against the target, on a polar chart."""
    plt = _plt()
    attrs = list(target)
    if len(attrs) < 3:  # a polar chart needs 3 spokes; pad with the same axes
        attrs = attrs + attrs[: 3 - len(attrs)]
    angles = np.linspace(0, 2 * np.pi, len(attrs), endpoint=False).tolist()
    angles += angles[:1]
    fig, ax = plt.subplots(figsize=(4.5, 4.5), subplot_kw={"projection": "polar"})
    values = [target[a] for a in attrs]
    ax.plot(angles, values + values[:1], color="black", lw=2, label="target")
    for i, pred in enumerate(predictions):
        vals = [pred.get(a, 0.0) for a in attrs]
        ax.plot(angles, vals + vals[:1], lw=1.2, label=f"response {i}")
        ax.fill(angles, vals + vals[:1], alpha=0.1)
    ax.set_xticks(angles[:-1])
    ax.set_xticklabels(attrs, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7, loc="upper right", bbox_to_anchor=(1.3, 1.1))
    fig.tight_layout()
    _save(plt, fig, path)
