"""Correct answers written the ways students write them, from the prose alone (tests/correct_answers.py): each
earns the check, visible and hidden (see tests/test_agreement.py for the grader's verdicts)."""

from __future__ import annotations

import pytest
from corpus import failure_text, local_reports
from correct_answers import CORRECT_ANSWERS

from starter.exercises import EXERCISES


def test_every_exercise_has_at_least_four_correct_answers():
    assert {e.grade_id for e in EXERCISES} == set(CORRECT_ANSWERS)
    assert {grade_id: len(a) for grade_id, a in CORRECT_ANSWERS.items() if len(a) < 4} == {}


@pytest.mark.parametrize(
    "grade_id, answer",
    [pytest.param(g, a, id=f"{g}: {a.name}") for g, answers in CORRECT_ANSWERS.items() for a in answers],
)
def test_correct_answer_earns_the_check(grade_id, answer):
    reports = local_reports(grade_id, answer.source)
    assert [r.status for r in reports] == ["pass"] * len(reports), [failure_text(r) for r in reports]
