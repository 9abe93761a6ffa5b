"""Time the grader on 30 submissions of notebook 01 with --jobs 2: `python bench/grading.py [--count 30]`."""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import nbformat

from starter.build import student_version
from starter.config import PROJECT_ROOT
from starter.grade import grade_all


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    solution = nbformat.read(PROJECT_ROOT / "solutions" / "01_autoencoder.ipynb", as_version=4)
    kinds = {"complete": solution, "untouched": student_version(solution)}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for index in range(args.count):
            kind = list(kinds)[index % len(kinds)]
            (folder / f"student{index:02d}_{kind}.ipynb").write_text(json.dumps(kinds[kind]))
        start = time.perf_counter()
        grades = grade_all(sorted(folder.glob("*.ipynb")), folder / "grades", jobs=args.jobs)
        took = time.perf_counter() - start
    full = sum(g.total == g.possible for g in grades if "complete" in g.student)
    zero = sum(g.total == 0 for g in grades if "untouched" in g.student)
    print(f"{len(grades)} submissions of notebook 01, --jobs {args.jobs}: {took:.0f} s "
          f"({took / len(grades):.1f} s each); full marks {full}/{len(grades) - len(grades) // 2}, zero {zero}/{len(grades) // 2}")


if __name__ == "__main__":
    main()
