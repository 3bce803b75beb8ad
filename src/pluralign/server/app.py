"""FastAPI service: steer decisions from any application, and a page to see why.

The method (and its model) is loaded once. Decisions run one at a time behind a lock, so
concurrent requests queue instead of sharing an in-process model; the judgement cache
answers repeated questions without the model.
"""

from __future__ import annotations

import hmac
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from pluralign.api import Chooser, ChooseResult
from pluralign.attributes import DEFAULT_REGISTRY, AttributeRegistry
from pluralign.errors import InputError, JudgeError, PluralignError, one_line
from pluralign.files import read_jsonl
from pluralign.methods import Method, MethodSettings, build_method
from pluralign.targets import target_from_data

PUBLIC_PATHS = {"/", "/favicon.ico"}


@dataclass
class ServerConfig:
    method: str = "spm"
    settings: MethodSettings = field(default_factory=MethodSettings)
    api_key: str | None = None
    max_body_bytes: int = 1_000_000
    max_responses: int = 10
    max_text_chars: int = 20_000
    runs_dir: Path | None = None
    profiles_dir: Path | None = None
    registry: AttributeRegistry = field(default_factory=lambda: DEFAULT_REGISTRY)
    preloaded: Method | None = None


class ChooseRequest(BaseModel):
    question: str = Field(min_length=1)
    responses: list[str]
    target: dict[str, Any]
    seed: int = 0
    samples: int | None = Field(default=None, ge=1, le=10)


class ScoreRequest(BaseModel):
    question: str = Field(min_length=1)
    responses: list[str]
    attributes: list[str] = Field(min_length=1)
    seed: int = 0


class ScoreResponse(BaseModel):
    predictions: list[dict[str, float]] | None
    reasonings: list[dict[str, str]] | None
    samples: dict[str, list[dict[str, Any]]]
    method: str


