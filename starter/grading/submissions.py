"""What students handed in, as instructors receive it: loose notebooks, folders, nbgrader's
`submitted/<student>/<assignment>/NN_*.ipynb`, LMS exports named `<name>_<id>_<submission>_<original>.ipynb`,
and .zip files of any of these. Each submission gets one student id, and its course notebook is told by the
exercise cells it holds.

Whose a submission is comes from what the instructor's side named, never from what a student put inside an upload:
- nbgrader's folder (`submitted/<student>/...`, the outermost one) or an LMS file name (`<name>_<id>_...`, the LMS
  prefixes every upload so) names the student of a notebook, and of every notebook in a .zip so named;
- a .zip that neither names (an LMS export downloaded whole, a folder the instructor zipped) is read as a folder:
  a notebook in it that nbgrader's folder or an LMS name assigns keeps that student (an export holds many), any
  other is the student's whose upload the .zip is, named by the .zip's own file name;
- any other notebook is the student's named by its own file name.
An id that names no folder (empty, `.`, `..`, one holding `/` or `\\`) is refused: that submission's row says why.

The intake never stops at one submission: a file that cannot be read, a .zip member that cannot be unpacked
(a bad CRC, encryption, an unknown compression, a .zip inside a .zip), a notebook larger than NOTEBOOK_LIMIT, a .zip
of more than ARCHIVE_MEMBERS entries or whose notebooks unpack to more than ARCHIVE_TOTAL bytes, a symbolic link,
text that is not a valid notebook: each is a row of its own saying why. Notebooks are read one at a time, and the
batch keeps only their exercise sources. Two notebooks of one student for one notebook of the course are an error
before anything is graded when they came in separate files (the instructor picks one), and rows saying so when
they came in one upload (a .zip holding two copies costs only its student). A notebook whose student only its own
name inside a .zip gives never takes the place of another notebook of that student: it becomes a row saying so.

A capstone's weights file (`starter.capstone`) is read with the notebook it sits beside: the file of that name in
the notebook's own folder (on disk or in a .zip), or, beside a notebook named by an LMS, the same student's upload
of that name (`<name>_<id>_<submission>_capstone_vqvae.safetensors`, the latest submission). A file that is too
large, a symbolic link or cannot be unpacked is kept as the reason why, which its capstone's score then gives.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import lzma
import os
import re
import struct
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import nbformat

from starter.capstone import FILENAMES, MAX_BYTES
from starter.grading.reports import visible

LMS_NAME = re.compile(r"^(?P<name>[A-Za-z][\w-]*?)(?:_LATE)?_(?P<id>\d+)_(?P<submission>\d+)_(?P<original>.+)$")
SUFFIXES = (".ipynb", ".zip")
NOTEBOOK_LIMIT = 16 * 2**20  # bytes of one notebook (parsing JSON can take 25 times as much memory)
ARCHIVE_MEMBERS = 10_000  # entries of one .zip
ARCHIVE_TOTAL = 2 * 2**30  # bytes the notebooks of one .zip unpack to, together
UNPACK_ERRORS = (  # what a hostile .zip makes zipfile raise (RuntimeError: encrypted, or an unknown compression)
    zipfile.BadZipFile,
    RuntimeError,
    EOFError,
    OSError,
    ValueError,
    struct.error,
    zlib.error,
    lzma.LZMAError,
)
TOO_LARGE = f"larger than {NOTEBOOK_LIMIT // 2**20} MB (clear its outputs)"
WEIGHTS_TOO_LARGE = f"too large: more than {MAX_BYTES:,} bytes, the limit"

Files = dict[str, "bytes | str"]  # a capstone file's name -> its content, or why it cannot be read


class DuplicateSubmissions(ValueError):
    """Two submissions map to the same student and notebook."""


@dataclass(frozen=True)
class Submission:
    """One notebook as handed in: whose it is, where it came from, and its content or why it cannot be read."""

    student: str
    origin: str  # where it came from: a path, or "archive.zip:member"
    upload: str  # the file its student handed in: the notebook itself, or the .zip holding it
    content: bytes = b""
    invalid: str = ""  # why it cannot be graded, found before reading it as a notebook
    claimed: bool = False  # its student is named by its own name inside a .zip that names no one (an export)
    files: Files = field(default_factory=dict)  # the capstone files beside it

    @property
    def digest(self) -> str:
        """A hash of the notebook and of the capstone files beside it: what its grade depends on."""
        digest = hashlib.sha256(self.content)
        for name, content in sorted(self.files.items()):
            found = content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass")
            digest.update(f"\0{name}\0{isinstance(content, bytes)}\0".encode() + hashlib.sha256(found).digest())
        return digest.hexdigest()


@dataclass
class Entry:
    """A submission as a batch keeps it: whose, from where, its course notebook and exercise sources, or why not."""

    student: str
    origin: str
    upload: str
    digest: str
    notebook: str = ""  # the course notebook it is graded against; "" when it is not graded
    sources: dict[str, str] = field(default_factory=dict)  # its exercise cells' sources by grade_id
    invalid: str = ""  # why it is not graded
    claimed: bool = False  # as Submission.claimed
    files: Files = field(default_factory=dict)  # as Submission.files


def named_student(path: PurePosixPath) -> str | None:
    """The student a path names by a convention: nbgrader's outermost submitted/<student>/..., or an LMS file name
    <name>_<id>_...; None when it follows neither."""
    if "submitted" in path.parts[:-2]:
        return path.parts[path.parts.index("submitted") + 1]
    lms = LMS_NAME.match(path.stem)
    return f"{lms['name']}_{lms['id']}" if lms else None


def student_of(path: PurePosixPath) -> str:
    """The student id a file's path gives: a convention's (`named_student`), or the file's own name."""
    return named_student(path) or path.stem


