"""The autograders for Gradescope and PrairieLearn, without the platforms: both build for notebooks 01 and 06; the
course is installed from its wheel as the install script installs it (its downloads left out: a virtual environment
that sees this run's packages); each platform's files are laid out in a temporary root exactly where the platform
puts them (/autograder or /grade, bound there by bubblewrap, the rest of the system read-only and the checkout
hidden), and the entry point grades notebook 01 submissions there: a solution, a wrong and a not-a-notebook one on
Gradescope (and an untouched notebook 02 uploaded with capstone A's weights), an untouched and a hostile one on
PrairieLearn, the hostile one (where the tests run as root) in a
container that allows no sandbox, so that its kernel runs as the kernel's user. Every results.json validates against
a schema written from the platform's specification, and its scores are the course grader's. A graded run costs
about 7 s of CPU (the grader, its worker and the kernel each import torch, and the sandbox is probed); a submission
without a notebook is refused in this process."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import capstone_weights
import jsonschema
import nbformat
import pytest
import tomllib
from capstone_weights import own
from grading_corpus import SOLUTION, VQ_SOLUTION, _solution, _stubs
from installed import OURS, install_wheel
from safetensors.torch import save
from sandboxed import require_sandbox
from wrong_answers import VISIBLE_ONLY

from starter.autograder import gradescope, prairielearn
from starter.autograder.build import build
from starter.autograder.bundle import PACKAGES, build_wheel
from starter.autograder.isolation import KERNEL_USER, SANDBOX, UNCONFINED, USER, decide
from starter.autograder.platform import PREFIX, Layout, Outcome, grade_submission, parser, settings
from starter.build import student_version
from starter.capstone.score import score_vqvae
from starter.config import PROJECT_ROOT, thread_limits
from starter.dataset_files import available_offline, prepare_mnist
from starter.exercises import BY_CHECK_ID
from starter.grading.kernel_user import KernelUser
from starter.grading.reports import CheckScore, Grade

VISIBILITY = {"enum": ["hidden", "after_due_date", "after_published", "visible"]}
FORMAT = {"enum": ["text", "html", "simple_format", "md", "ansi"]}
GRADESCOPE_TEST = {
    "type": "object",
    "properties": {
        "score": {"type": "number"},
        "max_score": {"type": "number"},
        "status": {"enum": ["passed", "failed"]},
        "name": {"type": "string"},
        "name_format": FORMAT,
        "number": {"type": "string"},
        "output": {"type": "string"},
        "output_format": FORMAT,
        "tags": {"type": "array", "items": {"type": "string"}},
        "visibility": VISIBILITY,
        "extra_data": {"type": "object"},
    },
    "additionalProperties": False,
}
GRADESCOPE = {  # https://gradescope-autograders.readthedocs.io/en/latest/specs/#output-format
    "type": "object",
    "properties": {
        "score": {"type": "number"},
        "execution_time": {"type": "number"},
        "output": {"type": "string"},
        "output_format": FORMAT,
        "test_output_format": FORMAT,
        "test_name_format": FORMAT,
        "visibility": VISIBILITY,
        "stdout_visibility": VISIBILITY,
        "extra_data": {"type": "object"},
        "tests": {"type": "array", "items": GRADESCOPE_TEST},
        "leaderboard": {"type": "array", "items": {"type": "object", "required": ["name", "value"]}},
    },
    "additionalProperties": False,
    "anyOf": [  # "score: optional, but required if not on each test case"
        {"required": ["score"]},
        {"required": ["tests"], "properties": {"tests": {"items": {"required": ["score"]}}}},
    ],
}
PRAIRIELEARN = {  # PrairieLearn's docs/externalGrading.md, "Grading results"
    "type": "object",
    "properties": {
        "gradable": {"type": "boolean"},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "message": {"type": "string"},
        "output": {"type": "string"},
        "format_errors": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "tests": {
            "type": "array",
            "items": {  # points and max_points on every test, or PrairieLearn shows no points at all
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "description": {"type": "string"},
                    "points": {"type": "number"},
                    "max_points": {"type": "number"},
                    "message": {"type": "string"},
                    "output": {"type": "string"},
                },
                "required": ["name", "points", "max_points"],
            },
        },
    },
    "if": {"properties": {"gradable": {"const": False}}, "required": ["gradable"]},
    "then": {"required": ["gradable"]},
    "else": {"required": ["score"]},
}
INFO = {  # the part of PrairieLearn's schemas/infoQuestion.json that an externally graded question uses
    "type": "object",
    "properties": {
        "uuid": {"type": "string", "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"},
        "title": {"type": "string"},
        "topic": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "type": {"const": "v3"},
        "singleVariant": {"type": "boolean"},
        "gradingMethod": {"const": "External"},
        "externalGradingOptions": {
            "type": "object",
            "properties": {
                "enabled": {"type": "boolean"},
                "image": {"type": "string"},
                "entrypoint": {"type": "string", "pattern": "^/"},
                "serverFilesCourse": {"type": "array", "items": {"type": "string"}},
                "timeout": {"type": "integer", "minimum": 1, "maximum": 600},
                "enableNetworking": {"type": "boolean"},
                "environment": {"type": "object"},
            },
            "required": ["enabled", "image"],  # without "enabled": true, PrairieLearn grades nothing externally
            "additionalProperties": False,
        },
    },
    "required": ["uuid", "type", "title", "topic", "gradingMethod", "externalGradingOptions"],
}
# After its exercise cell's stub: the solutions, the course's own package (its reference code is the answers) and the
# results file of either platform, read and written from the kernel. Had it read a solution or the package, its
# exercises would be the answers and earn every point.
ATTACK = """
import glob as _glob, json as _json
for _path in ("/autograder/source/solutions/01_autoencoder.ipynb", "/grade/tests/solutions/01_autoencoder.ipynb"):
    try:
        for _cell in _json.load(open(_path))["cells"]:
            if _cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
                exec("".join(_cell["source"]))
    except OSError:
        pass
