"""Grade a batch of submissions: each in a worker process of its own (its checks run there) with its kernel in a
sandbox of its own and both in cgroups of their own (`budget`), `jobs` at a time, each result written the moment it
is done (see `reports`). The scratch folders are removed without recursion (`scratch.remove_tree`)."""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import os
import secrets
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
from tqdm.auto import tqdm

from starter.capstone import capstones_of
from starter.config import (
    CHECKPOINTS,
    CHECKPOINTS_ENV,
    DATA_ENV,
    DATA_ROOT,
    FAST_ENV,
    PROJECT_ROOT,
    thread_limits,
    threads_per_job,
)
from starter.exercises import BY_CHECK_ID
from starter.grading import preloaded
from starter.grading.budget import Budget, available, find
from starter.grading.capstones import capstone_score, shared_weights
from starter.grading.kernel_user import KernelUser
from starter.grading.plan import Plan, make_plan
from starter.grading.reports import CheckScore, Grade, Results, received, score
from starter.grading.sandbox import (
    SOCKET_PATH,
    Sandbox,
    SandboxUnavailable,
    check_available,
    check_runs,
    python_paths,
)
from starter.grading.scratch import remove_tree
from starter.grading.similarity import course_fingerprints, similar_pairs, submission_fingerprints, write_report
from starter.grading.submissions import Entry, admit, check_unique, collect, nbgrader
from starter.grading.withheld import STARTER, withheld_copy

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

WORKERS = multiprocessing.get_context("forkserver")  # workers are forked from a server that imported the checks once
WORKERS.set_forkserver_preload(["starter.grading.worker", "starter.grading.batch"])
STARTED: set[tuple] = set()  # the sandboxes in which this process saw a kernel's Python start (`Batch.probe`)
GRADER_CODE = [
    STARTER / "exercises.py",
    STARTER / "report.py",
    *sorted((STARTER / "checks").glob("*.py")),
    *sorted((STARTER / "probes").glob("*.py")),
    *sorted((STARTER / "grading").glob("*.py")),
]


@dataclass
class Settings:
    """How a batch is graded (the command line's options)."""

    jobs: int = 1
    cell_timeout: int = 300
    notebook_timeout: int = 1800
    memory_mb: int = 6144
    disk_mb: int = 1024  # each writable folder of a kernel (its own, /tmp, /dev/shm), and any one file
    processes: int = 256  # tasks (processes and threads) of a kernel
    per_process_limits: bool = False  # True: where no cgroup can be made, limit memory per process (else refused)
    hidden: bool = True  # False: without the hidden tests (a student's self-check)
    confine: bool = True  # False: kernels run unconfined, as this user (refused unless asked for)
    kernel_user: str | None = None  # unconfined kernels run as this user instead (root only; see `kernel_user`)
    seed: int | None = None  # the hidden inputs; fresh for every run unless given
    progress: bool = True


def load_solutions(folder: Path) -> dict[str, nbformat.NotebookNode]:
    """The instructor's notebooks by name, e.g. {"01_autoencoder": notebook}."""
    return {path.stem: nbformat.read(path, as_version=4) for path in sorted(folder.glob("[0-9][0-9]_*.ipynb"))}


def check_cells(notebook) -> list:
    return [c for c in notebook.cells if c.cell_type == "code" and nbgrader(c).get("grade")]


def graded_ids(name: str, solution: nbformat.NotebookNode) -> list[str]:
    """What earns points in course notebook `name`: its check cells' grade_ids, then its capstones'."""
    return [nbgrader(c)["grade_id"] for c in check_cells(solution)] + [c.grade_id for c in capstones_of(name)]


def fingerprint(solution: nbformat.NotebookNode, hidden: bool) -> str:
    """What a grade depends on besides the submission: the solution notebook, the grader's code, hidden tests."""
    digest = hashlib.sha256(nbformat.writes(solution).encode())
    for path in GRADER_CODE:
        digest.update(path.read_bytes())
    digest.update(b"hidden" if hidden else b"visible")
    return digest.hexdigest()


def run_worker(job: dict, results: Connection) -> None:
    """A worker's entry: `worker.run`, imported here, in the worker (its server has it already), so that the grader's
    own process does not import torch and the checks."""
    from starter.grading import worker

    worker.run(job, results)


def kernel_environment(folder: Path, library: Path, threads: int) -> dict[str, str]:
    """Everything a grading kernel's environment holds: nothing of the grader's own."""
    home = folder / "home"
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": "/tmp",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(library),
        "MPLCONFIGDIR": str(home / "mpl"),
        "IPYTHONDIR": str(home / "ipython"),
        "JUPYTER_RUNTIME_DIR": str(folder / "runtime"),
        FAST_ENV: "1",
        DATA_ENV: str(DATA_ROOT),
        CHECKPOINTS_ENV: str(CHECKPOINTS),
        **thread_limits(threads),
    }


