"""Decode several prompts at once as parallel sequences of one llama.cpp context.

The llamacpp backend's passes of one attribute (the response orders of single-pass scoring,
or the N samples) share their system message, examples and question; only the responses'
order differs. Sequence 0 holds that shared prefix; each pass gets a sequence of its own that
shares the prefix's KV cells (a unified KV cache, so sharing copies nothing), reads its own
tail, and is then decoded step by step in one batch with the others: one forward pass per
step serves every pass, which on a CPU costs little more than serving one (the weights are
read once per step). Each pass has its own grammar, temperature and seed, and the
log-probabilities of its digit tokens come from the raw logits (before the grammar), as the
scores need them.

Only llama.cpp's public C API (``llama_cpp``'s ctypes bindings) is used; the library's
``Llama`` object supplies the model, tokenizer and chat template.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pluralign.support import deadline
from pluralign.support.errors import JudgeError

N_BATCH = 512


@dataclass(frozen=True)
class Pass:
    """One prompt to answer: its tokens and how to sample the answer."""

    tokens: list[int]
    grammar: str | None
    """The answer's GBNF grammar; None: free text (a generator's candidate)."""
    temperature: float
    seed: int
    max_tokens: int
    top_logprobs: int = 0
    top_p: float = 0.95


@dataclass
class Decoded:
    """One answer: generated token ids, their text pieces and the top log-probabilities at
    the pieces that contain a digit (empty elsewhere)."""

    ids: list[int] = field(default_factory=list)
    pieces: list[str] = field(default_factory=list)
    logprobs: list[dict[str, float]] = field(default_factory=list)
    finish_reason: str = "stop"
    """``stop`` at an end-of-generation token, ``length`` at max_tokens or the context's end."""


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens two sequences share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class _Sampler:
    """How one pass draws its tokens: greedy, or top-k 40, top-p 0.95, min-p 0.05, temperature
    and a seeded draw (llama-cpp-python's chat defaults), under the answer's grammar.

    The grammar is checked last, as llama.cpp's own server does: the token drawn without it is
    kept when the grammar accepts it, and only otherwise is the grammar applied to the whole
    vocabulary and the token drawn again. Applying it to every one of 150,000 tokens at every
    step took a fifth of a decision. Greedy answers are the same either way (the most likely
    token the grammar accepts); sampled ones follow the same distribution up to the truncation.
    """

    def __init__(self, vocab: Any, n_vocab: int, p: Pass) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self._n_vocab = n_vocab
        self.grammar = None
        if p.grammar is not None:
            self.grammar = llama_cpp.llama_sampler_init_grammar(vocab, p.grammar.encode("utf-8"), b"root")
            if not self.grammar:
                raise JudgeError("llama.cpp could not parse the answer's grammar")
        self.chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        if p.temperature == 0:
            self._add(llama_cpp.llama_sampler_init_greedy())
        else:
            self._add(llama_cpp.llama_sampler_init_top_k(40))
            self._add(llama_cpp.llama_sampler_init_top_p(p.top_p, 1))
            self._add(llama_cpp.llama_sampler_init_min_p(0.05, 1))
            self._add(llama_cpp.llama_sampler_init_temp(p.temperature))
            self._add(llama_cpp.llama_sampler_init_dist(p.seed & 0xFFFFFFFF))

    def _add(self, sampler: Any) -> None:
        self._lib.llama_sampler_chain_add(self.chain, sampler)

    def sample(self, ctx: Any, index: int) -> int:
        """Draw (and accept) the next token from the logits of the last decode's ``index``-th token."""
        lib = self._lib
        token = int(lib.llama_sampler_sample(self.chain, ctx, index))
        if self.grammar is None:  # free text: the chain's draw stands
            return token
        logits = lib.llama_get_logits_ith(ctx, index)
        one = lib.llama_token_data(token, logits[token], 0.0)
        single = lib.llama_token_data_array(ctypes.pointer(one), 1, -1, False)
        lib.llama_sampler_apply(self.grammar, ctypes.byref(single))
        if math.isinf(one.logit):  # the grammar refuses it: draw again from what it allows
            token = self._constrained(logits)
        lib.llama_sampler_accept(self.grammar, token)
        return token

    def _constrained(self, logits: Any) -> int:
        import numpy as np

        lib = self._lib
        data = np.empty(self._n_vocab, dtype=_TOKEN_DATA)
        data["id"] = np.arange(self._n_vocab, dtype=np.int32)
        data["logit"] = np.ctypeslib.as_array(logits, shape=(self._n_vocab,))
        data["p"] = 0.0
        array = lib.llama_token_data_array(
            data.ctypes.data_as(ctypes.POINTER(lib.llama_token_data)), self._n_vocab, -1, False
        )
        lib.llama_sampler_apply(self.grammar, ctypes.byref(array))
        lib.llama_sampler_apply(self.chain, ctypes.byref(array))
        if array.selected < 0:
            raise JudgeError("llama.cpp's grammar allowed no token")
        return int(data["id"][array.selected])

    def free(self) -> None:
        self._lib.llama_sampler_free(self.chain)
        if self.grammar is not None:
            self._lib.llama_sampler_free(self.grammar)


