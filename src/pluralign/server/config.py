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
    body_timeout: float = 30.0
    allowed_hosts: tuple[str, ...] | None = None
    """Host names the service answers to (``None``: any). Bound to a loopback address it
    answers only to loopback names, so a web page cannot reach it by DNS rebinding."""
    max_profile_choices: int = 1000
    max_profile_work: int = 50_000_000
    """Profiles x responses one fit or next question may look at (measured 11-18 million a
    second on 2 cores: a few seconds at most)."""
    max_profile_grid: int = 250_000
    """Candidate profiles (the grid over the named attributes) one request may build: MIC's
    6 attributes make 117,649; 8 attributes make about a million, which is refused."""
    profile_timeout: float = 60.0
    runs_dir: Path | None = None
    profiles_dir: Path | None = None
    registry: AttributeRegistry = field(default_factory=lambda: DEFAULT_REGISTRY)
    preloaded: Method | None = None
