"""Generate the student notebooks from the solutions: `python -m starter.build [--check]`.

First the check cells of the solutions are brought in line with `starter.exercises` (the one place where each
exercise's check call, hidden tests and points are declared). Then, in a solution code cell, the lines between
`### BEGIN SOLUTION` and `### END SOLUTION` become a stub (`# YOUR CODE HERE` + `raise NotImplementedError()`, at the
same indentation), and lines between `### BEGIN HIDDEN TESTS` and `### END HIDDEN TESTS` are dropped. Outputs and
execution counts are cleared.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

from starter.config import PROJECT_ROOT
from starter.exercises import BY_CHECK_ID

BEGIN = re.compile(r"^(\s*)### BEGIN (SOLUTION|HIDDEN TESTS)\s*$")
END = re.compile(r"^\s*### END (SOLUTION|HIDDEN TESTS)\s*$")


# What JupyterLab writes for the course's kernel: stored as is, opening a notebook does not mark it changed.
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
REPOSITORY = "discrete-latents/discrete-latents"  # the course on GitHub: the one place its address is written
CLONE_CELL = f"""\
# Colab only: fetch the course and install its `starter` package (Colab's own torch and ipywidgets are kept).
import sys

if "google.colab" in sys.modules:
    !git clone -q --depth 1 https://github.com/{REPOSITORY} /content/discrete-latents
    %pip install -q -e /content/discrete-latents
    sys.path.insert(0, "/content/discrete-latents")"""


def colab_badge(name: str) -> str:
    """Markdown for an "Open in Colab" badge that opens the student notebook `name` from GitHub."""
    url = f"https://colab.research.google.com/github/{REPOSITORY}/blob/main/notebooks/{name}"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


class MarkerError(ValueError):
    """Unbalanced or nested solution markers."""


def strip_source(source: str, where: str = "cell") -> str:
    """Replace solution blocks by stubs and drop hidden-test blocks."""
    out: list[str] = []
    inside: str | None = None
    for number, line in enumerate(source.splitlines(), 1):
        begin, end = BEGIN.match(line), END.match(line)
        if begin:
            if inside:
                raise MarkerError(f"{where}, line {number}: BEGIN {begin[2]} inside an open {inside} block")
            inside = begin[2]
            if inside == "SOLUTION":
                out += [f"{begin[1]}# YOUR CODE HERE", f"{begin[1]}raise NotImplementedError()"]
        elif end:
            if inside != end[1]:
                raise MarkerError(f"{where}, line {number}: END {end[1]} without a matching BEGIN")
            inside = None
        elif inside is None:
            out.append(line)
    if inside:
        raise MarkerError(f"{where}: {inside} block is never closed")
    return "\n".join(out)


def student_version(solution: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """A copy of `solution` with stubs instead of solutions, no hidden tests, no outputs and no widget state, opening
    with an "Open in Colab" badge; its Colab cell (the one that mentions google.colab) is CLONE_CELL."""
    notebook = nbformat.from_dict(solution)
    notebook.metadata.pop("widgets", None)
    notebook.metadata["kernelspec"] = dict(KERNELSPEC)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and "google.colab" in cell.source:
            cell.source = CLONE_CELL
        if cell.cell_type == "code":
            cell.source = strip_source(cell.source, f"{name}, cell {index}")
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    notebook.cells.insert(0, nbformat.v4.new_markdown_cell(colab_badge(name), id="colab-badge"))
    return notebook


def sync_check_cells(solution: nbformat.NotebookNode) -> bool:
    """Give each check cell of a solution notebook the source and points that starter.exercises declares; True if
    anything changed."""
    changed = False
    for cell in solution.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade"):
            exercise = BY_CHECK_ID[meta["grade_id"]]
            if (cell.source, meta.get("points")) != (exercise.check_source(), exercise.points):
                cell.source, meta["points"], changed = exercise.check_source(), exercise.points, True
    return changed


def build(solutions: Path, notebooks: Path, check: bool = False) -> list[Path]:
    """Write (or with `check`, compare) every student notebook, and the check cells of the solutions; returns the
    files that differ."""
    stale = []
    for source in sorted(solutions.glob("[0-9][0-9]_*.ipynb")):
        solution = nbformat.read(source, as_version=4)
        if sync_check_cells(solution):
            stale.append(source)
            if not check:
                source.write_text(nbformat.writes(solution) + "\n", encoding="utf-8")
        target = notebooks / source.name
        text = nbformat.writes(student_version(solution, source.name)) + "\n"
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            stale.append(target)
            if not check:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report notebooks that are out of date")
    args = parser.parse_args(argv)
    stale = build(PROJECT_ROOT / "solutions", PROJECT_ROOT / "notebooks", check=args.check)
    for path in stale:
        print(f"{'out of date' if args.check else 'wrote'}: {path.relative_to(PROJECT_ROOT)}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
