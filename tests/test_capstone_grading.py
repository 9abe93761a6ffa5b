"""Capstones A, B and C through the course's grader: the weights file is read beside its notebook in every layout an
instructor receives (a folder, nbgrader's, a .zip, an LMS export), scored without a kernel, and every file that is
not a submission gets its row's 0 with the reason; equal weights of two students are listed in the similarity
report. The kernel's part of grading is replaced here by nothing: the capstone's points must not depend on it."""

from __future__ import annotations

import csv
import os
import zipfile
from pathlib import Path

import capstone_weights
import nbformat
import pytest
import torch
from safetensors.torch import save

from starter.build import student_version
from starter.capstone import BY_GRADE_ID
from starter.capstone.interface import FILENAME, MAX_BYTES
from starter.capstone.prior_interface import FILENAME as PRIOR_FILENAME
from starter.capstone.prior_score import TIER_LINES as PRIOR_TIERS
from starter.capstone.score import score_vqvae
from starter.capstone.transformer_interface import FILENAME as TRANSFORMER_FILENAME
from starter.config import CHECKPOINTS, PROJECT_ROOT
from starter.dataset_files import available_offline
from starter.grading.batch import Batch, Settings, grade_all
from starter.grading.submissions import collect

NOTEBOOK = "02_vqvae.ipynb"
PRIOR_NOTEBOOK = "04_prior.ipynb"
UNCONFINED = Settings(confine=False, per_process_limits=True, progress=False)


@pytest.fixture(scope="module")
def untouched() -> bytes:
    """Notebook 02 as students get it (its exercises are not what is tested here)."""
    solution = nbformat.read(PROJECT_ROOT / "solutions" / NOTEBOOK, as_version=4)
    return nbformat.writes(student_version(solution)).encode()


@pytest.fixture(scope="module")
def own() -> bytes:
    """A capstone file that earns 2 points (test MSE 0.0075) and is no shipped checkpoint's."""
    return save(capstone_weights.own())


def write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return path


def with_nan(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    tensors["decoder.0.bias"][3] = float("nan")
    return tensors


def files_by_student(root: Path) -> dict[str, dict]:
    return {submission.student: submission.files for submission in collect([root])}


def test_the_file_beside_the_notebook_is_read_with_it_in_every_layout(tmp_path, untouched, own):
    write(tmp_path / "submitted" / "alice" / "ps2" / NOTEBOOK, untouched)  # nbgrader's layout
    write(tmp_path / "submitted" / "alice" / "ps2" / FILENAME, own)
    write_zip(tmp_path / "bob.zip", {f"work/{NOTEBOOK}": untouched, f"work/{FILENAME}": own})  # a .zip of a folder
    write(tmp_path / "lms" / f"carol_12_34_{NOTEBOOK}", untouched)  # an LMS export: every upload prefixed
    write(tmp_path / "lms" / f"carol_12_33_{FILENAME}", b"an older upload")
    write(tmp_path / "lms" / f"carol_12_35_{FILENAME}", own)
    write(tmp_path / "lms" / f"dave_13_36_{FILENAME}", b"dave's, not carol's")
    write_zip(tmp_path / "export.zip", {f"s/erin_14_1_{NOTEBOOK}": untouched, f"s/erin_14_2_{FILENAME}": own})
    write(tmp_path / "loose" / "frank" / NOTEBOOK, untouched)  # a loose notebook: named by its file
    assert files_by_student(tmp_path) == {
        "alice": {FILENAME: own},
        "bob": {FILENAME: own},
        "carol_12": {FILENAME: own},
        "erin_14": {FILENAME: own},
        "02_vqvae": {},
    }


def test_a_file_that_cannot_be_read_is_kept_as_the_reason(tmp_path, untouched, own):
    too_large = os.urandom(MAX_BYTES + 1)
    for student in ("link", "folder", "large"):
        write(tmp_path / "submitted" / student / "ps2" / NOTEBOOK, untouched)
    os.symlink("/etc/passwd", tmp_path / "submitted" / "link" / "ps2" / FILENAME)
    (tmp_path / "submitted" / "folder" / "ps2" / FILENAME).mkdir()
    write(tmp_path / "submitted" / "large" / "ps2" / FILENAME, too_large)
    write_zip(tmp_path / "zipped.zip", {NOTEBOOK: untouched, FILENAME: too_large})
    found = {student: files[FILENAME] for student, files in files_by_student(tmp_path).items()}
    assert found["link"] == found["folder"] == f"{FILENAME} is not a regular file (a symbolic link or a folder)"
    assert found["large"] == found["zipped"] == f"too large: more than {MAX_BYTES:,} bytes, the limit"


def test_new_weights_beside_the_same_notebook_are_graded_again(tmp_path, untouched, own):
    write(tmp_path / NOTEBOOK, untouched)
    first = next(collect([tmp_path])).digest
    write(tmp_path / FILENAME, own)
    second = next(collect([tmp_path])).digest
    write(tmp_path / FILENAME, save(capstone_weights.own(seed=1)))
    assert len({first, second, next(collect([tmp_path])).digest}) == 3


@pytest.fixture(scope="module")
def graded(tmp_path_factory, untouched, own):
    """One batch in nbgrader's layout, each student's file beside the notebook, without kernels."""
    if not available_offline("fashion"):
        pytest.skip(capstone_weights.NO_FASHION)
    root = tmp_path_factory.mktemp("capstones")
    files = {
        "own": own,
        "twin": own,
        "pickle": b"\x80\x04 a torch.save file",
        "shipped": save(capstone_weights.trimmed()),
        "nan": save(with_nan(capstone_weights.own())),
        "missing": None,
    }
    for student, content in files.items():
        write(root / "submitted" / student / "ps2" / NOTEBOOK, untouched)
        if content is not None:
            write(root / "submitted" / student / "ps2" / FILENAME, content)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Batch, "run", lambda self, plan: ([], "ok"))  # no kernel: the exercises score 0, not run
        grades = grade_all([root / "submitted"], root / "out", UNCONFINED)
    return {grade.student: grade for grade in grades}, root / "out", {s: c for s, c in files.items() if c}


