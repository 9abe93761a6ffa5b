"""The grader's command line: `python -m starter.grade SUBMISSION... --out grades/ [--jobs N]` for instructors,
`python -m starter.grade --self notebooks/02_vqvae.ipynb` (`make check NB=02`) for a student before submitting."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from starter.grading.batch import Settings, grade_all
from starter.grading.budget import UNENFORCED, BudgetUnavailable
from starter.grading.reports import file_name, visible
from starter.grading.sandbox import SandboxUnavailable, check_available
from starter.grading.submissions import DuplicateSubmissions

UNCONFINED = (
    "submissions run unconfined, as this user, with the answers withheld from their `starter` but able to "
    "read whatever this user can: for trusted notebooks only"
)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m starter.grade", description=__doc__.splitlines()[0])
    parser.add_argument(
        "submissions",
        nargs="+",
        type=Path,
        help="notebooks, folders of them (nbgrader's submitted/ too) or .zip files (LMS exports)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("grades"),
        help="folder for grades.csv, feedback/, summary.md and results/ (a second run resumes)",
    )
    parser.add_argument("--jobs", type=int, default=1, help="submissions graded in parallel")
    parser.add_argument("--cell-timeout", type=int, default=300, help="seconds per cell and per check request")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per notebook")
    parser.add_argument("--memory-mb", type=int, default=6144, help="memory limit of each submission's kernel")
    parser.add_argument("--disk-mb", type=int, default=1024, help="size of each writable folder of a kernel")
    parser.add_argument("--processes", type=int, default=256, help="processes and threads of each kernel")
    parser.add_argument("--seed", type=int, default=None, help="fix the hidden inputs (default: fresh every run)")
    parser.add_argument("--unconfined", action="store_true", help="grade without the bubblewrap sandbox: " + UNCONFINED)
    parser.add_argument(
        "--per-process-limits",
        action="store_true",
        help="grade even where no cgroup can be made for each kernel: " + UNENFORCED,
    )
    parser.add_argument(
        "--self",
        dest="self_check",
        action="store_true",
        help="a student's check before submitting: the grader's score and feedback, without hidden tests",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    confine = not args.unconfined
    if args.self_check and confine:
        try:
            check_available()
        except SandboxUnavailable as reason:
            confine = False  # a student's own notebook on their own machine
            print(f"note: {reason}; checking your notebook without the sandbox")
    if args.self_check:
        with tempfile.TemporaryDirectory(prefix="self-check-") as out:
            return grade_and_print(args, Path(out), confine)
    return grade_and_print(args, args.out, confine)


def grade_and_print(args: argparse.Namespace, out: Path, confine: bool) -> int:
    """Grade args.submissions into out and print a line per submission (and, for --self, its feedback)."""
    settings = Settings(
        jobs=args.jobs,
        cell_timeout=args.cell_timeout,
        notebook_timeout=args.timeout,
        memory_mb=args.memory_mb,
        disk_mb=args.disk_mb,
        processes=args.processes,
        per_process_limits=args.per_process_limits or args.self_check,
        hidden=not args.self_check,
        confine=confine,
        seed=args.seed,
        progress=not args.self_check,
    )
    if not confine and not args.self_check:
        print(f"note: {UNCONFINED}")
    if args.per_process_limits and not args.self_check:
        print(f"note: where no cgroup can be made, {UNENFORCED}")
    try:
        grades = grade_all(args.submissions, out, settings)
    except DuplicateSubmissions as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BudgetUnavailable as error:
        print(
            f"error: cannot give each submission a budget of its own (one cgroup for its memory, tmpfs included, and "
            f"its processes): {error}.\nRun the grader where it may make cgroups (as root, or in a cgroup subtree "
            f"delegated to it), or grade with --per-process-limits ({UNENFORCED}).",
            file=sys.stderr,
        )
        return 2
    except SandboxUnavailable as error:
        print(
            f"error: cannot confine submissions: {error}.\nInstall bubblewrap (`sudo apt install bubblewrap`), or "
            f"grade trusted notebooks with --unconfined ({UNCONFINED}).",
            file=sys.stderr,
        )
        return 2
    width = max((len(visible(g.student)) for g in grades), default=0)
    for grade in grades:
        if args.self_check and grade.checks:
            print((out / "feedback" / file_name(grade.student) / f"{file_name(grade.notebook)}.md").read_text("utf-8"))
        student, status = visible(grade.student), visible(grade.status)
        print(f"{student:<{width}}  {grade.notebook:<16} {grade.total:>3} / {grade.possible:<3}  {status}")
    if not args.self_check:
        print(
            f"wrote {out / 'grades.csv'}, {out / 'summary.md'} and the feedback of {len(grades)} submission(s) "
            f"in {out / 'feedback'}"
        )
    return 0
