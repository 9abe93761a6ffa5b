"""The grader's intake and names, against a hostile class: every file that cannot be graded is a row of its own that
says why, a student's id comes from what the instructor's side named (never from inside a student's upload), no
name forges a row, a formula, a path or a folder, and the batch, its reports and a resume always finish."""

from __future__ import annotations

import csv
import json
import os
import re
import struct
import tempfile
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from grading_corpus import SOLUTION
from sandboxed import confined

from starter.grading.batch import Settings, grade_all, load_solutions, remove_tree, report_similarity
from starter.grading.reports import FORMULA
from starter.grading.submissions import DuplicateSubmissions, Entry, admit, check_unique, collect, exercise_sources

SETTINGS = Settings(jobs=2, cell_timeout=20, progress=False)
MB = 2**20
OUTPUTS = {"results", "feedback", "grades.csv", "summary.md", "similarity.csv", "similarity.md"}
FORGED = "| forged | 7 | 7 |"
NAMES = [f"evil\n{FORGED}\n# heading <img src=x onerror=alert(1)> [click](javascript:alert(1))", "=1+1", "@SUM(A1)"]
NAMES += ["-2+3", "+cmd", "a b", "a_b", "a?b", "x" * 200, "`code`"]
UNESCAPED = re.compile(r"(?<!\\)<img|\]\(javascript")  # HTML or a link that markdown would render


