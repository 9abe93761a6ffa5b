"""The instructor's grader: `python -m starter.grade SUBMISSION.ipynb... --out grades/ [--jobs N]`.

Each submission is rebuilt on the instructor's own copy of the solution notebook: only the exercise cells
(nbgrader `solution: true`) are taken from the student, matched by `grade_id`; every other cell, check cells and
hidden tests included, comes from `solutions/`. The result runs in fast mode, in a fresh temporary folder, in its
own process with a memory limit, a time limit per cell and per notebook. Writes `grades.csv` (one row per
submission) and `feedback/<student>.md` (every check with its message).

Not a sandbox: a submission runs as the grader's user and could read or write any file that user can, or forge its
own check results from inside the kernel. The grader detects (and undoes) changes to `solutions/` and `starter/`,
but for untrusted submissions run it in a container, e.g.
`docker run --rm --network none --memory 8g -v "$PWD":/course -w /course IMAGE python -m starter.grade ...`.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from starter.checks import GRADING_LOG_ENV
from starter.config import FAST_ENV, PROJECT_ROOT

CELL_ENV = "COURSE_CHECK_CELL"
MESSAGE_LIMIT = 500  # characters of a check message kept in the feedback


@dataclass
class CheckScore:
    grade_id: str
    points: int
    earned: int = 0
    status: str = "not run"
    messages: list[str] = field(default_factory=list)


@dataclass
class Grade:
    student: str
    notebook: str = ""
    status: str = "ok"
    checks: list[CheckScore] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(check.earned for check in self.checks)

    @property
    def possible(self) -> int:
        return sum(check.points for check in self.checks)


def nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def check_cells(notebook) -> list:
    """The graded cells of a notebook, in order."""
    return [c for c in notebook.cells if c.cell_type == "code" and nbgrader(c).get("grade")]


def load_solutions(folder: Path = PROJECT_ROOT / "solutions") -> dict[str, nbformat.NotebookNode]:
    """The instructor's notebooks by name, e.g. {"01_autoencoder": notebook}."""
    return {path.stem: nbformat.read(path, as_version=4) for path in sorted(folder.glob("[0-9][0-9]_*.ipynb"))}


