"""How long redaction takes on a long word, before and after its patterns were made linear.

Every message shown (a CLI error, a service refusal, a log line) passes ``redact``. Two of its
patterns took time quadratic in the length of a word: a request naming a 50,000-letter attribute
held the service's event loop for 18 s while its refusal was redacted. The old patterns are kept
here (as they were at e652abd) to be timed beside the current ``redact`` (all its patterns and
the registry: the new side does more) in one run:

    python bench/redaction_speed.py            # bench/results/redaction_speed.{txt,json}
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

from common import header, named_path, uptime, write_json, write_text

ROOT = Path(__file__).resolve().parent.parent
OLD = {
    "url password": re.compile(r"(?i)([a-z][a-z0-9+.-]*://)[^\s\"'<>]*@(?=[^\s\"'<>@]*(?:[\s\"'<>]|$))"),
    "query credential": re.compile(
        r"(?i)([?&;][a-z0-9_.-]*(?:token|sig|signature|secret|password|passwd|pwd|key|auth|credential)"
        r"[a-z0-9_.-]*=)[^&#\s\"'<>]+"
    ),
}
TEXTS = {
    "one long word": lambda n: "x" * n,
    "a parameter name of repeated keywords": lambda n: "?" + "key" * (n // 3),
    "schemes without a password": lambda n: "a://" * (n // 4),
}


def timed(call, text: str) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    call(text)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,20000,50000", help="text lengths, in characters")
    ap.add_argument("--out", type=named_path, default=ROOT / "bench" / "results" / "redaction_speed")
    args = ap.parse_args()
    from pluralign.support.redact import redact

    def old(text: str) -> str:
        for pattern in OLD.values():
            text = pattern.sub("***", text)
        return text

    rows = []
    lines = [header(), "", "| text | characters | old patterns s | redact now s |", "|---|---|---|---|"]
    for name, make in TEXTS.items():
        for size in (int(s) for s in args.sizes.split(",")):
            text = make(size)
            row = {"text": name, "characters": len(text), "old_s": timed(old, text), "now_s": timed(redact, text)}
            rows.append(row)
            lines.append(f"| {name} | {len(text):,} | {row['old_s']:.3f} | {row['now_s']:.4f} |")
            print(lines[-1], flush=True)
    lines += ["", f"({uptime()})"]
    write_text(args.out.with_suffix(".txt"), "\n".join(lines) + "\n")
    write_json(args.out.with_suffix(".json"), rows)
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
