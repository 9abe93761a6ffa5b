"""What both platforms share when they grade: the course installed in their container (under PREFIX, by the
install script of `bundle`), and the entry point that grades the one notebook a platform hands over with the
course's grader (`starter.grading.batch.grade_all`), its kernel confined as `isolation` decides. It prints what the
instructor needs (the confinement, what was not enforced, every check's lines, hidden tests included) and always
writes a results file: a missing, invalid, crashed or timed-out submission gets one that says why."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from starter.autograder.isolation import SANDBOX, USER, Isolation, detect, exposed
from starter.capstone import capstones_of
from starter.exercises import BY_CHECK_ID
from starter.files import write_atomically
from starter.grading.batch import Settings, check_cells, grade_all, load_solutions
from starter.grading.kernel_user import KernelUser
from starter.grading.reports import CheckScore, Grade, feedback, visible
from starter.grading.sandbox import SandboxUnavailable
from starter.grading.submissions import nbgrader, walk
from starter.grading.withheld import STARTER
from starter.report import PASS

PREFIX = Path("/opt/discrete-latents")  # where the install script puts the course: venv/, data/, checkpoints/
ENVIRONMENT = {"COURSE_DATA_ROOT": str(PREFIX / "data"), "COURSE_CHECKPOINTS": str(PREFIX / "checkpoints")}


@dataclass(frozen=True)
class Layout:
    """Where a platform puts a grading job's files: the student's `submission` folder, the grader's own `course`
    folder (its solutions/), and the `results` file the platform reads back."""

    platform: str
    submission: Path
    course: Path
    results: Path


@dataclass
class Outcome:
    """What grading a submission gave: its `grade` (with its checks when it was graded, else the status that says
    why not), the notebook's points, the seconds it took, why it was not graded when there is no grade, and whether
    the autograder itself `failed` (not the submission)."""

    grade: Grade | None
    possible: int
    seconds: float
    reason: str = ""
    failed: bool = False

    @property
    def graded(self) -> bool:
        return self.grade is not None and bool(self.grade.checks)

    @property
    def why(self) -> str:
        """Why the submission earned nothing, when it was not graded."""
        return self.reason or (self.grade.status if self.grade else "")


def parser(platform: str) -> argparse.ArgumentParser:
    """The entry point's options (`build` writes them into the platform's script)."""
    parser = argparse.ArgumentParser(description=f"Grade the submission {platform} hands over with the course's grader")
    parser.add_argument("--timeout", type=int, default=540, help="seconds for the notebook")
    parser.add_argument("--cell-timeout", type=int, default=300, help="seconds per cell and per check request")
    parser.add_argument("--memory-mb", type=int, default=3072, help="memory of the kernel (and of the grader's worker)")
    parser.add_argument("--disk-mb", type=int, default=512, help="size of each writable folder of the kernel")
    parser.add_argument("--processes", type=int, default=256, help="processes and threads of the kernel")
    return parser


def is_title(line: str) -> bool:
    """Whether a line of a check's report (`starter.report.Report.lines`) is its title line, "title: status", which
    the report's indented ✓/✗ step lines follow."""
    return not line.startswith(" ")


def split(check: CheckScore) -> tuple[list[str], list[str]]:
    """A check cell's lines as the grader gives them (one report after another, each a title line and its steps):
    the visible check's, which are the lines of the notebook's check cell, and its hidden tests', which follow
    (`starter.exercises.Exercise.calls`)."""
    titles = [index for index, line in enumerate(check.messages) if is_title(line)]
    cut = titles[1] if len(titles) > 1 else len(check.messages)
    return check.messages[:cut], check.messages[cut:]


def passed(lines: list[str]) -> bool:
    """Whether the report whose lines these are (`split`) passed: its title line ends with the status."""
    return bool(lines) and lines[0].endswith(f": {PASS}")


def check_name(check: CheckScore) -> str:
    """A check as a test's name: its cell's grade_id and the names it checks, e.g. "check-encoder: Encoder"."""
    exercise = BY_CHECK_ID.get(check.grade_id)
    return f"{check.grade_id}: {', '.join(exercise.names)}" if exercise else check.grade_id