def read_submission(path: Path) -> nbformat.NotebookNode:
    """Parse a submission; raise ValueError with a short reason if it is not a usable notebook."""
    try:
        raw = json.loads(path.read_bytes())
    except (OSError, ValueError) as error:
        raise ValueError(f"not JSON ({type(error).__name__})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        raise ValueError("not a notebook (no list of cells)")
    if raw.get("nbformat") != 4:
        raise ValueError(f"unsupported nbformat {raw.get('nbformat')!r} (expected 4)")
    try:
        return nbformat.from_dict(raw)
    except Exception as error:  # malformed cells
        raise ValueError(f"malformed notebook ({type(error).__name__})") from None


def exercise_sources(submission) -> dict[str, str]:
    """Source of each exercise cell of the submission, by grade_id (falling back to the cell id)."""
    sources = {}
    for cell in submission.cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        key = nbgrader(cell).get("grade_id") or cell.get("id")
        source = cell.get("source", "")
        if key and isinstance(source, (str, list)):
            sources[key] = "".join(source) if isinstance(source, list) else source
    return sources


def match_solution(path: Path, submission, solutions: dict) -> str:
    """The solution notebook a submission belongs to: most shared exercise ids, then the file-name number."""
    ids = set(exercise_sources(submission))
    def overlap(name: str) -> int:
        return len(ids & {nbgrader(c).get("grade_id") for c in solutions[name].cells if nbgrader(c).get("solution")})
    best = max(solutions, key=overlap)
    if overlap(best) > 0:
        return best
    number = re.search(r"(?<!\d)(\d\d)_", path.name)
    for name in solutions:
        if number and name.startswith(number[1]):
            return name
    raise ValueError("cannot tell which course notebook this is (no known exercise cells)")


def assemble(solution, submission) -> nbformat.NotebookNode:
    """The instructor's notebook with the student's exercise cells swapped in and each check cell labelled."""
    notebook = nbformat.from_dict(json.loads(json.dumps(solution)))
    student = exercise_sources(submission)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        cell.outputs = []
        meta = nbgrader(cell)
        if meta.get("solution"):
            cell.source = student.get(meta.get("grade_id"), "raise NotImplementedError('cell missing from the submission')")
        elif meta.get("grade"):
            cell.source = f"import os as _os; _os.environ[{CELL_ENV!r}] = {meta['grade_id']!r}\n" + cell.source
        elif "google.colab" in cell.source:
            cell.source = ""
    return notebook


def _limit_memory(megabytes: int):
    def apply() -> None:
        os.setsid()  # own process group: a time-out kills the kernel too
        limit = megabytes * 2**20
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    return apply


def run_notebook(notebook, workdir: Path, cell_timeout: int, notebook_timeout: int, memory_mb: int) -> str:
    """Execute in a separate process; returns "ok", "timeout" or "crashed (...)"."""
    source = workdir / "submission.ipynb"
    nbformat.write(notebook, source)
    env = {**os.environ, FAST_ENV: "1", GRADING_LOG_ENV: str(workdir / "checks.jsonl"), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "starter.grade", "--worker", str(source), "--cell-timeout", str(cell_timeout)]
    try:
        process = subprocess.run(command, cwd=workdir, env=env, timeout=notebook_timeout, capture_output=True,
                                 preexec_fn=_limit_memory(memory_mb))
    except subprocess.TimeoutExpired:
        return "timeout"
    if process.returncode != 0:
        reason = process.stderr.decode(errors="replace").strip().splitlines()[-1:] or [f"exit code {process.returncode}"]
        return f"crashed ({reason[0][:200]})"
    return "ok"


def worker(path: Path, cell_timeout: int) -> None:
    """Inside the grading process: run every cell, keep going after errors."""
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=cell_timeout, kernel_name="python3", allow_errors=True,
                   interrupt_on_timeout=True, resources={"metadata": {"path": str(path.parent)}}).execute()


def score(solution, log: Path) -> list[CheckScore]:
    """Points per check cell from the grading log: a cell earns its points when all its reports passed."""
    reports: dict[str, list[dict]] = {}
    if log.exists():
        for line in log.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            reports.setdefault(entry.get("cell"), []).append(entry)
    scores = []
    for cell in check_cells(solution):
        meta = nbgrader(cell)
        check = CheckScore(meta["grade_id"], int(meta.get("points", 0)))
        entries = reports.get(meta["grade_id"], [])
        if entries:
            statuses = {e.get("status") for e in entries}
            check.status = "pass" if statuses == {"pass"} else ("not implemented" if "not implemented" in statuses else "fail")
            check.earned = check.points if check.status == "pass" else 0
            for entry in entries:
                check.messages.append(f"{entry.get('title')}: {entry.get('status')}"[:MESSAGE_LIMIT])
                for step in entry.get("steps", []):
                    mark = "✓" if step.get("status") == "pass" else "✗"
                    detail = f": {step.get('message')}" if step.get("message") else ""
                    check.messages.append(f"  {mark} {step.get('name')}{detail}"[:MESSAGE_LIMIT])
        scores.append(check)
    return scores


def _fingerprint(root: Path) -> dict[Path, bytes]:
    files = [p for folder in ("solutions", "starter") for p in (root / folder).rglob("*")
             if p.is_file() and "__pycache__" not in p.parts]
    return {p: p.read_bytes() for p in files}


