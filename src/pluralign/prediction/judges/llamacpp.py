"""In-process llama.cpp (GGUF on CPU or GPU) with grammar-constrained JSON.

A judgement pays only for what the judge has not read before:
- the model's state after a prompt's shared beginning (system message and examples) is kept
  in memory and on disk (:mod:`pluralign.prediction.judges.prefixes`) and restored, not read again;
- the passes of one attribute (response orders, samples) share that prefix and the question,
  and are decoded together as parallel sequences of one context
  (:mod:`pluralign.prediction.judges.llamacpp_decoder`): one forward pass a step serves them all.

Log-probabilities come from the raw logits of the step that drew each digit token, so
single-pass scoring costs no extra decode and no ``logits_all``.

One model per process: :meth:`LlamaCppBackend.shared` hands out one loaded backend per model
file and settings, counted, so the judge and an in-process generator (:mod:`..generators.llamacpp`)
read the same weights, context, decoder and prefix states; its candidates are free-text passes
of the same decoder, drawn together.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from pluralign.prediction.judges import BackendSpec, register_backend
from pluralign.prediction.judges.base import (
    ChatMessage,
    JudgeRequest,
    JudgeResult,
    LocalBackend,
    RawAnswer,
    Usage,
    generate_valid,
)
from pluralign.prediction.judges.llamacpp_decoder import Decoder, Pass
from pluralign.prediction.judges.llamacpp_decoder import common_prefix as _common
from pluralign.prediction.judges.prefixes import DEFAULT_DISK_BYTES, DEFAULT_MEMORY_BYTES, PrefixStore, environment_key
from pluralign.prediction.judges.prefixes import default_dir as default_prefix_dir
from pluralign.prediction.weights import file_digest, resolve_gguf
from pluralign.support.cpu import default_threads
from pluralign.support.errors import ContextLengthError, ModelNotFoundError
from pluralign.support.options import Options, cli

# llama.cpp's JSON-schema grammar lets raw control characters into strings, which strict
# JSON rejects; tighten its "char" rule instead of re-asking.
_CHAR_RULE = 'char ::= [^"\\\\] |'
_STRICT_CHAR_RULE = 'char ::= [^"\\\\\\x00-\\x1F\\x7F] |'
MIN_PREFIX_TOKENS = 32
"""Shorter shared beginnings are read again: a state costs more to store than they cost to read."""
log = logging.getLogger("pluralign.prediction.judges")


MODEL_CONTEXT = 64
"""Tokens of llama-cpp-python's own context, which pluralign uses only to tokenize."""


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
    parallel: int = Field(
        default=8,
        ge=1,
        le=32,
        description="Passes of one attribute (response orders, samples) decoded together as sequences of one "
        "context (1: one after another). Answers are the same either way, up to rounding in the kernels.",
        json_schema_extra=cli(),
    )
    prefix_dir: Path | None = Field(default=None, description="Folder of the on-disk prefix store (default: home).")
    prefix_memory_bytes: int = Field(default=DEFAULT_MEMORY_BYTES, ge=0, description="Prefix states kept in memory.")
    prefix_disk_bytes: int = Field(default=DEFAULT_DISK_BYTES, ge=0, description="Prefix states kept on disk.")


_SHARED: dict[tuple[Any, ...], LlamaCppBackend] = {}
_SHARED_LOCK = threading.Lock()


