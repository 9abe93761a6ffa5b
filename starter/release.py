"""A release of one notebook for graded use: `python -m starter.release 03 --out dist/` (`make release NB=03`).

It writes, in nbgrader's release-folder shape, `dist/release/03_pixelcnn/`: the student notebook (without the Colab
cell, which would install the whole course), and a `starter` package from which the answers of that notebook and
of every later one are withheld (`starter.grading.withheld`), holding in `starter/shipped/` the checkpoints the
notebook loads. Run from its folder, the notebook imports that package.

Some cells after the exercises use a withheld part (notebook 04's shipped `CodePrior`, say). To find them, the
release is run once in fast mode with the course's answers filled in: each cell that raises `Withheld`, or that
needs what such a cell defined, is replaced by a note that says what it needed. A capstone's cell is left as the
student's to write (its stub raises NotImplementedError in that run). Any other error stops the build.
The checks of a release only say that they run where the notebook is graded. The public course (Colab, self-study)
keeps everything.
"""

from __future__ import annotations

import argparse
import ast
import copy
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from starter.build import student_version
from starter.capstone import BY_GRADE_ID as CAPSTONES
from starter.config import CHECKPOINTS, CHECKPOINTS_ENV, DATA_ENV, FAST_ENV, PROJECT_ROOT, STATIC_ENV
from starter.grading.withheld import withheld_copy

CHECKPOINT_NAME = re.compile(r"""["']([\w-]+\.pt)["']""")


class ReleaseError(RuntimeError):
    """A release notebook fails, with the course's answers, for another reason than a withheld part."""


def release(notebook: str, out: Path, solutions: Path = PROJECT_ROOT / "solutions", prune: bool = True) -> Path:
    """Write the release of notebook "NN" under out/release/; returns its folder. `prune`: run it once to leave out
    the cells that need a withheld part (see above)."""
    path = next(solutions.glob(f"{notebook[:2]}_*.ipynb"))
    folder = out / "release" / path.stem
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    student = student_version(nbformat.read(path, as_version=4), path.name)
    student.cells = [cell for cell in student.cells if "google.colab" not in cell.source and cell.id != "colab-badge"]
    package = withheld_copy(notebook, folder)
    (package / "shipped").mkdir()
    for name in checkpoints_named(student):
        for file in (CHECKPOINTS / name, CHECKPOINTS / name.replace(".pt", "_log.csv")):
            if file.exists():
                shutil.copy(file, package / "shipped" / file.name)
    if prune:
        answers = {
            c.metadata["nbgrader"]["grade_id"]: c.source
            for c in nbformat.read(path, as_version=4).cells
            if c.metadata.get("nbgrader", {}).get("solution") and c.metadata["nbgrader"]["grade_id"] not in CAPSTONES
        }
        student = left_out(student, errors_with(student, answers, folder))
        for file in (package / "shipped").iterdir():  # only cells left out loaded it
            if file.name.replace("_log.csv", ".pt") not in checkpoints_named(student):
                file.unlink()
    nbformat.write(student, folder / path.name)
    return folder


def checkpoints_named(notebook: nbformat.NotebookNode) -> set[str]:
    """The checkpoint files ("name.pt") that the notebook's cells name."""
    return {name for cell in notebook.cells for name in CHECKPOINT_NAME.findall(cell.source)}


def errors_with(student: nbformat.NotebookNode, answers: dict[str, str], folder: Path) -> dict[int, tuple[str, str]]:
    """Run the release notebook from its folder in fast mode, with `answers` in its exercise cells, its own
    `starter` first on the path; the error of each cell that raised one, by index."""
    filled = nbformat.from_dict(copy.deepcopy(student))
    for cell in filled.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    with tempfile.TemporaryDirectory() as home:
        env = {
            **{k: v for k, v in os.environ.items() if k not in (DATA_ENV, CHECKPOINTS_ENV, "PYTHONPATH")},
            "HOME": home,
            "XDG_DATA_HOME": home,
            FAST_ENV: "1",
            STATIC_ENV: "1",
        }
        NotebookClient(
            filled, timeout=900, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(folder)}}
        ).execute(env=env)
    return {
        index: (output["ename"], output["evalue"])
        for index, cell in enumerate(filled.cells)
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    }


def left_out(student: nbformat.NotebookNode, errors: dict[int, tuple[str, str]]) -> nbformat.NotebookNode:
    """The notebook with each cell that needs a withheld part, directly or through a cell left out before it,
    replaced by a note; ReleaseError for any other error."""
    missing: set[str] = set()
    for index, cell in enumerate(student.cells):
        if index not in errors:
            continue
        kind, message = errors[index]
        if kind == "NotImplementedError" and cell.metadata.get("nbgrader", {}).get("grade_id") in CAPSTONES:
            continue  # the student trains the capstone here
        needed = sorted(cell_names(cell.source)[1] & missing)  # a cell left out may have bound them halfway
        if kind == "Withheld":
            note = f"*Left out of this release:* {message}."
        elif needed:
            note = f"*Left out of this release:* it needs `{needed[0]}`, from a cell left out above."
        else:
            raise ReleaseError(f"cell {index} fails with the course's answers: {kind}: {message[:300]}")
        missing |= cell_names(cell.source)[0]
        student.cells[index] = nbformat.v4.new_markdown_cell(note)
    return student


def cell_names(source: str) -> tuple[set[str], set[str]]:
    """The names a cell binds (and its top-level functions and classes), and the names it reads."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set(), set()
    names = [node for node in ast.walk(tree) if isinstance(node, ast.Name)]
    bound = {node.id for node in names if isinstance(node.ctx, ast.Store)} | {
        node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))
    }
    return bound, {node.id for node in names if isinstance(node.ctx, ast.Load)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m starter.release", description=__doc__.splitlines()[0])
    parser.add_argument("notebook", help="the notebook's number, e.g. 03")
    parser.add_argument("--out", type=Path, default=Path("dist"), help="where release/ goes (default: %(default)s)")
    args = parser.parse_args(argv)
    folder = release(args.notebook, args.out)
    left = [
        cell
        for cell in nbformat.read(next(folder.glob("*.ipynb")), as_version=4).cells
        if cell.source.startswith("*Left out of this release:*")
    ]
    print(f"wrote {folder} ({len(left)} cell(s) left out: they need withheld parts)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
