"""Where pluralign keeps its files: ``$PLURALIGN_HOME`` (an empty value means unset), else
``~/.cache/pluralign``. The one place that reads the variable."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "PLURALIGN_HOME"


def home() -> Path:
    value = os.environ.get(HOME_ENV, "").strip()
    return Path(value).expanduser() if value else Path.home() / ".cache" / "pluralign"