class Batch:
    """One grading run: the solutions, the settings, and a scratch folder with a withheld `starter` per notebook."""

    def __init__(self, solutions: dict, settings: Settings, scratch: Path):
        self.solutions, self.settings, self.scratch = solutions, settings, scratch
        self.seed = secrets.randbits(31) if settings.seed is None else settings.seed
        self.threads = threads_per_job(settings.jobs)
        self.libraries: dict[str, Path] = {}
        self.lock = threading.Lock()
        self.cgroups = available()
        confined = settings.confine and self.cgroups is not None
        self.server = preloaded.shared(thread_limits(self.threads)).address if confined else None
        checkout = PROJECT_ROOT if (PROJECT_ROOT / "solutions").is_dir() else None
        self.readable = python_paths(checkout) + [p for p in (DATA_ROOT, CHECKPOINTS) if p.is_dir()]
        limits = {"memory_mb": settings.memory_mb, "disk_mb": settings.disk_mb, "processes": settings.processes}
        self.user = KernelUser.named(settings.kernel_user, **limits) if settings.kernel_user else None

    def library(self, notebook: str) -> Path:
        """The folder holding the withheld `starter` for `notebook` (made once per run)."""
        with self.lock:
            if notebook not in self.libraries:
                folder = self.scratch / f"lib{notebook[:2]}"
                withheld_copy(notebook, folder)
                folder.chmod(0o755)
                self.libraries[notebook] = folder
            return self.libraries[notebook]

    def sandbox(self, folder: Path, library: Path) -> Sandbox | None:
        if not self.settings.confine:
            return None
        masks, settings = {STARTER: library / "starter"}, self.settings
        return Sandbox(self.readable + [library], folder, masks, settings.memory_mb, settings.disk_mb)

    def probe(self, notebook: str) -> None:
        """Raise SandboxUnavailable unless a kernel's Python can start in the sandbox for `notebook`; once per process
        for the same Python, paths and limits (a long-lived process, such as a test session, grades many batches)."""
        key = (sys.executable, notebook, tuple(map(str, self.readable)), self.settings.memory_mb, self.settings.disk_mb)
        if key in STARTED:
            return
        folder = Path(tempfile.mkdtemp(prefix="probe-", dir=self.scratch))
        library = self.library(notebook)
        check_runs(
            self.sandbox(folder, library),
            kernel_environment(folder, library, 1),
            ["torch", "ipykernel", "starter.probes.serve"],
        )
        remove_tree(folder)
        STARTED.add(key)

    def run(self, plan: Plan) -> tuple[list[dict], str]:
        """Run a plan in a worker process of its own (its kernel in its own folder and sandbox); returns what the
        worker reported for each check step, in order, and the run's status ("ok", "timeout ...", "crashed ...")."""
        folder = Path(tempfile.mkdtemp(prefix="g-", dir=self.scratch))
        library = self.library(plan.notebook)
        sandbox = self.sandbox(folder, library)
        limits = self.settings.memory_mb, self.settings.processes
        budget = Budget.create(self.cgroups, *limits) if self.cgroups else None
        job = {
            "plan": plan.to_json(),
            "seed": self.seed,
            "hidden": self.settings.hidden,
            "folder": str(folder),
            "cell_timeout": self.settings.cell_timeout,
            "env": kernel_environment(folder, library, self.threads),
            "sandbox": sandbox.to_json() if sandbox else None,
            "user": self.user.to_json() if self.user and not sandbox else None,
            "memory_mb": self.settings.memory_mb,
            "budget": budget.to_json() if budget else None,
            "threads": self.threads,
            "server": self.server,
        }
        reader, writer = WORKERS.Pipe(duplex=False)
        process = WORKERS.Process(target=run_worker, args=(job, writer), daemon=True)
        process.start()
        writer.close()
        results, status, deadline = [], "ok", time.monotonic() + self.settings.notebook_timeout
        while True:
            try:
                if not reader.poll(max(0.0, deadline - time.monotonic())):
                    status = f"timeout (the notebook's limit, {self.settings.notebook_timeout} s)"
                    break
                result = reader.recv()
            except (EOFError, OSError):
                break
            if isinstance(result, dict) and "crashed" in result:
                status = f"crashed ({result['crashed']})"
            elif isinstance(result, dict) and "timeout" in result:
                status = f"timeout ({result['timeout']})"
            elif (
                isinstance(result, dict)
                and isinstance(result.get("check"), str)
                and isinstance(result.get("reports"), list)
            ):
                results.append(result)
        process.join(timeout=30 if status == "ok" else 0)
        if status == "ok" and process.exitcode:
            status = f"crashed (the grading process exited with {process.exitcode})"
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # the worker, if it is still there, and whatever it started
        process.join()
        if budget:
            budget.remove()  # and whatever of the kernel is left
        remove_tree(folder)
        return results, status

    def grade(self, entry: Entry) -> Grade:
        """Grade one submission; never raises."""
        grade, start = Grade(entry.student, entry.origin, entry.notebook), time.perf_counter()
        solution = self.solutions[entry.notebook]
        grade.checks = [
            CheckScore(nbgrader(c)["grade_id"], BY_CHECK_ID[nbgrader(c)["grade_id"]].points)
            for c in check_cells(solution)
        ]
        results, grade.status = self.run(make_plan(entry.notebook, solution, entry.sources))
        by_id = {check.grade_id: check for check in grade.checks}
        for result in results:
            if result["check"] in by_id:
                score(by_id[result["check"]], received(result["reports"]))
        for check in grade.checks:
            if check.status == "not run":
                check.messages = [f"this check did not run: the grading run stopped first ({grade.status})"]
        for capstone in capstones_of(entry.notebook):  # graded on the weights file alone: no kernel, no student code
            grade.checks.append(capstone_score(capstone, entry.files))
        grade.seconds = time.perf_counter() - start
        return grade


