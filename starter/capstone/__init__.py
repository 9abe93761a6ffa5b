"""Capstones: projects graded on the weights a notebook saves beside itself, never on its code. Capstone A (notebook
02, a VQ-VAE): `interface` says what its file must hold, `score` grades it, `reference` is the course's own run.
Capstone B (notebook 04, a prior over A's codes): `prior_interface`, `prior_score`, `prior_reference`. Capstone C
(notebook 06, a transformer prior over A's codes): `transformer_interface`, `prior_score` (B's grading),
`transformer_reference`.

This module imports nothing heavy: the grader's intake reads it to find the weights files beside the notebooks.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from starter.config import CAPSTONE_ENV

MAX_BYTES = 5 * 1024 * 1024  # of one weights file; the largest sizes allowed take 1.4 MB (A), 3.9 MB (B), 4.9 MB (C)


@dataclass(frozen=True)
class Capstone:
    """One capstone: its solution cell's nbgrader grade_id (also its column in grades.csv), its notebook, the file
    the notebook saves beside itself, its points, the function that scores that file's bytes, the module of the
    course's reference run (its answer: withheld where the notebook is graded), and the other capstones' files it is
    scored with (keyword of the scorer, file name)."""

    grade_id: str
    title: str  # "capstone A"
    notebook: str  # "02"
    filename: str
    points: int
    scorer: str  # "module:function", called as function(weights, **options) -> score.CapstoneResult
    reference: str  # "starter.capstone.reference"
    needs: tuple[tuple[str, str], ...] = ()  # e.g. (("vqvae", "capstone_vqvae.safetensors"),)

    def scorer_module(self) -> ModuleType:
        """The scorer's module, imported at first use (it imports torch)."""
        return importlib.import_module(self.scorer.split(":")[0])

    def score(self, weights: bytes | str, **options: Any) -> Any:
        """The scorer's result for `weights` (a file's bytes, or its path), with `options` (the files it needs)."""
        return getattr(self.scorer_module(), self.scorer.split(":")[1])(weights, **options)

    def zero(self, reason: str) -> Any:
        """A result of 0 points for `reason`, titled and tiered as the scorer's results are."""
        module = self.scorer_module()
        return module.CapstoneResult(0, self.points, reason=reason, tiers=module.TIER_LINES, title=self.title)


CAPSTONES: tuple[Capstone, ...] = (
    Capstone(
        grade_id="capstone-a",
        title="capstone A",
        notebook="02",
        filename="capstone_vqvae.safetensors",
        points=3,
        scorer="starter.capstone.score:score_vqvae",
        reference="starter.capstone.reference",
    ),
    Capstone(
        grade_id="capstone-b",
        title="capstone B",
        notebook="04",
        filename="capstone_prior.safetensors",
        points=3,
        scorer="starter.capstone.prior_score:score_prior",
        reference="starter.capstone.prior_reference",
        needs=(("vqvae", "capstone_vqvae.safetensors"),),
    ),
    Capstone(
        grade_id="capstone-c",
        title="capstone C",
        notebook="06",
        filename="capstone_transformer.safetensors",
        points=3,
        scorer="starter.capstone.prior_score:score_transformer",
        reference="starter.capstone.transformer_reference",
        needs=(("vqvae", "capstone_vqvae.safetensors"),),
    ),
)
BY_GRADE_ID = {capstone.grade_id: capstone for capstone in CAPSTONES}
FILENAMES = tuple(capstone.filename for capstone in CAPSTONES)


def saved_path(filename: str) -> Path:
    """Where a notebook saves and reads a capstone file: beside itself (its working folder), or in the folder that
    COURSE_CAPSTONE_DIR names (the tests give each process its own)."""
    return Path(os.environ.get(CAPSTONE_ENV) or ".") / filename


def files_of(notebook: str) -> list[str]:
    """The capstone files handed in with course notebook "NN": its capstones' own, then those they need."""
    found = [capstone.filename for capstone in capstones_of(notebook)]
    return found + [name for c in capstones_of(notebook) for _, name in c.needs if name not in found]


def withheld_references(notebook: str) -> set[str]:
    """The reference-run modules withheld from a grading kernel or a release of notebook "NN": those of its
    capstones and of every later notebook's."""
    return {capstone.reference for capstone in CAPSTONES if capstone.notebook >= notebook[:2]}


def capstones_of(notebook: str) -> tuple[Capstone, ...]:
    """The capstones of course notebook "NN" (or "NN_name")."""
    return tuple(capstone for capstone in CAPSTONES if capstone.notebook == notebook[:2])
