"""The similarity report finds planted copies (renamed, reordered, commented, with another loop), lists no pair of
independently written correct answers, never counts the code the notebooks hand out, and says how to read it; the
grader writes it. `bench/similarity.py` measures detection, the closest honest pairs and the time for 200
submissions."""

from __future__ import annotations

import ast
import copy
import functools
import importlib
import inspect
import re

import nbformat
import pytest
from corpus import notebook_path, solution_sources
from correct_answers import CORRECT_ANSWERS

from starter.build import student_version
from starter.exercises import EXERCISES
from starter.grading.similarity import (
    bound_names,
    compare,
    course_fingerprints,
    notebook_fingerprints,
    similar_pairs,
    write_report,
)
from starter.grading.withheld import definition_source

NOTEBOOKS = sorted({e.notebook for e in EXERCISES})
LOOP = ("for batch in loader:", "batches = iter(loader)\n    while (batch := next(batches, None)) is not None:")


@functools.lru_cache(maxsize=None)
def solution(notebook: str) -> nbformat.NotebookNode:
    return nbformat.read(notebook_path(notebook), as_version=4)


def submission(notebook: str, sources: dict[str, str]) -> nbformat.NotebookNode:
    """The notebook with these exercise cells."""
    filled = copy.deepcopy(solution(notebook))
    for cell in filled.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and grade_id in sources:
            cell.source = sources[grade_id]
    return filled


def renamed(source: str) -> str:
    names = bound_names(ast.parse(source))
    return re.sub(r"\b(\w+)\b", lambda m: f"my_{m[1]}" if m[1] in names else m[1], source)


def commented(source: str) -> str:
    return "\n".join(
        f"{line}  # {i}" if line.strip() and not line.strip().startswith(("#", '"""')) and '"""' not in line else line
        for i, line in enumerate(source.splitlines())
    )


def reordered(source: str) -> str:
    tree = ast.parse(source)
    tree.body = tree.body[::-1]
    return ast.unparse(tree)


def looped(source: str) -> str:
    return source.replace(*LOOP)


PLANTS = {
    "renamed": renamed,
    "commented": commented,
    "reordered": reordered,
    "looped": looped,
    "all at once": lambda source: renamed(commented(reordered(looped(source)))),
}


def prints_of(notebook: str, sources: dict[str, str]) -> dict[str, set[int]]:
    return notebook_fingerprints(submission(notebook, sources), solution(notebook))


@pytest.mark.parametrize("notebook", NOTEBOOKS)
@pytest.mark.parametrize("plant", sorted(PLANTS))
def test_planted_copies_are_found(notebook, plant):
    original = {g: answers[0].source for g, answers in CORRECT_ANSWERS.items() if g in solution_sources(notebook)}
    copy = {g: PLANTS[plant](source) for g, source in original.items()}
    matches = similar_pairs({"original": prints_of(notebook, original), "copy": prints_of(notebook, copy)}, {})
    assert [(m.first, m.second) for m in matches] == [("original", "copy")], compare(
        prints_of(notebook, original), prints_of(notebook, copy)
    )[:2]


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_independent_correct_answers_are_not_reported(notebook):
    ids = [g for g in solution_sources(notebook)]
    count = min(len(CORRECT_ANSWERS[g]) for g in ids)
    prints = {f"answers {k}": prints_of(notebook, {g: CORRECT_ANSWERS[g][k].source for g in ids}) for k in range(count)}
    assert similar_pairs(prints, {}) == []


def test_the_code_the_notebooks_hand_out_never_counts():
    """Two untouched notebooks have nothing in common: their stubs are subtracted."""
    prints = notebook_fingerprints(student_version(solution("06")), solution("06"))
    assert prints and all(not windows for windows in prints.values())


def test_the_course_s_own_answer_is_reported():
    copied = {g: renamed(s) for g, s in solution_sources("01").items()}
    matches = similar_pairs({"student": prints_of("01", copied)}, course_fingerprints("01_autoencoder", solution("01")))
    assert "course solution (01)" in {m.second for m in matches}


def test_each_twin_is_read_from_its_file_as_inspect_gives_it():
    """The grader reads starter's twins from their files (it does not import them, nor torch with them)."""
    twins = [twin for exercise in EXERCISES for twin in exercise.twins]
    assert twins
    for twin in twins:
        module, name = twin.split(":")
        assert definition_source(twin) == inspect.getsource(getattr(importlib.import_module(module), name)), twin
    with pytest.raises(LookupError):
        definition_source("starter.models.autoencoder:NoSuchClass")


def test_the_report_lists_pairs_with_how_to_read_them(tmp_path):
    ids = list(solution_sources("01"))
    same = {g: CORRECT_ANSWERS[g][0].source for g in ids}
    prints = {
        "a": prints_of("01", same),
        "b": prints_of("01", {g: renamed(s) for g, s in same.items()}),
        "c": prints_of("01", {g: CORRECT_ANSWERS[g][1].source for g in ids}),
    }
    matches = similar_pairs(prints, {})
    write_report(matches, tmp_path, len(prints))
    assert [(m.first, m.second) for m in matches] == [("a", "b")]
    assert (tmp_path / "similarity.csv").read_text().splitlines()[1].startswith("a,b,1.00,")
    assert (
        "proves nothing" in (tmp_path / "similarity.md").read_text()
        and "| a | b | 100% |" in (tmp_path / "similarity.md").read_text()
    )