def grade_one(path: Path, solutions: dict, cell_timeout: int, notebook_timeout: int, memory_mb: int) -> Grade:
    """Grade one submission; never raises."""
    grade = Grade(student=path.stem)
    start = time.perf_counter()
    try:
        submission = read_submission(path)
        grade.notebook = match_solution(path, submission, solutions)
    except ValueError as error:
        grade.status = f"invalid: {error}"
        return grade
    solution = solutions[grade.notebook]
    with tempfile.TemporaryDirectory(prefix=f"grade-{path.stem[:20]}-") as scratch:
        workdir = Path(scratch)
        grade.status = run_notebook(assemble(solution, submission), workdir, cell_timeout, notebook_timeout, memory_mb)
        grade.checks = score(solution, workdir / "checks.jsonl")
    grade.seconds = time.perf_counter() - start
    return grade


def write_reports(grades: list[Grade], out: Path, solutions: dict) -> Path:
    """grades.csv with one row per submission, and feedback/<student>.md for each."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "feedback").mkdir(exist_ok=True)
    check_ids = [nbgrader(c)["grade_id"] for name in solutions for c in check_cells(solutions[name])]
    with open(out / "grades.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "notebook", "status", "total", "possible", "seconds", *check_ids])
        for grade in grades:
            earned = {check.grade_id: check.earned for check in grade.checks}
            writer.writerow([grade.student, grade.notebook, grade.status, grade.total, grade.possible,
                             round(grade.seconds, 1), *[earned.get(i, "") for i in check_ids]])
    for grade in grades:
        lines = [f"# {grade.student}: {grade.notebook or 'unknown notebook'}", "",
                 f"Status: {grade.status}. Score: {grade.total} / {grade.possible}.", ""]
        for check in grade.checks:
            lines.append(f"## {check.grade_id}: {check.earned} / {check.points} ({check.status})")
            lines += [f"- {message}" for message in check.messages] or ["- this check did not run"]
            lines.append("")
        safe = re.sub(r"[^\w.-]", "_", grade.student)[:100] or "student"
        (out / "feedback" / f"{safe}.md").write_text("\n".join(lines), encoding="utf-8")
    return out / "grades.csv"


def grade_all(paths: list[Path], out: Path, jobs: int = 1, cell_timeout: int = 300, notebook_timeout: int = 1800,
              memory_mb: int = 6144, root: Path = PROJECT_ROOT) -> list[Grade]:
    """Grade every submission (in parallel with `jobs`) against `root`/solutions; restore any file of
    `root`/solutions or `root`/starter that a submission changed."""
    solutions = load_solutions(root / "solutions")
    before = _fingerprint(root)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        grades = list(pool.map(lambda p: grade_one(p, solutions, cell_timeout, notebook_timeout, memory_mb), paths))
    changed = {p for p, data in before.items() if not p.exists() or p.read_bytes() != data}
    for path in changed:
        path.write_bytes(before[path])
    if changed:
        names = ", ".join(str(p.relative_to(root)) for p in sorted(changed))
        for grade in grades:
            grade.status += f"; instructor files were changed during grading and restored: {names}"
    write_reports(grades, out, solutions)
    return grades


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("submissions", nargs="*", type=Path, help="submitted .ipynb files or folders of them")
    parser.add_argument("--out", type=Path, default=Path("grades"), help="folder for grades.csv and feedback/")
    parser.add_argument("--jobs", type=int, default=1, help="submissions graded in parallel")
    parser.add_argument("--cell-timeout", type=int, default=300, help="seconds per cell")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per notebook")
    parser.add_argument("--memory-mb", type=int, default=6144, help="memory limit per submission")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.cell_timeout)
        return 0
    paths = sorted(p for s in args.submissions for p in ([s] if s.is_file() else s.glob("*.ipynb")))
    if not paths:
        parser.error("no submissions given")
    grades = grade_all(paths, args.out, args.jobs, args.cell_timeout, args.timeout, args.memory_mb)
    width = max(len(g.student) for g in grades)
    for grade in grades:
        print(f"{grade.student:<{width}}  {grade.total:>3} / {grade.possible:<3}  {grade.status}")
    print(f"wrote {args.out / 'grades.csv'} and {len(grades)} feedback files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
