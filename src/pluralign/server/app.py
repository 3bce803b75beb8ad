"""FastAPI service: steer decisions from any application, and a page to see why.

The method (and its model) is loaded once, before the first request. Every request passes
admission first (:mod:`pluralign.server.admission`); decisions run one at a time through a
bounded queue with deadlines (:mod:`pluralign.server.queue`); the judgement cache answers
repeated questions without the model. Every error is a JSON ``{"detail": ...}`` with a status
that says whose fault it is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from pluralign import __version__
from pluralign.api import Chooser
from pluralign.people.saved_profiles import SavedProfiles
from pluralign.people.userstore import UserStore
from pluralign.server.admission import Admission, Guard, is_openai_path
from pluralign.server.config import ServerConfig
from pluralign.server.openai import chat, models, rerank, stored
from pluralign.server.openai.errors import invalid as openai_invalid
from pluralign.server.openai.errors import openai_error
from pluralign.server.query import known_query
from pluralign.server.queue import DecisionQueue
from pluralign.server.routes import catalog, decisions, feedback, page, profile, runs
from pluralign.server.schema import service_openapi
from pluralign.server.state import ServiceState, retry_after, status_for
from pluralign.server.telemetry import Telemetry
from pluralign.settings import build_generator, build_method
from pluralign.support.errors import InputError, PluralignError, one_line, validation_message


def service_state(config: ServerConfig) -> ServiceState:
    """The user store, admission, metrics and the two queues (each reporting to the metrics)."""
    limits = config.limits
    telemetry = Telemetry(lambda: service.queue.inflight)
    service = ServiceState(
        config=config,
        users=UserStore(limits.db, limits.completion_ttl, pool_size=limits.db_pool),
        saved=SavedProfiles(limits.profiles_dir),
        admission=Admission(config),
        telemetry=telemetry,
        queue=DecisionQueue(limits.max_queue, limits.decision_timeout, observe=telemetry.work),
        profile_queue=DecisionQueue(
            limits.max_queue, limits.profile_timeout, name="pluralign-profile", stage="profile", observe=telemetry.work
        ),
    )
    return service


def create_app(config: ServerConfig) -> FastAPI:
    service = service_state(config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        method = config.preloaded or build_method(config.method, config.settings)  # once, before the first request
        service.chooser = Chooser(method, registry=config.registry, calibration=config.calibration)
        service.method_config = method.config()
        service.generator = build_generator(config.generator, config.settings)
        yield
        service.queue.close()
        service.profile_queue.close()
        service.chooser.close()
        await service.generator.aclose()
        service.users.close()

    app = FastAPIOffline(  # /docs and /redoc with their scripts served here, not from a CDN
        title="pluralign",
        version=__version__,
        description="Choose the response that fits a person's values (steerable pluralistic alignment).",
        lifespan=lifespan,
        dependencies=[Depends(known_query)],  # before any route's own: an unread query key is refused
    )
    app.state.pluralign = service
    app.openapi = lambda: service_openapi(app)  # type: ignore[method-assign]

    app.add_middleware(Guard, config=config, telemetry=service.telemetry)

    @app.exception_handler(PluralignError)
    async def _pluralign_error(request: Request, exc: PluralignError) -> JSONResponse:
        return JSONResponse({"detail": one_line(exc)}, status_code=status_for(exc), headers=retry_after(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        if is_openai_path(request.url.path):
            return openai_invalid(exc)
        return JSONResponse({"detail": validation_message(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        path = request.url.path
        unknown = exc.status_code in (404, 405) and exc.detail in ("Not Found", "Method Not Allowed")
        if is_openai_path(path) or (unknown and path.startswith("/v1/")):
            message = f"Invalid URL ({request.method} {path})" if unknown else str(exc.detail)
            return openai_error(exc.status_code, message, code="unknown_url" if unknown else None)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    for module in (decisions, chat, stored, rerank, models, feedback, profile, catalog, runs, page):
        app.include_router(module.router)
    app.include_router(profile.saved)
    for router in installed_routes():
        app.include_router(router)
    return app


ROUTES = "pluralign.routes"
"""Entry points of installed packages that add routes (each an ``APIRouter``): they sit behind
the same admission as every other route (docs/guides/endpoint.md)."""


def installed_routes() -> list[APIRouter]:
    """The routers other packages add; one that cannot be loaded is an error naming it."""
    from importlib.metadata import entry_points

    routers = []
    for entry in entry_points(group=ROUTES):
        try:
            router = entry.load()
        except Exception as exc:
            raise InputError(f"the route {entry.name!r} from {entry.value} cannot be loaded: {one_line(exc)}") from None
        if not isinstance(router, APIRouter):
            raise InputError(f"the route {entry.name!r} from {entry.value} is not a fastapi.APIRouter")
        routers.append(router)
    return routers
