"""``/openapi.json`` as the service answers: FastAPI documents a 422 with a list of problems,
but the service's own routes answer bad input with one line (``{"detail": "..."}``) and the
OpenAI-compatible routes with a 400 in OpenAI's error shape (documented per route)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from pluralign.server.admission import is_openai_path

PROBLEM = {
    "title": "Problem",
    "type": "object",
    "properties": {"detail": {"type": "string", "title": "Detail", "description": "What is wrong, on one line."}},
    "required": ["detail"],
}


def service_openapi(app: FastAPI) -> dict[str, Any]:
    """The schema, built once: 422 is the one-line problem, and absent from the OpenAI routes."""
    if app.openapi_schema is None:
        spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        for path, operations in spec.get("paths", {}).items():
            for operation in operations.values():
                responses = operation.get("responses", {})
                if is_openai_path(path):
                    responses.pop("422", None)
                elif "422" in responses:
                    responses["422"]["description"] = "Bad input, named on one line"
        schemas = spec.get("components", {}).get("schemas", {})
        if "HTTPValidationError" in schemas:
            schemas["HTTPValidationError"] = PROBLEM
            schemas.pop("ValidationError", None)
        app.openapi_schema = spec
    return app.openapi_schema