for _path in _glob.glob("/opt/discrete-latents/venv/lib/python3*/site-packages/starter/models/autoencoder.py"):
    try:
        exec(open(_path).read())
    except OSError:
        pass
for _path in ("/autograder/results/results.json", "/grade/results/results.json"):
    try:
        open(_path, "w").write('{"score": 99.0, "gradable": true, "tests": []}')
    except OSError:
        pass
"""
# A container that allows no sandbox, as Docker's default: bubblewrap refuses, the grader is root with Docker's
# capabilities, and the install script made the kernel's user.
REFUSING_BWRAP = "#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n"
DOCKER_CAPABILITIES = ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_SETGID", "CAP_SETUID")
POINTS = {check_id: exercise.points for check_id, exercise in BY_CHECK_ID.items()}
FEEDBACK = re.compile(r"^## (check-[\w-]+): (\d+) / (\d+) \(", re.MULTILINE)  # the course grader's report, on stdout


def wrong() -> nbformat.NotebookNode:
    """The solution with a reconstruction loss coded to the visible check: that check passes, its hidden test not."""
    notebook = _solution()
    for cell in notebook.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "loss":
            cell.source = VISIBLE_ONLY["loss"][0].apply(cell.source)
    return notebook


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The course's wheel, built once."""
    return build_wheel(PROJECT_ROOT, tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def installed(tmp_path_factory, wheel, local_mnist) -> dict[Path, Path]:
    """What the install script leaves in PREFIX, made here: the course from its wheel in a virtual environment that
    sees this run's packages, the shipped checkpoints and MNIST. Returns {where it goes: where it is}, this run's
    packages included."""
    prefix = tmp_path_factory.mktemp("prefix")
    venv = prefix / "venv"
    site = install_wheel(wheel, venv)
    (site / "starter").chmod(0o700)  # as install.sh leaves it: the answers are root's alone
    prepare_mnist(prefix / "data")
    if available_offline("fashion"):  # the capstones' test set
        prepare_mnist(prefix / "data", dataset="fashion")
    return {
        PREFIX / "venv": venv,
        PREFIX / "data": prefix / "data",
        PREFIX / "checkpoints": site / "starter" / "shipped",
        OURS: OURS,  # where it is, under a fresh /tmp too
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory, wheel) -> Path:
    """Both autograders of notebooks 01, 02 and 06, under one folder."""
    out = tmp_path_factory.mktemp("autograders")
    for notebook in ("01", "02", "06"):
        for platform in ("gradescope", "prairielearn"):
            build(notebook, platform, out, wheel, ("--timeout", "300", "--memory-mb", "3072"), "course/grader:1")
    return out


def container(
    job: tuple[Path, Path], mounts: dict[Path, Path], command: list[str], env: dict[str, str], no_sandbox: Path | None
) -> list[str]:
    """`command` as in a platform's container: this system read-only but the course's checkout (with its /proc, so
    that the grader's sandbox can be made inside, and without cgroups, as in most containers), a fresh /tmp, the `job`
    folder (where, what) writable and its working folder, and `mounts` ({where: what}) read-only but the datasets.
    `no_sandbox`: a folder with REFUSING_BWRAP and the system's users with the kernel's, for a container that allows
    no sandbox (`REFUSING_BWRAP`)."""
    skipped = {"proc", "dev", "tmp", "sys", "opt", job[0].parts[1]}
    system = ["--ro-bind", "/sys", "/sys", "--tmpfs", "/sys/fs/cgroup", "--dev", "/dev", "--bind", "/proc", "/proc"]
    for entry in sorted(Path("/").iterdir()):
        if entry.name not in skipped:
            system += (
                ["--symlink", os.readlink(entry), str(entry)]
                if entry.is_symlink()
                else ["--ro-bind", str(entry), str(entry)]
            )
    system += ["--tmpfs", str(PROJECT_ROOT)]  # a platform's container has no checkout of the course
    python = Path(sys.base_prefix).resolve()  # installed where every user may run it, as on a platform
    private = next((p for p in reversed(python.parents) if not p.stat().st_mode & 0o001), None)
    if private:
        system += ["--tmpfs", str(private), *reachable(python, private), "--ro-bind", str(python), str(python)]
    if no_sandbox:
        for name, where in (("bwrap", shutil.which("bwrap")), ("passwd", "/etc/passwd"), ("group", "/etc/group")):
            system += ["--ro-bind", str(no_sandbox / name), where]
        system += [arg for capability in DOCKER_CAPABILITIES for arg in ("--cap-add", capability)]
    binds = ["--bind", str(job[1]), str(job[0]), "--perms", "0755", "--dir", str(PREFIX)]  # as install.sh leaves it
    for where, what in mounts.items():
        binds += reachable(where, PROJECT_ROOT) if where.is_relative_to(PROJECT_ROOT) else []
        binds += ["--bind" if where == PREFIX / "data" else "--ro-bind", str(what), str(where)]
    variables = [arg for name, value in env.items() for arg in ("--setenv", name, value)]
    return ["bwrap", "--clearenv", *variables, *system, "--tmpfs", "/tmp", *binds, "--chdir", str(job[0]), *command]


def reachable(path: Path, top: Path) -> list[str]:
    """bubblewrap's arguments that make the folders between `top` (a tmpfs) and `path` (a mount) traversable by
    every user, as folders are where a platform installs Python (bubblewrap makes them for root alone)."""
    folders = [folder for folder in reversed(path.parents) if folder.is_relative_to(top) and folder != top]
    return [arg for folder in folders for arg in ("--perms", "0755", "--dir", str(folder))]


def without_sandbox(folder: Path) -> Path:
    """`folder` with what `container` needs for a container that allows no sandbox: a bubblewrap that refuses, and
    the system's users and groups with the kernel's user, as install.sh adds it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bwrap").write_text(REFUSING_BWRAP)
    (folder / "bwrap").chmod(0o755)
    uid = unused_uid()
    user = f"{KERNEL_USER}:x:{uid}:{uid}::/nonexistent:/usr/sbin/nologin\n"
    (folder / "passwd").write_text(Path("/etc/passwd").read_text() + user)
    (folder / "group").write_text(Path("/etc/group").read_text() + f"{KERNEL_USER}:x:{uid}:\n")
    return folder


def simulate(
    platform: str, built: Path, installed: dict[Path, Path], files: dict[str, bytes], root: Path, sandbox: bool = True
) -> tuple[dict, str]:
    """Grade the submission `files` (name: content) as `platform` would, its job's folders laid out under `root`, in
    a container that allows the course's sandbox or not; returns the results file and the entry point's stdout. The
    autograder is that of the notebook among the files (01's if there is none)."""
    notebook = next((name.removesuffix(".ipynb") for name in files if name.endswith(".ipynb")), "01_autoencoder")
    if platform == "gradescope":
        job = root / "autograder"  # Gradescope's image: the zip in source/, run_autograder beside it
        with zipfile.ZipFile(built / "gradescope" / f"{notebook}-autograder.zip") as archive:
            archive.extractall(job / "source")
        shutil.copy(job / "source" / "run_autograder", job / "run_autograder")
        (job / "run_autograder").chmod(0o755)
        (job / "results").mkdir()
        submission, command = job / "submission", ["/autograder/run_autograder"]
    else:
        job = root / "grade"  # PrairieLearn's job: the question's tests/, the student's files, data.json
        shutil.copytree(built / "prairielearn" / "questions" / f"discrete-latents-{notebook}" / "tests", job / "tests")
        (job / "data").mkdir(parents=True)
        (job / "data" / "data.json").write_text(json.dumps({"params": {}, "submitted_answers": {}}))
        submission, command = job / "student", ["/grade/tests/grade"]
    submission.mkdir(parents=True)
    for name, content in files.items():
        (submission / name).write_bytes(content)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", **thread_limits(1)}
    where = Path("/") / job.name
    no_sandbox = None if sandbox else without_sandbox(root / "system")
    argv = container((where, job), installed, command, env, no_sandbox)
    run = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return json.loads((job / "results" / "results.json").read_text(encoding="utf-8")), run.stdout


@pytest.fixture(scope="module")
def runs(tmp_path_factory, built, installed) -> dict[str, tuple[dict, str]]:
    """Each submission graded once, by the platform named first in its key; the hostile one where the container
    allows no sandbox, so that its kernel runs as the kernel's user."""
    require_sandbox()
    submissions = {
        "gradescope correct": {"01_autoencoder.ipynb": nbformat.writes(_solution()).encode()},
        "gradescope wrong": {"01_autoencoder.ipynb": nbformat.writes(wrong()).encode()},
        "gradescope invalid": {"01_autoencoder.ipynb": b"\x89PNG this is not a notebook"},
        "prairielearn untouched": {"01_autoencoder.ipynb": nbformat.writes(student_version(_solution())).encode()},
        "prairielearn hostile": {"01_autoencoder.ipynb": nbformat.writes(_stubs(encoder=ATTACK)).encode()},
    }
    if available_offline("fashion"):
        submissions["gradescope capstone"] = {  # notebook 02 untouched, capstone A's weights uploaded with it
            "02_vqvae.ipynb": nbformat.writes(student_version(_solution(VQ_SOLUTION))).encode(),
            "capstone_vqvae.safetensors": save(own()),
        }
    return {
        case: simulate(
            case.split()[0],
            built,
            installed,
            files,
            tmp_path_factory.mktemp(case.replace(" ", "-")),
            sandbox="hostile" not in case or os.geteuid() != 0,  # becoming the kernel's user needs root
        )
        for case, files in submissions.items()
    }


def course_grader(stdout: str) -> dict[str, int]:
    """The points of each check as the course grader's own report of the run says (its feedback, on stdout)."""
    return {check: int(earned) for check, earned, _ in FEEDBACK.findall(stdout)}


NOTEBOOK_01 = {check: points for check, points in POINTS.items() if BY_CHECK_ID[check].notebook == "01"}


def test_both_formats_build_for_notebooks_01_and_06(built):
    for notebook in ("01_autoencoder", "06_transformer"):
        with zipfile.ZipFile(built / "gradescope" / f"{notebook}-autograder.zip") as archive:
            modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
            setup = archive.read("setup.sh").decode()
            run = archive.read("run_autograder").decode()
        assert modes["setup.sh"] & 0o111 and modes["run_autograder"] & 0o111, modes
        assert {n for n in modes if n.endswith((".ipynb", ".whl"))} == {
            f"solutions/{notebook}.ipynb",
            "discrete_latents_starter-0.1.0-py3-none-any.whl",
        }
        assert {"requirements.txt", "install.sh"} <= set(modes) and "sh install.sh" in setup
        assert "-m starter.autograder.gradescope --timeout 300" in run and str(PREFIX / "venv") in run
        question = built / "prairielearn" / "questions" / f"discrete-latents-{notebook}"
        info = json.loads((question / "info.json").read_text())
        jsonschema.validate(info, INFO)
        assert (
            info["externalGradingOptions"]["enabled"]
            and info["externalGradingOptions"]["image"] == "course/grader:1"
            and info["title"].startswith(notebook[:2])
        )
        entry = question / "tests" / "grade"
        assert info["externalGradingOptions"]["entrypoint"] == "/grade/tests/grade" and entry.stat().st_mode & 0o111
        assert "-m starter.autograder.prairielearn" in entry.read_text()
        assert [p.name for p in (question / "tests" / "solutions").iterdir()] == [f"{notebook}.ipynb"]
        assert f'file-names="{notebook}.ipynb"' in (question / "question.html").read_text()
    image = built / "prairielearn" / "image"
    assert "sh install.sh" in (image / "Dockerfile").read_text() and len(list(image.glob("*.whl"))) == 1
    assert "torch==" in (image / "requirements.txt").read_text() and "useradd" in (image / "install.sh").read_text()
    course = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert set(course) <= set(PACKAGES)  # the platform's container installs what the course needs


def test_gradescope_gives_a_wrong_notebook_the_course_grader_s_points(runs):
    results, stdout = runs["gradescope wrong"]
    jsonschema.validate(results, GRADESCOPE)
    assert "isolation: sandbox" in stdout
    expected = {**NOTEBOOK_01, "check-loss": 0}  # coded to the visible check: its hidden test fails
    assert course_grader(stdout) == expected
    scored = {t["name"].split(":")[0]: t for t in results["tests"] if "score" in t}
    shown = {t["name"].split(":")[0]: t for t in results["tests"] if "score" not in t}
    assert {check: int(test["score"]) for check, test in scored.items()} == expected
    assert results["score"] == sum(expected.values()) == sum(NOTEBOOK_01.values()) - 1
    assert {t["visibility"] for t in scored.values()} == {"after_published"}
    assert {t["visibility"] for t in shown.values()} == {"visible"} and set(shown) == set(expected)
    loss = shown["check-loss"]
    assert loss["status"] == "passed" and "(hidden test)" not in loss["output"] and "  ✓ " in loss["output"]
    assert "reconstruction_loss (hidden test): fail" in scored["check-loss"]["output"]
    assert results["execution_time"] >= 1 and results["stdout_visibility"] == "hidden"


def test_gradescope_gives_a_solution_full_marks(runs):
    results, stdout = runs["gradescope correct"]
    jsonschema.validate(results, GRADESCOPE)
    assert "isolation: sandbox" in stdout and course_grader(stdout) == NOTEBOOK_01
    assert results["score"] == sum(NOTEBOOK_01.values())
    scored = {t["name"].split(":")[0]: t["score"] for t in results["tests"] if "score" in t}
    assert scored == NOTEBOOK_01 and {t.get("status") for t in results["tests"]} == {"passed", None}


def test_gradescope_scores_a_capstone_on_the_weights_uploaded_with_the_notebook(runs):
    if "gradescope capstone" not in runs:
        pytest.skip(capstone_weights.NO_FASHION)
    results, stdout = runs["gradescope capstone"]
    jsonschema.validate(results, GRADESCOPE)
    capstone = next(test for test in results["tests"] if test["name"] == "capstone-a")
    assert capstone["score"] == 2.0 and capstone["max_score"] == 3.0, capstone
    assert capstone["output"].splitlines() == score_vqvae(save(own())).report().splitlines()  # the notebook's cell
    exercises = {test["name"].split(":")[0]: test["score"] for test in results["tests"] if "score" in test}
    assert exercises.pop("capstone-a") == 2.0 and exercises and set(exercises.values()) == {0.0}  # untouched
    assert results["score"] == 2.0 and "isolation: sandbox" in stdout


def test_prairielearn_gives_an_untouched_notebook_nothing(runs):
    results, stdout = runs["prairielearn untouched"]
    jsonschema.validate(results, PRAIRIELEARN)
    assert "isolation: sandbox" in stdout and course_grader(stdout) == {check: 0 for check in NOTEBOOK_01}
    assert results["gradable"] and results["score"] == 0.0 and results["message"] == "0 / 7 points (status: ok)."
    assert [t["points"] for t in results["tests"]] == [0] * 4
    assert [t["max_points"] for t in results["tests"]] == list(NOTEBOOK_01.values())
    for test in results["tests"]:  # each hidden test's verdict, without its steps
        title = test["name"].split(": ")[1]
        assert test["output"].startswith(f"{title}: not implemented\n") and test["output"].endswith(
            f"\n{title} (hidden test): not implemented"
        )


def test_prairielearn_gives_a_hostile_notebook_nothing_where_its_kernel_runs_as_its_own_user(runs):
    """No sandbox in the container: the kernel runs as the kernel's user, who cannot read the solutions, the
    course's package or the results, and the instructor is told what was not enforced."""
    results, stdout = runs["prairielearn hostile"]
    jsonschema.validate(results, PRAIRIELEARN)
    if os.geteuid() == 0:
        assert "isolation: unprivileged user: the container allows no sandbox" in stdout
        assert "No permissions to create new namespace" in stdout and f"runs as the user {KERNEL_USER}" in stdout
        assert "not enforced: the kernel has the container's network" in stdout
    else:
        assert "isolation: sandbox" in stdout
    assert "the kernel's user can read" not in stdout  # the grader's files are root's alone
    assert course_grader(stdout) == {check: 0 for check in NOTEBOOK_01}  # it read no answers: its stubs earn nothing
    assert stdout.count(": 0 / 2 (not implemented)") == 3  # its kernel ran (as its user) and its checks with it
    assert results["message"] == "0 / 7 points (status: ok)." and results["score"] == 0.0  # not the file it wrote
    assert results["gradable"] and [t["points"] for t in results["tests"]] == [0] * 4


def test_an_invalid_notebook_gets_a_reasoned_zero(runs):
    results, stdout = runs["gradescope invalid"]
    jsonschema.validate(results, GRADESCOPE)
    assert results["score"] == 0 and "not JSON" in results["output"] and "not graded: invalid: not JSON" in stdout
    assert results["tests"] == [
        {"name": "Your notebook", "score": 0.0, "max_score": 7.0, "status": "failed", "output": results["output"]}
    ]
    jsonschema.validate(prairielearn.results(Outcome(None, 7, 1.0, "invalid: not JSON")), PRAIRIELEARN)


def test_a_submission_without_a_notebook_gets_a_reasoned_zero(tmp_path):
    """Before anything is graded, in this process: a submission folder that holds no notebook."""
    course, submission = tmp_path / "course", tmp_path / "submission"
    for folder in (course / "solutions", submission):
        folder.mkdir(parents=True)
    shutil.copy(SOLUTION, course / "solutions")
    (submission / "answers.txt").write_text("my answers")
    layout = Layout("a platform", submission, course, tmp_path / "results" / "results.json")
    outcome = grade_submission(layout, parser("").parse_args([]), time.monotonic())
    assert not outcome.graded and outcome.possible == 7
    assert outcome.why == "no notebook (.ipynb) in the submission: submit only your notebook, 01_autoencoder.ipynb"
    jsonschema.validate(gradescope.results(outcome), GRADESCOPE)
    results = prairielearn.results(outcome)
    jsonschema.validate(results, PRAIRIELEARN)
    assert results["gradable"] is False and results["format_errors"] == [results["message"]]
    assert all(oct(folder.stat().st_mode)[-3:] == "700" for folder in (course, layout.results.parent))


def test_results_of_every_outcome_follow_each_platform_s_format():
    """Without a run: a timed-out notebook (a check that did not run) and an autograder that failed."""
    ran = CheckScore("check-encoder", 2, 2, "pass", ["Encoder: pass", "  ✓ builds", "Encoder (hidden test): pass"])
    stopped = CheckScore("check-decoder", 2, 0, "not run", ["this check did not run: the grading run stopped first"])
    timed_out = Outcome(Grade("s", "s.ipynb", "01_autoencoder", "timeout (540 s)", [ran, stopped]), 4, 541.4)
    failed = Outcome(None, 0, 0.2, "the autograder failed (OSError: ...)", failed=True)
    results = gradescope.results(timed_out)
    jsonschema.validate(results, GRADESCOPE)
    assert results["score"] == 2 and results["execution_time"] == 541 and "timeout (540 s)" in results["output"]
    assert [t.get("status") for t in results["tests"]] == ["passed", None, "failed", None]
    jsonschema.validate(gradescope.results(failed), GRADESCOPE)
    results = prairielearn.results(timed_out)
    jsonschema.validate(results, PRAIRIELEARN)
    assert (
        results["score"] == 0.5
        and results["tests"][0]["output"] == "Encoder: pass\n  ✓ builds\nEncoder (hidden test): pass"
    )
    results = prairielearn.results(failed)
    jsonschema.validate(results, PRAIRIELEARN)
    assert results["gradable"] is False and "failed" in results["message"]  # the student loses no attempt


def test_the_kernel_s_isolation_is_decided_and_said():
    args = parser("a platform").parse_args([])
    sandbox = decide("", root=True, user=KERNEL_USER, cgroups=True)
    assert sandbox.mode == SANDBOX and sandbox.report().startswith("isolation: sandbox: bubblewrap")
    assert "not enforced" not in sandbox.report() and settings(args, sandbox).confine
    problem = "bubblewrap cannot make a sandbox here (bwrap: No permissions to create new namespace)"
    user = decide(problem, root=True, user=KERNEL_USER, cgroups=False)
    lines = user.report().splitlines()
    assert user.mode == USER and lines[0].startswith("isolation: unprivileged user") and problem in lines[0]
    assert [line.split(":")[0] for line in lines[1:]] == ["not enforced"] * 4
    assert "network" in lines[2] and "/tmp" in lines[3] and "cgroup" in lines[4]
    assert not settings(args, user).confine and settings(args, user).kernel_user == KERNEL_USER
    for root, name, why in ((False, KERNEL_USER, "the grader runs as uid 1000"), (True, None, "no user course-kernel")):
        unconfined = decide(problem, root=root, user=name, cgroups=True, whoami="uid 1000")
        assert unconfined.mode == UNCONFINED and why in unconfined.how and "runs as uid 1000" in unconfined.how
        assert "not enforced: confinement: the kernel can read the solutions" in unconfined.report()
        assert not settings(args, unconfined).confine and settings(args, unconfined).kernel_user is None


def unused_uid() -> int:
    """A user id that names no user and owns no process."""
    owners = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            owners |= {int(n) for n in re.search(r"^Uid:(.*)$", status.read_text(), re.MULTILINE)[1].split()}
        except (OSError, TypeError):
            continue
    known = {entry.split(":")[2] for entry in Path("/etc/passwd").read_text().splitlines() if entry.count(":") >= 2}
    return next(uid for uid in range(61000, 62000) if uid not in owners and str(uid) not in known)


def runs_as(pid: int, uid: int) -> bool:
    """Whether process `pid` runs with the real user id `uid`."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return any(line.split()[:2] == ["Uid:", str(uid)] for line in status.splitlines())


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="becoming another user needs root")
def test_a_kernel_user_reads_nothing_of_the_grader_s_and_leaves_nothing_running():
    """The fallback where no sandbox can be made, for real: the kernel's launcher and its user."""
    uid = unused_uid()
    user = KernelUser(uid, uid, memory_mb=256, disk_mb=1, processes=16)
    grader = Path(tempfile.mkdtemp(prefix="grader-"))  # /tmp/pytest-of-root is not the user's to enter
    try:
        grader.chmod(0o755)
        secret, kernel = grader / "solutions", grader / "g-1"
        for folder in (secret, kernel):
            folder.mkdir(mode=0o700)
        (secret / "01_autoencoder.ipynb").write_text("the answers")
        connection = kernel / "connection.json"
        connection.write_text("the connection\n")
        connection.chmod(0o600)
        env = {"PATH": "/usr/bin:/bin", "HOME": str(kernel / "home"), "JUPYTER_RUNTIME_DIR": str(kernel / "runtime")}
        user.admit(kernel, env, kernel / "sockets")
        assert user.readable([secret, secret / "01_autoencoder.ipynb", kernel / "home", connection]) == [
            kernel / "home"
        ]
        probe = 'id -u; id -G; pwd; cat "$1"; grep "Max processes" /proc/self/limits; cat "$2" || echo refused; '
        probe += "touch ../planted || echo refused"
        argv = ["/bin/sh", "-c", probe, "sh", "{connection_file}", str(secret / "01_autoencoder.ipynb")]
        command = [arg.replace("{connection_file}", str(connection)) for arg in user.kernel_command(argv)]
        run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
        lines = run.stdout.splitlines()
        assert lines[:4] == [str(uid), str(uid), str(kernel / "home"), "the connection"], run
        assert lines[4].split()[2:4] == ["16", "16"] and lines[5:] == ["refused", "refused"], run
        assert oct(connection.stat().st_mode)[-3:] == "640" and connection.stat().st_uid == 0
        left = subprocess.Popen([*user.become(), "sleep", "60"], start_new_session=True)
        deadline = time.monotonic() + 10
        while not runs_as(left.pid, uid) and time.monotonic() < deadline:  # setpriv has not become the user yet
            time.sleep(0.01)
        user.stop_all()
        assert left.wait(timeout=10) == -9
    finally:
        shutil.rmtree(grader)


def test_a_capstone_is_one_scored_test_on_gradescope_and_its_files_an_optional_upload_on_prairielearn():
    lines = ["capstone A: 2/3 points, test MSE 0.00752", "  tier: 3 points: test MSE ≤ 0.0065"]
    grade = Grade("s", "s.ipynb", "02_vqvae", checks=[CheckScore("capstone-a", 3, 2, "partial", lines)])
    results = gradescope.results(Outcome(grade, 3, 1.0))
    jsonschema.validate(results, GRADESCOPE)
    assert results["tests"] == [
        {
            "name": "capstone-a",
            "score": 2.0,
            "max_score": 3.0,
            "status": "failed",
            "output": "\n".join(lines),
            "visibility": "visible",
        }
    ]
    assert "optional-file-names" not in prairielearn.question_html("01_autoencoder")
    assert 'file-names="02_vqvae.ipynb" optional-file-names="capstone_vqvae.safetensors"' in (
        prairielearn.question_html("02_vqvae")
    )
    both = 'optional-file-names="capstone_prior.safetensors,capstone_vqvae.safetensors"'
    assert both in prairielearn.question_html("04_prior")
    both = 'optional-file-names="capstone_transformer.safetensors,capstone_vqvae.safetensors"'
    assert both in prairielearn.question_html("06_transformer")
