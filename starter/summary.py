"""Key numbers of a notebook: printed as a table, and collected by `python -m starter.run`."""

from __future__ import annotations

import json
import math
import os
from typing import Mapping, Union

from starter.config import FAST, RESULTS_ENV

Number = Union[int, float, str]


def _format(value: Number) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def report_results(results: Mapping[str, Number]) -> None:
    """Print `results` as a two-column table; when COURSE_RESULTS names a file, also write them there as JSON."""
    width = max(len(key) for key in results)
    for key, value in results.items():
        print(f"{key:<{width}}  {_format(value)}")
    path = os.environ.get(RESULTS_ENV)
    if path:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({key: value for key, value in results.items()}, handle, indent=1)


def print_table(rows: Mapping[str, Mapping[str, Number]], first: str = "") -> None:
    """Print {row name: {column: value}} as an aligned table; a missing value shows as '-'."""
    columns = list(dict.fromkeys(column for row in rows.values() for column in row))
    cells = [[first, *columns]] + [
        [name, *(_format(row.get(column, "-")) for column in columns)] for name, row in rows.items()
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(cells[0]))]
    for line in cells:
        print("  ".join([line[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(line[1:], widths[1:])]))


CLAIM_MARKS = {
    True: "[holds]",
    False: "[does not hold in this run]",
    "tie": "[ties at this n: the difference is within twice its standard error]",
    None: "[fast mode: not evaluated]",
}


def claim(text: str, holds: bool) -> None:
    """Print a claim of the prose with a mark of its own (never a check's ✓ or ✗: a claim is about the models, not
    the student's code): whether this run's numbers bear it out; fast mode's tiny runs evaluate none."""
    print(f"{CLAIM_MARKS[None if FAST else bool(holds)]} {text}")


def claim_lower(text: str, ours: tuple[float, float], theirs: tuple[float, float], runs: int) -> None:
    """Claim that a mean over `runs` seeds, `ours` = (mean, standard deviation), is lower than `theirs`: it holds, or
    does not, only when the difference passes twice the standard error of the difference; within it, they tie."""
    difference = theirs[0] - ours[0]
    error = math.sqrt((ours[1] ** 2 + theirs[1] ** 2) / runs)
    verdict = "tie" if runs < 2 or abs(difference) <= 2 * error else difference > 0
    print(f"{CLAIM_MARKS[None if FAST else verdict]} {text}")
