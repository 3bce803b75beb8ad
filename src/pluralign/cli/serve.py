"""``pluralign serve``: the HTTP service and its page."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from pluralign.cli.common import AttributesOpt, registry_from, say, settings_from_options, with_settings_options
from pluralign.errors import InputError


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cmd)


@with_settings_options(exclude=("api_key_env",))
def serve_cmd(
    host: Annotated[str, typer.Option(help="Address to bind (127.0.0.1 unless you mean to expose it).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    method: Annotated[str, typer.Option(help="Method to serve.")] = "spm",
    require_key_env: Annotated[
        str | None, typer.Option("--api-key-env", help="Require the key in this environment variable on every request.")
    ] = None,
    backend_api_key_env: Annotated[
        str, typer.Option(help="Environment variable holding the upstream (judge server) API key.")
    ] = "OPENAI_API_KEY",
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body.")] = 1_000_000,
    max_responses: Annotated[int, typer.Option(help="Most responses per request.")] = 10,
    max_text_chars: Annotated[int, typer.Option(help="Longest question or response.")] = 20_000,
    max_queue: Annotated[int, typer.Option(help="Decisions that may wait; more get 503 with Retry-After.")] = 32,
    decision_timeout: Annotated[float, typer.Option(help="Seconds one decision may take, queueing included.")] = 300.0,
    runs: Annotated[Path | None, typer.Option(help="Folder of evaluation runs for the run browser.")] = None,
    profiles: Annotated[Path | None, typer.Option(help="Folder of saved target profiles (JSON).")] = None,
    attributes_file: AttributesOpt = None,
    options: dict[str, Any] | None = None,
) -> None:
    """Serve /v1/choose, /v1/score, /v1/profile/*, /v1/attributes, /healthz and the page at /."""
    import uvicorn

    from pluralign.methods import method_spec
    from pluralign.server import ServerConfig, create_app

    method_spec(method)
    key = None
    if require_key_env:
        key = os.environ.get(require_key_env)
        if not key:
            raise InputError(f"--api-key-env {require_key_env}: that environment variable is not set")
    for name, value in (("--max-queue", max_queue), ("--max-responses", max_responses)):
        if value < 1:
            raise InputError(f"{name} must be at least 1, got {value}")
    if decision_timeout <= 0:
        raise InputError(f"--decision-timeout must be positive, got {decision_timeout}")
    config = ServerConfig(
        method=method,
        settings=settings_from_options(options or {}, api_key_env=backend_api_key_env),
        api_key=key,
        max_body_bytes=max_body_bytes,
        max_responses=max_responses,
        max_text_chars=max_text_chars,
        max_queue=max_queue,
        decision_timeout=decision_timeout,
        runs_dir=runs,
        profiles_dir=profiles,
        registry=registry_from(attributes_file),
    )
    app_ = create_app(config)
    say(f"pluralign serving {method} on http://{host}:{port}/ (docs at /docs)", err=True)
    uvicorn.run(app_, host=host, port=port, log_level="warning")
