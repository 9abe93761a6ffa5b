"""Test-run settings shared by the unit tests and nbval over solutions/.

- Nothing the tests start writes to the user's home, which may be read-only: Jupyter's data and runtime files, IPython's
  profile, matplotlib's and pip's caches, Chromium's settings and npm's logs go to this run's own temporary folder.
- Under pytest-xdist (`make test` runs one worker per core), each worker and every kernel it starts use one torch
  thread, so that workers share the cores instead of spinning against each other; the slowest files go out first
  (`make test` passes --no-loadscope-reorder, which keeps this order instead of xdist's most-tests-first).
- Where Fashion-MNIST is not on this machine, the cells tagged `fashion` are skipped (with the reason) instead of
  failing; `.ci/run` installs Debian's dataset-fashion-mnist, so CI runs them.
- Each process (each xdist worker) gives its notebooks a capstone folder of its own (COURSE_CAPSTONE_DIR), which
  starts with capstone A's reference file: notebook 04's capstone B reads a capstone-A file whichever worker ran
  notebook 02, and no two notebooks write the same file at once.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

OUT_OF_HOME = {
    "JUPYTER_CONFIG_DIR": "jupyter-config",
    "JUPYTER_DATA_DIR": "jupyter-data",
    "JUPYTER_RUNTIME_DIR": "jupyter-runtime",
    "IPYTHONDIR": "ipython",
    "MPLCONFIGDIR": "matplotlib",
    "XDG_CACHE_HOME": "cache",  # pip's wheels, dconf
    "XDG_CONFIG_HOME": "config",  # Chromium's crash reports
    "npm_config_cache": "npm",  # the logs of the npm that jupyter_lsp runs in JupyterLab's server
}


def keep_out_of_home() -> Path | None:
    """Point every OUT_OF_HOME variable at a fresh folder, unless the run that started this one did (xdist)."""
    if all(variable in os.environ for variable in OUT_OF_HOME):
        return None
    scratch = Path(tempfile.mkdtemp(prefix="course-tests-"))
    for variable, folder in OUT_OF_HOME.items():
        os.environ.setdefault(variable, str(scratch / folder))
    return scratch


OWN_SCRATCH = keep_out_of_home()  # before anything imports matplotlib or Jupyter

import pytest  # noqa: E402
import torch  # noqa: E402

from starter.capstone import BY_GRADE_ID  # noqa: E402
from starter.config import CAPSTONE_ENV, CHECKPOINTS, FASHION_ENV, thread_limits  # noqa: E402
from starter.dataset_files import available_offline  # noqa: E402

# The files that take longest, in that order: handed out first, so that no worker is left with one at the end.
SLOWEST_FIRST = [
    "tests/test_browser.py",
    "tests/test_grade.py",
    "tests/test_autograder.py",
    "tests/test_agreement.py",
    "tests/test_hostile_class.py",
    "tests/test_nbgrader.py",
    "tests/test_capstone_grading.py",
    "tests/test_batch.py",
    "solutions/06_transformer.ipynb",
    "tests/test_sandbox.py",
    "solutions/03_pixelcnn.ipynb",
    "tests/test_packaging.py",
    "tests/test_release.py",
    "solutions/04_prior.ipynb",
    "solutions/05_comparison.ipynb",
    "tests/test_capstone_prior.py",
    "solutions/02_vqvae.ipynb",
    "tests/test_intake.py",
    "solutions/01_autoencoder.ipynb",
    "tests/test_prior.py",
    "tests/test_twins.py",
    "tests/test_correct_answers.py",
    "tests/test_capstone_transformer.py",
    "tests/test_pixelcnn.py",
]


def pytest_configure(config: pytest.Config) -> None:
    if OWN_SCRATCH is not None:
        config.add_cleanup(lambda: shutil.rmtree(OWN_SCRATCH, ignore_errors=True))
    capstones = Path(tempfile.mkdtemp(prefix="capstones-"))
    shutil.copy(CHECKPOINTS / "capstone_a_reference.safetensors", capstones / BY_GRADE_ID["capstone-a"].filename)
    os.environ[CAPSTONE_ENV] = str(capstones)
    config.add_cleanup(lambda: shutil.rmtree(capstones, ignore_errors=True))
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ.update(thread_limits(1))
        torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {path: index for index, path in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable: order within a file kept
    if available_offline("fashion"):
        return
    skip = pytest.mark.skip(
        reason=f"Fashion-MNIST is not on this machine: `sudo apt install dataset-fashion-mnist` "
        f"or set {FASHION_ENV} (a networked machine downloads it in the notebook itself)"
    )
    for item in items:
        cell = getattr(item, "cell", None)
        if cell is not None and "fashion" in cell.get("metadata", {}).get("tags", []):
            item.add_marker(skip)
