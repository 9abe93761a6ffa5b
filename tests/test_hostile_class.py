"""The held-out hostile class (`hostile_class.py`), graded once beside honest neighbours with `--jobs 2`: each case
gets the grade it must, and the batch as a whole keeps the grader's promises (a row per submission, reports
written, nothing written or left running outside the grading folders, the course untouched, names escaped).

The batch is graded as `cd WORK && python -m starter.grade s --out o` grades it: `python -m` puts the working folder
(which holds the submissions and the grades) first on sys.path, so it is on the grader's sys.path here too."""

from __future__ import annotations

import atexit
import csv
import hashlib
import json
import multiprocessing.util
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from hostile_class import LINK, MARKER, ORPHAN, build_batch_breakers, build_hostile_class
from sandboxed import require_sandbox

from starter.config import PROJECT_ROOT
from starter.grading.batch import Settings, grade_all
from starter.grading.reports import FORMULA, Grade, file_name, markdown, spreadsheet
from starter.grading.similarity import submission_fingerprints
from starter.grading.submissions import exercise_sources

SETTINGS = Settings(jobs=2, cell_timeout=10, notebook_timeout=300, memory_mb=4096, progress=False)
BASE = Path(tempfile.mkdtemp(prefix="hc-"))  # short: kernels' socket paths must be
atexit.register(shutil.rmtree, BASE, ignore_errors=True)  # also when the module is skipped or deselected
WORK = BASE / "w"  # the instructor's working folder: the submissions and the grades
SUBMISSIONS, OUT, SCRATCH = WORK / "s", WORK / "o", BASE / "t"
CASES = build_hostile_class(SUBMISSIONS)
BREAKERS = build_batch_breakers(BASE / "b")
FINGERPRINT_SECONDS = 1.0  # what fingerprinting one submission may cost, whatever it holds


@dataclass
class Graded:
    grades: list[Grade]
    by_student: dict[str, list[Grade]]
    course: Path
    course_changed: bool
    seconds: float


def tree_digest(folder: Path) -> str:
    """A hash of every name and byte under `folder`."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def case_id(student: str) -> str:
    """A test id for a student id: printable, one line, distinct."""
    return ascii(student)[1:-1].replace(" ", "~")[:40]


@pytest.fixture(scope="module")
def graded():
    """Grade the whole class once, against a copy of the solutions outside the working folder."""
    require_sandbox()
    course = Path(tempfile.mkdtemp(prefix="hc-"))
    shutil.copytree(PROJECT_ROOT / "solutions", course / "solutions")
    before = tree_digest(course)
    SCRATCH.mkdir(exist_ok=True)
    multiprocessing.util.get_temp_dir()  # the workers' forkserver keeps its own folder where it always does
    saved, tempfile.tempdir = tempfile.tempdir, str(SCRATCH)
    sys.path.append(str(WORK))  # what `python -m starter.grade` run from WORK has on its sys.path
    start = time.perf_counter()
    try:
        grades = grade_all([SUBMISSIONS], OUT, SETTINGS, root=course)
    finally:
        sys.path.remove(str(WORK))
        tempfile.tempdir = saved
    by_student: dict[str, list[Grade]] = {}
    for grade in grades:
        by_student.setdefault(grade.student, []).append(grade)
    yield Graded(grades, by_student, course, tree_digest(course) != before, time.perf_counter() - start)
    shutil.rmtree(course, ignore_errors=True)


def describe(grade: Grade) -> str:
    """A grade on one line: its status and every check's points."""
    return f"{grade.status}; " + ", ".join(f"{c.grade_id} {c.earned}/{c.points}" for c in grade.checks)


@pytest.mark.parametrize("student", sorted(CASES), ids=case_id)
def test_case(graded, student):
    """Each case gets exactly what it must: its status, nothing for what it attacked, full marks for the rest."""
    expected = CASES[student]
    found = graded.by_student.get(student, [])
    assert len(found) == 1, f"{student!r} ({expected['tries']}): {len(found)} rows"
    grade = found[0]
    assert grade.status.startswith(expected["status"]), f"{expected['tries']}: {describe(grade)}"
    earned = {check.grade_id: check for check in grade.checks}
    for check_id in expected["zero"]:
        assert earned[check_id].earned == 0, f"the attack ({expected['tries']}) earned: {describe(grade)}"
    if expected["total"] == "all":
        short = [c.grade_id for c in grade.checks if c.grade_id not in expected["zero"] and c.earned < c.points]
        assert not short, f"{expected['tries']}: lost {short}: {describe(grade)}"
    else:
        assert grade.total == expected["total"], f"{expected['tries']}: {describe(grade)}"


def read_csv(path: Path) -> list[list[str]]:
    """The rows of a CSV file the grader wrote."""
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_every_submission_has_one_row(graded):
    rows = read_csv(OUT / "grades.csv")[1:]
    students = [row[0] for row in rows]
    assert len(rows) == len(CASES) == len(graded.grades)
    for student in CASES:
        assert students.count(str(spreadsheet(student))) == 1, student


def test_reports_are_written(graded):
    for name in ("grades.csv", "summary.md", "similarity.md", "similarity.csv"):
        assert (OUT / name).is_file(), name
    assert len(list((OUT / "results").glob("*.json"))) == len(CASES)


