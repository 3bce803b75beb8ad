"""The per-response ablation: each response judged alone (no comparison), N samples averaged."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pluralign import prompts
from pluralign.attributes import Attribute
from pluralign.judges.base import JudgeRequest
from pluralign.methods.base import Judgement
from pluralign.methods.llm import LLMMethod, stats_of
from pluralign.methods.registry import MethodSpec, register_method
from pluralign.probes import Probe
from pluralign.targets import AlignmentTarget


class PerResponseRegression(LLMMethod):
    name = "regression"
    default_samples = 5

    def judge(
        self, probe: Probe, attributes: Sequence[Attribute], target: AlignmentTarget | None = None, seed: int = 0
    ) -> Judgement:
        n = len(probe.responses)
        schema = prompts.regression_schema(self.scale)
        batch = []
        for attribute in attributes:
            system = self.prompts.regression_system(attribute, self.scale)
            for response in probe.responses:
                user = self.prompts.regression_user(attribute, probe.prompt, response, self.scale)
                messages = prompts.conversation(system, [], user)
                batch.append(
                    JudgeRequest(messages=messages, json_schema=schema, settings=self.generation(seed, n=self.samples))
                )
        results = self.backend.generate(batch)
        predictions: list[dict[str, float]] = [{} for _ in range(n)]
        reasonings: list[dict[str, str]] = [{} for _ in range(n)]
        samples: dict[str, list[dict[str, Any]]] = {}
        draws: dict[str, list[list[float]]] = {}
        pos = 0
        for attribute in attributes:
            rows = []
            per_response: list[list[float]] = []
            for i in range(n):
                outputs = results[pos].outputs
                pos += 1
                scores = [int(o["score"]) for o in outputs]
                predictions[i][attribute.name] = sum(scores) / len(scores) / self.scale
                reasonings[i][attribute.name] = str(outputs[0]["reasoning"])
                rows.append({"response": i, "scores": scores})
                per_response.append([s / self.scale for s in scores])
            samples[attribute.name] = rows
            draws[attribute.name] = [list(col) for col in zip(*per_response, strict=True)]
        return Judgement(
            predictions=predictions, reasonings=reasonings, samples=samples, draws=draws, stats=stats_of(results)
        )


register_method(
    MethodSpec(
        name="regression",
        summary="each response scored alone (the paper's non-comparative ablation)",
        build=lambda s, r: PerResponseRegression(r.judge(), s),
        needs_llm=True,
        default_samples=PerResponseRegression.default_samples,
        options=("backend", "model", "samples", "temperature", "scale", "prompts"),
    )
)
