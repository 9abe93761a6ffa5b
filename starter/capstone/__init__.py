"""Capstones: projects graded on the weights a notebook saves beside itself, never on its code. `interface` says
what capstone A's file must hold, `score` grades it, `reference` is the course's own run.

This module imports nothing heavy: the grader's intake reads it to find the weights files beside the notebooks.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

MAX_BYTES = 4 * 1024 * 1024  # of one weights file; the largest sizes capstone A allows take 1.4 MB


@dataclass(frozen=True)
class Capstone:
    """One capstone: its solution cell's nbgrader grade_id (also its column in grades.csv), its notebook, the file
    the notebook saves beside itself, its points, the function that scores that file's bytes, and the module of the
    course's reference run (its answer: withheld where the notebook is graded)."""

    grade_id: str
    notebook: str  # "02"
    filename: str
    points: int
    scorer: str  # "module:function", called as function(weights, **options) -> score.CapstoneResult
    reference: str  # "starter.capstone.reference"

    def score(self, weights: bytes | str, **options: Any) -> Any:
        """The scorer's result for `weights` (a file's bytes, or its path)."""
        module, name = self.scorer.split(":")
        return getattr(importlib.import_module(module), name)(weights, **options)


CAPSTONES: tuple[Capstone, ...] = (
    Capstone(
        "capstone-a",
        "02",
        "capstone_vqvae.safetensors",
        3,
        "starter.capstone.score:score_vqvae",
        "starter.capstone.reference",
    ),
)
BY_GRADE_ID = {capstone.grade_id: capstone for capstone in CAPSTONES}
FILENAMES = tuple(capstone.filename for capstone in CAPSTONES)


def withheld_references(notebook: str) -> set[str]:
    """The reference-run modules withheld from a grading kernel or a release of notebook "NN": those of its
    capstones and of every later notebook's."""
    return {capstone.reference for capstone in CAPSTONES if capstone.notebook >= notebook[:2]}


def capstones_of(notebook: str) -> tuple[Capstone, ...]:
    """The capstones of course notebook "NN" (or "NN_name")."""
    return tuple(capstone for capstone in CAPSTONES if capstone.notebook == notebook[:2])
