"""The instructor's grader: `python -m starter.grade SUBMISSION.ipynb... --out grades/ [--jobs N]`; a student's
self-check: `python -m starter.grade --self notebooks/02_vqvae.ipynb` (`make check NB=02`), without hidden tests.

Each submission is rebuilt on the instructor's own copy of the solution notebook: only the exercise cells
(nbgrader `solution: true`) are taken from the student, matched by `grade_id`; the set-up cells, check cells and
hidden tests come from `solutions/` (demo and training cells are left out: they earn nothing). It runs in fast mode,
in a fresh temporary folder, in its own process with a memory limit and time limits, and writes `grades.csv` (one
row per submission) and `feedback/<student>.md` (every check with its message).

Who decides a score (observe, then judge). Student code runs only in that process, and there a check only
*observes*: it calls the student's code through `starter.checks.observe` on inputs drawn from a seed that is fresh
for every grading run, and appends what came back (tensors, numbers, exceptions: data, never objects) to an
evidence log. Nothing the process says about itself counts. Afterwards this process, which never imports or runs
student code (every check module is imported before any submission runs), replays each check cell's check calls
on that evidence: every reference value is recomputed here, and the verdicts and messages are the judge's own. So
printing ✓, patching `starter.checks` or writing the log earns nothing; a submission earns a check only with
evidence that holds the values the reference produces on this run's inputs. An exercise cell that reaches for
starter's twin of the exercise (an import from starter, `reference.MaskedConv2d`, ...) gets 0 for its check.

Least privilege. Run as root (CI, containers) on Linux with util-linux, each submission runs in its own mount and
process namespaces as the user `nobody`: the solutions, tests, git history and the submissions' folders are covered
by empty folders, it cannot write the course's or the grader's files (only its own folder and world-writable
places such as /tmp), and nothing it starts outlives it. Otherwise it runs as
the grader's user, and the grader says so once; changes it makes to `solutions/` or `starter/` are detected and undone.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import csv
import io
import json
import os
import re
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import Any, Callable

import nbformat

# Every check module is imported now, before any submission runs: the judge never loads code a submission could change.
from starter.checks import FAIL, PASS, TODO, Report, StepResult, autoencoder, evidence, pixelcnn, prior, vae, vq
from starter.config import (CHECK_CELL_ENV, FAST_ENV, GRADING_LOG_ENV, GRADING_SEED_ENV, PROJECT_ROOT, thread_limits,
                            threads_per_job)

MESSAGE_LIMIT = 500  # characters of a check message kept in the feedback
LOG_LIMIT = 256 * 2**20  # bytes of evidence read from one grading run
CHECKS: dict[str, Callable[..., Report]] = {name: function for module in (autoencoder, vq, pixelcnn, prior, vae)
                                            for name, function in vars(module).items() if name.startswith("check_")}
# Reference versions in starter that an exercise must not use, beyond the names the exercise defines itself.
TWINS = {"prior": {"CodePrior", "GatedCodePrior"}, "encode": {"encode_dataset"}, "quantize": {"nearest_codes"},
         "sample-codes": {"sample", "generate"}}
_judging = threading.Lock()  # the judge sets the grading seed in the environment: one judgement at a time


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


def assemble(solution, submission, hidden: bool = True) -> nbformat.NotebookNode:
    """The instructor's notebook with the student's exercise cells swapped in, each check cell labelled with its id,
    and nothing else that runs student code: after the set-up cells, only exercise and check cells are kept (demos
    and training are not graded). `hidden=False` leaves out the hidden tests (a student's self-check)."""
    from starter.build import strip_source

    notebook = nbformat.from_dict(json.loads(json.dumps(solution)))
    student = exercise_sources(submission)
    seen_exercise = False
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        cell.outputs = []
        meta = nbgrader(cell)
        seen_exercise = seen_exercise or bool(meta.get("solution"))
        if meta.get("solution"):
            cell.source = student.get(meta.get("grade_id"), "raise NotImplementedError('cell missing from the submission')")
        elif meta.get("grade"):
            source = cell.source if hidden else strip_source(cell.source)
            cell.source = f"import os as _os; _os.environ[{CHECK_CELL_ENV!r}] = {meta['grade_id']!r}\n" + source
        elif seen_exercise or "google.colab" in cell.source:
            cell.source = ""
    return notebook


class StudentName:
    """Stands, in the judge, for an object of the student's notebook (a function, a class): never called there."""

    def __init__(self, name: str):
        self.__name__ = name

    def __call__(self, *args, **kwargs):
        raise RuntimeError(f"the judge called the student's {self.__name__} outside observe(): a bug in the check")


def check_calls(source: str) -> list[tuple[Callable[..., Report], list, dict]]:
    """The check calls of a check cell, visible and hidden, in order: (check function, arguments, keywords), with
    the student's objects as StudentName and every other argument a literal."""
    def value(node: ast.expr) -> Any:
        return StudentName(node.id) if isinstance(node, ast.Name) else ast.literal_eval(node)

    calls = []
    for node in ast.parse(source).body:
        call = node.value if isinstance(node, ast.Expr) else None
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in CHECKS:
            calls.append((CHECKS[call.func.id], [value(a) for a in call.args],
                          {k.arg: value(k.value) for k in call.keywords}))
    return calls


def judge(source: str, records: list[dict], seed: int) -> list[Report]:
    """Re-run the check calls of a check cell on the evidence a grading run recorded for it, without running any
    student code: every reference value is recomputed here, so the verdicts are the judge's own."""
    reports = []
    with _judging, contextlib.redirect_stdout(io.StringIO()):
        previous = os.environ.get(GRADING_SEED_ENV)
        os.environ[GRADING_SEED_ENV] = str(seed)
        try:
            for (check, args, kwargs), record in zip_longest(check_calls(source), records):
                if check is None:
                    break
                record = record if isinstance(record, dict) and isinstance(record.get("evidence"), list) else {}
                evidence.queue_replay(record.get("evidence", []), record.get("title"))
                reports.append(check(*args, **kwargs))
        finally:
            evidence.clear_replays()
            if previous is None:
                del os.environ[GRADING_SEED_ENV]
            else:
                os.environ[GRADING_SEED_ENV] = previous
    return reports


def reference_uses(source: str, twins: set[str]) -> list[str]:
    """What in an exercise cell's source reaches for starter's reference code (the twin of the exercise)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("starter"):
            found.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Import) and any(a.name.startswith("starter") for a in node.names):
            found.append("import starter...")
        elif isinstance(node, ast.Attribute) and node.attr in twins:
            found.append(f"`{ast.unparse(node)}`")
        elif isinstance(node, ast.Name) and node.id in twins - defined:
            found.append(f"`{node.id}`")
        elif isinstance(node, ast.Name) and node.id in {"__import__", "importlib"}:
            found.append(f"`{node.id}`")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("starter"):
            found.append(f"the string {node.value!r}")
    return found


@dataclass(frozen=True)
class Isolation:
    """How a submission is confined when the grader runs as root: a worker in its own mount and process namespaces
    (`unshare`) covers `hide` (the solutions, the tests, git history, other submissions) with empty folders, then
    starts the kernel as the unprivileged `user` (uid, gid), which cannot write the course's files; nothing it starts
    outlives the worker."""
    user: tuple[int, int]
    hide: tuple[Path, ...]


def isolation(hide: list[Path]) -> tuple[Isolation | None, str]:
    """The isolation this machine allows, or None and the reason why not."""
    if os.geteuid() != 0:
        return None, "the grader does not run as root"
    if not all(shutil.which(tool) for tool in ("unshare", "mount", "setpriv")):
        return None, "`unshare`, `mount` and `setpriv` (util-linux) are not all installed"
    import pwd

    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        return None, "there is no user `nobody`"
    probe = subprocess.run(["unshare", "--mount", "--pid", "--fork", "--kill-child", "true"], capture_output=True)
    if probe.returncode != 0:
        return None, f"`unshare` is not permitted here ({probe.stderr.decode(errors='replace').strip()[:100]})"
    return Isolation((nobody.pw_uid, nobody.pw_gid), tuple(p for p in hide if p.is_dir())), ""


def _limit_process(megabytes: int):
    def apply() -> None:
        os.setsid()  # own process group: a time-out kills the kernel too
        limit = megabytes * 2**20
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    return apply


def _kernelspec(folder: Path, user: tuple[int, int]) -> None:
    """A kernel `grading` that gives itself its connection file and drops to `user` before Python starts."""
    uid, gid = user
    start = (f'chown {uid}:{gid} "$0" && exec setpriv --reuid={uid} --regid={gid} --clear-groups '
             f'{sys.executable} -m ipykernel_launcher -f "$0"')
    spec = folder / "kernels" / "grading"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({"argv": ["sh", "-c", start, "{connection_file}"],
                                                  "display_name": "grading", "language": "python"}))


def run_notebook(notebook, workdir: Path, cell_timeout: int, notebook_timeout: int, memory_mb: int, seed: int,
                 confine: Isolation | None = None, threads: int = 1) -> str:
    """Execute in a separate process (confined if `confine` is given); returns "ok", "timeout" or "crashed (...)".

    Layout of `workdir`: `kernel/` is the submission's (the notebook, its home, its evidence log); `windows.json`,
    written by the worker, says which bytes of the log each check cell wrote; the submission cannot change it."""
    kernel = workdir / "kernel"
    home = kernel / "home"
    (home / "runtime").mkdir(parents=True)
    source = kernel / "submission.ipynb"
    nbformat.write(notebook, source)
    if confine:
        _kernelspec(workdir, confine.user)
        workdir.chmod(0o755)  # the submission may enter, not write
        for path in (kernel, home, home / "runtime", source):
            os.chown(path, *confine.user)
    env = {key: value for key, value in os.environ.items() if not key.startswith("COURSE_GRADING")}
    env.update({FAST_ENV: "1", GRADING_LOG_ENV: str(kernel / "evidence.jsonl"), GRADING_SEED_ENV: str(seed),
                "PYTHONUNBUFFERED": "1", "HOME": str(home), "TMPDIR": str(home), "MPLCONFIGDIR": str(home / "mpl"),
                "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "IPYTHONDIR": str(home / "ipython"),
                "JUPYTER_PATH": str(workdir), **thread_limits(threads)})
    command = [sys.executable, "-m", "starter.grade", "--worker", str(source), "--cell-timeout", str(cell_timeout),
               "--windows", str(workdir / "windows.json")]
    if confine:
        command = ["unshare", "--mount", "--pid", "--fork", "--kill-child", *command, "--kernel", "grading",
                   *[f"--hide={p}" for p in confine.hide]]
    try:
        process = subprocess.run(command, cwd=kernel, env=env, timeout=notebook_timeout, capture_output=True,
                                 preexec_fn=_limit_process(memory_mb))
    except subprocess.TimeoutExpired:
        return "timeout"
    if process.returncode != 0:
        reason = process.stderr.decode(errors="replace").strip().splitlines()[-1:] or [f"exit code {process.returncode}"]
        return f"crashed ({reason[0][:200]})"
    return "ok"


def worker(path: Path, cell_timeout: int, windows: Path, kernel: str = "python3", hide: list[Path] = ()) -> None:
    """Inside the grading process (in its own namespaces when confined): cover the hidden folders, run every cell
    (going on after errors), and note which bytes of the evidence log each check cell wrote, so that evidence
    written at any other time (by an exercise cell, a thread or a child process) counts for nothing."""
    from nbclient import NotebookClient

    for folder in hide:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k,mode=000", "tmpfs", str(folder)], check=True)
    log = Path(os.environ[GRADING_LOG_ENV])
    size = lambda: log.stat().st_size if log.exists() else 0  # noqa: E731
    spans: dict[str, list[int]] = {}

    def started(cell, cell_index, **_):
        if nbgrader(cell).get("grade"):
            spans[nbgrader(cell)["grade_id"]] = [size(), -1]

    def finished(cell, cell_index, **_):
        if nbgrader(cell).get("grade"):
            spans[nbgrader(cell)["grade_id"]][1] = size()
            windows.write_text(json.dumps(spans))

    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=cell_timeout, kernel_name=kernel, allow_errors=True, interrupt_on_timeout=True,
                   on_cell_execute=started, on_cell_executed=finished,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    windows.write_text(json.dumps(spans))


def read_evidence(log: Path, windows: dict[str, list[int]] | None = None) -> dict[str, list[dict]]:
    """The evidence records of a grading run by check cell, in order (malformed lines are skipped). With `windows`
    ({cell: [first byte, end byte]} as the worker saw them), only the records that each check cell itself wrote."""
    records: dict[str, list[dict]] = {}
    if not log.is_file():
        return records
    with open(log, "rb") as handle:
        data = handle.read(LOG_LIMIT)
    for cell, span in (windows.items() if windows is not None else [(None, [0, len(data)])]):
        if not (isinstance(span, list) and len(span) == 2 and all(isinstance(b, int) for b in span)):
            continue
        for line in data[span[0]:max(span[0], span[1])].decode(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(entry, dict) and isinstance(entry.get("cell"), str) and entry["cell"] == (cell or entry["cell"]):
                records.setdefault(entry["cell"], []).append(entry)
    return records


def read_windows(path: Path) -> dict[str, list[int]]:
    """The worker's record of which bytes of the evidence log each check cell wrote ({} if it wrote none)."""
    try:
        windows = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return windows if isinstance(windows, dict) else {}


def _messages(report: Report) -> list[str]:
    lines = [f"{report.title}: {report.status}"]
    for step in report.steps:
        mark = "✓" if step.status == PASS else "✗"
        lines.append(f"  {mark} {step.name}" + (f": {step.message}" if step.message else ""))
    return [line[:MESSAGE_LIMIT] for line in lines]


def score(solution, submission, log: Path, seed: int, windows: dict[str, list[int]] | None = None) -> list[CheckScore]:
    """Points per check cell, decided by the judge from the evidence each check cell wrote: a cell earns its points
    when every check run in it passes on its own evidence (one record per check call), and none when its exercise
    reaches for starter's reference version."""
    records = read_evidence(log, windows)
    sources = exercise_sources(submission)
    cells = [c for c in solution.cells if c.cell_type == "code"]
    exercise_of = {check.metadata["nbgrader"]["grade_id"]: nbgrader(cell).get("grade_id")
                   for cell, check in zip(cells, cells[1:]) if nbgrader(cell).get("solution") and nbgrader(check).get("grade")}
    scores = []
    for cell in check_cells(solution):
        meta = nbgrader(cell)
        check = CheckScore(meta["grade_id"], int(meta.get("points", 0)))
        exercise = exercise_of.get(meta["grade_id"])
        found = records.get(meta["grade_id"], [])
        if len(found) > len(check_calls(cell.source)):
            found = []  # more evidence than the cell's checks write: something else wrote it, and none of it counts
        reports = judge(cell.source, found, seed)
        defined = {n.name for n in ast.parse(next(c.source for c in cells if nbgrader(c).get("grade_id") == exercise)).body
                   if isinstance(n, (ast.FunctionDef, ast.ClassDef))} if exercise else set()
        uses = reference_uses(sources.get(exercise, ""), defined | TWINS.get(exercise, set())) if exercise else []
        if uses:
            reports.insert(0, Report("reference implementation", [StepResult(
                "the exercise is your own code", FAIL, f"uses the reference implementation from starter: {', '.join(uses)}")]))
        statuses = {r.status for r in reports}
        check.status = PASS if reports and statuses == {PASS} else (TODO if TODO in statuses else FAIL)
        check.earned = check.points if check.status == PASS else 0
        check.messages = [line for report in reports for line in _messages(report)]
        scores.append(check)
    return scores


def _fingerprint(root: Path) -> dict[Path, bytes]:
    files = [p for folder in ("solutions", "starter") for p in (root / folder).rglob("*")
             if p.is_file() and "__pycache__" not in p.parts]
    return {p: p.read_bytes() for p in files}


def grade_one(path: Path, solutions: dict, cell_timeout: int, notebook_timeout: int, memory_mb: int,
              hidden: bool = True, seed: int | None = None, confine: Isolation | None = None, threads: int = 1) -> Grade:
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
    seed = secrets.randbits(31) if seed is None else seed  # fresh hidden inputs for every grading run
    with tempfile.TemporaryDirectory(prefix=f"grade-{path.stem[:20]}-") as scratch:
        workdir = Path(scratch)
        grade.status = run_notebook(assemble(solution, submission, hidden), workdir, cell_timeout, notebook_timeout,
                                    memory_mb, seed, confine, threads)
        grade.checks = score(solution if hidden else _without_hidden_tests(solution), submission,
                             workdir / "kernel" / "evidence.jsonl", seed, read_windows(workdir / "windows.json"))
    grade.seconds = time.perf_counter() - start
    return grade


def _without_hidden_tests(solution) -> nbformat.NotebookNode:
    from starter.build import strip_source

    visible = nbformat.from_dict(json.loads(json.dumps(solution)))
    for cell in check_cells(visible):
        cell.source = strip_source(cell.source)
    return visible


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


def _folders_to_hide(root: Path, paths: list[Path]) -> list[Path]:
    """What a submission must not read: the solutions, the tests, git history, and the folders of the submissions
    (other students' work), unless such a folder also holds what the grading run needs."""
    needed = [PROJECT_ROOT / "starter", PROJECT_ROOT / "data", Path(tempfile.gettempdir()), Path(sys.prefix)]
    folders = {root / "solutions", PROJECT_ROOT / "solutions", PROJECT_ROOT / "tests", PROJECT_ROOT / ".git"}
    folders |= {path.resolve().parent for path in paths}
    return sorted(f for f in folders if not any(n.resolve().is_relative_to(f.resolve()) for n in needed))


def grade_all(paths: list[Path], out: Path, jobs: int = 1, cell_timeout: int = 300, notebook_timeout: int = 1800,
              memory_mb: int = 6144, root: Path = PROJECT_ROOT, hidden: bool = True, seed: int | None = None) -> list[Grade]:
    """Grade every submission (in parallel with `jobs`) against `root`/solutions, confined when the machine allows
    (saying once when it does not), each with cores / jobs threads; restore any file of `root`/solutions or
    `root`/starter that a submission changed.
    `hidden=False` leaves out the hidden tests; `seed` fixes the hidden inputs (default: fresh for every run)."""
    solutions = load_solutions(root / "solutions")
    confine, reason = isolation(_folders_to_hide(root, paths))
    if confine:
        from starter.dataset_files import DatasetNotFoundError, prepare_mnist

        with contextlib.suppress(DatasetNotFoundError):
            prepare_mnist()  # the confined submission cannot write data/: unpack MNIST now
    else:
        print(f"note: submissions run as this user, not confined ({reason}); see the README's grading section")
    threads = threads_per_job(jobs)
    print(f"grading {len(paths)} submission(s), {max(1, jobs)} at a time, {threads} torch thread(s) each "
          f"({os.cpu_count()} cores)")
    before = _fingerprint(root)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        grades = list(pool.map(lambda p: grade_one(p, solutions, cell_timeout, notebook_timeout, memory_mb, hidden, seed,
                                                   confine, threads), paths))
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
    parser.add_argument("--self", dest="self_check", action="store_true",
                        help="a student's check before submitting: the grader's score and feedback, without hidden tests")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--windows", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--kernel", default="python3", help=argparse.SUPPRESS)
    parser.add_argument("--hide", type=Path, action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.cell_timeout, args.windows, args.kernel, args.hide)
        return 0
    paths = sorted(p for s in args.submissions for p in ([s] if s.is_file() else s.glob("*.ipynb")))
    if not paths:
        parser.error("no submissions given")
    out = Path(tempfile.mkdtemp(prefix="self-check-")) if args.self_check else args.out
    grades = grade_all(paths, out, args.jobs, args.cell_timeout, args.timeout, args.memory_mb, hidden=not args.self_check)
    width = max(len(g.student) for g in grades)
    for grade in grades:
        if args.self_check:
            safe = re.sub(r"[^\w.-]", "_", grade.student)[:100] or "student"
            print((out / "feedback" / f"{safe}.md").read_text(encoding="utf-8"))
        print(f"{grade.student:<{width}}  {grade.total:>3} / {grade.possible:<3}  {grade.status}")
    if not args.self_check:
        print(f"wrote {args.out / 'grades.csv'} and {len(grades)} feedback files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