def settings(args: argparse.Namespace, isolation: Isolation) -> Settings:
    """The grader's settings for one submission, confined as `isolation` says."""
    return Settings(
        jobs=1,
        cell_timeout=args.cell_timeout,
        notebook_timeout=args.timeout,
        memory_mb=args.memory_mb,
        disk_mb=args.disk_mb,
        processes=args.processes,
        per_process_limits=True,  # a platform's container rarely lets a grader make cgroups: `isolation` says so
        confine=isolation.mode == SANDBOX,
        kernel_user=isolation.user if isolation.mode == USER else None,
        progress=False,
    )


def lock(layout: Layout) -> None:
    """Make the grader's folders (the solutions, the results) readable by root alone."""
    layout.results.parent.mkdir(parents=True, exist_ok=True)
    for folder in (layout.course, layout.results.parent):
        folder.chmod(0o700)


def announce(isolation: Isolation, layout: Layout) -> Isolation:
    """Say how the kernel is confined and what is not enforced, the grader's files the kernel's user can read
    included (checked as that user); returns `isolation`."""
    print(isolation.report())
    for secret in exposed(isolation, [layout.course, layout.results.parent, STARTER]):  # STARTER: the answers
        print(f"not enforced: the kernel's user can read {secret}: make it root's alone (chmod 700)")
    return isolation


def grade_submission(layout: Layout, args: argparse.Namespace, start: float) -> Outcome:
    """Grade the one notebook in the submission folder (or a .zip holding it), printing what the instructor reads."""
    lock(layout)
    solutions = load_solutions(layout.course / "solutions")
    possible = sum(BY_CHECK_ID[nbgrader(c)["grade_id"]].points for s in solutions.values() for c in check_cells(s))
    possible += sum(capstone.points for name in solutions for capstone in capstones_of(name))
    found = walk(layout.submission) if layout.submission.is_dir() else []
    names = ", ".join(visible(str(path)) for path, _ in found)
    print(f"submission: {names or 'nothing'}")
    if len(found) != 1:
        expected = " or ".join(f"{name}.ipynb" for name in solutions)
        reason = "no notebook (.ipynb) in the submission" if not found else f"{len(found)} files in the submission"
        return Outcome(None, possible, time.monotonic() - start, f"{reason}: submit only your notebook, {expected}")
    isolation = announce(detect(), layout)
    with tempfile.TemporaryDirectory(prefix="grades-") as out:
        try:
            grades = grade_all([layout.submission], Path(out), settings(args, isolation), root=layout.course)
        except SandboxUnavailable as problem:  # bubblewrap runs, but Python cannot start in its sandbox
            print("the sandbox cannot run the kernel here; instead:")
            isolation = announce(detect(str(problem)), layout)
            grades = grade_all([layout.submission], Path(out), settings(args, isolation), root=layout.course)
        finally:
            if isolation.mode == USER:
                KernelUser.named(isolation.user).stop_all()  # whatever a kernel left running
    if len(grades) != 1:
        reasons = "; ".join(sorted({grade.status for grade in grades}))
        return Outcome(None, possible, time.monotonic() - start, f"{len(grades)} notebooks in {names} ({reasons})")
    print(feedback(grades[0]))
    return Outcome(grades[0], possible, time.monotonic() - start)


def main(layout: Layout, results: Callable[[Outcome], dict], argv: list[str] | None = None) -> int:
    """A platform's entry point: grade its submission, write its results file, say what was done; returns 0 (what
    went wrong is in the results)."""
    args, start = parser(layout.platform).parse_args(argv), time.monotonic()
    print(f"discrete-latents autograder on {layout.platform}")
    try:
        outcome = grade_submission(layout, args, start)
    except Exception as error:  # a broken installation or a bug of ours: still a results file, saying so
        traceback.print_exc(file=sys.stdout)
        reason = f"the autograder failed ({type(error).__name__}: {error}); your instructor has the details"
        outcome = Outcome(None, 0, time.monotonic() - start, reason, failed=True)
    write_atomically(layout.results, json.dumps(results(outcome), indent=2, ensure_ascii=False))
    total = f"{outcome.grade.total} / {outcome.possible}" if outcome.graded else f"not graded: {outcome.why}"
    print(f"{total} in {outcome.seconds:.1f} s; wrote {layout.results}")
    return 0
