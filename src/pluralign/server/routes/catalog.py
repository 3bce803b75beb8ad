"""Health, attributes and saved profiles."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from pluralign.errors import InputError
from pluralign.files import read_json, write_json_atomic
from pluralign.server.state import ServiceState, state
from pluralign.targets import target_from_data

router = APIRouter(tags=["catalog"])
PROFILE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@router.get("/healthz")
async def healthz(s: ServiceState = Depends(state)) -> dict[str, Any]:
    """Never waits on the judge: it reads what was recorded when the method loaded."""
    return {
        "status": "ok" if s.chooser is not None else "loading",
        "method": s.config.method,
        "config": s.method_config,
        "queue": s.queue.inflight,
        "max_queue": s.config.max_queue,
    }


@router.get("/v1/attributes")
async def attributes(s: ServiceState = Depends(state)) -> list[dict[str, Any]]:
    registry = s.config.registry
    return [registry[n].model_dump() | {"level_values": registry[n].level_values()} for n in registry]


@router.get("/v1/profiles")
async def profiles(s: ServiceState = Depends(state)) -> list[dict[str, Any]]:
    folder = s.config.profiles_dir
    if folder is None or not folder.is_dir():
        return []
    out = []
    for f in sorted(folder.glob("*.json")):
        try:
            target = target_from_data(read_json(f, "profile"), f.stem, s.config.registry)
        except InputError:
            continue
        entry: dict[str, Any] = {"name": f.stem, "values": target.values}
        if target.weights:
            entry["weights"] = target.weights
        out.append(entry)
    return out


class SaveProfile(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    values: dict[str, float]
    weights: dict[str, float] | None = None


@router.post("/v1/profiles")
async def save_profile(body: SaveProfile, s: ServiceState = Depends(state)) -> dict[str, Any]:
    """Save a profile (a target) into the server's --profiles folder."""
    folder = s.config.profiles_dir
    if folder is None:
        raise HTTPException(404, "this server was started without --profiles; the page keeps profiles in the browser")
    if not PROFILE_NAME.fullmatch(body.name):  # match() would let "ok\n" through
        raise HTTPException(422, "name: use 1-64 letters, digits, _ or -")
    raw: dict[str, Any] = {"values": body.values, "weights": body.weights} if body.weights else dict(body.values)
    target = target_from_data(raw, body.name, s.config.registry)
    write_json_atomic(folder / f"{body.name}.json", target.to_file_dict() if body.weights else dict(target.values))
    return {"name": body.name, "values": target.values, "weights": target.weights}
