"""How a submission's kernel is kept from the answers inside a platform's container, decided when it is graded and
always said on the instructor's stdout: the course's sandbox (bubblewrap) where the container allows user
namespaces; else, when the grader is root, an unprivileged user of its own (`starter.grading.kernel_user`) that
cannot read the grader's files; else nothing, said as such."""

from __future__ import annotations

import os
import pwd
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from starter.grading.budget import UNENFORCED, available
from starter.grading.kernel_user import KernelUser
from starter.grading.sandbox import SandboxUnavailable, check_available

SANDBOX, USER, UNCONFINED = "sandbox", "unprivileged user", "unconfined"
KERNEL_USER = "course-kernel"  # made by the install script (`build.INSTALL`)


@dataclass
class Isolation:
    """The kernel's confinement: `mode` (SANDBOX, USER or UNCONFINED), its user in USER mode, how it is confined
    and what is not enforced."""

    mode: str
    how: str
    user: str | None = None
    unenforced: list[str] = field(default_factory=list)

    def report(self) -> str:
        """The lines the instructor reads: what was used, then each thing not enforced."""
        return "\n".join([f"isolation: {self.mode}: {self.how}", *(f"not enforced: {n}" for n in self.unenforced)])


def decide(sandbox_problem: str, root: bool, user: str | None, cgroups: bool, whoami: str = "uid 0") -> Isolation:
    """The confinement a kernel gets: the sandbox unless `sandbox_problem` says why there is none; else, when the
    grader is `root` and the kernel's `user` exists (None when it does not), that user; else none. `cgroups`: whether
    each kernel can have a cgroup of its own (a budget for all its processes together)."""
    budget = [] if cgroups else [f"no cgroup can be made here for a kernel's budget: {UNENFORCED}"]
    if not sandbox_problem:
        how = (
            "bubblewrap: the kernel sees only Python, the datasets and the course's package with the answers "
            "withheld, writes only its own folders in memory, has no network and its own processes"
        )
        return Isolation(SANDBOX, how, unenforced=budget)
    if root and user:
        how = (
            f"the container allows no sandbox ({sandbox_problem}), so the kernel runs as the user {user}, without "
            "groups or new privileges, who cannot read the solutions, the hidden tests or the results (root's, "
            "mode 700) nor the course's package with the answers"
        )
        return Isolation(
            USER,
            how,
            user,
            [
                "the kernel sees the container's file system: file permissions alone keep it from the grader's files",
                "the kernel has the container's network, if the platform gives it one",
                "/tmp and /dev/shm are the container's: what the kernel writes there is neither in memory nor limited, "
                "but for each file's size (--disk-mb); its processes and threads are limited (--processes)",
                *budget,
            ],
        )
    why = f"no user {KERNEL_USER} or no setpriv (install.sh)" if root else f"the grader runs as {whoami}, not as root"
    how = (
        f"the container allows no sandbox ({sandbox_problem}) and {why}: the kernel runs as {whoami} and can read "
        "and write what the grader can"
    )
    unenforced = ["confinement: the kernel can read the solutions, the hidden tests and the results file", *budget]
    return Isolation(UNCONFINED, how, unenforced=unenforced)


def detect(sandbox_problem: str | None = None) -> Isolation:
    """Decide for this container (`sandbox_problem`: why the sandbox cannot be used, when already known)."""
    if sandbox_problem is None:
        try:
            check_available()
            sandbox_problem = ""
        except SandboxUnavailable as problem:
            sandbox_problem = str(problem)
    user = KERNEL_USER if shutil.which("setpriv") and _exists(KERNEL_USER) else None
    return decide(sandbox_problem, os.geteuid() == 0, user, available() is not None, f"uid {os.geteuid()}")


def _exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def exposed(isolation: Isolation, secrets: list[Path]) -> list[Path]:
    """Those of the grader's `secrets` that the kernel's user can read after all, in USER mode (none elsewhere:
    the sandbox shows none of them, and an unconfined kernel is said to read them all)."""
    return KernelUser.named(isolation.user).readable(secrets) if isolation.mode == USER else []
