"""A submission's capstones, scored in the grader's own process from the weights files handed in beside the notebook
(`starter.grading.submissions`): safetensors parses them, the course's architecture evaluates them, and no student
code runs. Also the weights that two submissions share, for the similarity report."""

from __future__ import annotations

import itertools

from starter.capstone import Capstone
from starter.capstone.interface import SubmissionError, Tensors, read_submission
from starter.capstone.score import COVERAGE, TOLERANCE, CapstoneResult, distance
from starter.grading.reports import CheckScore
from starter.grading.submissions import Entry


def capstone_score(capstone: Capstone, found: bytes | str | None) -> CheckScore:
    """The capstone's points for the file found beside the notebook (its bytes, why it could not be read, or None
    when there was none), with the scorer's report as its messages; never raises."""
    if found is None:
        result = CapstoneResult(0, capstone.points, reason=f"missing: no {capstone.filename} beside the notebook")
    elif isinstance(found, str):
        result = CapstoneResult(0, capstone.points, reason=f"{capstone.filename}: {found}")
    else:
        try:
            result = capstone.score(found)
        except Exception as error:  # a bug of the grader's: this capstone gets no points, the batch goes on
            result = CapstoneResult(0, capstone.points, reason=f"the grader could not score it ({error!r:.200})")
    status = "pass" if result.points == capstone.points else "partial" if result.points else "fail"
    return CheckScore(capstone.grade_id, capstone.points, result.points, status, result.report().splitlines())


def shared_weights(
    capstone: Capstone, entries: list[Entry], tolerance: float = TOLERANCE
) -> list[tuple[str, str, float]]:
    """(first, second, relative distance) for every two submissions whose files for `capstone` are within
    `tolerance` of each other; each file is parsed once, and one that cannot be is left out."""
    tensors: dict[str, Tensors] = {}
    for entry in entries:
        found = entry.files.get(capstone.filename)
        if isinstance(found, bytes) and entry.notebook[:2] == capstone.notebook:
            try:
                tensors[f"{entry.student} ({capstone.grade_id})"] = read_submission(found)
            except SubmissionError:
                continue
    pairs = []
    for (a, first), (b, second) in itertools.combinations(tensors.items(), 2):
        gap, compared = distance(first, second)
        if compared >= COVERAGE and gap <= tolerance:
            pairs.append((a, b, gap))
    return sorted(pairs, key=lambda pair: (pair[2], pair[0], pair[1]))