def solution_with(grade_id: str, code: str = "", **cell: object) -> dict:
    """The solution of notebook 01 with `code` after the exercise cell `grade_id`, or the cell's fields replaced."""
    notebook = json.loads(SOLUTION.read_text(encoding="utf-8"))
    target = next(c for c in notebook["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id)
    target["source"] = "".join(target["source"]) + code
    target.update(cell)
    return notebook


def as_bytes(notebook: dict) -> bytes:
    return json.dumps(notebook).encode()


def grade_ids_as_lists() -> bytes:
    """The solution of notebook 01 with every grade_id a list (nbformat's schema allows any metadata)."""
    notebook = json.loads(SOLUTION.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        if "grade_id" in cell["metadata"].get("nbgrader", {}):
            cell["metadata"]["nbgrader"]["grade_id"] = [cell["metadata"]["nbgrader"]["grade_id"]]
    return as_bytes(notebook)


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return path


def patch_zip(path: Path, local: int, central: int, fmt: str, value: int) -> None:
    """Overwrite one field of every member's local header and central directory entry (offsets within each)."""
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", local), (b"PK\x01\x02", central)):
        start = data.find(signature)
        while start >= 0:
            struct.pack_into(fmt, data, start + offset, value)
            start = data.find(signature, start + 4)
    path.write_bytes(bytes(data))


def write_hostile(folder: Path) -> dict[str, str]:
    """Files that never reach a kernel, in `folder`: {origin: how the status of its row starts}."""
    folder.mkdir(parents=True)
    text = SOLUTION.read_bytes()
    loose = {
        "source_numbers_01.ipynb": (as_bytes(solution_with("encoder", source=[1, 2])), "not a valid notebook"),
        "source_dict_01.ipynb": (as_bytes(solution_with("encoder", source={"a": 1})), "not a valid notebook"),
        "grade_ids_as_lists.ipynb": (grade_ids_as_lists(), "cannot tell which course notebook this is"),
        "cells_of_numbers_01.ipynb": (as_bytes({**solution_with("encoder"), "cells": [1, 2]}), "not a valid notebook"),
        "minor_text_01.ipynb": (as_bytes({**solution_with("encoder"), "nbformat_minor": "5"}), "not a valid notebook"),
        "not_utf8_01.ipynb": (b"\xff\xfe\x00garbage", "not JSON"),
        "deep_json_01.ipynb": (b"[" * 200_000, "not JSON"),
        "huge_01.ipynb": (b" " * (16 * MB + 1), "larger than 16 MB"),
        "...ipynb": (b"x", "the student id '..' names no one"),
        "..ipynb": (b"x", "the student id '.' names no one"),
        "back\\slash.ipynb": (b"x", "the student id 'back\\\\slash' holds a path separator"),
        **{f"{name}.ipynb": (b"not json", "not JSON") for name in NAMES},
    }
    expected = {}
    for name, (content, reason) in loose.items():
        (folder / name).write_bytes(content)
        expected[str(folder / name)] = reason
    with open(os.path.join(os.fsencode(folder), b"\xff\xfe_01.ipynb"), "wb") as handle:  # not UTF-8
        handle.write(b"not json")
    expected[os.fsdecode(os.path.join(os.fsencode(folder), b"\xff\xfe_01.ipynb"))] = "not JSON"
    (folder / "link_01.ipynb").symlink_to(SOLUTION)
    expected[str(folder / "link_01.ipynb")] = "a symbolic link"
    os.mkfifo(folder / "fifo_01.ipynb")  # reading it would wait forever
    expected[str(folder / "fifo_01.ipynb")] = "not a regular file"
    zips = {
        "bad_crc.zip": (0, 14, 16, "<I", 12345, "cannot unpack it (BadZipFile: Bad CRC-32"),
        "encrypted.zip": (0, 6, 8, "<H", 1, "encrypted (zip it again without a password)"),
        "compression.zip": (0, 8, 10, "<H", 97, "cannot unpack it (NotImplementedError: That compression method"),
    }
    for name, (_, local, central, fmt, value, reason) in zips.items():
        patch_zip(write_zip(folder / name, {"01_autoencoder.ipynb": text}), local, central, fmt, value)
        expected[f"{folder / name}:01_autoencoder.ipynb"] = reason
    write_zip(folder / "many.zip", {f"m{i}.txt": b"" for i in range(10_001)})
    expected[str(folder / "many.zip")] = "a .zip of 10001 entries"
    patch_zip(write_zip(folder / "declared.zip", {f"n{i}_01.ipynb": b"{}" for i in range(150)}), 22, 24, "<I", 15 * MB)
    expected[str(folder / "declared.zip")] = "a .zip whose notebooks unpack to more than 2 GB"
    write_zip(folder / "member_bomb.zip", {"01_autoencoder.ipynb": b"\0" * (16 * MB + 1)})
    expected[f"{folder / 'member_bomb.zip'}:01_autoencoder.ipynb"] = "larger than 16 MB"
    write_zip(folder / "nested.zip", {"inner.zip": (folder / "bad_crc.zip").read_bytes()})
    expected[f"{folder / 'nested.zip'}:inner.zip"] = "a .zip inside a .zip"
    (folder / "broken.zip").write_bytes(b"PK\x03\x04 not really a zip")
    expected[str(folder / "broken.zip")] = "not a readable .zip"
    write_zip(folder / "export.zip", {"submitted/../ps1/01_autoencoder.ipynb": text})
    expected[f"{folder / 'export.zip'}:submitted/../ps1/01_autoencoder.ipynb"] = "the student id '..' names no one"
    return expected


def check_reports(out: Path, invalid: int, graded: int = 0) -> None:
    """The reports exist, hold one row per submission and nothing forged, and nothing is written outside `out`."""
    assert {p.name for p in out.iterdir()} == OUTPUTS
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert sum(line.startswith("- not graded: ") for line in summary.splitlines()) == invalid
    assert not [line for line in summary.splitlines() if line.startswith((FORGED, "# heading"))]
    assert not UNESCAPED.search(summary) and not UNESCAPED.search((out / "similarity.md").read_text(encoding="utf-8"))
    table = list(csv.reader(open(out / "grades.csv", encoding="utf-8")))
    assert len(table) == 1 + invalid + graded
    assert not [cell for row in table for cell in row if cell.startswith(FORMULA)]
    for path in (out / "feedback").rglob("*"):
        assert path.resolve().is_relative_to((out / "feedback").resolve()) and path.name not in {".", ".."}
    for path in (out / "feedback").glob("*/*.md"):
        text = path.read_text(encoding="utf-8")
        assert not [line for line in text.splitlines() if line.startswith(FORGED)] and not UNESCAPED.search(text)


def test_every_hostile_file_is_a_row_of_its_own_and_the_reports_are_clean(tmp_path):
    expected = write_hostile(tmp_path / "submissions")
    grades = grade_all([tmp_path / "submissions"], tmp_path / "out", SETTINGS)
    statuses = {grade.origin: grade.status for grade in grades}
    assert set(statuses) == set(expected)
    for origin, reason in expected.items():
        assert statuses[origin].startswith(f"invalid: {reason}"), (origin, statuses[origin])
    check_reports(tmp_path / "out", len(expected))
    students = {grade.student for grade in grades}
    assert len(list((tmp_path / "out" / "feedback").iterdir())) == len(students)  # no two students share a folder
    cells = {row["student"] for row in csv.DictReader(open(tmp_path / "out" / "grades.csv", encoding="utf-8"))}
    assert {"'=1+1", "'@SUM(A1)", "'-2+3", "'+cmd", "\\udcff\\udcfe_01"} <= cells
    before = (tmp_path / "out" / "grades.csv").read_text(encoding="utf-8")
    grade_all([tmp_path / "submissions"], tmp_path / "out", SETTINGS)  # a resume with nothing left to grade
    assert (tmp_path / "out" / "grades.csv").read_text(encoding="utf-8") == before


def test_ids_come_from_what_the_instructor_s_side_named(tmp_path):
    """An LMS-named .zip or nbgrader's folder names every notebook inside; an LMS export keeps its members' ids."""
    text = SOLUTION.read_bytes()
    write_zip(tmp_path / "lms" / "mallory_666_1_hw.zip", {"doejohn_555_1_01_autoencoder.ipynb": text, "a.ipynb": text})
    write_zip(
        tmp_path / "lms" / "export.zip", {"leeann_42_9_01.ipynb": text, "sub/kim_7_1_01.ipynb": text, "x.ipynb": text}
    )
    write_zip(tmp_path / "course" / "submitted" / "alice" / "ps1" / "work.zip", {"bob_1_2_01_autoencoder.ipynb": text})
    forged = tmp_path / "course" / "submitted" / "alice" / "ps1" / "submitted" / "carol" / "ps1"
    forged.mkdir(parents=True)
    (forged / "01_autoencoder.ipynb").write_bytes(text)
    found = {s.origin.rsplit("/", 1)[-1]: s.student for s in collect([tmp_path / "lms", tmp_path / "course"])}
    assert found == {
        "01_autoencoder.ipynb": "alice",
        "export.zip:leeann_42_9_01.ipynb": "leeann_42",
        "kim_7_1_01.ipynb": "kim_7",
        "export.zip:x.ipynb": "export",
        "mallory_666_1_hw.zip:a.ipynb": "mallory_666",
        "mallory_666_1_hw.zip:doejohn_555_1_01_autoencoder.ipynb": "mallory_666",
        "work.zip:bob_1_2_01_autoencoder.ipynb": "alice",
    }


def test_a_name_inside_a_zip_never_takes_a_classmate_s_place(tmp_path):
    """Mallory's .zip holds a notebook named as Alice's LMS upload: it is a row saying so, Alice's own is graded,
    and the batch goes on; two files of one student named by the instructor's side still stop it."""
    text = SOLUTION.read_bytes()
    (tmp_path / "alice_77_1_01_autoencoder.ipynb").write_bytes(text)
    write_zip(tmp_path / "mallory.zip", {"alice_77_9_01_autoencoder.ipynb": text})
    solutions = load_solutions(SOLUTION.parent)
    entries = [admit(submission, solutions) for submission in collect([tmp_path])]
    check_unique(entries)
    by_origin = {Path(e.origin).name: e for e in entries}
    assert by_origin["alice_77_1_01_autoencoder.ipynb"].notebook == "01_autoencoder"
    claimed = by_origin["mallory.zip:alice_77_9_01_autoencoder.ipynb"]
    assert claimed.student == "alice_77" and claimed.invalid.startswith("its name inside a .zip says alice_77")
    (tmp_path / "alice_77_2_01_autoencoder.ipynb").write_bytes(text)
    with pytest.raises(DuplicateSubmissions, match="alice_77 / 01_autoencoder"):
        check_unique([admit(submission, solutions) for submission in collect([tmp_path])])


def test_two_copies_in_one_upload_cost_only_their_student(tmp_path):
    text = SOLUTION.read_bytes()
    upload = write_zip(tmp_path / "smithjane_12345_1_hw.zip", {"01_autoencoder.ipynb": text, "b/01-Copy1.ipynb": text})
    grades = grade_all([upload], tmp_path / "out", SETTINGS)
    assert [g.student for g in grades] == ["smithjane_12345"] * 2
    assert all(g.status == f"invalid: 2 notebooks for 01_autoencoder in {upload} (keep one)" for g in grades)


def test_a_zip_bomb_is_read_one_member_at_a_time(tmp_path):
    """40 members of 15 MB each (a 600 KB .zip): the intake never holds more than about one of them."""
    bomb = write_zip(tmp_path / "bomb.zip", {f"n{i}_01.ipynb": b"{" + b" " * 15 * MB for i in range(40)})
    solutions = load_solutions(SOLUTION.parent)
    tracemalloc.start()
    try:
        entries = [admit(submission, solutions) for submission in collect([bomb])]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert bomb.stat().st_size < MB and [e.invalid for e in entries] == ["not JSON"] * 40
    assert peak < 100 * MB, f"{peak / MB:.0f} MB"


def test_a_tree_deeper_than_the_recursion_limit_and_path_max_is_removed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    root = tmp_path / "deep"
    root.mkdir()
    fd = os.open(root, os.O_RDONLY)
    for _ in range(3000):  # 3000 levels of 60 characters: past the recursion limit and PATH_MAX
        os.mkdir("d" * 60, dir_fd=fd)
        os.symlink(outside, "link", dir_fd=fd)
        fd, old = os.open("d" * 60, os.O_RDONLY, dir_fd=fd), fd
        os.close(old)
    os.mkdir("locked", dir_fd=fd)
    os.chmod("locked", 0, dir_fd=fd)
    os.close(fd)
    remove_tree(root)
    assert not root.exists() and (outside / "keep").exists()


def test_code_that_nests_too_deeply_is_left_out_of_the_similarity_report_with_a_note(tmp_path):
    solutions = load_solutions(SOLUTION.parent)
    sources = exercise_sources(solutions["01_autoencoder"])
    deep = {**sources, "encoder": sources["encoder"] + "\n_deep = " + "+".join(["1"] * 1500)}
    deeper = {**sources, "loss": "x = " + "-" * 100_000 + "1"}  # the parser itself gives up (MemoryError in 3.11)
    entries = [
        Entry(name, f"{name}.ipynb", f"{name}.ipynb", "", "01_autoencoder", found)
        for name, found in (("honest", sources), ("deep", deep), ("deeper", deeper))
    ]
    report_similarity(entries, solutions, tmp_path)
    text = (tmp_path / "similarity.md").read_text(encoding="utf-8")
    assert "- deep (01)\n- deeper (01)" in text and "| honest (01) | course solution (01) |" in text


@confined
def test_an_honest_neighbour_keeps_every_point_and_a_resume_with_only_invalid_left_works(
    tmp_path, tmp_path_factory, monkeypatch
):
    """Mallory uploads a .zip whose notebook is named after John, whose code makes `ast` recurse and whose kernel
    leaves a tree deeper than the recursion limit, beside hostile files; John's own submission keeps every point."""
    scratch = tmp_path_factory.mktemp("tmp")  # a short path: the kernels' sockets live under it
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    submissions = tmp_path / "submissions"
    expected = write_hostile(submissions)
    (submissions / "doejohn_555_2_01_autoencoder.ipynb").write_bytes(SOLUTION.read_bytes())
    tree = "import os\n_fd = os.open('.', os.O_RDONLY)\nfor _ in range(2000):\n    os.mkdir('d', dir_fd=_fd)\n"
    tree += "    _fd = os.open('d', os.O_RDONLY, dir_fd=_fd)\n_deep = " + "+".join(["1"] * 1500) + "\n"
    mallory = solution_with("encoder", "\n" + tree)
    write_zip(submissions / "mallory_666_1_hw.zip", {"doejohn_555_1_01_autoencoder.ipynb": as_bytes(mallory)})
    out = tmp_path / "out"
    grades = {g.student: g for g in grade_all([submissions], out, SETTINGS) if g.notebook}
    assert set(grades) == {"doejohn_555", "mallory_666"}
    john = grades["doejohn_555"]
    assert john.status == "ok" and john.total == john.possible > 0, [(c.grade_id, c.messages) for c in john.checks]
    assert grades["mallory_666"].status == "ok" and not list(scratch.glob("grading-*"))
    check_reports(out, len(expected), graded=2)
    assert "- mallory_666 (01)" in (out / "similarity.md").read_text(encoding="utf-8")
    before = (out / "grades.csv").read_text(encoding="utf-8")
    for path in (out / "results").glob("*.json"):  # as if the batch had stopped after grading the notebooks
        if json.loads(path.read_text(encoding="utf-8"))["status"].startswith("invalid"):
            path.unlink()
    grade_all([submissions], out, SETTINGS)
    assert (out / "grades.csv").read_text(encoding="utf-8") == before
