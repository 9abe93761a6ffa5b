"""Time the grader on a class of notebook-01 submissions, at each --jobs: `python bench/grading.py [--count 200]
[--jobs 1 2]`. A third of the submissions are complete, a third untouched, a third hold a wrong answer; the table
gives the time, the time per submission, the peak memory (PSS) of every process of the batch together (the grader, its
workers and their kernels), and whether every grade is the one expected."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat

from starter.build import student_version
from starter.config import PROJECT_ROOT
from starter.grading.batch import Settings, grade_all
from starter.grading.kernel import descendants

sys.path.insert(0, str(PROJECT_ROOT / "tests"))
from wrong_answers import WRONG_ANSWERS  # noqa: E402


def resident(pid: int) -> int:
    """Memory of a process and everything below it, in bytes: the sum of their proportional set sizes (a page
    shared by n of them counts 1/n to each, so the forked workers' shared pages are not counted twice)."""
    total = 0
    for each in descendants(pid):
        try:
            with open(f"/proc/{each}/smaps_rollup") as rollup:
                total += int(next(line.split()[1] for line in rollup if line.startswith("Pss:"))) * 1024
        except (OSError, StopIteration):
            continue
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    solution = nbformat.read(PROJECT_ROOT / "solutions" / "01_autoencoder.ipynb", as_version=4)
    wrong = nbformat.from_dict(solution)
    for cell in wrong.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "loss":
            cell.source = WRONG_ANSWERS["loss"][0].apply(cell.source)
    kinds = {"complete": (solution, 7), "untouched": (student_version(solution), 0), "wrong": (wrong, 6)}
    print(f"{'--jobs':>6} {'submissions':>11} {'seconds':>8} {'s each':>7} {'peak memory':>12}  grades as expected")
    for jobs in args.jobs:
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch)
            expected = {}
            for index in range(args.count):
                kind = list(kinds)[index % len(kinds)]
                nbformat.write(kinds[kind][0], folder / f"student{index:03d}_{kind}.ipynb")
                expected[f"student{index:03d}_{kind}"] = kinds[kind][1]
            peak, done = [0], threading.Event()

            def watch() -> None:
                while not done.wait(0.5):
                    peak[0] = max(peak[0], resident(os.getpid()))

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            start = time.perf_counter()
            grades = grade_all([folder], folder / "grades", Settings(jobs=jobs, progress=False))
            took = time.perf_counter() - start
            done.set()
            right = sum(expected[g.student] == g.total for g in grades)
        print(
            f"{jobs:>6} {len(grades):>11} {took:>8.0f} {took / len(grades):>7.1f} {peak[0] / 2**30:>9.1f} GB  "
            f"{right}/{len(grades)}",
            flush=True,
        )


if __name__ == "__main__":
    main()
