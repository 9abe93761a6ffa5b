"""A submission's capstones, scored in the grader's own process from the weights files handed in beside the notebook
(`starter.grading.submissions`): safetensors parses them, the course's architecture evaluates them, and no student
code runs. Also the weights that two submissions share, for the similarity report. The scorers, and torch with them,
are imported only for notebooks that have capstones (by `batch.grade_each`, before its threads start)."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from starter.capstone import Capstone
from starter.grading.reports import CheckScore
from starter.grading.submissions import Entry, Files

if TYPE_CHECKING:
    from starter.capstone.interface import Tensors


def capstone_score(capstone: Capstone, files: Files) -> CheckScore:
    """The capstone's points for the files found beside the notebook (`Files`: bytes, or why a file could not be
    read), with the scorer's report as its messages; never raises."""
    found = files.get(capstone.filename)
    needed = {keyword: files.get(name) for keyword, name in capstone.needs}
    unusable = [(name, files.get(name)) for _, name in capstone.needs if not isinstance(files.get(name), bytes)]
    if found is None:
        result = capstone.zero(f"missing: no {capstone.filename} beside the notebook")
    elif isinstance(found, str):
        result = capstone.zero(f"{capstone.filename}: {found}")
    elif unusable:
        name, why = unusable[0]
        result = capstone.zero(
            f"it is scored with {name}, and there is none beside the notebook" if why is None else f"{name}: {why}"
        )
    else:
        try:
            result = capstone.score(found, **needed)
        except Exception as error:  # a bug of the grader's: this capstone gets no points, the batch goes on
            result = capstone.zero(f"the grader could not score it ({error!r:.200})")
    status = "pass" if result.points == capstone.points else "partial" if result.points else "fail"
    return CheckScore(capstone.grade_id, capstone.points, result.points, status, result.report().splitlines())


def shared_weights(
    capstone: Capstone, entries: list[Entry], tolerance: float | None = None
) -> list[tuple[str, str, float]]:
    """(first, second, relative distance) for every two submissions whose files for `capstone` are within
    `tolerance` (`starter.capstone.score.TOLERANCE` by default) of each other; each file is parsed once, and one
    that cannot be is left out."""
    files = {
        f"{entry.student} ({capstone.grade_id})": entry.files.get(capstone.filename)
        for entry in entries
        if entry.notebook[:2] == capstone.notebook
    }
    files = {name: found for name, found in files.items() if isinstance(found, bytes)}
    if len(files) < 2:
        return []
    from starter.capstone.interface import SubmissionError, read_submission
    from starter.capstone.score import COVERAGE, TOLERANCE, distance

    tolerance = TOLERANCE if tolerance is None else tolerance
    tensors: dict[str, Tensors] = {}
    for name, found in files.items():
        try:
            tensors[name] = read_submission(found)
        except SubmissionError:
            continue
    pairs = []
    for (a, first), (b, second) in itertools.combinations(tensors.items(), 2):
        gap, compared = distance(first, second)
        if compared >= COVERAGE and gap <= tolerance:
            pairs.append((a, b, gap))
    return sorted(pairs, key=lambda pair: (pair[2], pair[0], pair[1]))
