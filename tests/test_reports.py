"""A check's report is the message: its status and its lines are the same in the notebook (what CheckRun prints) and
in the grader's feedback (what it writes after reading the report back from data); a report received as data is
checked strictly; and check cells' ids go to their exercises and back."""

from __future__ import annotations

import json

import nbformat
import pytest
import torch

from starter.checks import CheckRun, expect_shape
from starter.checks.kernel import LocalKernel
from starter.config import PROJECT_ROOT
from starter.exercises import BY_CHECK_ID, EXERCISES
from starter.grading.reports import MESSAGE_LIMIT, CheckScore, Grade, feedback, received, score
from starter.report import Report, ReportError, StepResult

TODO_MESSAGE = "not implemented yet (replace the `raise NotImplementedError()` stub)"


def stub() -> None:
    raise NotImplementedError()


def wrong_shape() -> None:
    expect_shape(torch.zeros(2, 3), (2, 4), "z")


CASES = {
    "pass": ([("builds", lambda: None), ("runs", lambda: None)], ["demo: pass", "  ✓ builds", "  ✓ runs"]),
    "fail": (
        [("builds", lambda: None), ("shape", wrong_shape), ("never", lambda: None)],
        ["demo: fail", "  ✓ builds", "  ✗ shape: z: expected shape (2, 4), found (2, 3)"],
    ),
    "not implemented": ([("builds", stub)], ["demo: not implemented", f"  ✗ builds: {TODO_MESSAGE}"]),
}
SUMMARY = {
    "pass": "✓ demo: all checks passed",
    "fail": "✗ demo: some checks failed",
    "not implemented": "✗ demo: not implemented yet",
}


def run_steps(steps) -> Report:
    with CheckRun("demo", LocalKernel()) as run:
        for name, fn in steps:
            run.step(name, fn)
    return run.report


def graded(reports: list[Report], points: int = 2) -> CheckScore:
    """What the grader makes of a check cell's reports once they have crossed a process boundary as JSON."""
    sent = json.loads(json.dumps([report.to_dict() for report in reports]))
    return score(CheckScore("check-demo", points), received(sent))


@pytest.mark.parametrize("status", list(CASES))
def test_the_notebook_prints_and_the_grader_writes_the_reports_lines(status, capsys):
    steps, lines = CASES[status]
    report = run_steps(steps)
    printed = capsys.readouterr().out.splitlines()
    assert report.status == status and report.lines() == lines
    assert printed == ["demo", *lines[1:], SUMMARY[status]]
    check = graded([report])
    assert (check.status, check.messages, check.earned) == (status, lines, 2 if status == "pass" else 0)
    text = feedback(Grade("ada", "ada.ipynb", "01_autoencoder", checks=[check]))
    assert f"## check-demo: {check.earned} / 2 ({status})\n" + "".join(f"- {line}\n" for line in lines) in text


def test_a_check_cell_passes_only_when_every_report_passes():
    passing, failing, todo = (run_steps(CASES[status][0]) for status in CASES)
    assert graded([passing, passing]).status == "pass"
    assert graded([passing, failing]).status == "fail" and graded([passing, failing]).earned == 0
    assert graded([failing, todo]).status == "not implemented"
    assert graded([]).status == "fail"


def test_the_feedback_cuts_long_lines():
    report = Report("demo", [StepResult("long", "fail", "x" * 2 * MESSAGE_LIMIT)])
    assert [len(line) for line in graded([report]).messages] == [len("demo: fail"), MESSAGE_LIMIT]


def test_a_report_survives_json():
    report = run_steps(CASES["fail"][0])
    assert Report.from_dict(json.loads(json.dumps(report.to_dict()))) == report


STEP = {"name": "builds", "status": "pass", "message": ""}
MALFORMED = [
    (None, "a report should be a dict, found NoneType"),
    ([], "a report should be a dict, found list"),
    ({"title": "demo"}, r"a report should have exactly the keys \['steps', 'title'\]: \['steps'\] missing"),
    ({"title": "demo", "steps": [], "passed": True}, r"exactly the keys .*: \[\] missing, 1 other"),
    ({"title": 1, "steps": []}, "a report: title should be a str, found int"),
    ({"title": "demo", "steps": (STEP,)}, "a report: steps should be a list, found tuple"),
    ({"title": "demo", "steps": ["builds"]}, "a step should be a dict, found str"),
    ({"title": "demo", "steps": [{"name": "builds", "status": "pass"}]}, r"\['message'\] missing"),
    ({"title": "demo", "steps": [{**STEP, "message": None}]}, "a step: message should be a str, found NoneType"),
    ({"title": "demo", "steps": [{**STEP, "status": True}]}, "a step: status should be a str, found bool"),
    ({"title": "demo", "steps": [{**STEP, "status": "passed"}]}, "a step's status should be one of .*'passed'"),
]


@pytest.mark.parametrize("data, error", MALFORMED)
def test_a_malformed_report_raises_a_clear_error(data, error):
    with pytest.raises(ReportError, match=error):
        Report.from_dict(data)


def test_the_grader_fails_a_malformed_report_and_says_why():
    check = score(CheckScore("check-demo", 2), received([{"title": "demo", "steps": [STEP]}, {"title": "forged"}]))
    assert (check.status, check.earned) == ("fail", 0)
    assert check.messages[2:] == [
        "a malformed report: fail",
        "  ✗ the grader reads the check's report: a report should have exactly the keys ['steps', 'title']: "
        "['steps'] missing, 0 other(s)",
    ]


def test_check_ids_round_trip_for_every_exercise():
    for exercise in EXERCISES:
        assert exercise.check_id == f"check-{exercise.grade_id}" and BY_CHECK_ID[exercise.check_id] is exercise
    assert len(BY_CHECK_ID) == len(EXERCISES)


def test_every_check_cell_of_the_solutions_has_its_exercise():
    found = [
        cell.metadata["nbgrader"]["grade_id"]
        for path in sorted((PROJECT_ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
        for cell in nbformat.read(path, as_version=4).cells
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade")
    ]
    assert sorted(found) == sorted(BY_CHECK_ID)
