"""pyproject.toml and environment.yml list the same packages; the package's own requirements stay loose; the wheel
holds everything a JupyterHub needs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import tomllib
from installed import OURS, fresh_venv, install_wheel

from starter.autograder.bundle import build_wheel
from starter.config import FAST_ENV, MNIST_ENV, PROJECT_ROOT, STATIC_ENV, thread_limits

CONDA_TO_PIP = {"pytorch": "torch"}


def pyproject() -> dict:
    return tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())


def conda_packages() -> set[str]:
    names = set()
    text = (PROJECT_ROOT / "environment.yml").read_text()
    for line in text.split("dependencies:", 1)[1].splitlines():
        match = re.match(r"^  - ([A-Za-z][\w.-]*)", line)
        if match and match[1] not in {"python", "pip"}:
            names.add(CONDA_TO_PIP.get(match[1], match[1]))
    return names


def test_environment_yml_agrees_with_pyproject():
    project = pyproject()["project"]
    pip_names = {
        re.split(r"[<>=!~ \[]", dep)[0] for dep in project["dependencies"] + project["optional-dependencies"]["dev"]
    }
    assert conda_packages() == pip_names


def test_package_requirements_leave_colab_alone():
    for dep in pyproject()["project"]["dependencies"]:
        assert not re.search(r"[<>=~]", dep), f"{dep}: no version pins in the package itself (Colab ships its own)"


def test_the_wheel_lists_every_subpackage():
    listed = set(pyproject()["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.parent.relative_to(PROJECT_ROOT).parts) for p in (PROJECT_ROOT / "starter").rglob("__init__.py")
    }
    assert found | {"starter.shipped"} == listed


def read_only_system(command: list[str], readable: list[Path], writable: list[Path]) -> list[str]:
    """`command` under bubblewrap: the whole system read-only with a fresh /tmp, then `readable` read-only and
    `writable` writable on top, so that each stays visible wherever it lives (a checkout under /tmp included)."""
    binds = [arg for path in readable for arg in ("--ro-bind", str(path), str(path))]
    binds += [arg for path in writable for arg in ("--bind", str(path), str(path))]
    system = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    return ["bwrap", *system, *binds, "--chdir", str(writable[-1]), *command]


needs_bwrap = pytest.mark.skipif(
    not shutil.which("bwrap") and not os.environ.get("CI"),
    reason="needs bubblewrap to make the installed course read-only: `sudo apt install bubblewrap`",
)


@needs_bwrap
def test_a_venv_under_tmp_stays_visible_in_the_read_only_system(tmp_path):
    """The case that failed from a checkout under /tmp: the hub test's environment reads the checkout's packages
    through a .pth file, and a fresh /tmp hid them. Here those packages sit under /tmp, in a folder with spaces."""
    packages, fresh, work = tmp_path / "a checkout" / "site-packages", tmp_path / "venv", tmp_path / "work"
    packages.mkdir(parents=True)
    work.mkdir()
    (packages / "course_probe.py").write_text("WHERE = __file__\n")
    fresh_venv(fresh, packages)
    command = [str(fresh / "bin" / "python"), "-c", "import course_probe; print(course_probe.WHERE)"]
    result = subprocess.run(
        read_only_system(command, readable=[fresh, packages], writable=[work]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and result.stdout.strip() == str(packages / "course_probe.py"), result.stderr


@needs_bwrap
def test_a_hub_installs_the_wheel_and_runs_notebook_02_from_anywhere(tmp_path):
    """The wheel, pip-installed (not editable) into a fresh virtual environment whose files are then read-only,
    runs notebook 02 in fast mode from an unrelated folder: the shipped checkpoint comes from the package, MNIST
    and the student's own checkpoint go to the per-user folder."""
    dist, fresh, home, work = tmp_path / "dist", tmp_path / "venv", tmp_path / "home", tmp_path / "anywhere"
    for folder in (home, work):
        folder.mkdir()
    site = install_wheel(build_wheel(PROJECT_ROOT, dist), fresh)
    python, ours = fresh / "bin" / "python", OURS
    shutil.copy(PROJECT_ROOT / "solutions" / "02_vqvae.ipynb", work / "02_vqvae.ipynb")
    run = (
        "import nbformat, nbclient; nb = nbformat.read('02_vqvae.ipynb', 4); "
        "nbclient.NotebookClient(nb, timeout=600, kernel_name='python3').execute(); "
        "import starter.config as c; print('checkpoints', c.CHECKPOINTS); print('data', c.DATA_ROOT)"
    )
    env = {
        "PATH": f"{fresh / 'bin'}:/usr/bin:/bin",
        "HOME": str(home),
        FAST_ENV: "1",
        STATIC_ENV: "1",
        MNIST_ENV: os.environ.get(MNIST_ENV, ""),
        **{name: value for name, value in os.environ.items() if name in thread_limits(1)},  # as this test run's
    }
    command = [str(python), "-c", run]
    if shutil.which("bwrap"):  # everything read-only but the student's home and the notebook's folder
        command = read_only_system(command, readable=[fresh, ours, Path(env[MNIST_ENV] or "/")], writable=[home, work])
    result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"checkpoints {site / 'starter' / 'shipped'}" in result.stdout
    assert f"data {home / '.local' / 'share' / 'discrete-latents'}" in result.stdout
    assert (home / ".local" / "share" / "discrete-latents" / "MNIST" / "raw").is_dir()
    assert (home / ".local" / "share" / "discrete-latents" / "my_checkpoints" / "vqvae.pt").is_file()
    assert not (site / "starter" / "data").exists() and not list(work.glob("data"))
