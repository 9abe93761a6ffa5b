"""The grader end to end on one batch: full marks for the solution, zero for the stubs, a clear status for every
broken submission, nothing for a submission that tries to forge its grade or reach the course's answers, and nothing
lost by an honest student graded beside hostile ones."""

from __future__ import annotations

import csv
import shutil
import tempfile
from pathlib import Path

import pytest
from grading_corpus import MARKER, build_corpus
from sandboxed import require_sandbox

from starter.config import PROJECT_ROOT
from starter.grading.batch import Settings, grade_all
from starter.grading.reports import MESSAGE_LIMIT

FAST = Settings(jobs=2, cell_timeout=10, notebook_timeout=300, memory_mb=4096, progress=False)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade the whole corpus once (two jobs in parallel, honest neighbours among hostile ones), from folders that
    only their owner may enter (mode 700, as `mktemp -d` makes; /root is one): the instructor's solutions, the
    submissions, the output and the grader's scratch space (where every kernel's folder is)."""
    require_sandbox()
    private = tmp_path_factory.mktemp("private")
    private.chmod(0o700)
    root, submissions, out, scratch = (private / name for name in ("course", "submissions", "grades", "tmp"))
    scratch.mkdir()
    shutil.copytree(PROJECT_ROOT / "solutions", root / "solutions")
    target = root / "solutions" / "01_autoencoder.ipynb"
    original = target.read_bytes()
    expected = build_corpus(submissions, tamper_target=target)
    saved, tempfile.tempdir = tempfile.tempdir, str(scratch)
    try:
        grades = grade_all([submissions], out, FAST, root=root)
    finally:
        tempfile.tempdir = saved
    return {g.student: g for g in grades}, expected, out, target.read_bytes() == original


CASES = [
    "honest_0_01",
    "honest_1_01",
    "untouched_01",
    "not_json_01",
    "not_a_notebook_01",
    "nbformat3_01",
    "deleted_reordered_01",
    "exception_01",
    "endless_01",
    "memory_bomb_01",
    "huge_output_01",
    "tamper_01",
    "fails_hidden_test_01",
    "false_passes_01",
    "forged_checks_01",
    "reach_reference_01",
    "hooks_01",
    "lying_module_01",
    "patch_probes_01",
    "late_writers_01",
    "neighbour_01",
    "kill_parent_01",
    "hostile_solution_01",
    "memory_when_measured_02",
    "forged_gradients_01",
    "forged_record_01",
    "tabulated_sampler_04",
    "recorder_parts_04",
    "forged_parts_05",
    "course_twin_04",
]


def test_every_submission_gets_a_row_feedback_and_a_summary(graded):
    grades, expected, out, _ = graded
    assert set(grades) == set(expected) == set(CASES)
    rows = list(csv.DictReader(open(out / "grades.csv", encoding="utf-8")))
    assert sorted(row["student"] for row in rows) == sorted(expected)
    for grade in grades.values():
        if grade.notebook:
            assert (out / "feedback" / grade.student / f"{grade.notebook}.md").exists()
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "| check-encoder | 2 |" in summary and "not graded" in summary


@pytest.mark.parametrize("case", CASES)
def test_case(graded, case):
    grades, expected, _, _ = graded
    result, want = grades[case], expected[case]
    assert result.status.startswith(want.get("status", "")), result.status
    if want.get("total") == "all":
        assert result.total == result.possible > 0, [(c.grade_id, c.status, c.messages) for c in result.checks]
    elif "total" in want:
        assert result.total == want["total"], [(c.grade_id, c.earned, c.messages[:3]) for c in result.checks]
    if "zero" in want:
        earned = {c.grade_id: c.earned for c in result.checks}
        assert all(earned[i] == 0 for i in want["zero"]), earned
        others = [c for c in result.checks if c.grade_id not in want["zero"]]
        assert all(c.earned == c.points for c in others), [(c.grade_id, c.status, c.messages) for c in others]
    if want.get("short"):
        assert all(len(m) <= MESSAGE_LIMIT for c in result.checks for m in c.messages)


def test_untouched_notebook_reports_not_implemented(graded):
    grades, _, _, _ = graded
    assert {c.status for c in grades["untouched_01"].checks} == {"not implemented"}


def test_hidden_tests_are_graded_but_not_shown_to_students(graded):
    grades, _, _, _ = graded
    loss = next(c for c in grades["fails_hidden_test_01"].checks if c.grade_id == "check-loss")
    assert "reconstruction_loss (hidden test): fail" in loss.messages and loss.earned == 0
    student = (PROJECT_ROOT / "notebooks" / "01_autoencoder.ipynb").read_text()
    assert (
        "hidden test" not in student
        and "hidden test" in (PROJECT_ROOT / "solutions" / "01_autoencoder.ipynb").read_text()
    )


def test_the_course_s_answers_are_withheld_in_the_grading_kernel(graded):
    grades, _, _, _ = graded
    messages = " ".join(m for c in grades["reach_reference_01"].checks for m in c.messages)
    assert "withheld" in messages or "NoneType" in messages


def test_nothing_outlives_a_submission_or_escapes_it(graded):
    _, _, _, unchanged = graded
    assert unchanged, "the instructor's solution was changed"
    for folder in (Path("/tmp"), Path("/dev/shm")):
        assert not list(folder.glob(f"{MARKER}*")) and not (folder / "escaped_by_student.txt").exists()
