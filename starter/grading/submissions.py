"""What students handed in, as instructors receive it: loose notebooks, folders, nbgrader's
`submitted/<student>/<assignment>/NN_*.ipynb`, LMS exports named `<name>_<id>_<submission>_<original>.ipynb`,
and .zip files of any of these. Each submission gets one student id, and its course notebook is told by the
exercise cells it holds; two submissions of one student for one notebook are an error before anything is graded.
"""
from __future__ import annotations

import hashlib
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import nbformat

LMS_NAME = re.compile(r"^(?P<name>[A-Za-z][\w-]*?)(?:_LATE)?_(?P<id>\d+)_(?P<submission>\d+)_(?P<original>.+)$")
ARCHIVE_LIMIT = 64 * 2**20  # bytes read of one notebook inside a .zip


class DuplicateSubmissions(ValueError):
    """Two submissions map to the same student and notebook."""


@dataclass(frozen=True)
class Submission:
    student: str
    origin: str       # where it came from: a path, or "archive.zip:member"
    content: bytes

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def student_of(path: PurePosixPath) -> str:
    """The student id a file's path gives: nbgrader's submitted/<student>/..., an LMS export's <name>_<id>, or the
    file's own name."""
    parts = path.parts
    if "submitted" in parts[:-1]:
        index = len(parts) - 1 - parts[::-1].index("submitted")
        if index + 2 < len(parts):
            return parts[index + 1]
    lms = LMS_NAME.match(path.stem)
    if lms:
        return f"{lms['name']}_{lms['id']}"
    return path.stem


def collect(paths: list[Path]) -> list[Submission]:
    """Every notebook in `paths` (files, folders searched recursively, .zip archives), each with its student."""
    found: list[Submission] = []
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.suffix in {".ipynb", ".zip"}) if path.is_dir() else [path]
        for file in files:
            if ".ipynb_checkpoints" in file.parts:
                continue
            relative = PurePosixPath(file.relative_to(path).as_posix() if path.is_dir() else file.name)
            if file.suffix == ".zip":
                found += _from_archive(file, relative)
            else:
                found.append(Submission(student_of(PurePosixPath(path.name) / relative if path.is_dir() else relative),
                                        str(file), file.read_bytes()))
    return found


def _from_archive(file: Path, relative: PurePosixPath) -> list[Submission]:
    try:
        archive = zipfile.ZipFile(file)
    except zipfile.BadZipFile:
        return [Submission(relative.stem, str(file), file.read_bytes())]
    with archive:
        members = [m for m in archive.infolist() if m.filename.endswith(".ipynb") and not m.is_dir()
                   and ".ipynb_checkpoints" not in m.filename and not m.filename.startswith("__MACOSX")]
        return [Submission(student_of(PurePosixPath(m.filename)), f"{file}:{m.filename}",
                           archive.open(m).read(ARCHIVE_LIMIT)) for m in members]


def read_notebook(content: bytes) -> nbformat.NotebookNode:
    """Parse a submission; raise ValueError with a short reason if it is not a usable notebook."""
    try:
        raw = json.loads(content)
    except (ValueError, RecursionError):
        raise ValueError("not JSON") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        raise ValueError("not a notebook (no list of cells)")
    if raw.get("nbformat") != 4:
        raise ValueError(f"unsupported nbformat {raw.get('nbformat')!r} (expected 4)")
    try:
        return nbformat.from_dict(raw)
    except Exception as error:  # malformed cells
        raise ValueError(f"malformed notebook ({type(error).__name__})") from None


def nbgrader(cell) -> dict:
    metadata = cell.get("metadata", {}) if isinstance(cell, dict) else {}
    return metadata.get("nbgrader", {}) if isinstance(metadata, dict) else {}


def exercise_sources(notebook) -> dict[str, str]:
    """Source of each code cell of a notebook, by grade_id (falling back to the cell id)."""
    sources = {}
    for cell in notebook.cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        key = nbgrader(cell).get("grade_id") or cell.get("id")
        source = cell.get("source", "")
        if key and isinstance(source, (str, list)):
            sources[key] = "".join(source) if isinstance(source, list) else source
    return sources


def match_solution(origin: str, notebook, solutions: dict) -> str:
    """The course notebook a submission belongs to: most shared exercise ids, then the NN_ in its file name."""
    ids = set(exercise_sources(notebook))

    def overlap(name: str) -> int:
        return len(ids & {nbgrader(c).get("grade_id") for c in solutions[name].cells if nbgrader(c).get("solution")})

    best = max(solutions, key=overlap)
    if overlap(best) > 0:
        return best
    number = re.search(r"(?<!\d)(\d\d)_", PurePosixPath(origin.rsplit(":", 1)[-1]).name)
    for name in solutions:
        if number and name.startswith(number[1]):
            return name
    raise ValueError("cannot tell which course notebook this is (no known exercise cells)")


def check_unique(pairs: list[tuple[Submission, str]]) -> None:
    """Raise DuplicateSubmissions listing every (student, notebook) that more than one submission maps to."""
    seen: dict[tuple[str, str], list[str]] = {}
    for submission, notebook in pairs:
        if notebook:
            seen.setdefault((submission.student, notebook), []).append(submission.origin)
    clashes = {key: origins for key, origins in seen.items() if len(origins) > 1}
    if clashes:
        lines = [f"{student} / {notebook}: {', '.join(origins)}" for (student, notebook), origins in sorted(clashes.items())]
        raise DuplicateSubmissions("several submissions of the same student for the same notebook (keep one of each, "
                                   "nothing was graded):\n  " + "\n  ".join(lines))
