"""``pluralign serve``: the HTTP service and its page."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from pluralign.cli.common import AttributesOpt, registry_from, say, with_options
from pluralign.prediction.methods.registry import DEFAULT_METHOD
from pluralign.settings import make_settings
from pluralign.support.errors import InputError


def log_requests() -> None:
    """One JSON line per request on standard error (pluralign.server.telemetry says what it holds)."""
    import logging
    import sys

    from pluralign.server.telemetry import REQUEST_LOG

    if not REQUEST_LOG.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        REQUEST_LOG.addHandler(handler)
    REQUEST_LOG.setLevel(logging.INFO)
    REQUEST_LOG.propagate = False


def register(app: typer.Typer) -> None:
    app.command("serve", short_help="Serve the HTTP API and the page at /.")(serve_cmd)


def _serve_components() -> list[Any]:
    """The options of any method and judge, then the service's own (which keep ``--api-key-env``,
    the flag that named the service's key before ``--service-key-env``)."""
    from pluralign.prediction.generators import GeneratorOptions
    from pluralign.server.config import ServiceOptions
    from pluralign.settings import components

    return [*components(), ServiceOptions, GeneratorOptions]


@with_options(_serve_components)
def serve_cmd(
    host: Annotated[str, typer.Option(help="Address to bind (127.0.0.1 unless you mean to expose it).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    method: Annotated[str, typer.Option(help="Method to serve.")] = DEFAULT_METHOD,
    attributes_file: AttributesOpt = None,
    options: dict[str, Any] | None = None,
) -> None:
    """Serve /v1/choose, /v1/predict, /v1/chat/completions, /v1/rerank, /v1/feedback, /v1/profile/*,
    /v1/attributes, /healthz and the page at /."""
    import uvicorn

    from pluralign.choice.target_data import read_target
    from pluralign.prediction.calibration import load_calibration
    from pluralign.prediction.generators import GeneratorOptions
    from pluralign.prediction.methods import method_spec
    from pluralign.server.admission import LOOPBACK_NAMES
    from pluralign.server.app import create_app
    from pluralign.server.config import ServerConfig, ServiceOptions
    from pluralign.settings import build_method
    from pluralign.support.options import take

    method_spec(method)
    if not 1 <= port <= 65535:
        raise InputError(f"--port must be between 1 and 65535, got {port}")
    given = dict(options or {})
    limits = take(ServiceOptions, given)
    generator = take(GeneratorOptions, given)
    keys = limits.keys()  # a variable that is not set, or a key two namespaces share, fails here in one line
    if limits.allowed_hosts is None and host.lower() in LOOPBACK_NAMES:
        limits = limits.model_copy(update={"allowed_hosts": list(LOOPBACK_NAMES)})
    settings = make_settings(given)
    registry = registry_from(attributes_file)
    preloaded = build_method(method, settings)  # bad settings fail here, in one line, before the server starts
    wanted = limits.default_target  # never empty (the option is Filled)
    default = read_target(wanted, registry, "--default-target") if wanted is not None else None
    calibration = load_calibration(limits.calibration) if limits.calibration is not None else None
    if calibration is not None:
        calibration.check_judge(preloaded.config())  # another judge: refused before serving
    config = ServerConfig(
        default_target=default,
        method=method,
        preloaded=preloaded,
        settings=settings,
        limits=limits,
        keys=keys,
        registry=registry,
        generator=generator,
        calibration=calibration,
    )
    if not keys and limits.allowed_hosts is None:
        say(
            f"warning: serving on {host} without --service-key-env: anyone who can reach this address may use "
            "every route",
            style="yellow",
            err=True,
        )
    app_ = create_app(config)
    log_requests()
    say(f"pluralign serving {method} on http://{host}:{port}/ (docs at /docs)", err=True)
    uvicorn.run(app_, host=host, port=port, log_level="warning")
