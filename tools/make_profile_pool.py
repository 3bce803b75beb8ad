"""Generates src/pluralign/resources/profile_pool.jsonl: the probes the page's "Find my profile"
flow asks about.

Short single-turn items of the steerable HelpSteer2 train set (built from nvidia/HelpSteer2,
CC-BY-4.0: attribution kept in each line's ``source``), whose two responses differ on at
least two attributes; the predictions are the human annotators' labels.

    python tools/make_profile_pool.py ../shared/data/helpsteer2/train.json
"""

import json
import sys
from pathlib import Path

MAX_CHARS = 2000
COUNT = 60
SOURCE = "nvidia/HelpSteer2 (CC-BY-4.0), labels by its annotators; pair from the steerable HelpSteer2 train set"


def main(train: str) -> None:
    items = json.loads(Path(train).read_text())
    picked = []
    for i, item in enumerate(items):
        text = item["prompt"] + "".join(item["responses"])
        if "<extra_id_1>" in item["prompt"] or len(text) > MAX_CHARS or min(len(r) for r in item["responses"]) < 20:
            continue
        a, b = item["labels"]
        if sum(a[k] != b[k] for k in a) < 2:
            continue
        picked.append(
            {
                "id": f"hs2-train-{i}",
                "question": item["prompt"],
                "responses": item["responses"],
                "predictions": item["labels"],
                "source": SOURCE,
            }
        )
    picked = picked[:COUNT]
    out = Path(__file__).resolve().parent.parent / "src" / "pluralign" / "resources" / "profile_pool.jsonl"
    out.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in picked))
    print(f"wrote {len(picked)} items to {out}")


if __name__ == "__main__":
    main(sys.argv[1])
