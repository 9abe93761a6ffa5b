"""The same verdict everywhere: for every answer of every corpus (wrong, unseen wrong, correct, the course's own,
and the untouched stub), the check cell run in the notebook's process and the grader (its worker and sandboxed
kernel, no hidden tests) reach the same verdict, step by step, with the same messages; `make check` (the grader's
--self, here unconfined, as on a machine without bubblewrap) agrees on a notebook per course notebook that holds
wrong and correct answers, and on capstone A's file beside it (the points and lines of the notebook's own cell)."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import tempfile
from pathlib import Path

import capstone_weights
import nbformat
import pytest
from corpus import local_reports, namespace, notebook_path, solution_sources
from correct_answers import CORRECT_ANSWERS, UNSEEN_WRONG_ANSWERS
from safetensors.torch import save
from sandboxed import require_sandbox
from wrong_answers import REFERENCE_ANSWERS, WRONG_ANSWERS

from starter.build import strip_source, student_version
from starter.capstone.interface import FILENAME
from starter.capstone.score import score_vqvae
from starter.exercises import BY_ID, EXERCISES
from starter.grading import cli
from starter.grading.batch import Batch, Settings, load_solutions
from starter.grading.plan import Plan, Step, make_plan
from starter.grading.reports import markdown_line
from starter.grading.submissions import exercise_sources

NOTEBOOKS = sorted({e.notebook for e in EXERCISES})


def answers(notebook: str) -> list[tuple[str, str, str]]:
    """(grade_id, label, source) of every answer to every exercise of the notebook, in every corpus."""
    found = []
    for exercise in (e for e in EXERCISES if e.notebook == notebook):
        solution = solution_sources(notebook)[exercise.grade_id]
        found += [(exercise.grade_id, f"wrong: {w.name}", w.apply(solution)) for w in WRONG_ANSWERS[exercise.grade_id]]
        found += [
            (exercise.grade_id, f"unseen wrong: {a.name}", a.source) for a, _ in UNSEEN_WRONG_ANSWERS[exercise.grade_id]
        ]
        found += [(exercise.grade_id, f"correct: {a.name}", a.source) for a in CORRECT_ANSWERS[exercise.grade_id]]
        found.append((exercise.grade_id, "the course's own", REFERENCE_ANSWERS[exercise.grade_id]))
        found.append((exercise.grade_id, "untouched", strip_source(solution)))
    return found


def verdict(report: dict) -> list[tuple]:
    """A report as (title, [(step, status, message without the student's line)])."""
    return [
        report["title"],
        [(s["name"], s["status"], re.sub(r" \(at `.*`\)", "", s["message"])) for s in report["steps"]],
    ]


@pytest.fixture(scope="module")
def scratch():
    folder = Path(tempfile.mkdtemp(prefix="agreement-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_notebook_and_grader_agree_on_every_answer(notebook, scratch):
    """One grading kernel per notebook: the set-up cells and the solution's exercises, then each answer followed by
    its exercise's checks and the solution again (so that every answer meets the solution's other exercises)."""
    require_sandbox()
    solutions = load_solutions(notebook_path(notebook).parent)
    name = notebook_path(notebook).stem
    plan = make_plan(name, solutions[name], exercise_sources(solutions[name]))
    steps = [s for s in plan.steps if s.kind == "run"]
    cases = answers(notebook)
    for grade_id, _, source in cases:
        steps += [
            Step("run", source),
            Step("check", exercise=grade_id),
            Step("run", solution_sources(notebook)[grade_id]),
        ]
    batch = Batch(solutions, Settings(hidden=False, seed=0, cell_timeout=120, notebook_timeout=1200), scratch)
    results, status = batch.run(Plan(name, steps))
    assert status == "ok" and len(results) == len(cases), status
    disagreements = []
    for (grade_id, label, source), result in zip(cases, results):
        local = local_reports(grade_id, source, hidden=False)[0]
        remote = verdict(result["reports"][0])
        here = verdict({"title": local.title, "steps": [vars(s) for s in local.steps]})
        if remote != here:
            disagreements.append((grade_id, label, here, remote))
    assert not disagreements, disagreements[:3]


def test_make_check_agrees_with_the_notebook(tmp_path, capsys):
    """One notebook per course notebook, its exercises answered wrong and right in turn: `python -m starter.grade
    --self --unconfined` gives each check the notebook's verdict, and capstone A what the notebook's cell prints."""
    expected = {}
    (tmp_path / FILENAME).write_bytes(save(capstone_weights.own()))
    for notebook in NOTEBOOKS:
        sources = {
            g: (WRONG_ANSWERS[g][0].apply(s) if i % 2 else CORRECT_ANSWERS[g][0].source)
            for i, (g, s) in enumerate(solution_sources(notebook).items())
        }
        submission = student_version(nbformat.read(notebook_path(notebook), as_version=4))
        for cell in submission.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id") in sources:
                cell.source = sources[cell.metadata["nbgrader"]["grade_id"]]
        nbformat.write(submission, tmp_path / f"mixed_{notebook}.ipynb")
        expected[notebook] = {BY_ID[g].check_id: _local_with(notebook, sources, g) for g in sources}
    assert (
        cli.main(["--self", "--unconfined", "--seed", "0", "--jobs", "2", "--cell-timeout", "120", str(tmp_path)]) == 0
    )
    out = capsys.readouterr().out
    for notebook, verdicts in expected.items():
        section = out.split(f"# mixed_{notebook}: ")[1].split("\n# ")[0]
        for check_id, passed in verdicts.items():
            line = next(row for row in section.splitlines() if row.startswith(f"## {check_id}:"))
            assert ("(pass)" in line) == passed, (notebook, check_id, line)
        assert {True, False} <= set(verdicts.values()) or len(verdicts) == 1
    capstone = out.split("# mixed_02: ")[1].split("## capstone-a: ")[1].split("\n\n")[0].splitlines()
    printed = score_vqvae(tmp_path / FILENAME).report().splitlines()
    assert capstone == ["2 / 3 (partial)"] + [f"- {markdown_line(line)}" for line in printed], capstone


def _local_with(notebook: str, sources: dict[str, str], grade_id: str) -> bool:
    """The notebook's verdict for `grade_id` when every exercise cell holds `sources`' answer."""
    names = dict(namespace(notebook))
    for source in sources.values():
        exec(source, names)
    exercise = BY_ID[grade_id]
    with contextlib.redirect_stdout(io.StringIO()):
        return exercise.check_function()(*[names[n] for n in exercise.names], **exercise.visible).passed
