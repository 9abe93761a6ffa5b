"""What every autograder holds, whatever the platform: the course's wheel (the shipped checkpoints inside), the
versions of the packages the grader was built and tested with, the script that installs them in the platform's
container, the notebook's solution (the grader's answers and hidden tests, which stay on the platform's side), and
the script that starts the entry point with its options."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import nbformat

from starter.autograder.isolation import KERNEL_USER
from starter.autograder.platform import ENVIRONMENT, PREFIX

# The course's requirements and the grader's; jsonschema as pinned in pyproject.toml (later ones import slowly).
PACKAGES = ("torch", "torchvision", "numpy", "matplotlib", "tqdm", "ipywidgets", "torchmetrics", "safetensors")
GRADER_PACKAGES = ("nbformat", "jsonschema", "jupyter_client", "ipykernel", "pyzmq")
WHEEL_SOURCES = ("pyproject.toml", "README.md", "starter", "data/checkpoints")  # what pyproject.toml packages
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"  # torch without CUDA: the grader runs on CPUs
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"  # the grader's Python, as where it was built
INSTALL = f"""#!/bin/sh
# Installs the discrete-latents grader where a platform grades (run once, as root, from this folder; the
# argument is the Python {PYTHON} to use): its environment in {PREFIX}/venv,
# the datasets and checkpoints beside it, and the user {KERNEL_USER}, as whom kernels run where the container
# allows no sandbox. The course's own package holds the answers: it becomes root's alone (a kernel imports a
# copy with them withheld).
set -eu
PREFIX={PREFIX}
"${{1:-python3}}" -m venv "$PREFIX/venv"
"$PREFIX/venv/bin/pip" install --no-cache-dir --extra-index-url {TORCH_INDEX} -r requirements.txt ./*.whl
id -u {KERNEL_USER} >/dev/null 2>&1 || \\
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin {KERNEL_USER}
PACKAGE=$("$PREFIX/venv/bin/python" -c 'import os, starter; print(os.path.dirname(starter.__file__))')
cp -r "$PACKAGE/shipped" {ENVIRONMENT["COURSE_CHECKPOINTS"]}
COURSE_DATA_ROOT={ENVIRONMENT["COURSE_DATA_ROOT"]} "$PREFIX/venv/bin/python" -c \\
    'from starter.dataset_files import prepare_mnist; prepare_mnist(); prepare_mnist(dataset="fashion")'
chmod -R a+rX "$PREFIX"
chmod 700 "$PACKAGE"
"""


@dataclass(frozen=True)
class Bundle:
    """One notebook's autograder, before a platform's files are added: its `notebook` ("01_autoencoder"), its
    `solution`, the course's `wheel`, and the entry point's `options`."""

    notebook: str
    solution: Path
    wheel: Path
    options: tuple[str, ...] = ()

    def title(self) -> str:
        """The notebook's title: its first heading, e.g. "01 · Autoencoders: ..."."""
        cells = nbformat.read(self.solution, as_version=4).cells
        heading = next((c.source for c in cells if c.cell_type == "markdown" and c.source.startswith("#")), "")
        return heading.splitlines()[0].lstrip("# ").strip() if heading else self.notebook

    def write_installer(self, folder: Path) -> None:
        """The wheel, requirements.txt and install.sh, in `folder`."""
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.whl"):  # install.sh installs every wheel here
            old.unlink()
        shutil.copy(self.wheel, folder / self.wheel.name)
        (folder / "requirements.txt").write_text(requirements(), encoding="utf-8")
        (folder / "install.sh").write_text(INSTALL, encoding="utf-8")

    def write_solution(self, folder: Path) -> None:
        """`folder`/solutions/, with the notebook's solution: what the grader grades against."""
        (folder / "solutions").mkdir(parents=True, exist_ok=True)
        shutil.copy(self.solution, folder / "solutions" / self.solution.name)

    def entry(self, module: str, what: str) -> str:
        """The shell script a platform runs for each submission: `what` it does, then the entry point `module`."""
        exports = " ".join(f"{name}={value}" for name, value in ENVIRONMENT.items())
        command = " ".join([f"{PREFIX}/venv/bin/python", "-m", module, *self.options])
        return f"#!/bin/sh\n# {what}\nexport {exports}\nexec {command}\n"


def requirements() -> str:
    """requirements.txt: the packages the course and its grader need, at the versions installed here."""
    return "".join(f"{name}=={version(name).split('+')[0]}\n" for name in PACKAGES + GRADER_PACKAGES)


def build_wheel(project: Path, dist: Path) -> Path:
    """The course's wheel, built into `dist` (with this environment's setuptools) from a copy of what `project`
    packages: building writes beside the sources, and a build/ left there may hold modules removed since."""
    dist.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="course-") as copy:
        for name in WHEEL_SOURCES:
            source, target = project / name, Path(copy) / name
            if source.is_dir():
                shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(source, target)
        pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        subprocess.run([*pip, "-w", str(dist), copy], check=True)
    return max(dist.glob("discrete_latents_starter-*.whl"), key=lambda path: path.stat().st_mtime)


def make_bundle(notebook: str, solutions: Path, wheel: Path, options: tuple[str, ...] = ()) -> Bundle:
    """The bundle of notebook "NN" (its solution from `solutions`)."""
    solution = next(solutions.glob(f"{notebook[:2]}_*.ipynb"), None)
    if solution is None:
        raise FileNotFoundError(f"no notebook {notebook} in {solutions}")
    return Bundle(solution.stem, solution, wheel, options)