def id_problem(student: str) -> str:
    """Why `student` cannot be a student id ("" when it can): empty, `.`, `..`, or holding a path separator."""
    if not student.strip("."):
        return f"the student id {student!r} names no one (rename the file)"
    if "/" in student or "\\" in student:
        return f"the student id {student!r} holds a path separator (rename the file)"
    return ""


def collect(paths: list[Path]) -> Iterator[Submission]:
    """Every notebook in `paths` (files, folders searched through, .zip archives) with its student, read one at a
    time; one that cannot be read says why."""
    for path in paths:
        if path.is_dir():
            for relative, problem in walk(path):
                yield from _submissions(path / relative, PurePosixPath(path.name) / relative, problem)
        else:
            yield from _submissions(path, PurePosixPath(path.name), "")


def walk(folder: Path) -> list[tuple[PurePosixPath, str]]:
    """The notebooks and .zip files under `folder`, sorted, each with why it cannot be read ("" when it can), and
    the folders that cannot be read with why; without recursion, into no symbolic link or .ipynb_checkpoints."""
    found, pending = [], [PurePosixPath()]
    while pending:
        relative = pending.pop()
        try:
            with os.scandir(folder / relative) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        if entry.name != ".ipynb_checkpoints":
                            pending.append(relative / entry.name)
                    elif entry.name.endswith(SUFFIXES):
                        found.append((relative / entry.name, _entry_problem(entry)))
        except OSError as error:
            found.append((relative, f"cannot read the folder ({error.strerror})"))
    return sorted(found)


def _entry_problem(entry: os.DirEntry) -> str:
    """Why a file found in a folder is not read ("" when it is): a symbolic link, or not a regular file."""
    if entry.is_symlink():
        return "a symbolic link (not followed)"
    return "" if entry.is_file(follow_symlinks=False) else "not a regular file"


def _submissions(file: Path, path: PurePosixPath, problem: str) -> Iterator[Submission]:
    """The submissions one file found in `paths` holds; `path` is what names its student."""
    if problem:
        yield _submission(student_of(path), str(file), str(file), lambda: problem)
    elif file.suffix == ".zip":
        yield from _from_archive(file, path)
    else:
        submission = _submission(student_of(path), str(file), str(file), functools.partial(_read_file, file))
        yield dataclasses.replace(submission, files=_files_beside(file))


def _submission(
    student: str, origin: str, upload: str, read: Callable[[], bytes | str], claimed: bool = False
) -> Submission:
    """A submission, its content read unless its student id is refused; `read` gives bytes, or why not."""
    refused = id_problem(student)
    content = refused or read()
    if isinstance(content, str):
        return Submission(student, origin, upload, invalid=content, claimed=claimed)
    return Submission(student, origin, upload, content, claimed=claimed)


def _read_file(file: Path, limit: int = NOTEBOOK_LIMIT, too_large: str = TOO_LARGE) -> bytes | str:
    """A file's content, or why it cannot be read: more than `limit` bytes (`too_large`), or an error."""
    try:
        with open(file, "rb") as handle:
            return _capped(handle.read(limit + 1), limit, too_large)
    except OSError as error:
        return f"cannot read it ({error.strerror})"


def _capped(content: bytes, limit: int = NOTEBOOK_LIMIT, too_large: str = TOO_LARGE) -> bytes | str:
    """Content read with one byte to spare, or why it is refused: more than `limit` bytes."""
    return too_large if len(content) > limit else content


