"""Shared fixtures: the offline MNIST copy and a non-interactive matplotlib."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

from starter.config import MNIST_ENV  # noqa: E402


@pytest.fixture(scope="session")
def local_mnist() -> Path:
    """The folder of local MNIST files named by COURSE_MNIST_DIR (CI points it at ../shared/data/MNIST/raw)."""
    folder = os.environ.get(MNIST_ENV)
    if not folder or not Path(folder).is_dir():
        pytest.fail(f"set {MNIST_ENV} to a folder with the four MNIST files (e.g. ../shared/data/MNIST/raw)")
    return Path(folder)
