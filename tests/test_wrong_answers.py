"""Every check cell against the mistakes students make: each wrong answer fails with its cause named, the solution
passes, answers coded to the visible check fail the hidden test, and in every case the grader's judge, replaying the
evidence without the student's code, reaches the same verdicts with the same messages."""
from __future__ import annotations

import functools
from pathlib import Path

import nbformat
import pytest
from starter import grade
from starter.checks import CheckRun
from starter.config import CHECK_CELL_ENV, GRADING_LOG_ENV, PROJECT_ROOT
from wrong_answers import VISIBLE_ONLY, WRONG_ANSWERS, WrongAnswer

SOLUTIONS = sorted((PROJECT_ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))


def _grade_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


@functools.lru_cache(maxsize=None)
def exercises() -> dict[str, tuple[Path, str, str]]:
    """grade_id of every exercise -> (its notebook, its solution source, the source of the check cell after it)."""
    found = {}
    for path in SOLUTIONS:
        cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        for cell, check in zip(cells, cells[1:]):
            if cell.metadata.get("nbgrader", {}).get("solution"):
                assert check.metadata["nbgrader"].get("grade"), f"{_grade_id(cell)} is not followed by its check cell"
                found[_grade_id(cell)] = (path, cell.source, check.source)
    return found


@functools.lru_cache(maxsize=None)
def namespace(path: Path) -> dict:
    """The notebook's imports and every solution exercise."""
    cells = nbformat.read(path, as_version=4).cells
    names: dict = {"__name__": "notebook"}
    exec(next(c.source for c in cells if c.cell_type == "code" and "from starter import" in c.source), names)
    for cell in cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            exec(cell.source, names)
    return names


def run_check(grade_id: str, source: str, monkeypatch, tmp_path: Path) -> list:
    """Define `source` in a copy of the notebook's namespace and run the check cell as a grading run would; the judge
    then replays the evidence without the student's code and must reach the same verdicts with the same messages.
    Returns the reports in order."""
    path, _, check = exercises()[grade_id]
    names = dict(namespace(path))
    exec(source, names)
    live = []
    original_exit = CheckRun.__exit__

    def exit_and_keep(run, *error):
        live.append(run.report)
        return original_exit(run, *error)

    log = tmp_path / "evidence.jsonl"
    monkeypatch.setattr(CheckRun, "__exit__", exit_and_keep)
    monkeypatch.setenv(GRADING_LOG_ENV, str(log))
    monkeypatch.setenv(CHECK_CELL_ENV, "check-" + grade_id)
    exec(check, names)
    monkeypatch.delenv(GRADING_LOG_ENV)
    reports = list(live)
    assert reports, f"the check cell of {grade_id} produced no report"
    judged = grade.judge(check, grade.read_evidence(log)["check-" + grade_id], seed=0)
    assert [(r.title, r.steps) for r in judged] == [(r.title, r.steps) for r in reports], "the judge disagrees"
    return reports


def failure_text(report) -> str:
    return " ".join(f"{step.name}: {step.message}" for step in report.steps if step.status != "pass").lower()


def cases(table: dict[str, list[WrongAnswer]]) -> list:
    return [pytest.param(grade_id, answer, id=f"{grade_id}: {answer.name}") for grade_id, answers in table.items()
            for answer in answers]


def test_every_exercise_has_at_least_five_wrong_answers():
    assert set(WRONG_ANSWERS) == set(exercises()), set(exercises()) ^ set(WRONG_ANSWERS)
    assert {grade_id: len(a) for grade_id, a in WRONG_ANSWERS.items() if len(a) < 5} == {}


@pytest.mark.parametrize("grade_id", sorted(WRONG_ANSWERS))
def test_solution_passes_visible_and_hidden_checks(grade_id, monkeypatch, tmp_path):
    reports = run_check(grade_id, exercises()[grade_id][1], monkeypatch, tmp_path)
    assert len(reports) == 2 and "(hidden test)" in reports[1].title, [r.title for r in reports]
    assert [r.status for r in reports] == ["pass", "pass"], [failure_text(r) for r in reports]


@pytest.mark.parametrize("grade_id, answer", cases(WRONG_ANSWERS))
def test_wrong_answer_fails_with_its_cause_named(grade_id, answer, monkeypatch, tmp_path):
    visible = run_check(grade_id, answer.apply(exercises()[grade_id][1]), monkeypatch, tmp_path)[0]
    assert visible.status == "fail", f"{answer.name!r} passed the check of {grade_id}"
    assert answer.cause.lower() in failure_text(visible), failure_text(visible)


@pytest.mark.parametrize("grade_id, answer", cases(VISIBLE_ONLY))
def test_answer_coded_to_the_visible_check_fails_the_hidden_test(grade_id, answer, monkeypatch, tmp_path):
    visible, hidden = run_check(grade_id, answer.apply(exercises()[grade_id][1]), monkeypatch, tmp_path)
    assert visible.status == "pass", failure_text(visible)
    assert hidden.status == "fail" and answer.cause in hidden.title
