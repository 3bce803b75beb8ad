"""The per-response ablation: each response judged alone (no comparison), N samples averaged."""

from __future__ import annotations

from collections.abc import Sequence

from pluralign.choice.attributes import Attribute
from pluralign.choice.probes import Probe
from pluralign.choice.targets import AlignmentTarget
from pluralign.prediction import prompts
from pluralign.prediction.judges.base import JudgeRequest, JudgeResult
from pluralign.prediction.methods.base import Assessment
from pluralign.prediction.methods.llm import EstimatorOptions, JudgementParts, LLMMethod
from pluralign.prediction.methods.logprobs import level_distributions
from pluralign.prediction.methods.registry import MethodSpec, register_method
from pluralign.prediction.methods.spm import TOP_LOGPROBS


class RegressionOptions(EstimatorOptions):
    """What ``regression`` reads (a response judged alone has no order to shuffle)."""

    default_samples = 5


class PerResponseRegression(LLMMethod):
    """N samples per response and attribute, averaged; or, with ``--scoring logprobs``, one
    greedy answer whose score is the expected value under the judge's token probabilities
    (one is enough: a response judged alone has no order to balance)."""

    name = "regression"

    def assess(
        self, probe: Probe, attributes: Sequence[Attribute], target: AlignmentTarget | None = None, seed: int = 0
    ) -> Assessment:
        n = len(probe.responses)
        single = self.mode == "logprobs"
        batch = []
        for attribute in attributes:
            schema = prompts.regression_schema(self.scale, self.allowed_scores(attribute))
            system = self.prompts.regression_system(attribute, self.scale)
            for response in probe.responses:
                user = self.prompts.regression_user(attribute, probe.question, response, self.scale)
                messages = prompts.conversation(system, [], user)
                settings = self.generation(
                    seed, n=1 if single else self.samples, top_logprobs=TOP_LOGPROBS if single else 0
                )
                batch.append(JudgeRequest(messages=messages, json_schema=schema, settings=settings))
        results = self.backend.generate(batch)
        out = JudgementParts(n)
        pos = 0
        for attribute in attributes:
            rows = []
            per_response: list[list[float]] = []
            reasons: list[str] = []
            for i in range(n):
                result = results[pos]
                pos += 1
                scores: list[float] = [int(o["score"]) for o in result.outputs]
                if single:
                    dist = self._expected(result, attribute)
                    if dist is not None:
                        scores = [sum(v * p for v, p in dist.items())]
                        out.level_probs.setdefault(attribute.name, []).append(
                            {f"{v / self.scale:g}": p for v, p in dist.items()}
                        )
                reasons.append(str(result.outputs[0]["reasoning"]))
                rows.append({"response": i, "scores": scores})
                per_response.append([s / self.scale for s in scores])
            out.set(attribute.name, [sum(r) / len(r) for r in per_response], reasons)
            out.samples[attribute.name] = rows
            out.draws[attribute.name] = [list(col) for col in zip(*per_response, strict=True)]
        return out.assessment(results)

    def _expected(self, result: JudgeResult, attribute: Attribute) -> dict[int, float] | None:
        tokens, logprobs = self.first_logprobs(result)
        allowed = self.allowed_scores(attribute) or []
        dists = level_distributions(tokens, logprobs, 1, allowed)
        return dists[0] if dists else None


register_method(
    MethodSpec(
        name="regression",
        summary="each response scored alone (the paper's non-comparative ablation)",
        build=lambda o, r: PerResponseRegression(r.judge(), o, r.default_estimator),
        options=RegressionOptions,
        needs_llm=True,
    )
)
