"""The grader end to end: full marks for the solution, zero for the stubs, a clear status for every bad case."""
from __future__ import annotations

import csv
import shutil

import pytest

from starter import grade
from starter.config import PROJECT_ROOT
from grading_corpus import build_corpus


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade the whole corpus once (two jobs in parallel), against a copy of the instructor's files."""
    root = tmp_path_factory.mktemp("course")
    for folder in ("solutions", "starter"):
        shutil.copytree(PROJECT_ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    target = root / "solutions" / "01_autoencoder.ipynb"
    original = target.read_bytes()
    submissions = tmp_path_factory.mktemp("submissions")
    expected = build_corpus(submissions, tamper_target=target)
    out = tmp_path_factory.mktemp("grades")
    grades = grade.grade_all(sorted(submissions.glob("*.ipynb")), out, jobs=2, cell_timeout=60, notebook_timeout=600,
                             memory_mb=4096, root=root)
    return {g.student: g for g in grades}, expected, out, target.read_bytes() == original


def test_every_submission_gets_a_row_and_feedback(graded):
    grades, expected, out, _ = graded
    assert set(grades) == set(expected)
    rows = list(csv.DictReader(open(out / "grades.csv", encoding="utf-8")))
    assert {row["student"] for row in rows} == set(expected)
    for student in expected:
        assert (out / "feedback" / f"{student}.md").exists()


@pytest.mark.parametrize("case", ["solution_01", "untouched_01", "not_json_01", "not_a_notebook_01", "nbformat3_01",
                                  "deleted_reordered_01", "exception_01", "endless_01", "memory_bomb_01",
                                  "huge_output_01", "tamper_01", "forged_checks_01", "fails_hidden_test_01"])
def test_case(graded, case):
    grades, expected, _, _ = graded
    result, want = grades[case], expected[case]
    status = "ok" if want["status"] == "restored" else want["status"]
    assert result.status.startswith(status), result.status
    if want.get("total") == "all":
        assert result.total == result.possible > 0, [(c.grade_id, c.status, c.messages) for c in result.checks]
    elif "total" in want:
        assert result.total == want["total"]
    if "zero" in want:
        earned = {c.grade_id: c.earned for c in result.checks}
        assert all(earned[i] == 0 for i in want["zero"]), earned
        others = [c for c in result.checks if c.grade_id not in want["zero"]]
        assert all(c.earned == c.points for c in others), [(c.grade_id, c.status) for c in others]
    if want.get("short"):
        assert all(len(m) <= grade.MESSAGE_LIMIT for c in result.checks for m in c.messages)


def test_untouched_notebook_reports_not_implemented(graded):
    grades, _, _, _ = graded
    assert {c.status for c in grades["untouched_01"].checks} == {"not implemented"}


def test_hidden_tests_are_graded_but_not_shown_to_students(graded):
    grades, _, _, _ = graded
    loss = next(c for c in grades["fails_hidden_test_01"].checks if c.grade_id == "check-loss")
    assert "reconstruction_loss (hidden test): fail" in loss.messages and loss.earned == 0
    student = (PROJECT_ROOT / "notebooks" / "01_autoencoder.ipynb").read_text()
    assert "hidden test" not in student and "hidden test" in (PROJECT_ROOT / "solutions" / "01_autoencoder.ipynb").read_text()


def test_instructor_files_are_restored(graded):
    grades, _, _, unchanged = graded
    assert unchanged
    assert "restored" in grades["tamper_01"].status
