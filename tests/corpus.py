"""The answer corpora, run as a notebook's check cell runs them: the notebook's imports, every solution exercise,
then the answer cell, then the exercise's check calls (`starter.exercises`), in this process."""

from __future__ import annotations

import contextlib
import functools
import io
from pathlib import Path

import nbformat

from starter.capstone import BY_GRADE_ID as CAPSTONES
from starter.config import PROJECT_ROOT
from starter.exercises import BY_ID
from starter.report import Report

SOLUTIONS = sorted((PROJECT_ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))


def notebook_path(notebook: str) -> Path:
    return next(path for path in SOLUTIONS if path.name.startswith(notebook[:2]))


@functools.lru_cache(maxsize=None)
def solution_sources(notebook: str) -> dict[str, str]:
    """The solution's source of every exercise cell of notebook "NN", by grade_id (capstones are no exercise)."""
    cells = nbformat.read(notebook_path(notebook), as_version=4).cells
    return {
        c.metadata["nbgrader"]["grade_id"]: c.source
        for c in cells
        if c.cell_type == "code"
        and c.metadata.get("nbgrader", {}).get("solution")
        and c.metadata["nbgrader"]["grade_id"] not in CAPSTONES
    }


@functools.lru_cache(maxsize=None)
def setup_source(notebook: str) -> str:
    """The notebook's import cell."""
    cells = nbformat.read(notebook_path(notebook), as_version=4).cells
    return next(c.source for c in cells if c.cell_type == "code" and "from starter import" in c.source)


@functools.lru_cache(maxsize=None)
def namespace(notebook: str) -> dict:
    """The notebook's imports and every solution exercise."""
    names: dict = {"__name__": "notebook"}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(setup_source(notebook), names)
    for source in solution_sources(notebook).values():
        exec(source, names)
    return names


@functools.lru_cache(maxsize=None)
def local_reports(grade_id: str, source: str, hidden: bool = True) -> list[Report]:
    """The reports of the exercise's check cell after the answer `source` is run in a copy of the notebook's
    namespace (visible check first, then the hidden tests unless `hidden` is False); computed once per answer."""
    exercise = BY_ID[grade_id]
    names = dict(namespace(exercise.notebook))
    exec(source, names)
    check = exercise.check_function()
    with contextlib.redirect_stdout(io.StringIO()):
        return [check(*[names[n] for n in exercise.names], **arguments) for arguments in exercise.calls(hidden)]


def failure_text(report: Report) -> str:
    return " ".join(f"{step.name}: {step.message}" for step in report.steps if step.status != "pass").lower()
