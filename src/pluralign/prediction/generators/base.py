"""What every generator shares: its options, how candidates are drawn, what comes back, and the
:class:`Generator` protocol (one generator per module of this package)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Protocol

from pydantic import AfterValidator, BaseModel, Field

from pluralign.prediction.judges.base import ChatMessage, Usage
from pluralign.support.options import Options, cli
from pluralign.support.redact import SecretEnv, register_url
from pluralign.support.strict import Filled

DEFAULT_CANDIDATES = 4
DEFAULT_GENERATOR_TEMPERATURE = 0.8


def _gen(flag: str | None = None) -> dict:  # type: ignore[type-arg]
    return cli(flag, group="generator")


class GeneratorOptions(Options):
    """Where candidates come from and how many."""

    candidates: int = Field(
        default=DEFAULT_CANDIDATES, ge=2, le=16, description="Candidates drawn per request.", json_schema_extra=_gen()
    )
    generator_base_url: Annotated[Filled, AfterValidator(register_url)] | None = Field(
        default=None,
        description="An OpenAI-compatible server that writes the candidates (default: the local llama.cpp model).",
        json_schema_extra=_gen(),
    )
    generator_model: Filled | None = Field(
        default=None,
        description="The generator's model (a server's model name; locally a GGUF alias or path, default the judge's).",
        json_schema_extra=_gen(),
    )
    generator_api_key_env: SecretEnv | None = Field(
        default=None,
        min_length=1,
        description="Environment variable with the generator's key.",
        json_schema_extra=_gen(),
    )
    generator_temperature: float = Field(
        default=DEFAULT_GENERATOR_TEMPERATURE,
        ge=0.0,
        le=2.0,
        description="Temperature of the candidates when the request gives none.",
        json_schema_extra=_gen(),
    )
    generator_max_tokens: int = Field(
        default=512, ge=1, le=32_768, description="Most tokens per candidate when the request gives none.",
        json_schema_extra=_gen(),
    )  # fmt: skip
    generator_timeout: float = Field(
        default=120.0, gt=0, le=3600, description="Seconds a generator request may take.", json_schema_extra=_gen()
    )


class Draw(BaseModel):
    """How to draw the candidates of one request: the sampling settings an application sent,
    passed on to the generator (one that cannot honour one refuses it, naming it)."""

    k: int = Field(ge=1)
    temperature: float = Field(ge=0.0, le=2.0)
    max_tokens: int = Field(ge=1)
    seed: int = 0
    top_p: float | None = None
    stop: list[str] = []
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool = False
    top_logprobs: int | None = None
    response_format: dict[str, Any] | None = None
    """The OpenAI ``response_format`` object (``json_object``, ``json_schema``), or None for text."""


class Candidates(BaseModel):
    texts: list[str]
    usage: Usage = Usage()
    model: str
    finish_reasons: list[str] = []
    """Why each candidate ended ("stop", "length"), as its generator said; empty if it did not."""
    logprobs: list[dict[str, Any] | None] = []
    """Each candidate's log-probabilities in the OpenAI form (``{"content": [...]}``), when asked."""

    def finish_reason(self, index: int) -> str:
        return self.finish_reasons[index] if index < len(self.finish_reasons) else "stop"

    def logprobs_of(self, index: int) -> dict[str, Any] | None:
        return self.logprobs[index] if index < len(self.logprobs) else None


class Generator(Protocol):
    """Writes ``draw.k`` candidate answers to a conversation.

    ``in_process`` generators compute on this machine's cores: the service runs their
    ``generate_sync`` on the judge's worker (one at a time, under the request's deadline);
    the others are awaited on the event loop (network I/O only)."""

    model: str
    in_process: bool

    async def generate(self, messages: Sequence[ChatMessage], draw: Draw) -> Candidates: ...

    def generate_sync(self, messages: Sequence[ChatMessage], draw: Draw) -> Candidates: ...

    async def ready(self) -> str | None:
        """None when it can answer now; else why not (a server generator: whether it answers)."""
        ...

    async def aclose(self) -> None: ...

    def close(self) -> None:
        """Give back what a one-off (synchronous) use holds."""
