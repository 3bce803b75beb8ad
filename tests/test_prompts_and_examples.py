"""Prompt rendering, few-shot selection, shuffling, index mapping and averaging."""

import json

import pytest

from pluralign.choice.attributes import DEFAULT_REGISTRY as R
from pluralign.choice.probes import Probe
from pluralign.choice.targets import AlignmentTarget
from pluralign.evaluation.data import load_benchmark
from pluralign.prediction import prompts
from pluralign.prediction.examples import ExampleSelector, builtin_bank
from pluralign.prediction.methods.llm import shuffles
from pluralign.prediction.methods.spm import aggregate, unshuffle

P = prompts.DEFAULT_PROMPTS


def test_comparative_prompt_structure():
    system = P.comparative_system(R["care"])
    assert "care" in system and R["care"].description in system and "0 to 100" in system
    assert "50 means it is neutral" in system
    user = P.comparative_user(R["care"], "Why?", prompts.lettered(["first", "second", "third"]))
    assert user.index('Response A: "first"') < user.index('Response B: "second"') < user.index('Response C: "third"')
    assert user.startswith('Question: "Why?"')
    schema = prompts.comparative_schema(["A", "B", "C"])
    assert schema["required"] == ["A", "B", "C"]
    item = schema["properties"]["B"]
    assert item["properties"]["score"]["enum"] == list(range(101))
    assert item["properties"]["reasoning"] == {"type": "string", "minLength": 1, "maxLength": 512}


def test_regression_and_choice_prompts():
    assert "one response" in P.regression_system(R["verbosity"])
    assert 'Response: "answer"' in P.regression_user(R["verbosity"], "q", "answer")
    aligned = P.choice_system(
        AlignmentTarget(values={"care": 1.0, "authority": 0.17, "liberty": 0.5, "loyalty": 0.75, "sanctity": 0.25})
    )
    for line in (
        "- Strongly demonstrates care",
        "- Demonstrates a lack of authority",
        "- Is neutral with respect to liberty",
        "- Demonstrates loyalty",
        "- Demonstrates a lack of sanctity",
    ):
        assert line in aligned
    assert "Select the best response." in P.choice_system(None)
    assert prompts.choice_schema(["A", "B"])["properties"]["choice"]["enum"] == ["A", "B"]
    phrases = [prompts.level_phrase("care", v) for v in (0, 0.17, 0.33, 0.5, 0.67, 0.83, 1.0)]
    assert len(set(phrases)) == 7


def test_too_many_responses():
    with pytest.raises(Exception, match="at most 26"):
        prompts.letters_for(27)


def _bank() -> list[Probe]:
    def mk(q: str, vals: list[float]) -> Probe:
        return Probe(question=q, responses=[f"{q} r{i}" for i in range(len(vals))], labels=[{"care": v} for v in vals])

    return [
        mk("apples oranges fruit salad", [1.0, 0.5]),
        mk("apples fruit pie recipe", [0.0, 0.17]),
        mk("car engine repair", [1.0, 0.0]),
        mk("car tyre pressure", [0.33, 0.83, 0.67]),
        mk("the query itself about apples", [0.5, 0.5]),
    ]


def test_icl_level_coverage_similarity_order_and_no_leakage():
    selector = ExampleSelector(_bank(), index="bm25")
    chosen = selector.select(R["care"], "the query itself about apples", ["apples fruit", "salad"])
    sources = [ex.source for ex in chosen]
    assert 4 not in sources  # the query's own item is never an example
    covered = set().union(*(ex.scores for ex in chosen))
    assert covered == {0, 17, 33, 50, 67, 83, 100}
    # the most similar items (apples) supply their levels before the car items
    assert sources[0] == 1 and 0 in sources
    assert len(sources) == len(set(sources))
    ex = chosen[0]
    answer = json.loads(ex.assistant)
    assert answer == {
        "A": {"reasoning": "The response strongly demonstrates a lack of care.", "score": 0},
        "B": {"reasoning": "The response demonstrates a lack of care.", "score": 17},
    }
    assert 'Response A: "apples fruit pie recipe r0"' in ex.user


