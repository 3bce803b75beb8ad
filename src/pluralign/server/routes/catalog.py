"""Health, readiness, metrics and attributes."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from pluralign.server.state import ServiceState, state
from pluralign.server.telemetry import CONTENT_TYPE
from pluralign.support.errors import one_line

READY_SECONDS = 5.0
"""How long /readyz waits on each check before it calls it failed."""

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


async def _check(work: Any) -> str | None:
    """None when ``work`` (a coroutine answering None or a reason) says ready in time."""
    try:
        return await asyncio.wait_for(work, READY_SECONDS)
    except TimeoutError:
        return f"no answer within {READY_SECONDS:g} s"
    except Exception as exc:
        return one_line(exc, 300)


@router.get("/readyz")
async def readyz(s: ServiceState = Depends(state)) -> JSONResponse:
    """Whether this replica can answer now: the method loaded, the user database readable, the
    judge and the generator reachable (each of their servers answers). 503 with Retry-After when
    not, so a load balancer sends the request elsewhere; /healthz stays instant and says only
    that the process is up."""

    async def database() -> str | None:
        await asyncio.to_thread(s.users.ping)
        return None

    checks: dict[str, str | None] = {"method": None if s.chooser is not None else "still loading"}
    checks["database"] = await _check(database())
    checks["judge"] = await _check(s.chooser.ready()) if s.chooser is not None else "still loading"
    if s.generator is not None:  # a service with a generator answers chats: it must answer too
        checks["generator"] = await _check(s.generator.ready())
    ready = all(v is None for v in checks.values())
    body = {"status": "ready" if ready else "not ready", "checks": {k: v or "ok" for k, v in checks.items()}}
    return JSONResponse(body, status_code=200 if ready else 503, headers=None if ready else {"Retry-After": "5"})


@router.get("/metrics", response_class=Response)
async def metrics(s: ServiceState = Depends(state)) -> Response:
    """Prometheus' text format: requests by route and status, latencies, stage times, tokens,
    judge calls by who answered (model or cache) and the queue's depth."""
    return Response(s.telemetry.exposition(), media_type=CONTENT_TYPE)


@router.get("/v1/attributes")
async def attributes(s: ServiceState = Depends(state)) -> list[dict[str, Any]]:
    registry = s.config.registry
    return [registry[n].model_dump() | {"level_values": registry[n].level_values()} for n in registry]
