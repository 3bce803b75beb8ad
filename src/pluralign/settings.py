"""One settings object for a method and its judge, from the CLI, the Python API and the
service alike.

Every default and every help text is declared here once (the CLI builds its options from
these fields). Settings are frozen: a per-request override is a copy made with
``model_copy``/:meth:`Settings.override`, never a change to a shared object. Combinations
that cannot work together are rejected with a message, never silently changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pluralign.errors import InputError, validation_message

DEFAULT_MODEL = "qwen2.5-coder-1.5b"
DEFAULT_TEMPERATURE = 0.7
SCALE = 100


def _cli(flag: str | None = None, invert: bool = False, group: str = "judge") -> dict[str, Any]:
    """Field metadata for the CLI: its flag (default ``--field-name``), and for booleans
    whether the flag turns the setting off (``--no-cache`` for ``cache``)."""
    return {"cli_flag": flag, "cli_invert": invert, "cli_group": group}


class Settings(BaseModel):
    """How a method and its judge run (see each field's description)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # -- the judge backend -------------------------------------------------------------------
    backend: str = Field(
        default="llamacpp", description="Judge backend (see `pluralign backends`).", json_schema_extra=_cli()
    )
    model: str = Field(
        default=DEFAULT_MODEL,
        description="Offline alias, .gguf path, HF id (online), or a served model name.",
        json_schema_extra=_cli(),
    )
    base_urls: list[str] = Field(
        default_factory=list,
        description="OpenAI-compatible base URL; repeat for replicas.",
        json_schema_extra=_cli("--base-url"),
    )
    api_key_env: str = Field(
        default="OPENAI_API_KEY",
        description="Environment variable holding the upstream API key.",
        json_schema_extra=_cli(),
    )
    concurrency: int = Field(
        default=8, ge=1, description="Concurrent requests per server (openai).", json_schema_extra=_cli()
    )
    timeout: float = Field(
        default=120.0,
        gt=0,
        le=86_400,
        allow_inf_nan=False,
        description="Seconds one upstream call may take (openai).",
        json_schema_extra=_cli(),
    )
    max_retries: int = Field(
        default=4, ge=0, description="Retries of a failed upstream call (openai).", json_schema_extra=_cli()
    )
    n_ctx: int = Field(
        default=8192, ge=256, le=262_144, description="Context length (llamacpp).", json_schema_extra=_cli()
    )
    threads: int | None = Field(
        default=None,
        ge=1,
        description="CPU threads for llama.cpp (default: the cores that are idle now, at least 1).",
        json_schema_extra=_cli(),
    )
    response_format: Literal["auto", "json_schema", "json_object"] = Field(
        default="auto",
        description="How servers are asked for JSON: json_schema (vLLM, OpenAI), json_object with a schema "
        "(llama.cpp's server), or auto (try the first, fall back to the second).",
        json_schema_extra=_cli(),
    )
    batch_dir: Path | None = Field(
        default=None, description="Folder for OpenAI Batch request files (--backend batch).", json_schema_extra=_cli()
    )
    # -- generation ----------------------------------------------------------------------------
    samples: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="Samples per attribute (default: the method's, see `pluralign methods`; with --scoring "
        "logprobs, greedy passes, one per response order).",
        json_schema_extra=_cli(group="generation"),
    )
    temperature: float | None = Field(
        default=None,
        ge=0.0,
        le=2.0,
        description=f"Sampling temperature (default {DEFAULT_TEMPERATURE}; 0 with --scoring logprobs).",
        json_schema_extra=_cli(group="generation"),
    )
    max_tokens: int = Field(
        default=1024,
        ge=16,
        le=32_768,
        description="Most tokens per answer.",
        json_schema_extra=_cli(group="generation"),
    )
    scoring: Literal["auto", "sample", "logprobs"] = Field(
        default="auto",
        description="sample: the mean of N sampled answers (the paper); logprobs: greedy answers, the expected "
        "score under the judge's token probabilities, one pass per order of the responses (each response at each "
        "letter once; --samples sets the number of passes); auto: logprobs on the llamacpp backend when neither "
        "--samples nor --temperature is given (see docs/results.md), else sample.",
        json_schema_extra=_cli(group="generation"),
    )
    scale: int = Field(
        default=SCALE,
        ge=2,
        le=1000,
        description="Scores are asked on 0..scale and divided by it (the paper: 100).",
        json_schema_extra=_cli(group="generation"),
    )
    shuffle: bool = Field(
        default=True,
        description="Shuffle the responses in every sample.",
        json_schema_extra=_cli("--no-shuffle", invert=True, group="generation"),
    )
    max_attempts: int = Field(
        default=3,
        ge=1,
        le=20,
        description="Tries per answer before giving up on valid JSON.",
        json_schema_extra=_cli(group="generation"),
    )
    prompts: Path | None = Field(
        default=None,
        description="Folder of prompt templates that replace pluralign's (same file names).",
        json_schema_extra=_cli(group="generation"),
    )
    # -- few-shot examples ---------------------------------------------------------------------
    examples: Path | None = Field(
        default=None,
        description="Labelled examples (train.json or a benchmark folder); default: the benchmark's train set "
        "or pluralign's own bank.",
        json_schema_extra=_cli(group="examples"),
    )
    similarity: Literal["embedding", "bm25", "random"] = Field(
        default="embedding", description="How few-shot examples are ranked.", json_schema_extra=_cli(group="examples")
    )
    icl_rule: Literal["levels", "top"] = Field(
        default="levels",
        description="levels: the most similar example per score level (the paper); top: the most similar.",
        json_schema_extra=_cli(group="examples"),
    )
    n_examples: int | None = Field(
        default=None, ge=0, description="At most this many few-shot examples.", json_schema_extra=_cli(group="examples")
    )
    example_max_chars: int | None = Field(
        default=None,
        ge=1,
        description="Clip each example text to this many characters.",
        json_schema_extra=_cli(group="examples"),
    )
    # -- caching -------------------------------------------------------------------------------
    cache: bool = Field(
        default=True,
        description="Do not read or write the judgement cache.",
        json_schema_extra=_cli("--no-cache", invert=True, group="cache"),
    )
    cache_path: Path | None = Field(
        default=None, description="Judgement cache file (SQLite).", json_schema_extra=_cli("--cache", group="cache")
    )
    # -- methods without an LLM ----------------------------------------------------------------
    scorer: Literal["ridge", "knn"] = Field(
        default="ridge", description="embedding method: ridge or knn.", json_schema_extra=_cli(group="other")
    )
    reward_model: str | None = Field(
        default=None,
        description="Reward model (HF id or folder) for --method reward-model.",
        json_schema_extra=_cli(group="other"),
    )
    # -- set by the program, not a CLI option --------------------------------------------------
    benchmark_dir: Path | None = Field(default=None, description="Benchmark whose train set gives examples.")

    @property
    def scoring_mode(self) -> Literal["sample", "logprobs"]:
        """What ``auto`` means for these settings."""
        if self.scoring != "auto":
            return self.scoring
        if self.backend == "llamacpp" and self.samples is None and self.temperature is None:
            return "logprobs"
        return "sample"

    @model_validator(mode="after")
    def _compatible(self) -> Settings:
        if self.scoring == "logprobs":
            if self.temperature not in (None, 0.0):
                raise ValueError(
                    f"--scoring logprobs decodes greedily; drop --temperature {self.temperature} "
                    "or use --scoring sample"
                )
        return self

    # -- resolved values -----------------------------------------------------------------------
    def samples_or(self, method_default: int) -> int:
        return self.samples if self.samples is not None else method_default

    @property
    def sampling_temperature(self) -> float:
        if self.temperature is not None:
            return self.temperature
        return 0.0 if self.scoring_mode == "logprobs" else DEFAULT_TEMPERATURE

    def override(self, **changes: Any) -> Settings:
        """A validated copy with some fields changed (None values are ignored)."""
        return make_settings({**self.model_dump(), **{k: v for k, v in changes.items() if v is not None}})


def make_settings(values: dict[str, Any] | None = None, **more: Any) -> Settings:
    """Settings from plain values, or an InputError naming the option at fault."""
    try:
        return Settings.model_validate({**(values or {}), **more})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        info = Settings.model_fields.get(field)
        extra = info.json_schema_extra if info is not None and isinstance(info.json_schema_extra, dict) else {}
        flag = extra.get("cli_flag") or ("--" + field.replace("_", "-") if field else "")
        if not field:  # a model-level check: its message names the options itself
            raise InputError(validation_message(exc)) from None
        raise InputError(f"{flag}: {str(first['msg']).removeprefix('Value error, ')}") from None
