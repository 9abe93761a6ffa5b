"""A release for graded use holds no answer of its notebook or a later one (compared as normalised syntax trees, so
renaming would not hide one), ships only what its notebook needs, and its notebook imports the release's package."""

from __future__ import annotations

import ast
import copy
import functools
import importlib
import inspect
from pathlib import Path

import nbformat
import pytest
from corpus import SOLUTIONS

from starter.build import strip_source, student_version
from starter.capstone import CAPSTONES
from starter.exercises import EXERCISES
from starter.grading.similarity import normalised
from starter.release import ReleaseError, checkpoints_named, left_out, release

NOTEBOOKS = [path.name[:2] for path in SOLUTIONS]
PRUNED = ["03", "06"]  # built by running them: 03 leaves cells out, 06 is the newest (each run takes a minute or two)


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    """Each notebook's release, built once; pruned (run in fast mode to leave out what needs a withheld part) or not."""
    built = {}

    def build(notebook: str, prune: bool) -> Path:
        if (notebook, prune) not in built:
            built[notebook, prune] = release(notebook, tmp_path_factory.mktemp(f"release{notebook}"), prune=prune)
        return built[notebook, prune]

    return build


@functools.lru_cache(maxsize=None)
def definitions(source: str) -> tuple[str, ...]:
    """Every function and class of a module or cell, methods too, each normalised (once per source: every release
    holds most modules unchanged)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.append(normalised(ast.unparse(node)))
    return tuple(found)


def answers_from(notebook: str) -> dict[str, str]:
    """The course's answers to the exercises and capstones of notebook "NN" and later ones, normalised: every
    definition in their solution cells, starter's versions of them (twins), and the capstones' reference runs."""
    found = {}
    for path in SOLUTIONS:
        if path.name[:2] >= notebook:
            for cell in nbformat.read(path, as_version=4).cells:
                if cell.metadata.get("nbgrader", {}).get("solution"):  # what the stub hands out is no answer
                    for definition in set(definitions(cell.source)) - set(definitions(strip_source(cell.source))):
                        found[definition] = f"{path.name}: {cell.metadata['nbgrader']['grade_id']}"
    for exercise in EXERCISES:
        if exercise.notebook >= notebook:
            for twin in exercise.twins:
                module, name = twin.split(":")
                for definition in definitions(inspect.getsource(getattr(importlib.import_module(module), name))):
                    found[definition] = twin
    for capstone in CAPSTONES:
        if capstone.notebook >= notebook:
            for definition in definitions(inspect.getsource(importlib.import_module(capstone.reference))):
                found[definition] = capstone.reference
    return found


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_a_release_holds_no_answer_of_its_notebook_or_a_later_one(notebook, releases):
    folder = releases(notebook, prune=notebook in PRUNED)
    answers = answers_from(notebook)
    leaks = {
        answers[d]: path.relative_to(folder)
        for path in folder.rglob("*.py")
        for d in definitions(path.read_text(encoding="utf-8"))
        if d in answers
    }
    assert not leaks, leaks
    assert [p.name for p in folder.glob("*.ipynb")] == [next(p.name for p in SOLUTIONS if p.name[:2] == notebook)]
    assert not list(folder.rglob("solutions")) and not list(folder.rglob("tests"))


@pytest.mark.parametrize("notebook", PRUNED)
def test_a_release_runs_and_ships_the_checkpoints_its_cells_load_and_no_colab_cell(notebook, releases):
    folder = releases(notebook, prune=True)
    student = nbformat.read(next(folder.glob("*.ipynb")), as_version=4)
    text = "".join(cell.source for cell in student.cells)
    assert "google.colab" not in text and "colab.research.google.com" not in text
    shipped = {checkpoint.name for checkpoint in (folder / "starter" / "shipped").glob("*.pt")}
    assert shipped == checkpoints_named(student)


def test_a_capstone_cell_is_left_for_the_student_and_any_other_stub_stops_the_build():
    """A release's run leaves capstone cells as stubs (NotImplementedError): kept, unlike a cell failing otherwise."""
    student = student_version(nbformat.read(next(p for p in SOLUTIONS if p.name.startswith("02")), as_version=4))
    capstone = next(i for i, c in enumerate(student.cells) if c.get("id") == "capstone-a")
    kept = left_out(copy.deepcopy(student), {capstone: ("NotImplementedError", "")})
    assert (
        kept.cells[capstone].source == student.cells[capstone].source
        and "YOUR CODE HERE" in kept.cells[capstone].source
    )
    with pytest.raises(ReleaseError, match="NotImplementedError"):
        left_out(copy.deepcopy(student), {capstone - 1: ("NotImplementedError", "")})
