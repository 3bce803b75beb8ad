"""Names from data inside the Markdown pluralign writes (reports, the study's write-up)."""

from __future__ import annotations

import html
import re


def escape_cell(text: str) -> str:
    """A name from data as literal text in a Markdown table cell: no markup, no column break."""
    text = html.escape(" ".join(str(text).split()), quote=True)
    return re.sub(r"([\\`*_\[\]|#!~])", r"\\\1", text)
