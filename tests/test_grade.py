"""The grader end to end: full marks for the solution, zero for the stubs, a clear status for every broken
submission, nothing for a submission that tries to forge its grade or reach the course's answers, and nothing lost
by an honest student graded beside hostile ones; submissions as instructors receive them; a batch that survives."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import nbformat
import pytest
from grading_corpus import MARKER, SOLUTION, build_corpus

from starter.build import student_version
from starter.config import PROJECT_ROOT
from starter.grading import cli
from starter.grading.batch import Settings, grade_all
from starter.grading.reports import MESSAGE_LIMIT
from starter.grading.sandbox import SandboxUnavailable, check_available
from starter.grading.submissions import DuplicateSubmissions, collect

try:
    check_available()
    SANDBOX = ""
except SandboxUnavailable as reason:
    SANDBOX = str(reason)
confined = pytest.mark.skipif(  # in CI (.ci/run installs bubblewrap) a missing sandbox fails instead
    bool(SANDBOX) and not os.environ.get("CI"),
    reason=f"needs the grader's sandbox: {SANDBOX} (`sudo apt install bubblewrap`)",
)
FAST = Settings(jobs=2, cell_timeout=20, notebook_timeout=300, memory_mb=4096, progress=False)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade the whole corpus once (two jobs in parallel, honest neighbours among hostile ones), from folders that
    only their owner may enter (mode 700, as `mktemp -d` makes; /root is one): the instructor's solutions, the
    submissions, the output and the grader's scratch space (where every kernel's folder is)."""
    if SANDBOX and not os.environ.get("CI"):
        pytest.skip(f"needs the grader's sandbox: {SANDBOX} (`sudo apt install bubblewrap`)")
    private = tmp_path_factory.mktemp("private")
    private.chmod(0o700)
    root, submissions, out, scratch = (private / name for name in ("course", "submissions", "grades", "tmp"))
    scratch.mkdir()
    shutil.copytree(PROJECT_ROOT / "solutions", root / "solutions")
    target = root / "solutions" / "01_autoencoder.ipynb"
    original = target.read_bytes()
    expected = build_corpus(submissions, tamper_target=target)
    saved, tempfile.tempdir = tempfile.tempdir, str(scratch)
    try:
        grades = grade_all([submissions], out, FAST, root=root)
    finally:
        tempfile.tempdir = saved
    return {g.student: g for g in grades}, expected, out, target.read_bytes() == original


CASES = [
    "honest_0_01",
    "honest_1_01",
    "untouched_01",
    "not_json_01",
    "not_a_notebook_01",
    "nbformat3_01",
    "deleted_reordered_01",
    "exception_01",
    "endless_01",
    "memory_bomb_01",
    "huge_output_01",
    "tamper_01",
    "fails_hidden_test_01",
    "false_passes_01",
    "forged_checks_01",
    "reach_reference_01",
    "hooks_01",
    "lying_module_01",
    "patch_probes_01",
    "late_writers_01",
    "neighbour_01",
    "kill_parent_01",
    "hostile_solution_01",
    "memory_when_measured_02",
    "forged_gradients_01",
    "forged_record_01",
    "tabulated_sampler_04",
    "recorder_parts_04",
    "forged_parts_05",
    "course_twin_04",
]


def test_every_submission_gets_a_row_feedback_and_a_summary(graded):
    grades, expected, out, _ = graded
    assert set(grades) == set(expected) == set(CASES)
    rows = list(csv.DictReader(open(out / "grades.csv", encoding="utf-8")))
    assert sorted(row["student"] for row in rows) == sorted(expected)
    for grade in grades.values():
        if grade.notebook:
            assert (out / "feedback" / grade.student / f"{grade.notebook}.md").exists()
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "| check-encoder | 2 |" in summary and "not graded" in summary


@pytest.mark.parametrize("case", CASES)
def test_case(graded, case):
    grades, expected, _, _ = graded
    result, want = grades[case], expected[case]
    assert result.status.startswith(want.get("status", "")), result.status
    if want.get("total") == "all":
        assert result.total == result.possible > 0, [(c.grade_id, c.status, c.messages) for c in result.checks]
    elif "total" in want:
        assert result.total == want["total"], [(c.grade_id, c.earned, c.messages[:3]) for c in result.checks]
    if "zero" in want:
        earned = {c.grade_id: c.earned for c in result.checks}
        assert all(earned[i] == 0 for i in want["zero"]), earned
        others = [c for c in result.checks if c.grade_id not in want["zero"]]
        assert all(c.earned == c.points for c in others), [(c.grade_id, c.status, c.messages) for c in others]
    if want.get("short"):
        assert all(len(m) <= MESSAGE_LIMIT for c in result.checks for m in c.messages)


def test_untouched_notebook_reports_not_implemented(graded):
    grades, _, _, _ = graded
    assert {c.status for c in grades["untouched_01"].checks} == {"not implemented"}


def test_hidden_tests_are_graded_but_not_shown_to_students(graded):
    grades, _, _, _ = graded
    loss = next(c for c in grades["fails_hidden_test_01"].checks if c.grade_id == "check-loss")
    assert "reconstruction_loss (hidden test): fail" in loss.messages and loss.earned == 0
    student = (PROJECT_ROOT / "notebooks" / "01_autoencoder.ipynb").read_text()
    assert (
        "hidden test" not in student
        and "hidden test" in (PROJECT_ROOT / "solutions" / "01_autoencoder.ipynb").read_text()
    )


