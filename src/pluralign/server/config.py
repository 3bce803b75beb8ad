"""What a running service was started with: its limits (options that ``pluralign serve``
offers as flags, declared here once) and what it serves."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from pluralign.choice.attributes import DEFAULT_REGISTRY, AttributeRegistry
from pluralign.choice.targets import Target
from pluralign.people.userstore import DEFAULT_COMPLETION_TTL
from pluralign.people.userstore_schema import DEFAULT_NAMESPACE
from pluralign.prediction.calibration import Calibration
from pluralign.prediction.generators import GeneratorOptions
from pluralign.prediction.methods import Method
from pluralign.prediction.methods.registry import DEFAULT_METHOD
from pluralign.prediction.prompts import REASONING_MAX
from pluralign.settings import Settings
from pluralign.storage import DEFAULT_POOL, DatabasePlace, PoolSize, check_pool
from pluralign.support.errors import InputError
from pluralign.support.options import Options, cli
from pluralign.support.redact import SecretEnv, register_env, register_secret
from pluralign.support.strict import Filled

STEER_REASONING_CHARS = 160
"""A sentence: the small judges otherwise fill every reasoning to 512 characters with repetitions."""
NAMESPACE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _service(flag: str | None = None, old: tuple[str, ...] = ()) -> dict[str, Any]:
    return cli(flag, group="service", old=old)


class ServiceOptions(Options):
    """The service's own key and its size, work and time limits."""

    service_key_env: SecretEnv | None = Field(
        default=None,
        min_length=1,
        description="Require the key in this environment variable on every request.",
        json_schema_extra=_service(old=("--api-key-env",)),
    )
    namespace_key_env: list[str] | None = Field(
        default=None,
        description="NAMESPACE=VARIABLE: a key (in that environment variable) whose requests see only the users "
        "and completions of that namespace; repeatable, one per application.",
        json_schema_extra=_service("--namespace-key-env"),
    )
    completion_ttl: float = Field(
        default=DEFAULT_COMPLETION_TTL,
        gt=0,
        le=366 * 86_400,
        allow_inf_nan=False,
        description="Seconds a steered completion is kept for feedback (then trimmed).",
        json_schema_extra=_service(),
    )
    max_body_bytes: int = Field(
        default=1_000_000, ge=1024, description="Largest request body.", json_schema_extra=_service()
    )
    max_responses: int = Field(
        default=10, ge=2, description="Most responses per request (a choice needs two).", json_schema_extra=_service()
    )
    max_text_chars: int = Field(
        default=20_000, ge=1, description="Longest question or response.", json_schema_extra=_service()
    )
    max_samples: int = Field(
        default=10, ge=1, le=100, description="Most samples a request may ask for.", json_schema_extra=_service()
    )
    max_queue: int = Field(
        default=32,
        ge=1,
        description="Decisions that may wait; more get 503 with Retry-After.",
        json_schema_extra=_service(),
    )
    decision_timeout: float = Field(
        default=300.0,
        gt=0,
        le=86_400,
        allow_inf_nan=False,
        description="Seconds one decision may take, queueing included.",
        json_schema_extra=_service(),
    )
    body_timeout: float = Field(
        default=30.0,
        gt=0,
        le=86_400,
        allow_inf_nan=False,
        description="Seconds a client may take to send its request body.",
        json_schema_extra=_service(),
    )
    allowed_hosts: list[Filled] | None = Field(
        default=None,
        description="Host name the service answers to; repeatable (default: loopback names when bound to loopback, "
        "else any).",
        json_schema_extra=_service("--allowed-host"),
    )
    max_profile_choices: int = Field(
        default=1000,
        ge=1,
        description="Most choices (and pool items) per profile request.",
        json_schema_extra=_service(),
    )
    max_profile_work: int = Field(
        default=50_000_000,
        ge=1,
        description="Most profiles x responses one profile request may look at (measured 11-18 million a second "
        "on 2 cores: a few seconds at most).",
        json_schema_extra=_service(),
    )
    max_profile_grid: int = Field(
        default=300_000,
        ge=1,
        description="Candidate profiles (the grid over the named attributes) one request may build: MIC's 6 "
        "attributes make 262,143 (7 levels or absent each); 8 attributes make millions, which is refused.",
        json_schema_extra=_service(),
    )
    max_group_members: int = Field(
        default=1000,
        ge=1,
        le=10_000,
        description="Most profiles in a group target (each is compared with every response, and again for the "
        "confidence's re-judgements).",
        json_schema_extra=_service(),
    )
    profile_timeout: float = Field(
        default=60.0,
        gt=0,
        le=86_400,
        allow_inf_nan=False,
        description="Seconds one profile fit or next question may take.",
        json_schema_extra=_service(),
    )
    max_run_file_bytes: int = Field(
        default=100_000_000,
        ge=1024,
        description="Largest run file (results, decisions, inputs) the run browser reads; a larger one is "
        "reported, not read.",
        json_schema_extra=_service(),
    )
    default_target: Filled | None = Field(
        default=None,
        description="Target (a file, or inline JSON) for a chat or rerank request that names none: a chat UI that "
        "cannot send pluralign.target still steers.",
        json_schema_extra=_service(),
    )
    stream_keepalive: float = Field(
        default=5.0,
        gt=0,
        le=600,
        allow_inf_nan=False,
        description="Seconds between keep-alive comments of a streamed completion while it is drawn and judged.",
        json_schema_extra=_service(),
    )
    steer_passes: int = Field(
        default=2,
        ge=0,
        le=20,
        description="Passes over a chat's candidates (or a rerank's documents) per attribute, each in another "
        "order; 0: the method's own (single-pass scoring: one per order). Two orders keep the clear-cut set "
        "right and answer sooner than one per order; one is quicker and less right (docs/results.md, the "
        "steering proxy's speed); /v1/choose keeps the method's setting.",
        json_schema_extra=_service(),
    )
    steer_reasoning: bool = Field(
        default=True,
        description="Ask the judge for a sentence of reasoning per candidate when it judges a chat's candidates or "
        "a rerank's documents; --no-steer-reasoning asks for the scores only (quicker, less right on the "
        "clear-cut set; /v1/choose keeps the method's setting).",
        json_schema_extra=cli("--no-steer-reasoning", invert=True, group="service"),
    )
    steer_reasoning_chars: int = Field(
        default=STEER_REASONING_CHARS,
        ge=40,
        le=REASONING_MAX,
        description="The longest reasoning per candidate, in characters, when the judge judges a chat's candidates "
        "or a rerank's documents (a person is waiting; each character is decoding time; the method's own limit "
        "is 512). 160 keeps the clear-cut set right (docs/results.md, the steering proxy's speed).",
        json_schema_extra=_service(),
    )
    calibration: Path | None = Field(
        default=None,
        description="A calibration file (pluralign calibrate) applied to every decision's predictions before "
        "choosing; refused at start for another judge.",
        json_schema_extra=_service(),
    )
    max_documents: int = Field(
        default=100,
        ge=2,
        le=1000,
        description="Most documents one rerank request may send (judged in groups of at most --max-responses).",
        json_schema_extra=_service(),
    )
    runs_dir: Path | None = Field(
        default=None, description="Folder of evaluation runs for the run browser.", json_schema_extra=_service("--runs")
    )
    profiles_dir: Path | None = Field(
        default=None, description="Folder of saved target profiles (JSON).", json_schema_extra=_service("--profiles")
    )
    db: DatabasePlace | None = Field(
        default=None,
        description="Database of people's choices, profiles and steered completions: a SQLite file (default: in "
        "pluralign's home) or a postgresql:// URL that many replicas share.",
        json_schema_extra=_service(),
    )
    db_pool: PoolSize = Field(
        default=DEFAULT_POOL,
        description="Most connections this replica holds to a postgresql:// database at once.",
        json_schema_extra=_service(),
    )

    @field_validator("runs_dir", "profiles_dir")
    @classmethod
    def _existing_folder(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"{value} is not an existing folder")
        return value

    @field_validator("namespace_key_env")
    @classmethod
    def _namespace_keys(cls, value: list[str] | None) -> list[str] | None:
        for entry in value or []:
            namespace, sep, variable = entry.partition("=")
            if not sep or not NAMESPACE.fullmatch(namespace) or not variable:
                raise ValueError(f"{entry!r}: give NAMESPACE=VARIABLE (a namespace of 1-64 letters, digits, _ or -)")
            register_env(variable)
        return value

    def keys(self) -> dict[str, str]:
        """Namespace -> the key its requests carry, read from the environment (an InputError
        names a variable that is not set, or two namespaces that share one key)."""
        wanted = [(DEFAULT_NAMESPACE, self.service_key_env)] if self.service_key_env else []
        wanted += [tuple(e.partition("=")[::2]) for e in self.namespace_key_env or []]  # type: ignore[misc]
        keys: dict[str, str] = {}
        for namespace, variable in wanted:
            key = os.environ.get(variable, "")
            flag = "--service-key-env" if namespace == DEFAULT_NAMESPACE else "--namespace-key-env"
            if not key:
                raise InputError(f"{flag} {variable}: that environment variable is not set")
            if namespace in keys:
                raise InputError(f"{flag}: the namespace {namespace!r} is given two keys")
            if key in keys.values():
                raise InputError(f"{flag} {variable}: two namespaces share one key")
            keys[namespace] = key
        return keys

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, value: list[str] | None) -> list[str] | None:
        return [h.strip().lower() for h in value] if value else None

    @model_validator(mode="after")
    def _pool_only_for_a_server(self) -> ServiceOptions:
        """A pool size that a SQLite file would ignore is refused, not dropped."""
        check_pool("db_pool" in self.model_fields_set, self.db, "--db-pool", "--db")
        return self


@dataclass
class ServerConfig:
    """The service's limits, what it serves and the keys it requires (namespace -> key; none:
    every request is in the default namespace)."""

    method: str = DEFAULT_METHOD
    settings: Settings = field(default_factory=lambda: Settings())
    limits: ServiceOptions = field(default_factory=ServiceOptions)
    keys: dict[str, str] = field(default_factory=dict)
    registry: AttributeRegistry = field(default_factory=lambda: DEFAULT_REGISTRY)
    preloaded: Method | None = None
    default_target: Target | None = None
    """The target of a request that names none (``--default-target``)."""
    generator: GeneratorOptions = field(default_factory=GeneratorOptions)
    calibration: Calibration | None = None
    """Maps applied to predictions before choosing (``--calibration``)."""

    def __post_init__(self) -> None:
        for key in self.keys.values():  # keys given in code, not read from an option, are secrets too
            register_secret(key)
