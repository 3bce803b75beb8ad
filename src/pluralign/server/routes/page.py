"""The web page."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from pluralign.server.query import ANY_QUERY, reads_query

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
@reads_query(ANY_QUERY)  # a link to the page may carry anyone's parameters (utm_source=...)
async def page() -> str:
    return (resources.files("pluralign") / "server" / "static" / "index.html").read_text(encoding="utf-8")
