"""In-process llama.cpp (GGUF on CPU or GPU) with grammar-constrained JSON.

Prefix reuse: llama.cpp keeps the KV cache of the previous prompt and only evaluates the
tokens after the longest common prefix, so calls that share a system prompt and examples
are cheap when they run back to back (the methods order them so).

Log-probabilities: llama-cpp-python's own path needs ``logits_all`` (logits for every
prompt token) and sorts the whole vocabulary in Python for every generated token, which
made single-pass scoring slower than five samples. So the answer is generated as usual
and the distribution is recomputed afterwards only where the answer has digits (where
scores are): one single-token decode per such position, on the KV cache already there.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from pluralign import deadline
from pluralign.cpu import default_threads
from pluralign.errors import ContextLengthError, JudgeError, ModelNotFoundError
from pluralign.judges import BackendSpec, register_backend
from pluralign.judges.base import (
    ChatMessage,
    JudgeRequest,
    JudgeResult,
    RawAnswer,
    Usage,
    generate_valid,
)
from pluralign.judges.prefixes import DEFAULT_DISK_BYTES, DEFAULT_MEMORY_BYTES, PrefixStore, environment_key
from pluralign.judges.prefixes import default_dir as default_prefix_dir
from pluralign.options import Options, cli
from pluralign.weights import file_digest, resolve_gguf

# llama.cpp's JSON-schema grammar lets raw control characters into strings, which strict
# JSON rejects; tighten its "char" rule instead of re-asking.
_CHAR_RULE = 'char ::= [^"\\\\] |'
_STRICT_CHAR_RULE = 'char ::= [^"\\\\\\x00-\\x1F\\x7F] |'
_CONTEXT_RE = re.compile(r"Requested tokens \((\d+)\) exceed context window of (\d+)")
MIN_PREFIX_TOKENS = 32
"""Shorter shared beginnings are read again: a state costs more to store than they cost to read."""
log = logging.getLogger("pluralign.judges")


def _common(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens two sequences share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def schema_to_grammar_text(schema: dict[str, Any]) -> str:
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    return str(json_schema_to_gbnf(json.dumps(schema))).replace(_CHAR_RULE, _STRICT_CHAR_RULE)


class LlamaCppOptions(Options):
    """What can be set about the in-process llama.cpp judge."""

    n_ctx: int = Field(
        default=8192, ge=256, le=262_144, description="Context length (llamacpp).", json_schema_extra=cli()
    )
    threads: int | None = Field(
        default=None,
        ge=1,
        description="CPU threads for llama.cpp (default: the cores that are idle now, at least 1).",
        json_schema_extra=cli(),
    )
    gpu_layers: int = Field(
        default=0, ge=-1, description="Layers offloaded to a GPU (a CUDA build; -1: all).", json_schema_extra=cli()
    )
    prefix_cache: bool = Field(
        default=True,
        description="Do not keep the model's state after the shared beginning of a prompt (system message and "
        "examples) in memory and on disk: read every prompt whole. A restored prefix changes no answer.",
        json_schema_extra=cli("--no-prefix-cache", invert=True),
    )
    prefix_dir: Path | None = Field(default=None, description="Folder of the on-disk prefix store (default: home).")
    prefix_memory_bytes: int = Field(default=DEFAULT_MEMORY_BYTES, ge=0, description="Prefix states kept in memory.")
    prefix_disk_bytes: int = Field(default=DEFAULT_DISK_BYTES, ge=0, description="Prefix states kept on disk.")


class LlamaCppBackend:
    """A GGUF model loaded once; requests run one at a time (llama.cpp is not re-entrant)."""

    name = "llamacpp"

    def __init__(self, model: str, options: LlamaCppOptions | None = None) -> None:
        options = options or LlamaCppOptions()
        try:
            from llama_cpp import Llama
        except ImportError:
            raise ModelNotFoundError(
                "the llamacpp backend needs llama-cpp-python: pip install 'pluralign[llamacpp]'"
            ) from None
        self.model = model
        n_ctx = options.n_ctx
        self.n_threads = options.threads or default_threads()
        kwargs: dict[str, Any] = dict(
            n_ctx=n_ctx,
            n_threads=self.n_threads,
            n_threads_batch=self.n_threads,
            n_gpu_layers=options.gpu_layers,
            verbose=False,
        )
        if ":" in model and not Path(model).exists() and "/" in model.split(":")[0]:
            repo, filename = model.split(":", 1)
            try:  # online only: a Hugging Face repo and a file pattern
                self._llm = Llama.from_pretrained(repo_id=repo, filename=filename, **kwargs)
            except Exception as exc:
                raise ModelNotFoundError(f"could not load {model} from the Hugging Face hub: {exc}") from None
        else:
            path = resolve_gguf(model)
            self._llm = Llama(model_path=str(path), **kwargs)
        self._check_deadline_per_token()
        self.prefixes = self._prefix_store(options)
        self._prompt: tuple[bytes, bool, str] | None = None
        self._record_prompts()
        self._grammars: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.n_ctx = n_ctx

    def _check_deadline_per_token(self) -> None:
        """Check the current deadline before every decode (prompt batch or token), so a
        deadline, a cancelled request or Ctrl-C stops generation within a token.

        ``Llama.generate`` calls ``self.eval`` from Python for every step, so a check there
        raises normally. (A logits processor would not do: llama.cpp runs it as a ctypes
        callback, where a raised exception is printed and swallowed.)"""
        evaluate = self._llm.eval

        def checked_eval(tokens: Any) -> Any:
            deadline.check()
            return evaluate(tokens)

        self._llm.eval = checked_eval  # type: ignore[method-assign]

    # -- prefix states -------------------------------------------------------------------------
    def _prefix_store(self, options: LlamaCppOptions) -> PrefixStore | None:
        if not options.prefix_cache:
            return None
        identity = f"{file_digest(Path(self._llm.model_path))}; {environment_key()}; kv f16"
        folder = options.prefix_dir or default_prefix_dir()
        return PrefixStore(identity, folder, options.prefix_memory_bytes, options.prefix_disk_bytes)

    def _record_prompts(self) -> None:
        """Remember the text of the prompt the chat template renders (llama-cpp-python
        tokenizes it just before generating), so that the shared prefix can be found in it."""
        tokenize = self._tokenize = self._llm.tokenize
        generate = self._llm.generate

        def recording_tokenize(text: bytes, add_bos: bool = True, special: bool = False) -> Any:
            if self._prompt is not None and not self._prompt[0]:
                self._prompt = (text, add_bos, self._prompt[2])
            return tokenize(text, add_bos, special)

        def prefixed_generate(tokens: Any, *args: Any, **kwargs: Any) -> Any:
            tokens = list(tokens)
            if self.prefixes is not None and self._prompt is not None:
                self._use_prefix(tokens, *self._prompt)
            self._prompt = None
            return generate(tokens, *args, **kwargs)

        self._llm.tokenize = recording_tokenize  # type: ignore[method-assign]
        self._llm.generate = prefixed_generate  # type: ignore[method-assign]

    def _use_prefix(self, tokens: list[int], text: bytes, add_bos: bool, last: str) -> None:
        """Before ``tokens`` are read: restore the state after their shared prefix (everything
        up to the last message), or compute it once and keep it."""
        assert self.prefixes is not None
        cut = text.rfind(last.encode("utf-8")) if last else -1
        if cut <= 0:
            return
        head = list(self._tokenize(text[:cut], add_bos, True))
        n = min(_common(head, tokens), len(tokens) - 1)  # at least one token is read fresh
        if n < MIN_PREFIX_TOKENS:
            return
        prefix = tokens[:n]
        llm = self._llm
        have = _common([int(t) for t in llm.input_ids[: llm.n_tokens]], prefix)
        if have >= n:
            self.prefixes.stats.in_context += 1  # already in the context (the previous prompt shared it)
            return
        data = self.prefixes.get(prefix)
        if data is not None and self._restore(prefix, data):
            return
        llm.n_tokens = have
        llm.eval(prefix[have:])
        self.prefixes.put(prefix, self._state())

    def _state(self) -> bytes:
        import ctypes

        import llama_cpp

        ctx = self._llm.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, 0)
        return bytes(memoryview(buffer)[:written])

    def _restore(self, prefix: list[int], data: bytes) -> bool:
        import ctypes

        import llama_cpp

        llm = self._llm
        llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(llm.ctx), -1, 0, -1)
        buffer = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if llama_cpp.llama_state_seq_set_data(llm.ctx, buffer, len(data), 0) != len(data):
            log.warning("prefix store: a stored state did not load; computing the prefix again")
            llm.n_tokens = 0
            return False
        llm.input_ids[: len(prefix)] = prefix
        llm.n_tokens = len(prefix)
        return True

    @property
    def llama(self) -> Any:
        """The loaded ``llama_cpp.Llama``, so a benchmark can time the raw library on the same weights."""
        return self._llm

    def _grammar(self, schema: dict[str, Any]) -> Any:
        from llama_cpp.llama_grammar import LlamaGrammar

        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            self._grammars[key] = LlamaGrammar.from_string(schema_to_grammar_text(schema), verbose=False)
        return self._grammars[key]

    def _messages(self, messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
        return [m.model_dump() for m in messages]

    def _digit_logprobs(self, n_prompt: int, top: int) -> tuple[list[str], list[dict[str, float]]]:
        """The answer just generated, token by token, with the ``top`` most likely next tokens
        (log-probabilities, before the grammar) at every position whose token has a digit."""
        import llama_cpp
        import numpy as np

        llm = self._llm
        ids = [int(t) for t in llm.input_ids[: llm.n_tokens]]
        pieces = [llm.detokenize([t]).decode("utf-8", errors="replace") for t in ids[n_prompt:]]
        logprobs: list[dict[str, float]] = [{} for _ in pieces]
        wanted = [k for k, piece in enumerate(pieces) if any(ch.isdigit() for ch in piece)]
        # last first: each decode drops the KV cache after its position, which later
        # (earlier-positioned) decodes do not need
        for k in reversed(wanted):
            position = n_prompt + k  # the distribution of this token given everything before it
            llm.n_tokens = position - 1
            llm.eval([ids[position - 1]])
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),))
            shifted = logits - logits.max()
            log_probs = shifted - math.log(float(np.exp(shifted).sum()))
            best = np.argpartition(-log_probs, top)[:top]
            for t in best:
                text = llm.detokenize([int(t)]).decode("utf-8", errors="replace")
                lp = float(log_probs[t])
                previous = logprobs[k].get(text)
                logprobs[k][text] = lp if previous is None else float(np.logaddexp(previous, lp))
        return pieces, logprobs

    def _complete(self, request: JudgeRequest, seed: int) -> RawAnswer:
        settings = request.settings
        deadline.check()
        self._prompt = (b"", True, request.messages[-1].content if len(request.messages) > 1 else "")
        try:
            out: Any = self._llm.create_chat_completion(
                messages=self._messages(request.messages),  # type: ignore[arg-type]
                grammar=self._grammar(request.json_schema),
                temperature=settings.temperature,
                max_tokens=settings.max_tokens,
                seed=seed,
            )
        except ValueError as exc:
            match = _CONTEXT_RE.search(str(exc))
            if match:
                need, have = int(match.group(1)), int(match.group(2))
                raise ContextLengthError(
                    f"prompt needs {need} tokens but the context holds {have} ({need - have} too many); "
                    "use fewer examples or a larger --n-ctx"
                ) from None
            raise JudgeError(f"llama.cpp could not answer: {' '.join(str(exc).split())[:300]}") from None
        deadline.check()
        choice = out["choices"][0]
        usage = Usage(prompt_tokens=out["usage"]["prompt_tokens"], completion_tokens=out["usage"]["completion_tokens"])
        tokens = logprobs = None
        if settings.top_logprobs > 0:
            tokens, logprobs = self._digit_logprobs(usage.prompt_tokens, settings.top_logprobs)
        return RawAnswer(text=choice["message"]["content"] or "", usage=usage, tokens=tokens, logprobs=logprobs)

    def generate(self, requests: Sequence[JudgeRequest]) -> list[JudgeResult]:
        with self._lock:
            return [generate_valid(r, self._complete, f"llamacpp:{Path(self.model).name}") for r in requests]

    def close(self) -> None:
        llm: Any = getattr(self, "_llm", None)
        if llm is not None:
            llm.close()
            self._llm = None  # type: ignore[assignment]


register_backend(
    BackendSpec(
        name="llamacpp",
        summary="in-process llama.cpp on a GGUF file (CPU, or GPU with a CUDA build)",
        build=lambda model, options, cache: LlamaCppBackend(model, options),
        options=LlamaCppOptions,
        default_estimator="logprobs",
    )
)
