"""One budget per sandbox: a cgroup of its own for each submission's kernel (and one for its worker) that limits the
memory of all its processes together, what they keep in their tmpfs folders included (tmpfs pages are charged to
the cgroup of the process that touches them), and the number of its tasks (processes and threads); its peak memory
measures what a request used, children included; at the end whatever is left of it is killed and it is removed.

Both layouts: cgroup v2 (`memory.max`, `memory.peak`, `pids.max`, in a subtree delegated to the grader) and v1 (a
`memory` and a `pids` hierarchy: `memory.limit_in_bytes`, `memory.max_usage_in_bytes`, `pids.max`). The grader's
cgroups go under its own (/proc/self/cgroup). Where neither can be written, `find` says so and why.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from starter.grading.sandbox import SandboxUnavailable

CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("memory", "pids")
STALE = re.compile(r"course-(?:probe-)?(\d+)-")  # a grader's cgroups are named after its process
REMOVE_WITHIN = 10.0  # seconds for a cgroup's processes to be gone once killed
LAUNCHER = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'
UNENFORCED = (
    "each process of a kernel is then limited to --memory-mb on its own, not all of them and what they keep in "
    "/tmp, /dev/shm and their folder together; their number is not limited; and a request's memory is measured "
    "over the kernel's processes as they are when it starts"
)


class BudgetUnavailable(SandboxUnavailable):
    """No cgroup can be made here for a kernel's budget: the message says why."""


def read(path: Path) -> str:
    """A cgroup file's content, stripped."""
    return path.read_text().strip()


def write(path: Path, value: str) -> None:
    """Write `value` to a cgroup file (one write, as the kernel wants it)."""
    with open(path, "w") as file:
        file.write(value)


@dataclass(frozen=True)
class Cgroup:
    """One cgroup: its folder in each hierarchy (v2: one; v1: memory's, then pids')."""

    version: int
    folders: tuple[Path, ...]

    def to_json(self) -> dict:
        return {"version": self.version, "folders": [str(folder) for folder in self.folders]}

    @classmethod
    def from_json(cls, data: dict) -> "Cgroup":
        return cls(int(data["version"]), tuple(Path(folder) for folder in data["folders"]))

    def limit(self, memory: int, processes: int) -> None:
        """At most `memory` bytes (swap none) for all its processes together, and at most `processes` tasks."""
        first, pids = self.folders[0], self.folders[-1]
        if self.version == 2:
            write(first / "memory.max", str(memory))
            if (first / "memory.swap.max").exists():
                write(first / "memory.swap.max", "0")
        else:
            write(first / "memory.limit_in_bytes", str(memory))
            if (first / "memory.memsw.limit_in_bytes").exists():
                write(first / "memory.memsw.limit_in_bytes", str(memory))
        write(pids / "pids.max", str(processes))

    def join(self, pid: int) -> None:
        """Move the process `pid` (all its threads) into this cgroup."""
        for folder in self.folders:
            write(folder / "cgroup.procs", str(pid))

    def launcher(self, argv: list[str]) -> list[str]:
        """A command line that moves itself into this cgroup, then runs `argv` (and never runs it outside)."""
        return ["/bin/sh", "-c", LAUNCHER, "sh", *[str(f / "cgroup.procs") for f in self.folders], "--", *argv]

    @contextlib.contextmanager
    def measuring(self) -> Iterator[Callable[[], int | None]]:
        """Yields a function that says by how many bytes the cgroup's peak memory rose above its usage on entry."""
        memory = self.folders[0]
        if self.version == 1:
            write(memory / "memory.max_usage_in_bytes", "0")  # the peak starts again from the usage now
            base = int(read(memory / "memory.max_usage_in_bytes"))
            yield lambda: int(read(memory / "memory.max_usage_in_bytes")) - base
            return
        with _peak_since_now(memory) as peak:
            yield peak

    def remove(self) -> None:
        """Kill every process left in the cgroup, then delete it (left in place if they outlive REMOVE_WITHIN)."""
        deadline = time.monotonic() + REMOVE_WITHIN
        for folder in self.folders:
            while folder.exists():
                _kill(folder)
                try:
                    folder.rmdir()
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.02)


