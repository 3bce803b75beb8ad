"""In-context examples: per-attribute example banks and similarity indexes.

The paper's rule: rank the labelled examples by similarity to the query, then for each
distinct score level take the most similar example that contains it. Similarity is over
the question and responses (not the attribute), so one index serves every attribute.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import Field

from pluralign.choice.attributes import Attribute
from pluralign.choice.probes import Probe, load_probes
from pluralign.choice.selection import select
from pluralign.choice.targets import AlignmentTarget
from pluralign.prediction import prompts
from pluralign.prediction.prompts import SCALE
from pluralign.support.errors import InputError
from pluralign.support.options import Options, cli

IndexKind = Literal["embedding", "bm25", "random"]
SelectionRule = Literal["levels", "top", "fixed"]


class ExampleOptions(Options):
    """Where labelled examples come from."""

    examples: Path | None = Field(
        default=None,
        description="Labelled examples (train.json or a benchmark folder); default: the benchmark's train set "
        "or pluralign's own bank.",
        json_schema_extra=cli(group="examples"),
    )


class ExampleSelectionOptions(ExampleOptions):
    """How examples are picked for a query."""

    similarity: IndexKind = Field(
        default="embedding", description="How few-shot examples are ranked.", json_schema_extra=cli(group="examples")
    )
    n_examples: int | None = Field(
        default=None, ge=0, description="At most this many few-shot examples.", json_schema_extra=cli(group="examples")
    )
    example_max_chars: int | None = Field(
        default=None,
        ge=1,
        description="Clip each example text to this many characters.",
        json_schema_extra=cli(group="examples"),
    )


class FewShotOptions(ExampleSelectionOptions):
    """The few-shot rule of comparative regression."""

    icl_rule: Literal["auto", "levels", "top", "fixed"] = Field(
        default="auto",
        description="levels: the most similar example per score level (the paper); top: the most similar; "
        "fixed: the bank's first example per score level, the same for every question (so the judge's state "
        "after the examples is reused across decisions); auto: fixed with pluralign's own example bank (as "
        "accurate on the clear-cut probes and twice as fast, docs/results.md), levels with a benchmark's or "
        "your --examples.",
        json_schema_extra=cli(group="examples"),
    )

    def rule_for(self, builtin_bank: bool) -> SelectionRule:
        if self.icl_rule != "auto":
            return self.icl_rule
        return "fixed" if builtin_bank else "levels"


def probe_text(prompt: str, responses: Sequence[str]) -> str:
    return prompt + "\n\n" + "\n\n".join(responses)


def _clip(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    return text[:limit].rstrip() + " [...]"


@dataclass(frozen=True)
class Example:
    """One labelled probe rendered as a query, with its true answer for one attribute."""

    source: int
    user: str
    answer: dict[str, dict[str, Any]]
    scores: frozenset[int]
    user_scores_only: str = ""
    """The query as a judge asked for scores only reads it."""

    @property
    def assistant(self) -> str:
        return prompts.answer_json(self.answer)

    def turn(self, reasoning: bool = True) -> tuple[str, str]:
        """The example as a user and an assistant turn, with or without the reasonings."""
        if reasoning:
            return self.user, self.assistant
        return self.user_scores_only, prompts.answer_json({k: v["score"] for k, v in self.answer.items()})


class SimilarityIndex(Protocol):
    def rank(self, query: str) -> list[int]:
        """Indexes of the bank's items, most similar first."""
        ...


class EmbeddingIndex:
    def __init__(self, texts: Sequence[str], model: str = "all-minilm-l6-v2") -> None:
        from pluralign.prediction.embeddings import embed

        self._model = model
        self._vectors = embed(texts, model)

    def rank(self, query: str) -> list[int]:
        import numpy as np

        from pluralign.prediction.embeddings import embed

        q = embed([query], self._model, cache=False)[0]
        sims = self._vectors @ q
        return [int(i) for i in np.argsort(-sims, kind="stable")]


_TOKEN = re.compile(r"\w+")


class BM25Index:
    """Lexical similarity; needs no torch."""

    def __init__(self, texts: Sequence[str]) -> None:
        from rank_bm25 import BM25Okapi

        self._bm25 = BM25Okapi([_TOKEN.findall(t.lower()) or ["_"] for t in texts])

    def rank(self, query: str) -> list[int]:
        import numpy as np

        scores = self._bm25.get_scores(_TOKEN.findall(query.lower()) or ["_"])
        return [int(i) for i in np.argsort(-np.asarray(scores), kind="stable")]


class RandomIndex:
    def __init__(self, n: int, seed: int = 0) -> None:
        self._n = n
        self._seed = seed

    def rank(self, query: str) -> list[int]:
        order = list(range(self._n))
        random.Random(f"{self._seed}:{query}").shuffle(order)
        return order


def builtin_bank() -> list[Probe]:
    """The small example bank shipped with pluralign (a few items per attribute and level)."""
    path = resources.files("pluralign") / "resources" / "example_bank.json"
    with resources.as_file(path) as real:
        return load_probes(real)