def beside(notebook: str, siblings: list[str]) -> dict[str, str]:
    """Which of `siblings` (file names in the folder of the notebook named `notebook`) are its capstone files, by
    capstone file name: that very name, or beside an LMS-named notebook its student's upload of it (the latest)."""
    lms = LMS_NAME.match(PurePosixPath(notebook).stem)
    found = {}
    for filename in FILENAMES:
        if lms is None:
            if filename in siblings:
                found[filename] = filename
            continue
        uploads = [
            (int(match["submission"]), sibling)
            for sibling in siblings
            if (match := LMS_NAME.match(sibling))
            and (match["name"], match["id"], match["original"]) == (lms["name"], lms["id"], filename)
        ]
        if uploads:
            found[filename] = max(uploads)[1]
    return found


def _files_beside(file: Path) -> Files:
    """The capstone files in the folder of the notebook `file`, read (a symbolic link or a folder is refused)."""
    try:
        siblings = os.listdir(file.parent)
    except OSError:
        return {}
    files: Files = {}
    for filename, sibling in beside(file.name, siblings).items():
        path = file.parent / sibling
        if path.is_symlink() or not path.is_file():
            files[filename] = f"{sibling} is not a regular file (a symbolic link or a folder)"
        else:
            files[filename] = _read_file(path, MAX_BYTES, WEIGHTS_TOO_LARGE)
    return files


