"""``pluralign serve``: the HTTP service and its page."""

from __future__ import annotations

import math
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
    body_timeout: Annotated[float, typer.Option(help="Seconds a client may take to send its request body.")] = 30.0,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            help="Host name the service answers to; repeatable (default: loopback names when bound to loopback, "
            "else any)."
        ),
    ] = None,
    max_profile_choices: Annotated[int, typer.Option(help="Most choices (and pool items) per profile request.")] = 1000,
    max_profile_work: Annotated[
        int, typer.Option(help="Most profiles x responses one profile request may look at.")
    ] = 50_000_000,
    profile_timeout: Annotated[float, typer.Option(help="Seconds one profile fit or next question may take.")] = 60.0,
    runs: Annotated[Path | None, typer.Option(help="Folder of evaluation runs for the run browser.")] = None,
    profiles: Annotated[Path | None, typer.Option(help="Folder of saved target profiles (JSON).")] = None,
    attributes_file: AttributesOpt = None,
    options: dict[str, Any] | None = None,
) -> None:
    """Serve /v1/choose, /v1/score, /v1/profile/*, /v1/attributes, /healthz and the page at /."""
    import uvicorn

    from pluralign.methods import build_method, method_spec
    from pluralign.server import ServerConfig, create_app
    from pluralign.server.app import LOOPBACK_NAMES

    method_spec(method)
    key = None
    if require_key_env:
        key = os.environ.get(require_key_env)
        if not key:
            raise InputError(f"--api-key-env {require_key_env}: that environment variable is not set")
    if not 1 <= port <= 65535:
        raise InputError(f"--port must be between 1 and 65535, got {port}")
    for name, value in (
        ("--max-queue", max_queue),
        ("--max-text-chars", max_text_chars),
        ("--max-profile-choices", max_profile_choices),
        ("--max-profile-work", max_profile_work),
    ):
        if value < 1:
            raise InputError(f"{name} must be at least 1, got {value}")
    if max_body_bytes < 1024:
        raise InputError(f"--max-body-bytes must be at least 1024 (a request needs room), got {max_body_bytes}")
    if max_responses < 2:
        raise InputError(f"--max-responses must be at least 2 (a choice needs two), got {max_responses}")
    for name, seconds in (
        ("--decision-timeout", decision_timeout),
        ("--body-timeout", body_timeout),
        ("--profile-timeout", profile_timeout),
    ):
        if not math.isfinite(seconds) or seconds <= 0:
            raise InputError(f"{name} must be a positive number of seconds, got {seconds}")
    for name, folder in (("--runs", runs), ("--profiles", profiles)):
        if folder is not None and not folder.is_dir():
            raise InputError(f"{name} {folder} is not an existing folder")
    hosts = tuple(h.strip().lower() for h in allowed_host or ())
    if not hosts and host.lower() in LOOPBACK_NAMES:
        hosts = LOOPBACK_NAMES
    settings = settings_from_options(options or {}, api_key_env=backend_api_key_env)
    preloaded = build_method(method, settings)  # bad settings fail here, in one line, before the server starts
    config = ServerConfig(
        method=method,
        preloaded=preloaded,
        settings=settings,
        api_key=key,
        max_body_bytes=max_body_bytes,
        max_responses=max_responses,
        max_text_chars=max_text_chars,
        max_queue=max_queue,
        decision_timeout=decision_timeout,
        body_timeout=body_timeout,
        allowed_hosts=hosts or None,
        max_profile_choices=max_profile_choices,
        max_profile_work=max_profile_work,
        profile_timeout=profile_timeout,
        runs_dir=runs,
        profiles_dir=profiles,
        registry=registry_from(attributes_file),
    )
    if key is None and not hosts:
        say(
            f"warning: serving on {host} without --api-key-env: anyone who can reach this address may use every route",
            style="yellow",
            err=True,
        )
    app_ = create_app(config)
    say(f"pluralign serving {method} on http://{host}:{port}/ (docs at /docs)", err=True)
    uvicorn.run(app_, host=host, port=port, log_level="warning")
