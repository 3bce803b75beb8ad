"""Does `pluralign score` give the paper's scorer's numbers? A differential check.

Random ``input_output.json`` files in the reference format, on MIC's 7 label levels (where
mathematically equal distances differ in the last bits) and HelpSteer2's 5, with 2-4
responses, some records with predictions (re-selected by the scorer) and some with only a
selected index, are scored by the paper's own ``score.py`` and by pluralign; the count of
correct and of scored items must be equal for every file and target. The paper's code is
not part of pluralign: point ``--paper-repo`` at a checkout of
ITM-Kitware/steerable-pluralism-llm-regression (it needs only numpy).

    python bench/paper_scorer_check.py --paper-repo ../steerable-pluralism-llm-regression --files 300
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import random
import sys
import tempfile
from pathlib import Path

from common import named_path

MIC = ["care", "fairness", "liberty", "loyalty", "authority", "sanctity"]
HS2 = ["helpfulness", "correctness", "coherence", "complexity", "verbosity"]


def synthetic(rng: random.Random, attrs: list[str], levels: list[float], n_items: int) -> list[dict]:
    records = []
    for i in range(n_items):
        n = rng.choice([2, 2, 3, 4])
        labels = [{a: rng.choice(levels) for a in attrs} for _ in range(n)]
        output: dict = {"choice": f"response {i}", "choice_info": {}}
        if rng.random() < 0.5:  # predictions on the label grid tie often, as real judges' means do
            output["choice_info"]["predictions"] = [{a: rng.choice(levels) for a in attrs} for _ in range(n)]
        else:
            output["selected_response_index"] = rng.randrange(n)
        records.append(
            {"input": {"prompt": f"q{i}", "responses": [f"r{j}" for j in range(n)], "labels": labels}, "output": output}
        )
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paper-repo", type=named_path, required=True)
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--items", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from pluralign.choice.attributes import DEFAULT_REGISTRY
    from pluralign.choice.target_data import profile_from_data
    from pluralign.evaluation.reference import score_input_output

    sys.path.insert(0, str(args.paper_repo.resolve()))
    paper = importlib.import_module("score")
    rng = random.Random(args.seed)
    compared = differ = 0
    tie_rule_matters = 0
    with tempfile.TemporaryDirectory() as tmp:
        for f in range(args.files):
            mic = f % 2 == 0
            attrs = MIC if mic else HS2
            levels = [k / 6 for k in range(7)] if mic else [k / 4 for k in range(5)]
            records = synthetic(rng, attrs, levels, args.items)
            path = Path(tmp) / f"io{f}.json"
            path.write_text(json.dumps(records))
            chosen = rng.sample(attrs, rng.randint(1, len(attrs)))
            values = {a: rng.choice(levels) for a in chosen}
            with contextlib.redirect_stdout(io.StringIO()):
                correct, total, *_ = paper.score_file(values, str(path))
            target = profile_from_data(values, f"t{f}", DEFAULT_REGISTRY)
            ours = score_input_output(path, target)
            tolerant = score_input_output(path, target, ties="tolerant").tolerant
            ours_correct = round(ours.accuracy * ours.n_scored / 100)
            compared += 1
            if (ours_correct, ours.n_scored) != (correct, total):
                differ += 1
                print(f"file {f}: paper {correct}/{total}, pluralign {ours_correct}/{ours.n_scored}")
            if tolerant is not None and (tolerant.accuracy, tolerant.n_scored) != (ours.accuracy, ours.n_scored):
                tie_rule_matters += 1
    print(
        f"{compared} files x 1 target, {args.items} items each (half MIC levels, half HelpSteer2 levels): "
        f"pluralign's exact rule differs from the paper's scorer on {differ}; "
        f"the tolerant rule would differ on {tie_rule_matters}"
    )
    if differ:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
