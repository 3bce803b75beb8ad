"""What a running service was started with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pluralign.attributes import DEFAULT_REGISTRY, AttributeRegistry
from pluralign.methods import Method
from pluralign.settings import Settings


@dataclass
class ServerConfig:
    method: str = "spm"
    settings: Settings = field(default_factory=lambda: Settings())
    api_key: str | None = None
    max_body_bytes: int = 1_000_000
    max_responses: int = 10
    max_text_chars: int = 20_000
    max_queue: int = 32
    decision_timeout: float = 300.0
    runs_dir: Path | None = None
    profiles_dir: Path | None = None
    registry: AttributeRegistry = field(default_factory=lambda: DEFAULT_REGISTRY)
    preloaded: Method | None = None