class ExampleSelector:
    """Chooses few-shot examples for (attribute, query) from a labelled probe set."""

    def __init__(
        self,
        probes: Sequence[Probe],
        index: IndexKind = "embedding",
        rule: SelectionRule = "levels",
        max_examples: int | None = None,
        max_chars: int | None = None,
        scale: int = SCALE,
        seed: int = 0,
        prompt_set: prompts.PromptSet = prompts.DEFAULT_PROMPTS,
    ) -> None:
        self.probes = [p for p in probes if p.labels is not None]
        if not self.probes:
            raise InputError("the example set has no labelled items")
        self.rule = rule
        self.max_examples = max_examples
        self.max_chars = max_chars
        self.scale = scale
        self.prompts = prompt_set
        if index not in ("embedding", "bm25", "random"):
            raise InputError(f"unknown similarity {index!r} (embedding, bm25 or random)")
        self.index_kind = index
        self._seed = seed
        self._built: SimilarityIndex | None = None
        if rule != "fixed":
            self._build_index()  # loaded now (the embedding model takes seconds), not in the first decision
        self._cache: dict[tuple[str, int], Example | None] = {}

    def _build_index(self) -> SimilarityIndex:
        """The similarity index; the ``fixed`` rule never ranks for comparative examples, so it
        builds one only if the prompt-aligned examples ask for it."""
        if self._built is None:
            texts = [probe_text(p.question, p.responses) for p in self.probes]
            if self.index_kind == "embedding":
                self._built = EmbeddingIndex(texts)
            elif self.index_kind == "bm25":
                self._built = BM25Index(texts)
            else:
                self._built = RandomIndex(len(texts), self._seed)
        return self._built

    def config(self) -> dict[str, Any]:
        return {
            "index": self.index_kind,
            "rule": self.rule,
            "max_examples": self.max_examples,
            "max_chars": self.max_chars,
            "n_items": len(self.probes),
        }

    def _example(self, attribute: Attribute, i: int) -> Example | None:
        key = (attribute.name, i)
        if key not in self._cache:
            probe = self.probes[i]
            labels = probe.labels or []
            if not all(attribute.name in lab for lab in labels):
                self._cache[key] = None
            else:
                choices = prompts.lettered([_clip(r, self.max_chars) for r in probe.responses])
                answer: dict[str, dict[str, Any]] = {}
                scores = set()
                for j, letter in enumerate(choices):
                    value = labels[j][attribute.name]
                    score = round(value * self.scale)
                    reasoning = ""
                    if probe.reasonings is not None:
                        reasoning = probe.reasonings[j].get(attribute.name, "")
                    answer[letter] = {
                        "reasoning": reasoning or prompts.example_reasoning(attribute.name, value),
                        "score": score,
                    }
                    scores.add(score)
                question = _clip(probe.question, self.max_chars)
                user = self.prompts.comparative_user(attribute, question, choices, self.scale)
                brief = self.prompts.comparative_user(attribute, question, choices, self.scale, reasoning=False)
                self._cache[key] = Example(
                    source=i, user=user, answer=answer, scores=frozenset(scores), user_scores_only=brief
                )
        return self._cache[key]

    def select(self, attribute: Attribute, prompt: str, responses: Sequence[str]) -> list[Example]:
        """Examples for one query: per score level (lowest first) the most similar example
        that has it, as the paper does (``fixed``: the first in the bank's order, whatever the
        query, so the prompt's beginning is the same in every decision).

        Items whose question equals the query's are never used (no leakage of the query).
        """
        order = list(range(len(self.probes))) if self.rule == "fixed" else self._ranked(prompt, responses)
        candidates = [
            ex for i in order if self.probes[i].question != prompt and (ex := self._example(attribute, i)) is not None
        ]
        chosen: list[Example] = []
        if self.rule == "top":
            chosen = candidates[: self.max_examples or 5]
        else:
            levels = sorted({s for ex in candidates for s in ex.scores})
            for level in levels:
                for ex in candidates:
                    if level in ex.scores:
                        if ex not in chosen:
                            chosen.append(ex)
                        break
            if self.max_examples is not None:
                chosen = chosen[: self.max_examples]
        return chosen

    def _ranked(self, prompt: str, responses: Sequence[str]) -> list[int]:
        return self._build_index().rank(probe_text(prompt, responses))

    def select_choices(
        self, target: AlignmentTarget, prompt: str, responses: Sequence[str], count: int = 5
    ) -> list[tuple[str, str]]:
        """Few-shot turns for the prompt-aligned baseline, as the paper builds them: the most
        similar labelled items (their question never the query's), each answered with the
        response closest to the target by its labels and that response's reasonings for the
        target's attributes."""
        turns: list[tuple[str, str]] = []
        for i in self._ranked(prompt, responses):
            if len(turns) >= count:
                break
            probe = self.probes[i]
            labels = probe.labels or []
            if probe.question == prompt or not all(a in lab for lab in labels for a in target.values):
                continue
            best = select(labels, target).index
            choices = prompts.lettered([_clip(r, self.max_chars) for r in probe.responses])
            reasons = []
            for attribute in target.values:
                given = probe.reasonings[best].get(attribute, "") if probe.reasonings is not None else ""
                reasons.append(given or prompts.example_reasoning(attribute, labels[best][attribute]))
            answer = {"reasoning": " ".join(reasons), "choice": prompts.LETTERS[best]}
            user = self.prompts.choice_user(_clip(probe.question, self.max_chars), choices)
            turns.append((user, prompts.answer_json(answer)))
        return turns
