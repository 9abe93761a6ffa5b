"""Every check against the mistakes students make: each wrong answer fails with its cause named, the solution passes,
answers coded to the visible check fail the hidden test, mistakes written after the checks also fail, and the
course's own version of an exercise is refused (see tests/test_agreement.py for the grader's verdicts)."""

from __future__ import annotations

import pytest
from corpus import failure_text, local_reports, solution_sources
from correct_answers import UNSEEN_WRONG_ANSWERS
from wrong_answers import REFERENCE_ANSWERS, VISIBLE_ONLY, WRONG_ANSWERS, WrongAnswer

from starter.exercises import BY_ID, EXERCISES


def cases(table: dict[str, list[WrongAnswer]]) -> list:
    return [
        pytest.param(grade_id, answer, id=f"{grade_id}: {answer.name}")
        for grade_id, answers in table.items()
        for answer in answers
    ]


def solution(grade_id: str) -> str:
    return solution_sources(BY_ID[grade_id].notebook)[grade_id]


def test_every_exercise_has_at_least_five_wrong_answers_and_a_reference_answer():
    ids = {exercise.grade_id for exercise in EXERCISES}
    assert set(WRONG_ANSWERS) == ids == set(REFERENCE_ANSWERS), ids ^ set(WRONG_ANSWERS)
    assert {grade_id: len(a) for grade_id, a in WRONG_ANSWERS.items() if len(a) < 5} == {}


@pytest.mark.parametrize("grade_id", sorted(WRONG_ANSWERS))
def test_solution_passes_visible_and_hidden_checks(grade_id):
    reports = local_reports(grade_id, solution(grade_id))
    assert len(reports) == 1 + len(BY_ID[grade_id].hidden) and "(hidden test)" in reports[-1].title
    assert [r.status for r in reports] == ["pass"] * len(reports), [failure_text(r) for r in reports]


@pytest.mark.parametrize("grade_id, answer", cases(WRONG_ANSWERS))
def test_wrong_answer_fails_with_its_cause_named(grade_id, answer):
    visible = local_reports(grade_id, answer.apply(solution(grade_id)), hidden=False)[0]
    assert visible.status == "fail", f"{answer.name!r} passed the check of {grade_id}"
    assert answer.cause.lower() in failure_text(visible), failure_text(visible)


@pytest.mark.parametrize("grade_id, answer", cases(VISIBLE_ONLY))
def test_answer_coded_to_the_visible_check_fails_the_hidden_test(grade_id, answer):
    visible, *hidden = local_reports(grade_id, answer.apply(solution(grade_id)))
    assert visible.status == "pass", failure_text(visible)
    assert any(r.status == "fail" for r in hidden)


@pytest.mark.parametrize(
    "grade_id, answer",
    [pytest.param(g, a, id=f"{g}: {a.name}") for g, answers in UNSEEN_WRONG_ANSWERS.items() for a, _ in answers],
)
def test_mistakes_written_after_the_checks_fail(grade_id, answer):
    """Written from the prose alone by someone who had not read the checks (tests/correct_answers.py)."""
    assert local_reports(grade_id, answer.source, hidden=False)[0].status == "fail"


@pytest.mark.parametrize("grade_id", sorted(REFERENCE_ANSWERS))
def test_the_course_s_own_version_is_refused_with_a_clear_message(grade_id):
    report = local_reports(grade_id, REFERENCE_ANSWERS[grade_id], hidden=False)[0]
    assert report.status == "fail" and "withheld while it is checked: use your own code" in failure_text(report)