def test_the_course_s_answers_are_withheld_in_the_grading_kernel(graded):
    grades, _, _, _ = graded
    messages = " ".join(m for c in grades["reach_reference_01"].checks for m in c.messages)
    assert "withheld" in messages or "NoneType" in messages


def test_nothing_outlives_a_submission_or_escapes_it(graded):
    _, _, _, unchanged = graded
    assert unchanged, "the instructor's solution was changed"
    for folder in (Path("/tmp"), Path("/dev/shm")):
        assert not list(folder.glob(f"{MARKER}*")) and not (folder / "escaped_by_student.txt").exists()


def test_self_check_prints_the_feedback_without_hidden_tests_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    own = tempfile.mkdtemp(prefix="sc-")  # short (kernel sockets), and its own: other files may self-check meanwhile
    monkeypatch.setattr(tempfile, "tempdir", own)
    before = set(Path(tempfile.gettempdir()).glob("self-check-*"))
    solution = nbformat.read(SOLUTION, as_version=4)
    for name, notebook, score in [("done_01", solution, "7 / 7"), ("stub_01", student_version(solution), "0 / 7")]:
        nbformat.write(notebook, tmp_path / f"{name}.ipynb")
        assert cli.main(["--self", str(tmp_path / f"{name}.ipynb"), "--cell-timeout", "20"]) == 0
        out = capsys.readouterr().out
        assert score in out and "Encoder" in out and "hidden test" not in out
    assert set(Path(tempfile.gettempdir()).glob("self-check-*")) == before


def test_submissions_as_instructors_receive_them(tmp_path):
    """nbgrader's submitted/<student>/<assignment>/ and LMS exports (also zipped): one student id each."""
    text = SOLUTION.read_bytes()
    for student in ("alice", "bob"):
        folder = tmp_path / "course" / "submitted" / student / "ps1"
        folder.mkdir(parents=True)
        (folder / "01_autoencoder.ipynb").write_bytes(text)
    lms = tmp_path / "lms"
    lms.mkdir()
    (lms / "smithjane_12345_67890_01_autoencoder.ipynb").write_bytes(text)
    (lms / "doejohn_LATE_555_777_01_autoencoder-1.ipynb").write_bytes(text)
    with zipfile.ZipFile(tmp_path / "export.zip", "w") as archive:
        archive.writestr("submissions/leeann_42_99_01_autoencoder.ipynb", text)
    found = collect([tmp_path / "course", lms, tmp_path / "export.zip"])
    assert sorted(s.student for s in found) == ["alice", "bob", "doejohn_555", "leeann_42", "smithjane_12345"]


def test_two_submissions_for_one_student_and_notebook_are_an_error_before_grading(tmp_path):
    for name in ("smithjane_12345_1_01_autoencoder.ipynb", "smithjane_12345_2_01_autoencoder.ipynb"):
        (tmp_path / name).write_bytes(SOLUTION.read_bytes())
    with pytest.raises(DuplicateSubmissions, match="smithjane_12345 / 01_autoencoder"):
        grade_all([tmp_path], tmp_path / "out", FAST)
    assert not (tmp_path / "out" / "grades.csv").exists()


@confined
def test_a_killed_batch_resumes_without_grading_again_and_ends_as_an_uninterrupted_one(tmp_path):
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    solution, stub = nbformat.read(SOLUTION, as_version=4), student_version(nbformat.read(SOLUTION, as_version=4))
    for index in range(2):
        nbformat.write(solution if index % 2 else stub, submissions / f"student{index}_01.ipynb")
    command = [
        sys.executable,
        "-m",
        "starter.grade",
        str(submissions),
        "--jobs",
        "1",
        "--seed",
        "1",
        "--cell-timeout",
        "20",
    ]
    scratch = tempfile.mkdtemp(prefix="kb-")  # short (kernel sockets): what the killed run leaves is removed below
    env = {**os.environ, "TMPDIR": scratch}
    whole = subprocess.Popen(  # meanwhile, the uninterrupted run it must end as
        [*command, "--out", str(tmp_path / "whole")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    first = subprocess.Popen(
        [*command, "--out", str(tmp_path / "killed")],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    results = tmp_path / "killed" / "results"
    while first.poll() is None and not list(results.glob("*.json")):
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    done = {p.name: p.stat().st_mtime_ns for p in results.glob("*.json")}
    assert len(done) == 1 and (tmp_path / "killed" / "grades.csv").exists()
    subprocess.run([*command, "--out", str(tmp_path / "killed")], env=env, check=True, capture_output=True)
    assert {p.name: p.stat().st_mtime_ns for p in results.glob("*.json") if p.name in done} == done
    assert whole.wait(timeout=600) == 0
    shutil.rmtree(scratch)
    assert (tmp_path / "killed" / "grades.csv").read_text() == (tmp_path / "whole" / "grades.csv").read_text()


def test_without_a_sandbox_the_grader_refuses_unless_told(tmp_path, monkeypatch, capsys):
    """No bubblewrap: batch grading stops with what to do, never a silent zero; --unconfined grades."""
    nbformat.write(nbformat.read(SOLUTION, as_version=4), tmp_path / "solution_01.ipynb")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # no bwrap on this PATH
    assert cli.main([str(tmp_path / "solution_01.ipynb"), "--out", str(tmp_path / "out")]) == 2
    assert "bubblewrap" in capsys.readouterr().err
    monkeypatch.undo()
