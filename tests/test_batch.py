"""The grader as instructors and students run it: submissions as instructors receive them, one per student and
notebook; `make check` (the self-check); a killed batch that resumes; no sandbox, no silent grading."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from multiprocessing import forkserver
from pathlib import Path

import nbformat
import pytest
from grading_corpus import SOLUTION
from sandboxed import confined

from starter.build import student_version
from starter.grading import batch, cli
from starter.grading.batch import Settings, grade_all
from starter.grading.submissions import DuplicateSubmissions, collect


def ipython_folders() -> set[Path]:
    """Folders in /tmp that hold an IPython profile: what a kernel without a home of its own leaves behind."""
    return {folder.parent for folder in Path("/tmp").glob("*/profile_default")}


def test_self_check_prints_the_feedback_without_hidden_tests_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    """Sandboxed and unconfined alike: nothing is left in the temporary folder, the kernel's /tmp included."""
    forkserver.ensure_running()  # its socket's folder lives as long as this process: not in `own`
    own = tempfile.mkdtemp(prefix="sc-")  # short (kernel sockets), and its own: other files may self-check meanwhile
    monkeypatch.setattr(tempfile, "tempdir", own)
    before = ipython_folders()
    solution = nbformat.read(SOLUTION, as_version=4)
    cases = [("done_01", solution, "7 / 7", []), ("stub_01", student_version(solution), "0 / 7", ["--unconfined"])]
    try:
        for name, notebook, score, options in cases:
            nbformat.write(notebook, tmp_path / f"{name}.ipynb")
            assert cli.main(["--self", str(tmp_path / f"{name}.ipynb"), "--cell-timeout", "20", *options]) == 0
            out = capsys.readouterr().out
            assert score in out and "Encoder" in out and "hidden test" not in out
        assert list(Path(own).iterdir()) == []
        assert ipython_folders() <= before
    finally:
        shutil.rmtree(own)


def test_the_grader_s_own_process_imports_no_torch(tmp_path):
    """Its workers' server and its kernels import torch; the grader itself reads, plans, unpacks MNIST and writes
    the reports without it (the grading run itself stubbed out here: it happens in a worker)."""
    folder = tmp_path / "submitted" / "ada" / "ps1"
    folder.mkdir(parents=True)
    shutil.copy(SOLUTION, folder / SOLUTION.name)
    code = (
        "import sys\nfrom pathlib import Path\n"
        "from starter.grading.batch import Batch, Settings, grade_all\n"
        "Batch.run = lambda self, plan: ([], 'ok')\n"
        f"grades = grade_all([Path({str(tmp_path / 'submitted')!r})], Path({str(tmp_path / 'out')!r}), "
        "Settings(confine=False, per_process_limits=True, progress=False))\n"
        "print(len(grades), grades[0].status, 'torch' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.stdout.split() == ["1", "ok", "False"], run.stdout + run.stderr[-2000:]


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
        grade_all([tmp_path], tmp_path / "out", Settings(progress=False))
    assert not (tmp_path / "out" / "grades.csv").exists()


@confined
def test_a_killed_batch_resumes_without_grading_again_and_ends_as_an_uninterrupted_one(tmp_path, monkeypatch):
    """The grader's process is killed after its first result; a second run resumes (here in the test's own process,
    as is the uninterrupted run it must end as)."""
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    solution, stub = nbformat.read(SOLUTION, as_version=4), student_version(nbformat.read(SOLUTION, as_version=4))
    for index in range(2):
        nbformat.write(solution if index % 2 else stub, submissions / f"student{index}_01.ipynb")
    arguments = [str(submissions), "--jobs", "1", "--seed", "1", "--cell-timeout", "20"]
    scratch = tempfile.mkdtemp(prefix="kb-")  # short (kernel sockets): what the killed run leaves is removed below
    first = subprocess.Popen(
        [sys.executable, "-m", "starter.grade", *arguments, "--out", str(tmp_path / "killed")],
        env={**os.environ, "TMPDIR": scratch},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    results, table = tmp_path / "killed" / "results", tmp_path / "killed" / "grades.csv"
    while first.poll() is None and not table.exists():  # written last, once the first result is recorded
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    done = {p.name: p.stat().st_mtime_ns for p in results.glob("*.json")}
    assert len(done) == 1 and table.exists()
    monkeypatch.setattr(tempfile, "tempdir", scratch)
    assert cli.main([*arguments, "--out", str(tmp_path / "killed")]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in results.glob("*.json") if p.name in done} == done
    assert cli.main([*arguments, "--out", str(tmp_path / "whole")]) == 0
    shutil.rmtree(scratch)
    assert (tmp_path / "killed" / "grades.csv").read_text() == (tmp_path / "whole" / "grades.csv").read_text()


def test_without_a_sandbox_the_grader_refuses_unless_told(tmp_path, monkeypatch, capsys):
    """No bubblewrap: batch grading stops with what to do, never a silent zero; --unconfined grades."""
    nbformat.write(nbformat.read(SOLUTION, as_version=4), tmp_path / "solution_01.ipynb")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # no bwrap on this PATH
    assert cli.main([str(tmp_path / "solution_01.ipynb"), "--out", str(tmp_path / "out")]) == 2
    assert "bubblewrap" in capsys.readouterr().err
    monkeypatch.undo()


def test_a_sandbox_is_probed_once_per_process_for_the_same_notebook_paths_and_limits(tmp_path, monkeypatch):
    """A long-lived process (a test session) grades many batches: a kernel's Python is seen to start in a sandbox
    once for each notebook, paths and limits, not once per batch; a failure is not remembered."""
    monkeypatch.setattr(batch, "STARTED", set())
    probed = []
    monkeypatch.setattr(batch, "check_runs", lambda sandbox, env, modules: probed.append(sandbox.readable[-1]))
    solutions = batch.load_solutions(SOLUTION.parent)
    for index, (notebook, memory_mb) in enumerate([("01", 4096), ("01", 4096), ("03", 4096), ("01", 2048)]):
        scratch = tmp_path / f"batch{index}"
        scratch.mkdir()
        batch.Batch(solutions, Settings(memory_mb=memory_mb), scratch).probe(notebook)
    assert [path.parent.name for path in probed] == ["batch0", "batch2", "batch3"]
    monkeypatch.setattr(batch, "check_runs", lambda *args: (_ for _ in ()).throw(batch.SandboxUnavailable("no")))
    for _ in range(2):
        with pytest.raises(batch.SandboxUnavailable):
            batch.Batch(solutions, Settings(disk_mb=7), tmp_path / "batch0").probe("01")
