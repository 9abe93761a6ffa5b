"""The grader end to end: full marks for the solution, zero for the stubs, a clear status for every broken
submission, and nothing for a submission that tries to forge its grade."""
from __future__ import annotations

import csv
import shutil

import nbformat
import pytest

from starter import grade
from starter.build import student_version
from starter.config import PROJECT_ROOT
from grading_corpus import SOLUTION, build_corpus

CONFINED = grade.isolation([])[0] is not None


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
    grades = grade.grade_all(sorted(submissions.glob("*.ipynb")), out, jobs=2, cell_timeout=20, notebook_timeout=300,
                             memory_mb=4096, root=root)
    return {g.student: g for g in grades}, expected, out, target.read_bytes() == original


def test_every_submission_gets_a_row_and_feedback(graded):
    grades, expected, out, _ = graded
    assert set(grades) == set(expected) == set(CASES)
    rows = list(csv.DictReader(open(out / "grades.csv", encoding="utf-8")))
    assert {row["student"] for row in rows} == set(expected)
    for student in expected:
        assert (out / "feedback" / f"{student}.md").exists()


CASES = ["solution_01", "untouched_01", "not_json_01", "not_a_notebook_01", "nbformat3_01", "deleted_reordered_01",
         "exception_01", "endless_01", "memory_bomb_01", "huge_output_01", "tamper_01", "fails_hidden_test_01",
         "false_passes_01", "forged_checks_01", "forge_log_01", "patch_report_01", "patch_framework_01",
         "environment_01", "reference_evidence_01", "late_child_01", "exit_after_forge_01", "kill_parent_01",
         "import_reference_01", "read_solution_01", "hostile_solution_01"]


@pytest.mark.parametrize("case", CASES)
def test_case(graded, case):
    grades, expected, _, _ = graded
    result, want = grades[case], expected[case]
    if want.get("confined") and not CONFINED:
        pytest.skip("this case needs a confined grader (root, util-linux): its submission can read solutions/")
    assert result.status.startswith(want.get("status", "")), result.status
    if want.get("total") == "all":
        assert result.total == result.possible > 0, [(c.grade_id, c.status, c.messages) for c in result.checks]
    elif "total" in want:
        assert result.total == want["total"], [(c.grade_id, c.earned, c.messages[:3]) for c in result.checks]
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


def test_reference_implementations_are_named(graded):
    grades, _, _, _ = graded
    for check in grades["import_reference_01"].checks:
        assert any("uses the reference implementation from starter" in m for m in check.messages), check.messages


def test_hidden_tests_are_graded_but_not_shown_to_students(graded):
    grades, _, _, _ = graded
    loss = next(c for c in grades["fails_hidden_test_01"].checks if c.grade_id == "check-loss")
    assert "reconstruction_loss (hidden test): fail" in loss.messages and loss.earned == 0
    student = (PROJECT_ROOT / "notebooks" / "01_autoencoder.ipynb").read_text()
    assert "hidden test" not in student and "hidden test" in (PROJECT_ROOT / "solutions" / "01_autoencoder.ipynb").read_text()


def test_instructor_files_are_untouched_or_restored(graded):
    grades, _, _, unchanged = graded
    assert unchanged
    assert CONFINED or "restored" in grades["tamper_01"].status


def test_self_check_prints_the_feedback_without_hidden_tests(tmp_path, capsys):
    solution = nbformat.read(SOLUTION, as_version=4)
    for name, notebook, score in [("done_01", solution, "7 / 7"), ("stub_01", student_version(solution), "0 / 7")]:
        nbformat.write(notebook, tmp_path / f"{name}.ipynb")
        assert grade.main(["--self", str(tmp_path / f"{name}.ipynb"), "--cell-timeout", "20"]) == 0
        out = capsys.readouterr().out
        assert score in out and "Encoder" in out and "hidden test" not in out