@contextlib.contextmanager
def _peak_since_now(memory: Path) -> Iterator[Callable[[], int | None]]:
    """cgroup v2: memory.peak reset for one file descriptor (Linux 6.12); else the lifetime peak where it rose (a
    request that stayed under an earlier peak cannot be measured: None)."""
    base = int(read(memory / "memory.current"))
    try:
        fd = os.open(memory / "memory.peak", os.O_RDWR)
    except OSError:
        fd = None
    try:
        if fd is not None and _reset(fd):
            yield lambda: int(os.pread(fd, 64, 0).strip()) - base
        else:
            before = int(read(memory / "memory.peak"))
            yield lambda: (peak - base) if (peak := int(read(memory / "memory.peak"))) > before else None
    finally:
        if fd is not None:
            os.close(fd)


def _reset(fd: int) -> bool:
    """Reset a v2 memory.peak for this descriptor; False where the kernel does not allow it."""
    try:
        os.write(fd, b"reset")
        return True
    except OSError:
        return False


def _kill(folder: Path) -> None:
    """SIGKILL every process in the cgroup `folder` (v2: cgroup.kill; else each listed one, by a pidfd so that a
    number reused meanwhile is never hit)."""
    with contextlib.suppress(OSError):
        if (folder / "cgroup.kill").exists():
            write(folder / "cgroup.kill", "1")
            return
    for pid in _listed(folder):
        try:
            handle = os.pidfd_open(pid)
        except OSError:
            continue
        try:
            if pid in _listed(folder):
                signal.pidfd_send_signal(handle, signal.SIGKILL)
        except OSError:
            pass
        finally:
            os.close(handle)


def _listed(folder: Path) -> list[int]:
    try:
        return [int(pid) for pid in read(folder / "cgroup.procs").split()]
    except (OSError, ValueError):
        return []


@dataclass(frozen=True)
class Hierarchy:
    """Where this process may make cgroups: one folder per hierarchy (v2: one; v1: memory's, then pids')."""

    version: int
    parents: tuple[Path, ...]

    def create(self, name: str, memory: int, processes: int) -> Cgroup:
        """A new cgroup `name` with these limits (removed again if they cannot be set)."""
        cgroup = Cgroup(self.version, tuple(parent / name for parent in self.parents))
        for folder in cgroup.folders:
            folder.mkdir()
        try:
            cgroup.limit(memory, processes)
        except OSError:
            cgroup.remove()
            raise
        return cgroup

    def sweep(self) -> None:
        """Remove the cgroups left beside this process's by graders that were killed (their process is gone), with
        what is left in them (found in the first hierarchy, this process's own, not in a shared v1 pids root)."""
        for folder in self.parents[0].glob("course-*"):
            owner = STALE.match(folder.name)
            if owner and not Path(f"/proc/{owner[1]}").exists():
                Cgroup(self.version, tuple(parent / folder.name for parent in self.parents)).remove()


def own_cgroups() -> dict[str, tuple[str, str]]:
    """This process's cgroups: {controller: (its hierarchy's folder name, path)}; v2's under ""."""
    found = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            found[controller] = (controllers, path)
    return found


def _v2(root: Path, own: dict[str, tuple[str, str]]) -> Hierarchy:
    if not (root / "cgroup.controllers").is_file() or "" not in own:
        raise BudgetUnavailable(f"cgroup v2: {root} is not a cgroup v2 hierarchy")
    parent = root / own[""][1].lstrip("/")
    missing = set(CONTROLLERS) - set(read(parent / "cgroup.controllers").split())
    if missing:
        raise BudgetUnavailable(f"cgroup v2: {' and '.join(sorted(missing))} not delegated to {parent}")
    if not set(CONTROLLERS) <= set(read(parent / "cgroup.subtree_control").split()):
        _delegate(parent)
    return Hierarchy(2, (parent,))