def _files_in_archive(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> Files:
    """The capstone files in the .zip folder of the notebook `member`, read (with the limits of any member)."""
    folder = PurePosixPath(member.filename).parent
    siblings = {
        PurePosixPath(m.filename).name: m
        for m in archive.infolist()
        if not m.is_dir() and PurePosixPath(m.filename).parent == folder
    }
    return {
        filename: _read_member(archive, siblings[sibling], MAX_BYTES, WEIGHTS_TOO_LARGE)
        for filename, sibling in beside(PurePosixPath(member.filename).name, list(siblings)).items()
    }


def _from_archive(file: Path, path: PurePosixPath) -> Iterator[Submission]:
    """The notebooks of a .zip, read one at a time, whose students `path` names or, failing that, their own paths."""
    owner = named_student(path)
    try:
        archive = zipfile.ZipFile(file)
    except UNPACK_ERRORS as error:
        unreadable = f"not a readable .zip ({_reason(error)})"
        yield _submission(owner or path.stem, str(file), str(file), lambda: unreadable)
        return
    with archive:
        members = [m for m in archive.infolist() if _wanted(m)]
        problem = _archive_problem(len(archive.infolist()), members)
        if problem:
            yield _submission(owner or path.stem, str(file), str(file), lambda: problem)
            return
        for member in members:
            origin = f"{file}:{member.filename}"
            named = None if owner else named_student(PurePosixPath(member.filename))
            read = functools.partial(_read_member, archive, member)
            submission = _submission(
                owner or named or path.stem, origin, origin if named else str(file), read, bool(named)
            )
            yield dataclasses.replace(submission, files=_files_in_archive(archive, member))


def _wanted(member: zipfile.ZipInfo) -> bool:
    """Whether a .zip member is a submission: a notebook or a .zip, not a folder, a checkpoint or macOS's metadata."""
    parts = PurePosixPath(member.filename).parts
    return (
        member.filename.endswith(SUFFIXES)
        and not member.is_dir()
        and ".ipynb_checkpoints" not in parts
        and parts[:1] != ("__MACOSX",)
    )


def _archive_problem(entries: int, members: list[zipfile.ZipInfo]) -> str:
    """Why a .zip is not unpacked at all ("" when it is): too many entries, or notebooks too large together."""
    if entries > ARCHIVE_MEMBERS:
        return f"a .zip of {entries} entries (more than {ARCHIVE_MEMBERS})"
    if sum(m.file_size for m in members) > ARCHIVE_TOTAL:
        return f"a .zip whose notebooks unpack to more than {ARCHIVE_TOTAL // 2**30} GB"
    return ""


def _read_member(
    archive: zipfile.ZipFile, member: zipfile.ZipInfo, limit: int = NOTEBOOK_LIMIT, too_large: str = TOO_LARGE
) -> bytes | str:
    """A .zip member's content (zipfile never yields more than the size it declares), or why it cannot be read."""
    if member.filename.endswith(".zip"):
        return "a .zip inside a .zip (unzip the outer one and grade its folder)"
    if member.file_size > limit:
        return too_large
    if member.flag_bits & 0x1:
        return "encrypted (zip it again without a password)"
    try:
        with archive.open(member) as handle:
            return _capped(handle.read(limit + 1), limit, too_large)
    except UNPACK_ERRORS as error:
        return f"cannot unpack it ({_reason(error)})"


def _reason(error: Exception) -> str:
    """An exception in a few words: its type and message, cut short."""
    return f"{type(error).__name__}: {error}"[:200]


def read_notebook(content: bytes) -> dict:
    """Parse a submission into a notebook (as plain JSON); raise ValueError with a short reason if it is not one."""
    try:
        raw = json.loads(content)
    except (ValueError, RecursionError):
        raise ValueError("not JSON") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        raise ValueError("not a notebook (no list of cells)")
    if type(raw.get("nbformat")) is not int or raw["nbformat"] != 4:
        raise ValueError(f"unsupported nbformat {raw.get('nbformat')!r} (expected 4)")
    problem = schema_problem(raw)
    if problem:
        raise ValueError(f"not a valid notebook ({problem})")
    return raw


def schema_problem(raw: dict) -> str:
    """Where a notebook breaks nbformat's schema, outputs aside (the grader never reads them); "" when it does not."""
    if type(raw.get("nbformat_minor")) is not int:
        return f"nbformat_minor is {raw.get('nbformat_minor')!r}"[:200]
    cells = [{**c, "outputs": []} if isinstance(c, dict) and c.get("cell_type") == "code" else c for c in raw["cells"]]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # cells without ids: nbformat warns, and they are fine here
            nbformat.validate({**raw, "cells": cells})
    except nbformat.ValidationError as error:
        where = "/".join(str(part) for part in getattr(error, "absolute_path", ()))
        return f"{where}: {error.message}"[:200]
    except Exception as error:  # nbformat's validator trips over some hostile input (TypeError, RecursionError)
        return type(error).__name__
    return ""


def nbgrader(cell) -> dict:
    """A cell's nbgrader metadata ({} when it has none, or none that is a dict)."""
    metadata = cell.get("metadata", {}) if isinstance(cell, dict) else {}
    found = metadata.get("nbgrader", {}) if isinstance(metadata, dict) else {}
    return found if isinstance(found, dict) else {}


def exercise_sources(notebook) -> dict[str, str]:
    """Source of each code cell of a notebook, by grade_id (falling back to the cell id)."""
    sources = {}
    for cell in notebook["cells"]:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        key = nbgrader(cell).get("grade_id") or cell.get("id")
        source = cell.get("source", "")
        if isinstance(key, str) and key and isinstance(source, (str, list)):
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


def admit(submission: Submission, solutions: dict) -> Entry:
    """What a batch keeps of a submission: its course notebook and exercise sources, or why it is not graded."""
    entry = Entry(submission.student, submission.origin, submission.upload, submission.digest)
    entry.claimed, entry.invalid, entry.files = submission.claimed, submission.invalid, submission.files
    if not entry.invalid:
        try:
            parsed = read_notebook(submission.content)
            entry.notebook = match_solution(submission.origin, parsed, solutions)
            entry.sources = exercise_sources(parsed)
        except ValueError as error:
            entry.invalid = str(error)
    return entry


def check_unique(entries: list[Entry]) -> None:
    """Several entries of one student for one notebook: those whose id a .zip member's own name claims become
    invalid, saying so (an upload cannot take a classmate's place or stop the batch); of the others, raise
    DuplicateSubmissions listing every clash when they came in separate files, and make them invalid, saying so,
    when they came in a single upload."""
    seen: dict[tuple[str, str], list[Entry]] = {}
    for entry in entries:
        if entry.notebook:
            seen.setdefault((entry.student, entry.notebook), []).append(entry)
    clashes = {key: group for key, group in seen.items() if len(group) > 1}
    for (student, notebook), group in clashes.items():
        for entry in (e for e in group if e.claimed):
            entry.invalid = f"its name inside a .zip says {student}, who has another notebook for {notebook}"
            entry.notebook, entry.sources = "", {}
    clashes = {key: [e for e in group if not e.claimed] for key, group in clashes.items()}
    clashes = {key: group for key, group in clashes.items() if len(group) > 1}
    separate = {key: group for key, group in clashes.items() if len({e.upload for e in group}) > 1}
    if separate:
        lines = [
            visible(f"{student} / {notebook}: {', '.join(e.origin for e in group)}")
            for (student, notebook), group in sorted(separate.items())
        ]
        raise DuplicateSubmissions(
            "several submissions of the same student for the same notebook (keep one of each, "
            "nothing was graded):\n  " + "\n  ".join(lines)
        )
    for (_, notebook), group in clashes.items():
        for entry in group:
            entry.invalid = f"{len(group)} notebooks for {notebook} in {entry.upload} (keep one)"
            entry.notebook, entry.sources = "", {}