class LlamaCppBackend(LocalBackend):
    """A GGUF model loaded once; requests run one at a time (llama.cpp is not re-entrant),
    the passes of one attribute decoded together (:mod:`pluralign.prediction.judges.llamacpp_decoder`)."""

    name = "llamacpp"
    _shared_key: tuple[Any, ...] | None = None
    _users = 0

    @classmethod
    def shared(cls, model: str, options: LlamaCppOptions | None = None) -> LlamaCppBackend:
        """The process's backend for this model and these options, loaded on first use and
        counted: each user calls :meth:`close` once, and the last one frees the model."""
        options = options or LlamaCppOptions()
        key = (model, options.model_dump_json())
        with _SHARED_LOCK:
            found = _SHARED.get(key)
            if found is not None and found._llm is not None:
                found._users += 1
                return found
            backend = cls(model, options)
            backend._shared_key, backend._users = key, 1
            _SHARED[key] = backend
            return backend

    def __init__(self, model: str, options: LlamaCppOptions | None = None) -> None:
        options = options or LlamaCppOptions()
        try:
            from llama_cpp import Llama
        except ImportError:
            raise ModelNotFoundError(
                "the llamacpp backend needs llama-cpp-python: pip install 'pluralign[llamacpp]'"
            ) from None
        self.model = model
        self.n_threads = options.threads or default_threads()
        kwargs: dict[str, Any] = dict(
            n_ctx=MODEL_CONTEXT,  # the library's own context only tokenizes; the decoder's holds the prompts
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
        self.n_ctx = options.n_ctx
        self.parallel = options.parallel
        self._decoder = Decoder(self._llm, options.n_ctx, options.parallel)
        self._template = _chat_template(self._llm)
        self.prefixes = self._prefix_store(options)
        self._grammars: dict[str, str] = {}
        self._lock = threading.Lock()
        self.last_ids: list[int] = []
        """Prompt and answer tokens of the last pass decoded (for tests and benchmarks)."""

    @property
    def llama(self) -> Any:
        """The loaded ``llama_cpp.Llama`` (model, tokenizer, chat template)."""
        return self._llm

    @property
    def model_path(self) -> Path:
        return Path(self._llm.model_path)

    def reset(self) -> None:
        """Forget what the context holds: the next prompt is read from the prefix store or from
        the start (benchmarks of a cold judge)."""
        with self._lock:
            self._decoder.extend([])

    # -- prompts -------------------------------------------------------------------------------
    def _prompt(self, messages: Sequence[ChatMessage]) -> tuple[list[int], int]:
        """The chat template's tokens for ``messages``, and how many of them come before the
        last message (the prefix that passes and later decisions share)."""
        response = self._template(messages=[m.model_dump() for m in messages])
        text: str = response.prompt
        add_bos = not response.added_special
        tokens = [int(t) for t in self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)]
        last = messages[-1].content if len(messages) > 1 else ""
        cut = text.rfind(last) if last else -1
        if cut <= 0:
            return tokens, 0
        head = self._llm.tokenize(text[:cut].encode("utf-8"), add_bos=add_bos, special=True)
        return tokens, _common(head, tokens)

    def _grammar(self, schema: dict[str, Any]) -> str:
        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            self._grammars[key] = schema_to_grammar_text(schema)
        return self._grammars[key]

    # -- prefix states -------------------------------------------------------------------------
    def _prefix_store(self, options: LlamaCppOptions) -> PrefixStore | None:
        if not options.prefix_cache:
            return None
        identity = f"{file_digest(self.model_path)}; {environment_key()}; kv f16 unified"
        folder = options.prefix_dir or default_prefix_dir()
        return PrefixStore(identity, folder, options.prefix_memory_bytes, options.prefix_disk_bytes)

    def _ready(self, shared: list[int], head: int) -> None:
        """Make the decoder's sequence 0 hold ``shared``: what the context holds already stays,
        the first ``head`` tokens (everything before the last message) come from the prefix
        store when it has them, and are stored when it does not."""
        decoder = self._decoder
        if self.prefixes is not None and head >= MIN_PREFIX_TOKENS:
            prefix = shared[:head]
            if _common(decoder.tokens, prefix) >= head:
                self.prefixes.stats.in_context += 1  # the previous prompt shared it
            else:
                data = self.prefixes.get(prefix)
                if data is None or not decoder.restore(prefix, data):
                    if data is not None:
                        log.warning("prefix store: a stored state did not load; computing the prefix again")
                    decoder.extend(prefix)
                    self.prefixes.put(prefix, decoder.state())
        decoder.extend(shared)

    # -- answers -------------------------------------------------------------------------------
    def _fitting(self, messages: Sequence[ChatMessage]) -> tuple[list[int], int]:
        """The prompt's tokens and head, or a ContextLengthError that says by how much it is over."""
        tokens, head = self._prompt(messages)
        if len(tokens) >= self.n_ctx:
            need = len(tokens) + 1
            raise ContextLengthError(
                f"prompt needs {need} tokens but the context holds {self.n_ctx} ({need - self.n_ctx} too many); "
                "use fewer examples or a larger --n-ctx"
            )
        return tokens, head

    def write(
        self,
        messages: Sequence[ChatMessage],
        k: int,
        temperature: float,
        max_tokens: int,
        seed: int,
        top_p: float = 0.95,
        schema: dict[str, Any] | None = None,
    ) -> list[RawAnswer]:
        """``k`` answers to a conversation (a generator's candidates): free text, or JSON under
        ``schema`` (a grammar, as the judge's answers are), seeds ``seed``, ``seed + 1``, ...,
        decoded together as the judge's passes are, on the judge's own context."""
        with self._lock:
            tokens, head = self._fitting(messages)
            budget = min(max_tokens, self.n_ctx - len(tokens))
            grammar = self._grammar(schema) if schema is not None else None
            passes = [
                (0, seed + i, Pass(tokens, grammar, temperature, seed + i, budget, top_p=top_p), head) for i in range(k)
            ]
            return [answer for group in self._groups(passes) for answer in self._decode_group(group)]

    def _passes(self, requests: Sequence[JudgeRequest]) -> list[tuple[int, int, Pass, int]]:
        """Every request's first attempts as passes: (request index, seed, pass, head)."""
        out = []
        for i, request in enumerate(requests):
            tokens, head = self._fitting(request.messages)
            s = request.settings
            for k in range(s.n):
                spec = Pass(
                    tokens=tokens,
                    grammar=self._grammar(request.json_schema),
                    temperature=s.temperature,
                    seed=s.seed + k,
                    max_tokens=min(s.max_tokens, self.n_ctx - len(tokens)),
                    top_logprobs=s.top_logprobs,
                )
                out.append((i, s.seed + k, spec, head))
        return out

    def _groups(self, passes: list[tuple[int, int, Pass, int]]) -> list[list[tuple[int, int, Pass, int]]]:
        """Consecutive passes of the same conversation head, as many as the decoder runs at once
        and the context has cells for (the shared prefix once, each pass's tail and answer)."""
        groups: list[list[tuple[int, int, Pass, int]]] = []
        cells = 0
        for item in passes:
            spec, head = item[2], item[3]
            current = groups[-1] if groups else None
            if current is not None:
                first = current[0][2].tokens
                own = len(spec.tokens) - _common(first, spec.tokens) + spec.max_tokens
                same_head = head == current[0][3] and spec.tokens[:head] == first[:head]
                if same_head and len(current) < self.parallel and cells + own <= self.n_ctx:
                    current.append(item)
                    cells += own
                    continue
            groups.append([item])
            cells = len(spec.tokens) + spec.max_tokens
        return groups

    def _decode_group(self, group: list[tuple[int, int, Pass, int]]) -> list[RawAnswer]:
        specs = [item[2] for item in group]
        shared = specs[0].tokens
        for spec in specs[1:]:
            shared = shared[: _common(shared, spec.tokens)]
        shared = shared[: min(len(s.tokens) for s in specs) - 1]  # every pass reads a token of its own
        self._ready(shared, min(group[0][3], len(shared)))
        decoded = self._decoder.run(specs)
        self.last_ids = specs[-1].tokens + decoded[-1].ids
        answers = []
        for spec, d in zip(specs, decoded, strict=True):
            text = self._llm.detokenize(d.ids).decode("utf-8", errors="ignore")
            usage = Usage(prompt_tokens=len(spec.tokens), completion_tokens=len(d.ids))
            if spec.top_logprobs > 0:
                answers.append(RawAnswer(text=text, usage=usage, tokens=d.pieces, logprobs=d.logprobs))
            else:
                answers.append(RawAnswer(text=text, usage=usage, finish_reason=d.finish_reason))
        return answers

    def _first_answers(self, requests: Sequence[JudgeRequest]) -> dict[tuple[int, int], RawAnswer]:
        answers: dict[tuple[int, int], RawAnswer] = {}
        for group in self._groups(self._passes(requests)):
            for (i, seed, _, _), answer in zip(group, self._decode_group(group), strict=True):
                answers[(i, seed)] = answer
        return answers

    def _complete(self, request: JudgeRequest, seed: int) -> RawAnswer:
        """One pass on its own (a re-ask)."""
        one = request.model_copy(update={"settings": request.settings.model_copy(update={"seed": seed, "n": 1})})
        return self._decode_group(self._groups(self._passes([one]))[0])[0]

    def generate(self, requests: Sequence[JudgeRequest]) -> list[JudgeResult]:
        """First attempts decoded together; a re-ask (an invalid answer) runs on its own. The
        time of the decoding together is shared among the requests by their passes."""
        name = f"llamacpp:{self.model_path.name}"
        with self._lock:
            started = time.perf_counter()
            first = self._first_answers(requests)
            together = time.perf_counter() - started
            passes = sum(r.settings.n for r in requests) or 1
            results = []
            for i, request in enumerate(requests):

                def complete(req: JudgeRequest, seed: int, i: int = i) -> RawAnswer:
                    found = first.pop((i, seed), None) if req is requests[i] else None
                    return found if found is not None else self._complete(req, seed)

                result = generate_valid(request, complete, name)
                result.seconds += together * request.settings.n / passes
                results.append(result)
            return results

    def close(self) -> None:
        if self._shared_key is not None:
            with _SHARED_LOCK:
                self._users -= 1
                if self._users > 0:
                    return  # another user (the judge, a generator) still reads this model
                _SHARED.pop(self._shared_key, None)
        decoder: Any = getattr(self, "_decoder", None)
        if decoder is not None:
            decoder.close()
            self._decoder = None  # type: ignore[assignment]
        llm: Any = getattr(self, "_llm", None)
        if llm is not None:
            llm.close()
            self._llm = None  # type: ignore[assignment]


def _chat_template(llm: Any) -> Any:
    """The GGUF's chat template as llama-cpp-python renders it (``chat_template.default``), or
    ChatML, with a warning, for a model file without one."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        log.warning("the model file has no chat template; using ChatML")
        template = CHATML

    def text(token: int) -> str:
        return llm.detokenize([token], special=True).decode("utf-8", errors="replace") if token != -1 else ""

    return Jinja2ChatFormatter(template=template, eos_token=text(llm.token_eos()), bos_token=text(llm.token_bos()))


CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


register_backend(
    BackendSpec(
        name="llamacpp",
        summary="in-process llama.cpp on a GGUF file (CPU, or GPU with a CUDA build)",
        build=lambda model, options, cache: LlamaCppBackend.shared(model, options),
        options=LlamaCppOptions,
        default_estimator="logprobs",
    )
)
