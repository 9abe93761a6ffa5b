"""The course under real nbgrader 0.9 (in the dev extras; CI has it): generate_assignment, autograde and export on
a correct, an untouched and a wrong submission of two notebooks give the totals the course's grader gives; and
`nbgrader validate` fails on the untouched notebook and passes on the solution.

The notebooks given to nbgrader keep their set-up, exercise and check cells and leave the others empty: they are
the cells that earn points, and every cell of every notebook runs in fast mode under nbval already (a whole
notebook under nbgrader takes minutes on two cores: see the README's nbgrader section for its cell timeout)."""

from __future__ import annotations

import copy
import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from wrong_answers import WRONG_ANSWERS

from starter.config import FAST_ENV, PROJECT_ROOT
from starter.grading.batch import Settings, grade_all
from starter.run import exercises_and_checks

NOTEBOOKS = ["01_autoencoder", "05_comparison"]
INSTALL = ".venv/bin/pip install 'nbgrader==0.9.*'"
NBGRADER = Path(sys.executable).with_name("nbgrader")
CONFIG = """c = get_config()
c.CourseDirectory.course_id = "discrete-latents"
c.ExecutePreprocessor.timeout = 300
"""
needs_nbgrader = pytest.mark.skipif(
    not NBGRADER.exists() and not os.environ.get("CI"), reason=f"needs nbgrader 0.9: `{INSTALL}`"
)


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, FAST_ENV: "1", "PATH": f"{NBGRADER.parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([str(NBGRADER), *args], cwd=course, env=env, capture_output=True, text=True, timeout=900)


def wrong_version(notebook: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, str]:
    """The solution with the first wrong answer of its first exercise; returns it and the check that fails."""
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = WRONG_ANSWERS[grade_id][0].apply(cell.source)
            return notebook, f"check-{grade_id}"
    raise AssertionError("no exercise cell")


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    if not NBGRADER.exists():
        pytest.fail(f"nbgrader is not installed: `{INSTALL}`")
    course = tmp_path_factory.mktemp("nbgrader")
    (course / "nbgrader_config.py").write_text(CONFIG)
    (course / "source" / "ps1").mkdir(parents=True)
    for name in NOTEBOOKS:
        notebook = exercises_and_checks(nbformat.read(PROJECT_ROOT / "solutions" / f"{name}.ipynb", as_version=4))
        nbformat.write(notebook, course / "source" / "ps1" / f"{name}.ipynb")
    generated = nbgrader(course, "generate_assignment", "ps1", "--force")
    assert generated.returncode == 0, generated.stderr[-2000:]
    for name in NOTEBOOKS:
        solution = nbformat.read(course / "source" / "ps1" / f"{name}.ipynb", as_version=4)
        released = nbformat.read(course / "release" / "ps1" / f"{name}.ipynb", as_version=4)
        wrong = wrong_version(nbformat.from_dict(copy.deepcopy(solution)))[0]
        for student, notebook in (("correct", solution), ("untouched", released), ("wrong", wrong)):
            folder = course / "submitted" / student / "ps1"
            folder.mkdir(parents=True, exist_ok=True)
            nbformat.write(notebook, folder / f"{name}.ipynb")
    graded = nbgrader(course, "autograde", "ps1", "--create")
    assert graded.returncode == 0, graded.stderr[-2000:]
    exported = nbgrader(course, "export")
    assert exported.returncode == 0, exported.stderr[-2000:]
    return course


@needs_nbgrader
def test_released_notebooks_are_the_student_notebooks(course):
    for name in NOTEBOOKS:
        released = nbformat.read(course / "release" / "ps1" / f"{name}.ipynb", as_version=4)
        ours = exercises_and_checks(nbformat.read(PROJECT_ROOT / "notebooks" / f"{name}.ipynb", as_version=4))
        code = lambda nb: [c.source for c in nb.cells if c.cell_type == "code" and "google.colab" not in c.source]  # noqa: E731
        assert code(released) == code(ours)


@needs_nbgrader
def test_nbgrader_totals_equal_the_grader_s(course, tmp_path):
    rows = {row["student_id"]: float(row["raw_score"]) for row in csv.DictReader(open(course / "grades.csv"))}
    ours = grade_all(
        [course / "submitted"],
        tmp_path / "grades",
        Settings(jobs=2, cell_timeout=60, progress=False, confine=bool(shutil.which("bwrap"))),
    )
    totals: dict[str, int] = {}
    for grade in ours:
        totals[grade.student] = totals.get(grade.student, 0) + grade.total
    possible = sum(g.possible for g in ours if g.student == "correct")
    assert totals == {student: int(score) for student, score in rows.items()}
    assert totals["correct"] == possible > 0 and totals["untouched"] == 0 and 0 < totals["wrong"] < possible


@needs_nbgrader
def test_nbgrader_validate_fails_on_stubs_and_passes_on_the_solution(course):
    name = f"{NOTEBOOKS[0]}.ipynb"
    untouched = nbgrader(course, "validate", str(course / "release" / "ps1" / name))
    solution = nbgrader(course, "validate", str(course / "source" / "ps1" / name))
    assert "VALIDATION FAILED" in untouched.stdout + untouched.stderr and "AssertionError" in untouched.stdout
    assert "Success! Your notebook passes all the tests." in solution.stdout, solution.stdout[-2000:]
