"""Pack run folders for committing: their logs (judgements, decisions) into .jsonl.gz, which
pluralign reads as it reads the plain files; a resume appends to a new plain file beside them.
The reference-format folders (input_output/) are derived and not committed (a resume writes them).

    python bench/pack_runs.py bench/runs/evidence/*
"""

from __future__ import annotations

import argparse
import sys

from common import named_path

from pluralign.evaluation.runs import RunDir, is_run
from pluralign.support.errors import PluralignError, one_line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=named_path)
    args = parser.parse_args()
    try:
        for run in args.runs:
            if not is_run(run):
                raise PluralignError(f"{run} is not a run folder")
            packed = RunDir(run).pack()
            print(f"{run}: {', '.join(packed) or 'nothing to pack'}")
    except PluralignError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