@pytest.mark.parametrize(
    "student, points, words",
    [
        ("own", 2, "capstone A: 2/3 points, test MSE 0.007"),
        ("twin", 2, "capstone A: 2/3 points, test MSE 0.007"),
        ("pickle", 0, "0 points: not a safetensors file (it is a torch.save or pickle file)"),
        ("shipped", 0, "0 points: the weights are those of a shipped checkpoint fashion_vqvae.pt"),
        ("nan", 0, "0 points: non-finite values (NaN or inf) in decoder.0.bias"),
        ("missing", 0, f"0 points: missing: no {FILENAME} beside the notebook"),
    ],
)
def test_each_file_gets_its_points_or_0_with_the_reason(graded, student, points, words):
    grades, out, _ = graded
    capstone = next(check for check in grades[student].checks if check.grade_id == "capstone-a")
    assert (capstone.points, capstone.earned) == (3, points) and grades[student].status == "ok"
    assert any(words in message for message in capstone.messages), capstone.messages
    assert f"## capstone-a: {points} / 3" in (out / "feedback" / student / "02_vqvae.md").read_text()
    rows = {row["student"]: row for row in csv.DictReader(open(out / "grades.csv", encoding="utf-8"))}
    assert rows[student]["capstone-a"] == str(points) and rows[student]["total"] == str(points)


def test_the_grader_gives_what_the_notebook_s_own_cell_prints(graded):
    grades, _, files = graded
    for student, content in files.items():
        capstone = next(check for check in grades[student].checks if check.grade_id == "capstone-a")
        assert capstone.messages == score_vqvae(content).report().splitlines(), student


def test_equal_weights_of_two_students_are_listed_in_the_similarity_report(graded):
    _, out, _ = graded
    report = (out / "similarity.md").read_text()
    pairs = [line for line in report.split("## Capstone weights")[1].splitlines() if "(capstone-a)" in line]
    assert pairs == ["| own (capstone-a) | twin (capstone-a) | 0.0e+00 |"]  # the shipped copy: in its own feedback


PRIORS = {  # capstone -> (its notebook, its file, its reference run's file, the tier words of that run a little off)
    "capstone-b": (
        "04_prior.ipynb",
        PRIOR_FILENAME,
        "capstone_b_reference.safetensors",
        "3/3 points, test NLL (nats/code) 1.89",
    ),
    "capstone-c": (
        "06_transformer.ipynb",
        TRANSFORMER_FILENAME,
        "capstone_c_reference.safetensors",
        "3/3 points, test NLL (nats/code) 2.01",
    ),
}


@pytest.fixture(scope="module", params=list(PRIORS))
def graded_priors(request, tmp_path_factory):
    """A prior's notebook (04 or 06) in nbgrader's layout with its capstone's file, capstone A's beside it or not,
    without kernels."""
    if not available_offline("fashion"):
        pytest.skip(capstone_weights.NO_FASHION)
    notebook_name, filename, reference, _ = PRIORS[request.param]
    solution = nbformat.read(PROJECT_ROOT / "solutions" / notebook_name, as_version=4)
    notebook = nbformat.writes(student_version(solution)).encode()
    vqvae = (CHECKPOINTS / "capstone_a_reference.safetensors").read_bytes()
    prior = save(capstone_weights.own_reference(reference))
    files = {
        "own": {FILENAME: vqvae, filename: prior},
        "shipped": {FILENAME: vqvae, filename: (CHECKPOINTS / reference).read_bytes()},
        "no_vqvae": {filename: prior},
        "no_prior": {FILENAME: vqvae},
    }
    root = tmp_path_factory.mktemp("priors")
    for student, contents in files.items():
        write(root / "submitted" / student / "ps" / notebook_name, notebook)
        for name, content in contents.items():
            write(root / "submitted" / student / "ps" / name, content)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Batch, "run", lambda self, plan: ([], "ok"))
        grades = grade_all([root / "submitted"], root / "out", UNCONFINED)
    return request.param, {grade.student: grade for grade in grades}, {"vqvae": vqvae, "prior": prior}


@pytest.mark.parametrize("student", ["own", "shipped", "no_vqvae", "no_prior"])
def test_a_prior_s_capstone_is_scored_with_capstone_a_s_file_beside_it(graded_priors, student):
    grade_id, grades, _ = graded_priors
    _, filename, reference, top = PRIORS[grade_id]
    words = {
        "own": f"{BY_GRADE_ID[grade_id].title}: {top}",  # the reference run, a little off: top tier
        "shipped": f"0 points: the weights are those of a shipped checkpoint {reference}",
        "no_vqvae": f"0 points: it is scored with {FILENAME}, and there is none beside the notebook",
        "no_prior": f"0 points: missing: no {filename} beside the notebook",
    }[student]
    capstone = next(check for check in grades[student].checks if check.grade_id == grade_id)
    assert capstone.points == 3 and any(words in message for message in capstone.messages), capstone.messages
    assert capstone.messages[-3:] == [f"  tier: {line}" for line in PRIOR_TIERS]


def test_the_grader_gives_what_the_prior_notebook_s_own_cell_prints(graded_priors):
    grade_id, grades, files = graded_priors
    capstone = next(check for check in grades["own"].checks if check.grade_id == grade_id)
    assert capstone.messages == BY_GRADE_ID[grade_id].score(files["prior"], vqvae=files["vqvae"]).report().splitlines()
