"""An offline multi-objective scorer: ridge (or kNN) regression of each attribute from a
sentence embedding of prompt + response, trained on the benchmark's train set.

It stands in for the reward-model family where no reward model can be downloaded, and is
a fast CPU judge: one embedding per response, no LLM call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from pluralign.choice.attributes import Attribute
from pluralign.choice.probes import Probe
from pluralign.choice.targets import AlignmentTarget
from pluralign.prediction.embeddings import DEFAULT_EMBEDDER, embed
from pluralign.prediction.examples import ExampleOptions
from pluralign.prediction.methods.base import Assessment, Method
from pluralign.prediction.methods.registry import MethodSpec, register_method
from pluralign.support.errors import InputError
from pluralign.support.options import cli

if TYPE_CHECKING:  # numpy loads when used, not by every CLI start
    import numpy as np


def _text(prompt: str, response: str) -> str:
    return f"Question: {prompt}\nResponse: {response}"


def _features(vectors: np.ndarray, responses: Sequence[str]) -> np.ndarray:
    import numpy as np

    # Length matters (it predicts HelpSteer2 verbosity well); the embedding alone hides it.
    lengths = np.array([[math.log1p(len(r)) / 10.0] for r in responses], dtype=np.float32)
    return np.hstack([vectors, lengths, np.ones((len(responses), 1), dtype=np.float32)])


class EmbeddingOptions(ExampleOptions):
    """What ``embedding`` reads: its train set and its regressor."""

    regressor: Literal["ridge", "knn"] = Field(
        default="ridge",
        description="embedding method: ridge or knn regression.",
        json_schema_extra=cli(group="other", old=("--scorer",)),
    )


class EmbeddingRegressor(Method):
    name = "embedding"

    def __init__(
        self,
        train: Sequence[Probe],
        kind: Literal["ridge", "knn"] = "ridge",
        alpha: float = 1.0,
        k: int = 15,
        embedder: str = DEFAULT_EMBEDDER,
    ) -> None:
        rows = [(p, i) for p in train if p.labels is not None for i in range(len(p.responses))]
        if not rows:
            raise InputError("the embedding method needs a labelled train set (train.json)")
        self.kind = kind
        self.alpha = alpha
        self.k = k
        self.embedder = embedder
        responses = [p.responses[i] for p, i in rows]
        self._x = _features(embed([_text(p.question, p.responses[i]) for p, i in rows], embedder), responses)
        self._labels = [p.labels[i] if p.labels else {} for p, i in rows]
        self._weights: dict[str, np.ndarray] = {}
        self._n_train = len(train)

    def config(self) -> dict[str, Any]:
        return {
            "method": self.name,
            "kind": self.kind,
            "alpha": self.alpha,
            "k": self.k,
            "embedder": self.embedder,
            "n_train": self._n_train,
        }

    def _fit(self, attribute: str) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        mask = np.array([attribute in lab for lab in self._labels])
        if not mask.any():
            raise InputError(f"the train set has no labels for {attribute}")
        x = self._x[mask]
        y = np.array([lab[attribute] for lab in self._labels if attribute in lab], dtype=np.float64)
        return x, y

    def _predict(self, attribute: str, feats: np.ndarray) -> np.ndarray:
        import numpy as np

        x, y = self._fit(attribute)
        if self.kind == "knn":
            sims = feats[:, :-2] @ x[:, :-2].T
            top = np.argsort(-sims, axis=1)[:, : self.k]
            return np.asarray(y[top].mean(axis=1))
        if attribute not in self._weights:
            reg = self.alpha * np.eye(x.shape[1])
            reg[-1, -1] = 0.0  # do not shrink the intercept
            self._weights[attribute] = np.linalg.solve(x.T @ x + reg, x.T @ y)
        return np.asarray(feats @ self._weights[attribute])

    def assess(
        self, probe: Probe, attributes: Sequence[Attribute], target: AlignmentTarget | None = None, seed: int = 0
    ) -> Assessment:
        import numpy as np

        feats = _features(
            embed([_text(probe.question, r) for r in probe.responses], self.embedder, cache=False), probe.responses
        )
        preds: list[dict[str, float]] = [{} for _ in probe.responses]
        for attribute in attributes:
            values = np.clip(self._predict(attribute.name, feats), 0.0, 1.0)
            for i, v in enumerate(values):
                preds[i][attribute.name] = float(v)
        reasons = [
            {a.name: f"Predicted from the {self.kind} embedding model." for a in attributes} for _ in probe.responses
        ]
        return Assessment(predictions=preds, reasonings=reasons)


register_method(
    MethodSpec(
        name="embedding",
        summary="ridge/kNN on MiniLM embeddings trained on the train set (offline, no LLM)",
        build=lambda o, r: EmbeddingRegressor(r.train_probes(o), kind=o.regressor),
        options=EmbeddingOptions,
    )
)