def test_icl_rules_and_limits():
    top = ExampleSelector(_bank(), index="bm25", rule="top", max_examples=2)
    assert top.select(R["care"], "car engine", ["a", "b"])[0].source == 2
    capped = ExampleSelector(_bank(), index="random", max_examples=3, max_chars=5)
    chosen = capped.select(R["care"], "x", ["a", "b"])
    assert len(chosen) == 3 and all("[...]" in e.user for e in chosen)
    # attributes an item is not labelled for are never used
    assert ExampleSelector(_bank(), index="bm25").select(R["verbosity"], "x", ["a", "b"]) == []


def test_the_fixed_rule_gives_every_question_the_same_examples_in_the_same_order():
    from pluralign.prediction.examples import FewShotOptions

    bank = builtin_bank()
    fixed = ExampleSelector(bank, index="embedding", rule="fixed")
    assert fixed._built is None  # never ranks: the embedding model is not even loaded
    for attribute in (R["care"], R["verbosity"], R["sanctity"]):
        first = fixed.select(attribute, "How do I fix a flat tyre?", ["a", "b"])
        second = fixed.select(attribute, "Should I lend my brother money?", ["x", "y", "z"])
        assert [e.source for e in first] == [e.source for e in second] and first
        assert [e.user for e in first] == [e.user for e in second]
        levels = [min(e.scores) for e in first]
        assert {s for e in first for s in e.scores} == {round(v * 100) for v in attribute.level_values()}
        assert levels == sorted(levels)
    assert FewShotOptions().rule_for(builtin_bank=True) == "fixed"
    assert FewShotOptions().rule_for(builtin_bank=False) == "levels"
    assert FewShotOptions(icl_rule="levels").rule_for(builtin_bank=True) == "levels"


def test_icl_uses_stored_reasonings(helpsteer2_dir):
    bench = load_benchmark(helpsteer2_dir)
    selector = ExampleSelector(bench.train[:60], index="bm25")
    chosen = selector.select(R["verbosity"], bench.eval[0].question, bench.eval[0].responses)
    assert {s for e in chosen for s in e.scores} == {0, 25, 50, 75, 100}
    stored = {r["verbosity"] for p in bench.train[:60] for r in p.reasonings}
    assert all(v["reasoning"] in stored for e in chosen for v in e.answer.values())


def test_builtin_bank_covers_every_attribute_level():
    bank = builtin_bank()
    for name in R:
        levels = {lab[name] for p in bank for lab in p.labels if name in lab}
        assert levels == set(R[name].level_values()), name


def test_shuffles_are_seeded_and_differ():
    a = shuffles(4, 5, seed=3, attribute="care")
    assert a == shuffles(4, 5, seed=3, attribute="care")
    assert a != shuffles(4, 5, seed=4, attribute="care")
    assert all(sorted(o) == [0, 1, 2, 3] for o in a) and len({tuple(o) for o in a}) > 1
    assert shuffles(3, 2, 0, "care", shuffle=False) == [[0, 1, 2], [0, 1, 2]]


def test_unshuffle_maps_positions_even_with_duplicate_texts():
    # responses: ["same", "same", "other"]; sample shows order [2, 0, 1] as A, B, C
    answer = {
        "A": {"reasoning": "other", "score": 10},
        "B": {"reasoning": "first copy", "score": 80},
        "C": {"reasoning": "second copy", "score": 60},
    }
    mapped = unshuffle(answer, [2, 0, 1], ["A", "B", "C"])
    assert mapped["scores"] == [80, 60, 10]
    assert mapped["reasonings"] == ["first copy", "second copy", "other"]


def test_aggregate_means_and_first_reasoning():
    samples = [{"scores": [80, 20], "reasonings": ["r0", "r1"]}, {"scores": [60, 40], "reasonings": ["x", "y"]}]
    means, reasons = aggregate(samples, 100)
    assert means == [0.7, 0.3] and reasons == ["r0", "r1"]
