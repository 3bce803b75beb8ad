"""Health and attributes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from pluralign.server.state import ServiceState, state

router = APIRouter(tags=["catalog"])


@router.get("/healthz")
async def healthz(s: ServiceState = Depends(state)) -> dict[str, Any]:
    """Never waits on the judge: it reads what was recorded when the method loaded."""
    return {
        "status": "ok" if s.chooser is not None else "loading",
        "method": s.config.method,
        "config": s.method_config,
        "queue": s.queue.inflight,
        "max_queue": s.config.limits.max_queue,
    }


@router.get("/v1/attributes")
async def attributes(s: ServiceState = Depends(state)) -> list[dict[str, Any]]:
    registry = s.config.registry
    return [registry[n].model_dump() | {"level_values": registry[n].level_values()} for n in registry]