def create_app(config: ServerConfig) -> FastAPI:
    lock = threading.Lock()
    state: dict[str, Any] = {"chooser": None}

    def chooser() -> Chooser:
        if state["chooser"] is None:
            method = config.preloaded or build_method(config.method, config.settings)
            state["chooser"] = Chooser(method, registry=config.registry)
        return state["chooser"]  # type: ignore[no-any-return]

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        chooser()  # load the model once, before the first request
        yield
        if state["chooser"] is not None:
            state["chooser"].close()

    app = FastAPI(
        title="pluralign",
        version="0.1.0",
        description="Choose the response that fits a person's values (steerable pluralistic alignment).",
        lifespan=lifespan,
    )

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if config.api_key and request.url.path not in PUBLIC_PATHS:
            given = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ")
            if not hmac.compare_digest(given.encode(), config.api_key.encode()):
                return JSONResponse(
                    {"detail": "missing or wrong API key (send X-API-Key or Authorization: Bearer)"}, status_code=401
                )
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > config.max_body_bytes:
            return JSONResponse(
                {"detail": f"request body of {length} bytes exceeds the limit of {config.max_body_bytes} bytes"},
                status_code=413,
            )
        if request.method == "POST" and length is None:
            body = await request.body()
            if len(body) > config.max_body_bytes:
                return JSONResponse(
                    {"detail": f"request body exceeds the limit of {config.max_body_bytes} bytes"}, status_code=413
                )
        return await call_next(request)

    @app.exception_handler(PluralignError)
    async def _pluralign_error(request: Request, exc: PluralignError) -> JSONResponse:
        status = 422 if isinstance(exc, InputError) else 503 if isinstance(exc, JudgeError) else 500
        return JSONResponse({"detail": one_line(exc)}, status_code=status)

    def check_probe(question: str, responses: list[str]) -> None:
        if len(responses) < 2:
            raise HTTPException(422, f"need at least 2 responses to choose between, got {len(responses)}")
        if len(responses) > config.max_responses:
            raise HTTPException(422, f"{len(responses)} responses exceed the limit of {config.max_responses}")
        longest = max([len(question), *map(len, responses)])
        if longest > config.max_text_chars:
            raise HTTPException(422, f"a text of {longest} characters exceeds the limit of {config.max_text_chars}")

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        method = chooser().method
        return {"status": "ok", "method": method.name, "config": method.config()}

    @app.get("/v1/attributes")
    def attributes() -> list[dict[str, Any]]:
        return [
            config.registry[n].model_dump() | {"level_values": config.registry[n].level_values()}
            for n in config.registry
        ]

    @app.post("/v1/choose", response_model=ChooseResult)
    def choose(body: ChooseRequest) -> ChooseResult:
        check_probe(body.question, body.responses)
        target = target_from_data(body.target, "target", config.registry)
        c = chooser()
        with lock:
            method: Any = c.method
            old = getattr(method, "samples", None)
            if body.samples is not None and old is not None:
                method.samples = body.samples
            try:
                return c.choose(body.question, body.responses, target, seed=body.seed)
            finally:
                if old is not None:
                    method.samples = old

    @app.post("/v1/score", response_model=ScoreResponse)
    def score(body: ScoreRequest) -> ScoreResponse:
        check_probe(body.question, body.responses)
        c = chooser()
        if c.method.target_dependent:
            raise HTTPException(422, f"method {c.method.name} needs a target; use /v1/choose")
        with lock:
            judgement = c.score(body.question, body.responses, body.attributes, seed=body.seed)
        if judgement.predictions is None:
            raise HTTPException(422, f"method {c.method.name} picks a response but predicts no attribute values")
        return ScoreResponse(
            predictions=judgement.predictions,
            reasonings=judgement.reasonings,
            samples=judgement.samples,
            method=c.method.name,
        )

    @app.get("/v1/profiles")
    def profiles() -> list[dict[str, Any]]:
        if config.profiles_dir is None or not config.profiles_dir.is_dir():
            return []
        out = []
        for f in sorted(config.profiles_dir.glob("*.json")):
            try:
                out.append(
                    {
                        "name": f.stem,
                        "values": target_from_data(json.loads(f.read_text()), f.stem, config.registry).values,
                    }
                )
            except (InputError, ValueError):
                continue
        return out

    def run_path(name: str) -> Path:
        if config.runs_dir is None:
            raise HTTPException(404, "this server was started without --runs")
        path = (config.runs_dir / name).resolve()
        if config.runs_dir.resolve() not in path.parents or not (path / "results.json").exists():
            raise HTTPException(404, f"no run named {name!r}")
        return path

    @app.get("/v1/runs")
    def runs() -> list[dict[str, Any]]:
        if config.runs_dir is None or not config.runs_dir.is_dir():
            return []
        out = []
        for d in sorted(p for p in config.runs_dir.iterdir() if (p / "results.json").exists()):
            res = json.loads((d / "results.json").read_text())
            out.append(
                {
                    "name": d.name,
                    "method": res.get("method"),
                    "n_items": res.get("n_items"),
                    "mean_accuracy": res.get("mean_accuracy"),
                    "targets": [t["name"] for t in res.get("targets", [])],
                }
            )
        return out

    @app.get("/v1/runs/{name}")
    def run_items(name: str, offset: int = 0, limit: int = 10) -> dict[str, Any]:
        path = run_path(name)
        results = json.loads((path / "results.json").read_text())
        decisions = read_jsonl(path / "decisions.jsonl")
        by_item: dict[int, list[dict[str, Any]]] = {}
        for d in decisions:
            by_item.setdefault(d["item"], []).append(d)
        items = sorted(by_item)
        page = items[max(0, offset) : max(0, offset) + max(1, min(limit, 100))]
        probes: dict[int, Any] = {}
        io_dir = path / "input_output"
        first_target = results["targets"][0]["name"] if results.get("targets") else None
        if first_target and (io_dir / f"{first_target}.json").exists():
            records = json.loads((io_dir / f"{first_target}.json").read_text())
            probes = {i: records[i]["input"] for i in page if i < len(records)}
        return {
            "name": name,
            "total": len(items),
            "offset": offset,
            "targets": results.get("target_values", {}),
            "items": [{"item": i, "probe": probes.get(i), "decisions": by_item[i]} for i in page],
        }

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return (resources.files("pluralign") / "server" / "static" / "index.html").read_text(encoding="utf-8")

    return app
