"""Paths, fast mode, device choice and seeding: the settings every notebook shares.

torch is imported when first needed (DEVICE, `seed_everything`), so that a process that only reads the settings,
the grader's own, does not pay for it."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import torch

T = TypeVar("T")

# Every environment variable that the course reads, in one place.
FAST_ENV = "COURSE_FAST"  # 1: small data subsets and few epochs (CI, `make test`)
DATA_ENV = "COURSE_DATA_ROOT"  # where datasets and your own checkpoints go (see DATA_ROOT)
CHECKPOINTS_ENV = "COURSE_CHECKPOINTS"  # where the shipped checkpoints are (see CHECKPOINTS)
DEVICE_ENV = "COURSE_DEVICE"  # force a device: cpu, cuda or mps
MNIST_ENV = "COURSE_MNIST_DIR"  # a folder with the four MNIST files, for machines without a network
FASHION_ENV = "COURSE_FASHION_MNIST_DIR"  # the same for Fashion-MNIST
STATIC_ENV = "COURSE_STATIC"  # 1: the explorers draw static figures; 0: live widgets even in fast mode
RESULTS_ENV = "COURSE_RESULTS"  # a JSON file where report_results also writes a notebook's key numbers
CAPSTONE_ENV = "COURSE_CAPSTONE_DIR"  # where the notebooks save and read the capstone files (default: beside them)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CHECKOUT: bool = (PROJECT_ROOT / "pyproject.toml").exists() and (PROJECT_ROOT / "data").is_dir()


def _user_data_folder() -> Path:
    """The per-user folder of an installed course: $XDG_DATA_HOME/discrete-latents (~/.local/share by default)."""
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "discrete-latents"


def is_fast() -> bool:
    """True when COURSE_FAST=1: small data subsets and few epochs, for CI."""
    return os.environ.get(FAST_ENV, "0").strip().lower() in {"1", "true", "yes"}


FAST: bool = is_fast()
# Datasets and your own checkpoints: data/ of a course checkout (git clone, Colab), else a per-user folder (a course
# installed with pip, e.g. on a JupyterHub); never inside an installed package.
DATA_ROOT: Path = (
    Path(os.environ[DATA_ENV])
    if os.environ.get(DATA_ENV)
    else (PROJECT_ROOT / "data" if CHECKOUT else _user_data_folder())
)
# The checkpoints the project trained, shipped with the course: data/checkpoints of a checkout, or inside the
# installed package (the wheel holds them as starter/shipped).
CHECKPOINTS: Path = (
    Path(os.environ[CHECKPOINTS_ENV])
    if os.environ.get(CHECKPOINTS_ENV)
    else (PROJECT_ROOT / "data" / "checkpoints" if CHECKOUT else Path(__file__).resolve().parent / "shipped")
)
MY_CHECKPOINTS: Path = DATA_ROOT / "my_checkpoints"  # what your own notebook runs save


def pick(full: T, fast: T) -> T:
    """Return `fast` in fast mode and `full` otherwise, e.g. `EPOCHS = pick(full=10, fast=1)`."""
    return fast if FAST else full


def choose_device(preferred: str | None = None) -> torch.device:
    """The best available device: cuda, then Apple's mps, then cpu (or `preferred` if given)."""
    import torch

    if preferred:
        return torch.device(preferred)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def __getattr__(name: str) -> torch.device:
    """DEVICE, chosen at its first use (`choose_device`, or COURSE_DEVICE)."""
    if name != "DEVICE":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()["DEVICE"] = device = choose_device(os.environ.get(DEVICE_ENV))
    return device


def threads_per_job(jobs: int) -> int:
    """Torch threads for each of `jobs` parallel processes: the cores shared out, so that none spins against another
    (two processes of 2 threads each on 2 cores run 5-50x slower than one after the other). The cores are this
    process's OpenMP threads when OMP_NUM_THREADS caps them (a process that itself shares the machine), else all."""
    cap = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    cores = int(cap) if cap.isdigit() and int(cap) > 0 else os.cpu_count() or 1
    return max(1, cores // max(1, jobs))


def thread_limits(threads: int) -> dict[str, str]:
    """Environment variables that cap a new process's OpenMP and MKL threads (torch reads them when imported)."""
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch so that a run can be repeated exactly on the same machine."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