def grade_all(paths: list[Path], out: Path, settings: Settings | None = None, root: Path = PROJECT_ROOT) -> list[Grade]:
    """Grade every submission in `paths` against `root`/solutions, writing to `out` as results come in; a second
    run with the same submissions skips what is already graded. Raises DuplicateSubmissions (before grading
    anything) and SandboxUnavailable (when confinement was asked for and is not possible)."""
    settings = settings or Settings()
    solutions = load_solutions(root / "solutions")
    entries = [admit(submission, solutions) for submission in collect(paths)]
    check_unique(entries)
    against = {name: fingerprint(solutions[name], settings.hidden) for name in {e.notebook for e in entries} - {""}}
    keys = [result_key(entry, against.get(entry.notebook, "")) for entry in entries]
    results = Results(out, [grade_id for name, s in solutions.items() for grade_id in graded_ids(name, s)])
    todo = [(k, entry) for k, entry in zip(keys, entries) if k not in results.grades]
    to_grade = [entry.notebook for _, entry in todo if entry.notebook]
    began = time.perf_counter()
    if settings.confine and to_grade:
        check_available()
    if to_grade and not settings.per_process_limits:
        find()  # BudgetUnavailable, saying why, where no kernel can have a budget of its own
    if len(tempfile.gettempdir()) > SOCKET_PATH - 40:  # room for grading-*/g-*/runtime/k-N
        raise SandboxUnavailable(
            f"the temporary folder {tempfile.gettempdir()} has too long a path for the kernels' "
            "sockets: set TMPDIR to a shorter one"
        )
    scratch = Path(tempfile.mkdtemp(prefix="grading-"))
    try:
        scratch.chmod(0o755)
        batch = Batch(solutions, settings, scratch)
        if settings.confine and to_grade:
            batch.probe(to_grade[0])
        if to_grade:
            from starter.dataset_files import DatasetNotFoundError, prepare_mnist

            with contextlib.suppress(DatasetNotFoundError):
                prepare_mnist()  # kernels cannot write the data folder: unpack MNIST now
        grade_each(batch, results, todo, len(entries))
    finally:
        remove_tree(scratch)
    results.finish(keys, time.perf_counter() - began)
    report_similarity(entries, solutions, out)
    return [results.grades[k] for k in keys]


def result_key(entry: Entry, against: str) -> str:
    """Where a submission's result is kept: its content, student and notebook, and what it is graded against (where
    it came from, too, when it is not graded: two unreadable files are two rows)."""
    text = f"{entry.digest}/{entry.student}/{entry.notebook}/{against}"
    if not entry.notebook:
        text += f"/{entry.origin}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def grade_each(batch: Batch, results: Results, todo: list[tuple[str, Entry]], total: int) -> None:
    """Grade what is left to grade, `jobs` at a time, recording each grade (an invalid entry's at once)."""
    bar = tqdm(
        total=total, initial=total - len(todo), desc="grading", unit="notebook", disable=not batch.settings.progress
    )

    def run(task: tuple[str, Entry]) -> None:
        k, entry = task
        grade = (
            batch.grade(entry)
            if entry.notebook
            else Grade(entry.student, entry.origin, "", f"invalid: {entry.invalid}")
        )
        with batch.lock:
            results.add(k, grade)
            bar.update()

    for capstone in {capstone for _, entry in todo for capstone in capstones_of(entry.notebook)}:
        capstone.scorer_module()  # here, not first in the threads below: importing torch is not thread-safe
    with ThreadPoolExecutor(max_workers=max(1, batch.settings.jobs)) as pool:
        list(pool.map(run, todo))
    bar.close()


def report_similarity(entries: list[Entry], solutions: dict, out: Path) -> None:
    """similarity.csv and similarity.md: near-identical exercise code among the submissions and with the course's;
    a submission whose code cannot be normalised is left out, and listed."""
    prints, left_out = {}, []
    for entry in (e for e in entries if e.notebook):
        label = f"{entry.student} ({entry.notebook[:2]})"
        found = submission_fingerprints(entry.sources, solutions[entry.notebook])
        if found is None:
            left_out.append(label)
        else:
            prints[label] = found
    references = {
        name: course
        for notebook in sorted({e.notebook for e in entries} - {""})
        for name, course in course_fingerprints(notebook, solutions[notebook]).items()
    }
    weights = [
        pair
        for notebook in solutions
        for capstone in capstones_of(notebook)
        for pair in shared_weights(capstone, entries)
    ]
    write_report(similar_pairs(prints, references), out, len(prints), left_out, weights)
