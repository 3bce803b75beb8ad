"""Hugging Face transformers with schema-constrained decoding by xgrammar.

Why xgrammar: measured here on SmolLM2 it compiles the comparative-judgement schema in
about 1 s and plugs into ``generate`` as a logits processor with batching, where outlines
0.2 needed about 120 s to build a JSON generator (docs/results.md); llguidance needs
more glue for the same result. Requests are batched (left padding) and re-asked in rounds.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from pluralign.prediction.judges import BackendSpec, register_backend
from pluralign.prediction.judges.base import (
    AnswerCollector,
    ChatMessage,
    JudgeRequest,
    JudgeResult,
    LocalBackend,
    RawAnswer,
    Usage,
)
from pluralign.prediction.weights import MODELS, fetch
from pluralign.support import deadline
from pluralign.support.errors import ContextLengthError, ModelNotFoundError
from pluralign.support.options import Options


def _load_source(model: str) -> tuple[str, dict[str, Any]]:
    """(path or hub id, extra from_pretrained kwargs) for an alias, GGUF file, dir or hub id."""
    if model in MODELS:
        path = fetch(model)
        return str(path.parent), {"gguf_file": path.name}
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return str(path.parent), {"gguf_file": path.name}
    if path.exists():
        return str(path), {}
    if model.startswith((".", "/", "~")):
        raise ModelNotFoundError(f"model path {path} does not exist")
    return model, {}  # a Hugging Face id (online)


class TransformersOptions(Options):
    """What can be set about the transformers judge."""

    batch_size: int = Field(default=8, ge=1, description="Prompts decoded together.")
    device: str | None = Field(default=None, description="torch device (default: cuda when there is one, else cpu).")
    dtype: Literal["float32", "float16", "bfloat16"] = Field(default="float32", description="Weights' dtype.")


class TransformersBackend(LocalBackend):
    name = "transformers"

    def __init__(self, model: str, options: TransformersOptions | None = None) -> None:
        from pluralign.support.hf import quiet

        options = options or TransformersOptions()
        batch_size, device, dtype = options.batch_size, options.device, options.dtype

        quiet()
        try:
            import torch
            import xgrammar as xgr
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError:
            raise ModelNotFoundError(
                "the transformers backend needs torch, transformers and xgrammar: pip install 'pluralign[transformers]'"
            ) from None
        self.model = model
        source, extra = _load_source(model)
        try:
            self._tok = AutoTokenizer.from_pretrained(source, **extra)
            self._lm = AutoModelForCausalLM.from_pretrained(source, dtype=getattr(torch, dtype), **extra)
        except OSError as exc:
            raise ModelNotFoundError(f"could not load {model}: {' '.join(str(exc).split())[:300]}") from None
        self._device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._lm.to(self._device).eval()  # type: ignore[arg-type]
        if self._tok.pad_token is None:
            self._tok.pad_token = self._tok.eos_token
        self._tok.padding_side = "left"
        info = xgr.TokenizerInfo.from_huggingface(self._tok, vocab_size=self._lm.config.vocab_size)
        self._compiler = xgr.GrammarCompiler(info)
        self._grammars: dict[str, Any] = {}
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._max_len = int(getattr(self._lm.config, "max_position_embeddings", 8192))

    def _grammar(self, schema: dict[str, Any]) -> Any:
        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            self._grammars[key] = self._compiler.compile_json_schema(key, any_whitespace=False)
        return self._grammars[key]

    def render(self, messages: Sequence[ChatMessage]) -> str:
        """The tokenizer's chat template; a system message joins the first user turn when
        the template has no system role (as the paper did)."""
        import jinja2

        dialog = [m.model_dump() for m in messages]
        try:
            text = self._tok.apply_chat_template(dialog, tokenize=False, add_generation_prompt=True)
        except jinja2.TemplateError:
            if len(dialog) < 2 or dialog[0]["role"] != "system" or dialog[1]["role"] != "user":
                raise
            merged = {"role": "user", "content": dialog[0]["content"] + "\n" + dialog[1]["content"]}
            text = self._tok.apply_chat_template([merged, *dialog[2:]], tokenize=False, add_generation_prompt=True)
        return str(text)

    def _batch(self, items: list[tuple[JudgeRequest, int]]) -> list[RawAnswer]:
        import torch
        import xgrammar as xgr

        texts = [self.render(r.messages) for r, _ in items]
        enc = self._tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self._device)
        width = enc["input_ids"].shape[1]
        settings = items[0][0].settings
        if width + settings.max_tokens > self._max_len:
            raise ContextLengthError(
                f"prompt needs {width + settings.max_tokens} tokens with the answer but the model holds "
                f"{self._max_len} ({width + settings.max_tokens - self._max_len} too many)"
            )
        torch.manual_seed(items[0][1])
        processor = xgr.contrib.hf.LogitsProcessor([self._grammar(r.json_schema) for r, _ in items])
        sample = settings.temperature > 0
        extra: dict[str, Any] = {}
        limit = deadline.current()
        if limit is not None:
            from transformers import StoppingCriteria, StoppingCriteriaList

            class _Deadline(StoppingCriteria):  # type: ignore[misc]
                def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
                    return limit is not None and limit.expired()

            extra["stopping_criteria"] = StoppingCriteriaList([_Deadline()])
        with torch.no_grad():
            out = self._lm.generate(
                **enc,
                max_new_tokens=settings.max_tokens,
                do_sample=sample,
                temperature=settings.temperature if sample else None,
                top_p=None,
                top_k=None,
                logits_processor=[processor],
                pad_token_id=self._tok.pad_token_id,
                **extra,
            )
        deadline.check()
        answers = []
        for row, mask in zip(out, enc["attention_mask"], strict=True):
            generated = row[width:]
            n_new = int((generated != self._tok.pad_token_id).sum())
            answers.append(
                RawAnswer(
                    text=str(self._tok.decode(generated, skip_special_tokens=True)),
                    usage=Usage(prompt_tokens=int(mask.sum()), completion_tokens=n_new),
                )
            )
        return answers

    def generate(self, requests: Sequence[JudgeRequest]) -> list[JudgeResult]:
        with self._lock:
            collectors = [AnswerCollector(r, f"transformers:{self.model}") for r in requests]
            iters: list[Iterator[int] | None] = [c.seeds() for c in collectors]
            while True:
                pending: list[tuple[JudgeRequest, int, int]] = []
                for i, it in enumerate(iters):
                    if it is None:
                        continue
                    try:
                        seed = next(it)
                    except StopIteration:
                        iters[i] = None
                        continue
                    pending.append((collectors[i].current, i, seed))
                if not pending:
                    break
                # batch requests that share settings (max tokens, temperature)
                for start in range(0, len(pending), self.batch_size):
                    chunk = pending[start : start + self.batch_size]
                    groups: dict[str, list[tuple[JudgeRequest, int, int]]] = {}
                    for req, i, seed in chunk:
                        key = req.settings.model_dump_json(include={"max_tokens", "temperature"})
                        groups.setdefault(key, []).append((req, i, seed))
                    for group in groups.values():
                        answers = self._batch([(req, seed) for req, _, seed in group])
                        for (_, i, _), answer in zip(group, answers, strict=True):
                            collectors[i].offer(answer)
            return [c.result() for c in collectors]

    def close(self) -> None:
        self._lm = None  # type: ignore[assignment]


register_backend(
    BackendSpec(
        name="transformers",
        summary="Hugging Face transformers with xgrammar-constrained JSON (GPU or CPU)",
        build=lambda model, options, cache: TransformersBackend(model, options),
        options=TransformersOptions,
    )
)
