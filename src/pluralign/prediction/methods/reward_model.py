"""Hugging Face sequence-classification reward models.

One output: a scalar reward, the highest-scoring response is chosen (the paper's RM
baseline, blind to the target). Several outputs named after attributes (``id2label``):
a multi-objective model whose sigmoid outputs become attribute predictions.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from pluralign.choice.attributes import Attribute
from pluralign.choice.probes import Probe
from pluralign.choice.targets import AlignmentTarget
from pluralign.prediction.methods.base import Assessment, Method
from pluralign.prediction.methods.registry import MethodSpec, Resources, register_method
from pluralign.support.errors import InputError, ModelNotFoundError
from pluralign.support.options import Options, cli
from pluralign.support.strict import Filled


class RewardModelMethod(Method):
    name = "reward-model"

    def __init__(self, model: str, max_length: int = 2048, device: str | None = None) -> None:
        from pluralign.support.hf import quiet

        quiet()
        try:
            import torch
            from transformers import AutoModelForSequenceClassification, AutoTokenizer
        except ImportError:
            raise ModelNotFoundError(
                "reward models need torch and transformers: pip install 'pluralign[transformers]'"
            ) from None
        self.model_name = model
        try:
            self._tok = AutoTokenizer.from_pretrained(model)
            self._model = AutoModelForSequenceClassification.from_pretrained(model)
        except OSError as exc:
            raise ModelNotFoundError(
                f"could not load reward model {model}: {' '.join(str(exc).split())[:300]}"
            ) from None
        self._device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._model.to(self._device).eval()
        if self._tok.pad_token is None:
            self._tok.pad_token = self._tok.eos_token
        self.max_length = max_length
        labels = [str(self._model.config.id2label[i]) for i in range(self._model.config.num_labels)]
        self.outputs = labels if self._model.config.num_labels > 1 else []
        self._lock = threading.Lock()

    def config(self) -> dict[str, Any]:
        return {"method": self.name, "model": self.model_name}

    def _texts(self, probe: Probe) -> list[str]:
        texts = []
        for response in probe.responses:
            chat = [{"role": "user", "content": probe.question}, {"role": "assistant", "content": response}]
            if getattr(self._tok, "chat_template", None):
                texts.append(str(self._tok.apply_chat_template(chat, tokenize=False)))
            else:
                texts.append(f"User: {probe.question}\nAssistant: {response}")
        return texts

    def rewards(self, probe: Probe) -> list[list[float]]:
        import torch

        with self._lock, torch.no_grad():
            enc = self._tok(
                self._texts(probe), return_tensors="pt", padding=True, truncation=True, max_length=self.max_length
            ).to(self._device)
            logits = self._model(**enc).logits.float().cpu()
        return [[float(v) for v in row] for row in logits]

    def assess(
        self, probe: Probe, attributes: Sequence[Attribute], target: AlignmentTarget | None = None, seed: int = 0
    ) -> Assessment:
        rewards = self.rewards(probe)
        if not self.outputs:
            scalar = [r[0] for r in rewards]
            best = max(range(len(scalar)), key=lambda i: (scalar[i], -i))
            return Assessment(
                choice=best,
                choice_reasoning=f"Highest reward ({scalar[best]:.3f}).",
                samples={"reward": [{"rewards": scalar}]},
            )
        import math

        missing = [a.name for a in attributes if a.name not in self.outputs]
        if missing:
            raise InputError(f"reward model {self.model_name} has no output for {', '.join(missing)}")
        preds = [{a.name: 1 / (1 + math.exp(-row[self.outputs.index(a.name)])) for a in attributes} for row in rewards]
        return Assessment(
            predictions=preds, reasonings=[{a.name: "Reward model output." for a in attributes} for _ in preds]
        )


class RewardModelOptions(Options):
    reward_model: Filled | None = Field(
        default=None,
        description="Reward model (HF id or folder) for --method reward-model.",
        json_schema_extra=cli(group="other"),
    )


def _build(options: RewardModelOptions, res: Resources) -> RewardModelMethod:
    if not options.reward_model:
        raise InputError("the reward-model method needs --reward-model (a Hugging Face id or folder)")
    return RewardModelMethod(options.reward_model)


register_method(
    MethodSpec(
        name="reward-model",
        summary="a Hugging Face sequence classifier: scalar reward (best response) or one output per attribute",
        build=_build,
        options=RewardModelOptions,
    )
)
