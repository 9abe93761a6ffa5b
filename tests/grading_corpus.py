"""Builds the corpus of submissions the grader must survive, from the current notebook 01."""
from __future__ import annotations

import json
import random
from pathlib import Path

import nbformat

from starter.build import student_version
from starter.config import PROJECT_ROOT

SOLUTION = PROJECT_ROOT / "solutions" / "01_autoencoder.ipynb"


def _solution() -> nbformat.NotebookNode:
    return nbformat.read(SOLUTION, as_version=4)


def _with_exercise(grade_id: str, source: str, after: bool = False) -> nbformat.NotebookNode:
    """The solution with `source` added before (or after) the code of one exercise cell."""
    notebook = _solution()
    for cell in notebook.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
            cell.source = cell.source + "\n" + source if after else source + "\n" + cell.source
    return notebook


def build_corpus(folder: Path, tamper_target: Path) -> dict[str, dict]:
    """Write every case to `folder`; returns {student: expectations}."""
    folder.mkdir(parents=True, exist_ok=True)
    full = {"status": "ok", "total": "all"}
    cases: dict[str, tuple[object, dict]] = {}
    cases["solution_01"] = (_solution(), full)
    cases["untouched_01"] = (student_version(_solution()), {"status": "ok", "total": 0})
    cases["not_json_01"] = (b"\x89PNG this is not a notebook", {"status": "invalid: not JSON", "total": 0})
    cases["not_a_notebook_01"] = ({"hello": "world"}, {"status": "invalid: not a notebook", "total": 0})
    old = _solution()
    old["nbformat"] = 3
    cases["nbformat3_01"] = (old, {"status": "invalid: unsupported nbformat 3", "total": 0})

    shuffled = _solution()
    shuffled.cells = [c for c in shuffled.cells if c.get("id") != "decoder"]
    random.Random(0).shuffle(shuffled.cells)
    cases["deleted_reordered_01"] = (shuffled, {"status": "ok", "zero": {"check-decoder"}})

    cases["exception_01"] = (_with_exercise("encoder", "raise RuntimeError('my bug')"),
                             {"status": "ok", "zero": {"check-encoder"}})
    cases["endless_01"] = (_with_exercise("loss", "while True:\n    pass"), {"status": "ok", "zero": {"check-loss"}})
    cases["memory_bomb_01"] = (_with_exercise("decoder", "hog = bytearray(64 * 2**30)"),
                               {"status": "ok", "zero": {"check-decoder"}})
    flood = ("print('x' * 50_000_000)\n"
             "def reconstruction_loss(x_hat, x):\n    raise ValueError('y' * 1_000_000)")
    cases["huge_output_01"] = (_with_exercise("loss", flood, after=True), {"status": "ok", "zero": {"check-loss"}, "short": True})
    escape = (f"from pathlib import Path\nPath({str(tamper_target)!r}).write_text('tampered')\n"
              "Path('../escaped_by_student.txt').write_text('outside my folder')")
    cases["tamper_01"] = (_with_exercise("encoder", escape), {"status": "restored", "total": "all"})
    hard_coded = "def reconstruction_loss(x_hat, x):\n    return ((x_hat - x) ** 2).sum() / (len(x) * 784)"
    cases["fails_hidden_test_01"] = (_with_exercise("loss", hard_coded, after=True),
                                     {"status": "ok", "zero": {"check-loss"}})
    forged = student_version(_solution())
    for cell in forged.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
            cell.source = "print('✓ all checks passed')"
    cases["forged_checks_01"] = (forged, {"status": "ok", "total": 0})

    for student, (content, _) in cases.items():
        path = folder / f"{student}.ipynb"
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, dict) and "cells" not in content:
            path.write_text(json.dumps(content))
        else:
            path.write_text(json.dumps(content))
    return {student: expected for student, (_, expected) in cases.items()}
