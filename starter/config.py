"""Paths, fast mode, device choice and seeding: the settings every notebook shares."""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

T = TypeVar("T")

FAST_ENV = "COURSE_FAST"
DATA_ENV = "COURSE_DATA_ROOT"

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _default_data_root() -> Path:
    """`data/` of the course checkout when the package lives in one, else `./data`."""
    if (PROJECT_ROOT / "pyproject.toml").exists() and (PROJECT_ROOT / "data").is_dir():
        return PROJECT_ROOT / "data"
    return Path.cwd() / "data"


def is_fast() -> bool:
    """True when COURSE_FAST=1: small data subsets and few epochs, for CI."""
    return os.environ.get(FAST_ENV, "0").strip().lower() in {"1", "true", "yes"}


FAST: bool = is_fast()
DATA_ROOT: Path = Path(os.environ[DATA_ENV]) if os.environ.get(DATA_ENV) else _default_data_root()
CHECKPOINTS: Path = DATA_ROOT / "checkpoints"  # shipped with the course, trained by the project
MY_CHECKPOINTS: Path = DATA_ROOT / "my_checkpoints"  # what your own notebook runs save (git-ignored)


def pick(full: T, fast: T) -> T:
    """Return `fast` in fast mode and `full` otherwise, e.g. `EPOCHS = pick(full=10, fast=1)`."""
    return fast if FAST else full


def choose_device(preferred: str | None = None) -> torch.device:
    """The best available device: cuda, then Apple's mps, then cpu (or `preferred` if given)."""
    if preferred:
        return torch.device(preferred)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


DEVICE: torch.device = choose_device(os.environ.get("COURSE_DEVICE"))


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch so that a run can be repeated exactly on the same machine."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
