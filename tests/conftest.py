"""Shared fixtures: the offline MNIST copy, Fashion-MNIST and a capstone-A file for the capstones, and a
non-interactive matplotlib."""

from __future__ import annotations

import os
from pathlib import Path

import capstone_weights
import matplotlib
import pytest
from safetensors.torch import save

matplotlib.use("Agg")

from starter.config import MNIST_ENV  # noqa: E402
from starter.dataset_files import available_offline  # noqa: E402


@pytest.fixture(scope="session")
def local_mnist() -> Path:
    """The folder of local MNIST files named by COURSE_MNIST_DIR (CI points it at ../shared/data/MNIST/raw)."""
    folder = os.environ.get(MNIST_ENV)
    if not folder or not Path(folder).is_dir():
        pytest.fail(f"set {MNIST_ENV} to a folder with the four MNIST files (e.g. ../shared/data/MNIST/raw)")
    return Path(folder)


@pytest.fixture(scope="module")
def fashion() -> None:
    """Skip where Fashion-MNIST, the capstones' data, is not on this machine, saying how to install it."""
    if not available_offline("fashion"):
        pytest.skip(capstone_weights.NO_FASHION)


@pytest.fixture(scope="module")
def capstone_a_file(fashion) -> bytes:
    """A capstone-A file (64 codes; 2 points), which capstones B and C are scored with."""
    return save(capstone_weights.own())
