"""What grading a submission runs: the instructor's set-up cells, the student's exercise cells (matched by their
nbgrader grade_id, so deleted or reordered cells do not matter), and after each exercise the checks of its
exercise (from `starter.exercises`). The demo and training cells after the first exercise earn nothing and are
left out, and so are the capstones' cells (`starter.capstone`: their weights are graded, not their code); the check
cells themselves are never run in the student's kernel: the worker runs the checks."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import nbformat

from starter.capstone import BY_GRADE_ID as CAPSTONES
from starter.exercises import BY_CHECK_ID
from starter.grading.submissions import nbgrader

MISSING = "raise NotImplementedError('cell missing from the submission')"


@dataclass
class Step:
    kind: str  # "run": a cell to execute; "check": the checks of an exercise
    source: str = ""  # the cell's source (run)
    exercise: str = ""  # the exercise's grade_id (check, and run for an exercise cell)


@dataclass
class Plan:
    notebook: str
    steps: list[Step] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"notebook": self.notebook, "steps": [asdict(step) for step in self.steps]}

    @classmethod
    def from_json(cls, data: dict) -> "Plan":
        return cls(data["notebook"], [Step(**step) for step in data["steps"]])


def make_plan(name: str, solution: nbformat.NotebookNode, student: dict[str, str]) -> Plan:
    """The steps that grade a submission, its exercise sources by grade_id (`student`), against the instructor's
    `solution` notebook `name`."""
    plan, seen_exercise = Plan(name), False
    for cell in solution.cells:
        if cell.cell_type != "code":
            continue
        meta = nbgrader(cell)
        if meta.get("grade_id") in CAPSTONES:
            continue
        if meta.get("solution"):
            seen_exercise = True
            plan.steps.append(Step("run", student.get(meta["grade_id"], MISSING), exercise=meta["grade_id"]))
        elif meta.get("grade"):
            exercise = BY_CHECK_ID.get(meta["grade_id"])
            if exercise is None:
                raise KeyError(f"{name}: check cell {meta['grade_id']} has no exercise in starter.exercises")
            plan.steps.append(Step("check", exercise=exercise.grade_id))
        elif not seen_exercise and "google.colab" not in cell.source:
            plan.steps.append(Step("run", cell.source))
    return plan
