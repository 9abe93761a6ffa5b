"""Whether the grader's sandbox (bubblewrap) runs here, a mark for the tests that need it (they skip with the
reason on a machine without it, and fail in CI, where `.ci/run` installs bubblewrap), and a sandboxed kernel
started as the grader starts one."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from starter.config import PROJECT_ROOT
from starter.grading.batch import Batch, Settings, kernel_environment, load_solutions
from starter.grading.budget import Budget
from starter.grading.kernel import RemoteKernel
from starter.grading.sandbox import SandboxUnavailable, check_available
from starter.grading.scratch import remove_tree

try:
    check_available()
    MISSING = ""
except SandboxUnavailable as reason:
    MISSING = f"{reason} (`sudo apt install bubblewrap`)"
SKIP = bool(MISSING) and not os.environ.get("CI")
confined = pytest.mark.skipif(SKIP, reason=f"needs the grader's sandbox: {MISSING}")


def require_sandbox() -> None:
    """Skip the calling test or fixture where the sandbox is missing (outside CI)."""
    if SKIP:
        pytest.skip(f"needs the grader's sandbox: {MISSING}")


@contextlib.contextmanager
def batch_for_kernels(prefix: str) -> Iterator[Batch]:
    """A batch (its kernel server included) in a short scratch folder (for the kernels' sockets) with notebook 01's
    withheld `starter`."""
    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    scratch.chmod(0o755)
    try:
        yield Batch(load_solutions(PROJECT_ROOT / "solutions"), Settings(jobs=1, progress=False), scratch)
    finally:
        remove_tree(scratch)


@contextlib.contextmanager
def started(
    batch: Batch,
    server: str | None,
    memory_mb: int = 2048,
    processes: int = 48,
    disk_mb: int = 64,
    timeout: float = 30,
) -> Iterator[tuple[RemoteKernel, Budget]]:
    """A sandboxed kernel with a budget of its own, as the grader starts one: forked by the kernel server at
    `server`, or by the sandbox itself where there is none (or it cannot help); stopped and removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="g-", dir=batch.scratch))
    library = batch.library("01_autoencoder")
    sandbox = dataclasses.replace(batch.sandbox(folder, library), memory_mb=memory_mb, disk_mb=disk_mb)
    limits = Budget.create(batch.cgroups, memory_mb, processes)
    env = kernel_environment(folder, library, batch.threads)
    kernel = RemoteKernel(folder, env, 0, timeout, sandbox, memory_mb, limits.kernel, server=server)
    try:
        yield kernel, limits
    finally:
        kernel.stop()
        limits.remove()
        remove_tree(folder)