_TOKEN_DATA = [("id", "<i4"), ("logit", "<f4"), ("p", "<f4")]
"""llama_token_data as a numpy record (12 bytes, as the C struct)."""


@dataclass
class _Running:
    seq: int
    spec: Pass
    sampler: _Sampler
    out: Decoded = field(default_factory=Decoded)
    pos: int = 0
    done: bool = False


class Decoder:
    """A llama.cpp context with ``1 + parallel`` sequences over the model of ``llm``;
    sequence 0 keeps the last shared prefix. Not thread-safe: the backend serialises calls."""

    def __init__(self, llm: Any, n_ctx: int, parallel: int) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self._llm = llm
        params = type(llm.context_params).from_buffer_copy(llm.context_params)  # threads, attention, ...
        params.n_ctx = n_ctx
        params.n_batch = params.n_ubatch = min(N_BATCH, n_ctx)
        params.n_seq_max = 1 + parallel
        params.kv_unified = True  # the passes share the prefix's cells instead of copying them
        self.ctx = llama_cpp.llama_init_from_model(llm.model, params)
        if not self.ctx:
            raise JudgeError(f"llama.cpp could not create a context of {n_ctx} tokens for {parallel} sequences")
        self.n_ctx = n_ctx
        self.parallel = parallel
        self.n_batch = int(params.n_batch)
        self._memory = llama_cpp.llama_get_memory(self.ctx)
        self._vocab = llama_cpp.llama_model_get_vocab(llm.model)
        self._n_vocab = int(llama_cpp.llama_vocab_n_tokens(self._vocab))
        self._batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        self.tokens: list[int] = []
        """What sequence 0 holds."""

    # -- sequence 0: the shared prefix ---------------------------------------------------------
    def extend(self, tokens: Sequence[int]) -> None:
        """Make sequence 0 hold exactly ``tokens``, reading only what it does not hold yet."""
        keep = common_prefix(self.tokens, tokens)
        self._lib.llama_memory_seq_rm(self._memory, 0, keep, -1)
        self.tokens = self.tokens[:keep]
        items = [(0, keep + k, t, False) for k, t in enumerate(tokens[keep:])]
        for start in range(0, len(items), self.n_batch):
            self._decode(items[start : start + self.n_batch])
        self.tokens = list(tokens)

    def state(self) -> bytes:
        """Sequence 0's KV cells, in llama.cpp's own per-sequence state format."""
        size = self._lib.llama_state_seq_get_size(self.ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        written = self._lib.llama_state_seq_get_data(self.ctx, buffer, size, 0)
        return bytes(memoryview(buffer)[:written])

    def restore(self, tokens: Sequence[int], data: bytes) -> bool:
        """Load a stored state of ``tokens`` into sequence 0; False (and sequence 0 empty) when
        llama.cpp does not accept it."""
        self._lib.llama_memory_seq_rm(self._memory, -1, 0, -1)
        self.tokens = []
        buffer = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if self._lib.llama_state_seq_set_data(self.ctx, buffer, len(data), 0) != len(data):
            self._lib.llama_memory_seq_rm(self._memory, -1, 0, -1)
            return False
        self.tokens = list(tokens)
        return True

    # -- the passes --------------------------------------------------------------------------
    def run(self, passes: Sequence[Pass]) -> list[Decoded]:
        """Answer passes that all start with sequence 0's tokens, each reading at least one token
        of its own, in sequences 1..len(passes)."""
        if not 0 < len(passes) <= self.parallel:
            raise ValueError(f"1 to {self.parallel} passes at a time, not {len(passes)}")
        shared = len(self.tokens)
        running: list[_Running] = []
        try:
            for k, p in enumerate(passes, start=1):
                assert p.tokens[:shared] == self.tokens and len(p.tokens) > shared
                running.append(_Running(k, p, _Sampler(self._vocab, self._n_vocab, p), pos=len(p.tokens)))
                self._lib.llama_memory_seq_cp(self._memory, 0, k, -1, -1)
            self._read_tails(running, shared)
            while any(not r.done for r in running):
                active = [r for r in running if not r.done]
                self._decode([(r.seq, r.pos - 1, r.out.ids[-1], True) for r in active])
                for index, r in enumerate(active):
                    self._step(r, index)
            return [r.out for r in running]
        finally:
            for r in running:
                r.sampler.free()
                self._lib.llama_memory_seq_rm(self._memory, r.seq, -1, -1)

    def _read_tails(self, running: Sequence[_Running], shared: int) -> None:
        """Read every pass's own tokens, as few decodes as the batch allows; each pass draws its
        first token from the logits of its last prompt token."""
        items = [(r.seq, pos, r.spec.tokens[pos], pos == len(r.spec.tokens) - 1) for r in running
                 for pos in range(shared, len(r.spec.tokens))]  # fmt: skip
        by_seq = {r.seq: r for r in running}
        for start in range(0, len(items), self.n_batch):
            chunk = items[start : start + self.n_batch]
            self._decode(chunk)
            for index, (seq, _, _, wanted) in enumerate(chunk):
                if wanted:
                    self._step(by_seq[seq], index)

    def _step(self, r: _Running, index: int) -> None:
        """Draw the next token of ``r`` from the logits of the last decode's ``index``-th token."""
        token = r.sampler.sample(self.ctx, index)
        if self._lib.llama_vocab_is_eog(self._vocab, token):
            r.done = True
            return
        piece = self._llm.detokenize([token]).decode("utf-8", errors="replace")
        r.out.ids.append(token)
        r.out.pieces.append(piece)
        r.out.logprobs.append(self._top(index, r.spec.top_logprobs) if r.spec.top_logprobs and _digit(piece) else {})
        r.pos += 1
        if len(r.out.ids) >= r.spec.max_tokens or r.pos >= self.n_ctx:
            r.done = True
            r.out.finish_reason = "length"

    def _top(self, index: int, top: int) -> dict[str, float]:
        """The ``top`` most likely tokens after the last decode's ``index``-th token, from the raw
        logits (before the grammar)."""
        import numpy as np

        logits = np.ctypeslib.as_array(self._lib.llama_get_logits_ith(self.ctx, index), shape=(self._n_vocab,))
        shifted = logits - logits.max()
        log_probs = shifted - math.log(float(np.exp(shifted).sum()))
        out: dict[str, float] = {}
        for t in np.argpartition(-log_probs, top)[:top]:
            text = self._llm.detokenize([int(t)]).decode("utf-8", errors="replace")
            lp = float(log_probs[t])
            previous = out.get(text)
            out[text] = lp if previous is None else float(np.logaddexp(previous, lp))
        return out

    def _decode(self, items: Sequence[tuple[int, int, int, bool]]) -> None:
        """One llama_decode of (sequence, position, token, wants logits) items; the deadline is
        checked first, so a deadline or a cancelled request stops within a step."""
        if not items:
            return
        deadline.check()
        batch = self._batch
        for i, (seq, pos, token, wanted) in enumerate(items):
            batch.token[i] = token
            batch.pos[i] = pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq
            batch.logits[i] = wanted
        batch.n_tokens = len(items)
        status = self._lib.llama_decode(self.ctx, batch)
        if status != 0:
            raise JudgeError(f"llama.cpp could not decode ({len(items)} tokens, status {status})")

    def close(self) -> None:
        if getattr(self, "ctx", None):
            self._lib.llama_batch_free(self._batch)
            self._lib.llama_free(self.ctx)
            self.ctx = None


def _digit(piece: str) -> bool:
    return any(ch.isdigit() for ch in piece)