def test_summary_has_a_line_per_submission(graded):
    """summary.md counts every submission once: each not graded on a line of its own, the graded in its notebook's
    table, and no name breaks a line or a table."""
    text = (OUT / "summary.md").read_text("utf-8")
    invalid = [g for g in graded.grades if not g.checks]
    assert f"{len(CASES)} submission(s), {len(CASES) - len(invalid)} graded" in text
    lines = text.splitlines()
    assert sum(line.startswith("- not graded: ") for line in lines) == len(invalid)
    for grade in invalid:
        assert sum(line.startswith(f"- not graded: {markdown(grade.origin)}: ") for line in lines) == 1, grade.origin
    counted = sum(int(m[1]) for m in re.finditer(r"^## \S+: (\d+) submission", text, re.M))
    assert counted == len(CASES) - len(invalid)
    for line in (line for line in lines if line.startswith("| check-")):
        assert len(re.findall(r"(?<!\\)\|", line)) == 5, line


def test_spreadsheet_cells_never_start_a_formula(graded):
    for name in ("grades.csv", "similarity.csv"):
        for row in read_csv(OUT / name):
            for cell in row:
                assert not cell.startswith(FORMULA), (name, cell)


def test_names_are_escaped_everywhere(graded):
    """No raw HTML, no link, no newline of a name or a message in a report; every feedback file where its
    student's id says, inside feedback/, one folder per id."""
    texts = {path: path.read_text("utf-8") for path in OUT.rglob("*.md")}
    for path, text in texts.items():
        assert not re.search(r"(?<!\\)<img", text) and "](javascript" not in text, path
    folders = {}
    for grade in graded.grades:
        path = OUT / "feedback" / file_name(grade.student) / f"{file_name(grade.notebook or 'unknown')}.md"
        assert path.resolve().parent.parent == (OUT / "feedback").resolve(), grade.student
        assert texts[path].splitlines()[0].startswith(f"# {markdown(grade.student)}: "), grade.student
        assert folders.setdefault(path.parent.name, grade.student) == grade.student, "two ids share a folder"


def test_no_link_from_a_submission_in_the_summary(graded):
    """A link in the path of a zip member is quoted by summary.md: neutralised like the links of messages."""
    assert LINK not in (OUT / "summary.md").read_text("utf-8"), "a bare URL from a submission autolinks"


def test_nothing_left_outside_the_grading_folders(graded):
    """No marker on the grader's machine, nothing a kernel started still running, the scratch space empty, the
    course's solutions untouched, the output holding only what the grader writes."""
    places = [Path("/tmp"), Path("/dev/shm"), Path("/dev"), Path("/")]
    left = [p for place in places for p in place.glob("hc-*") if p.name.startswith((MARKER, "hc-escape", "hc-fill"))]
    assert not left, left
    planted = [p for p in BASE.rglob("*") if p.name.startswith(MARKER) or p.name in ("forged.json", "k-9")]
    assert not planted, planted
    assert not list(SCRATCH.iterdir()), list(SCRATCH.iterdir())
    running = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and ORPHAN.encode() in (entry / "cmdline").read_bytes():
                running.append(entry.name)
        except OSError:
            continue
    assert not running, f"processes a kernel started outlived it: {running}"
    assert not graded.course_changed
    written = {p.relative_to(OUT).parts[0] for p in OUT.iterdir()}
    assert written <= {"grades.csv", "summary.md", "similarity.md", "similarity.csv", "results", "feedback"}, written


def test_fingerprinting_cost_is_bounded(graded):
    """The similarity report fingerprints a submission in the grader's own process, without a limit: a big
    exercise cell (flood_05's, 50,000 lines of a 16 MB notebook's room) must not cost it seconds (or gigabytes)."""
    notebook = nbformat.read(SUBMISSIONS / "flood_05.ipynb", as_version=4)
    solution = nbformat.read(graded.course / "solutions" / "05_comparison.ipynb", as_version=4)
    start = time.perf_counter()
    submission_fingerprints(exercise_sources(notebook), solution)
    seconds = time.perf_counter() - start
    assert seconds < FINGERPRINT_SECONDS, f"{seconds:.1f} s for one submission"


def test_resume_after_a_crash(graded):
    """A batch stopped while writing (a result missing, one cut short) resumes to the same grades.csv, grading
    again only what it lost."""
    again = BASE / "again"
    shutil.copytree(OUT, again)
    invalid = [p for p in sorted((again / "results").glob("*.json")) if not json.loads(p.read_text())["checks"]]
    invalid[0].unlink()
    invalid[1].write_text(invalid[1].read_text()[:20])
    start = time.perf_counter()
    grades = grade_all([SUBMISSIONS], again, SETTINGS, root=graded.course)
    assert time.perf_counter() - start < 60
    assert (again / "grades.csv").read_text() == (OUT / "grades.csv").read_text()
    assert sorted(g.student for g in grades) == sorted(g.student for g in graded.grades)


@pytest.mark.parametrize("name", sorted(BREAKERS))
def test_batch_breaker(graded, name):
    """A submission that, when its attack works, stops the whole batch: graded in a batch of its own, it gets its
    row and the batch its reports."""
    folder, expected = BREAKERS[name]
    out = BASE / f"out-{name}"
    saved, tempfile.tempdir = tempfile.tempdir, str(SCRATCH)
    try:
        grades = grade_all([folder], out, SETTINGS, root=graded.course)
    finally:
        tempfile.tempdir = saved
    assert (out / "summary.md").is_file() and (out / "similarity.md").is_file()
    for student, expectation in expected.items():
        rows = sorted((g for g in grades if g.student == student), key=lambda g: ".zip:" in g.origin)
        assert rows, f"no row for {student!r}"
        grade = rows[0]
        assert grade.status.startswith(expectation["status"]), describe(grade)
        assert grade.total == expectation["total"] or expectation["total"] == "all", describe(grade)
