"""Key numbers of a notebook: printed as a table, and collected by `python -m starter.run`."""
from __future__ import annotations

import json
import os
from typing import Mapping, Union

RESULTS_ENV = "COURSE_RESULTS"
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