def _delegate(parent: Path) -> None:
    """Give the children of `parent` memory and pids controllers; a cgroup with processes cannot, so this process
    first moves into a leaf of its own, `grader` (it must be the only process in `parent`)."""
    leaf, others = parent / "grader", set(_listed(parent)) - {os.getpid()}
    if others:
        raise BudgetUnavailable(
            f"cgroup v2: {parent} holds other processes than the grader: run it alone in a cgroup delegated to it "
            "(e.g. `systemd-run --user --scope -p Delegate=yes ...`)"
        )
    try:
        leaf.mkdir(exist_ok=True)
        write(leaf / "cgroup.procs", str(os.getpid()))
        write(parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in CONTROLLERS))
    except OSError as error:
        raise BudgetUnavailable(
            f"cgroup v2: cannot enable memory and pids for the cgroups under {parent} ({error.strerror}): run the "
            "grader alone in a cgroup delegated to it (e.g. `systemd-run --user --scope -p Delegate=yes ...`)"
        ) from None


def _v1(root: Path, own: dict[str, tuple[str, str]]) -> Hierarchy:
    parents = []
    for controller in CONTROLLERS:
        if controller not in own:
            raise BudgetUnavailable(f"cgroup v1: this process is in no {controller} hierarchy")
        hierarchy, path = own[controller]
        parent = root / hierarchy / path.lstrip("/")
        if not (parent / "cgroup.procs").is_file():
            raise BudgetUnavailable(f"cgroup v1: no {controller} hierarchy at {root / hierarchy}")
        parents.append(parent)
    return Hierarchy(1, tuple(parents))


def find() -> Hierarchy:
    """Where kernels' cgroups can be made, after making (and removing) one to be sure and removing those of killed
    graders; BudgetUnavailable if nowhere."""
    own, reasons = own_cgroups(), []
    for version, layout in ((2, _v2), (1, _v1)):
        try:
            hierarchy = layout(CGROUP_ROOT, own)
            hierarchy.sweep()
            hierarchy.create(f"course-probe-{os.getpid()}-{secrets.token_hex(4)}", 2**30, 64).remove()
            return hierarchy
        except BudgetUnavailable as reason:
            reasons.append(str(reason))
        except OSError as error:
            reasons.append(f"cgroup v{version}: cannot make a cgroup here ({error})")
    raise BudgetUnavailable("; ".join(reasons))


def available() -> Hierarchy | None:
    """`find`'s answer, or None where no cgroup can be made."""
    with contextlib.suppress(BudgetUnavailable):
        return find()
    return None


@dataclass(frozen=True)
class Budget:
    """A submission's two cgroups: its kernel's and its worker's, each with the same limits."""

    kernel: Cgroup
    worker: Cgroup

    @classmethod
    def create(cls, hierarchy: Hierarchy, memory_mb: int, processes: int) -> "Budget":
        name = f"course-{os.getpid()}-{secrets.token_hex(6)}"
        kernel = hierarchy.create(f"{name}-kernel", memory_mb * 2**20, processes)
        try:
            return cls(kernel, hierarchy.create(f"{name}-worker", memory_mb * 2**20, processes))
        except OSError:
            kernel.remove()
            raise

    def to_json(self) -> dict:
        return {"kernel": self.kernel.to_json(), "worker": self.worker.to_json()}

    @classmethod
    def from_json(cls, data: dict) -> "Budget":
        return cls(Cgroup.from_json(data["kernel"]), Cgroup.from_json(data["worker"]))

    def remove(self) -> None:
        """Kill what is left in both cgroups and remove them."""
        self.kernel.remove()
        self.worker.remove()
