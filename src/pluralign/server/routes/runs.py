"""The run browser: evaluation runs under --runs, read through :mod:`pluralign.evaluation.runs`.

A run whose files are corrupt or of the wrong shape answers with its own error and never
breaks the listing; runs reached through links that leave the folder are not shown.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query

from pluralign.evaluation.runs import RunDir
from pluralign.server.state import ServiceState, state
from pluralign.support.errors import InputError, TooLargeError, one_line
from pluralign.support.names import is_safe_stem

router = APIRouter(prefix="/v1/runs", tags=["runs"])
PAGE_LIMIT = 100
"""The most items one page of a run shows."""


def _shown(s: ServiceState, exc: InputError) -> str:
    """A run's own error in one line, without the server's paths."""
    text = one_line(exc).replace(str(s.config.limits.runs_dir), "<runs>")
    return text + " (this service's --max-run-file-bytes)" if isinstance(exc, TooLargeError) else text


def _run(s: ServiceState, name: str) -> RunDir:
    """A run is a folder directly under --runs whose name is a plain file name, read without
    following any link below --runs (a run folder that is a link is not a run); anything else (a
    NUL, a slash, "..", a name too long for the file system) is simply not a run."""
    root = s.config.limits.runs_dir
    if root is None:
        raise HTTPException(404, "this server was started without --runs")
    shown = name if len(name) <= 80 else name[:80] + "..."
    run = RunDir(root / name, root=root, limit=s.config.limits.max_run_file_bytes)
    try:
        found = is_safe_stem(name) and (root / name).is_dir() and not (root / name).is_symlink() and run.finished()
    except OSError:
        found = False
    if not found:
        raise HTTPException(404, f"no run named {shown!r}")
    return run


@router.get("")
async def list_runs(s: ServiceState = Depends(state)) -> list[dict[str, Any]]:
    """Reading run files is blocking work: it runs on a worker thread, never on the event loop."""
    return await asyncio.to_thread(_list_runs, s)


def _list_runs(s: ServiceState) -> list[dict[str, Any]]:
    root = s.config.limits.runs_dir
    if root is None or not root.is_dir():
        return []
    out: list[dict[str, Any]] = []
    for d in sorted(root.iterdir()):
        run = RunDir(d, root=root, limit=s.config.limits.max_run_file_bytes)
        if not is_safe_stem(d.name) or d.is_symlink() or not d.is_dir() or not run.finished():
            continue
        try:
            res = run.results()
        except InputError as exc:
            out.append({"name": d.name, "error": _shown(s, exc)})
            continue
        out.append(
            {
                "name": d.name,
                "method": res.method,
                "n_items": res.n_items,
                "mean_accuracy": res.mean_accuracy,
                "targets": [t.name for t in res.targets],
            }
        )
    return out


@router.get("/{name}")
async def run_items(
    name: str,
    offset: int = Query(default=0, ge=0),
    limit: int = Query(default=10, ge=1, le=PAGE_LIMIT),
    s: ServiceState = Depends(state),
) -> dict[str, Any]:
    return await asyncio.to_thread(_run_items, s, name, offset, limit)


def _run_items(s: ServiceState, name: str, offset: int, limit: int) -> dict[str, Any]:
    run = _run(s, name)
    try:
        results = run.results()
        decisions = run.decisions()
        first = results.targets[0].name if results.targets else None
        probes = run.probes(first) if first else {}
    except InputError as exc:  # the run's own files are broken: say which, without server paths
        raise HTTPException(500, f"run {name}: {_shown(s, exc)}") from None
    by_item: dict[int, list[dict[str, Any]]] = {}
    for d in decisions:
        by_item.setdefault(d.item, []).append(d.model_dump())
    items = sorted(by_item)
    page = items[offset : offset + limit]
    return {
        "name": name,
        "total": len(items),
        "offset": offset,
        "targets": results.target_values,
        "items": [{"item": i, "probe": probes.get(i), "decisions": by_item[i]} for i in page],
    }
