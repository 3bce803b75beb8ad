"""The web page."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def page() -> str:
    return (resources.files("pluralign") / "server" / "static" / "index.html").read_text(encoding="utf-8")
