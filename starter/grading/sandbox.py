"""The sandbox a submission's kernel runs in: bubblewrap (`bwrap`, 0.7 or later), as root or as any user.

Each kernel gets a file system of its own that holds only what it needs, read-only (the system's programs and
libraries, Python and its packages, the datasets and checkpoints, a `starter` package from which the graded
notebook's answers are withheld, its connection file), and writable only its own folder, /tmp and /dev/shm, each a
tmpfs of `disk_mb` (in memory: its cgroup counts them, see `budget`), with no file over `disk_mb` (RLIMIT_FSIZE).
Its sockets' folder is writable only until the grader has connected (see `kernel`). It has its own /proc and
process numbers, no network, no further user namespaces, and it dies with the grader. So it cannot read the
solutions, the tests, the grader's output, or another submission, writes nothing on disk, and nothing it starts
outlives it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SYSTEM_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/localtime",
    "/etc/hosts",
)
NOBODY = 65534
INSTALL = "sudo apt install bubblewrap"

SOCKET_PATH = 100  # characters of a Unix socket's path (the system's limit is 107)


class SandboxUnavailable(RuntimeError):
    """Submissions cannot be confined on this machine: the message says why and what to do."""


def python_paths(checkout: Path | None) -> list[Path]:
    """What the kernel's Python needs: its prefixes and the folders on the sys.path of `python -I` (isolated: not the
    current folder, PYTHONPATH or the user's site-packages, which may hold anything), each once, but none that shows
    the course `checkout` (its solutions and tests): a folder that holds it, or one inside it other than Python's
    own (a virtual environment in the checkout is fine)."""
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    isolated = subprocess.run(
        [sys.executable, "-I", "-c", "import json, sys; print(json.dumps(sys.path))"],
        capture_output=True,
        text=True,
        check=True,
    )
    candidates = prefixes | {Path(p).resolve() for p in json.loads(isolated.stdout) if p}
    paths: list[Path] = []
    for path in sorted(p for p in candidates if p.exists()):
        if checkout is not None and (
            checkout.is_relative_to(path)
            or path.is_relative_to(checkout)
            and not any(path.is_relative_to(prefix) for prefix in prefixes)
        ):
            continue
        if not any(path.is_relative_to(kept) for kept in paths):
            paths.append(path)
    return paths


@dataclass
class Sandbox:
    """How to start a command in a bubblewrap sandbox: `readable` paths are bound read-only where they are,
    `masks` maps a path the sandbox must not see to what it sees there instead (e.g. the installed `starter`
    package to the copy with the answers withheld), `writable` is where the submission's own folder is (a tmpfs);
    each process may hold `memory_mb`, and each writable folder `disk_mb`."""

    readable: list[Path]
    writable: Path
    masks: dict[Path, Path] = field(default_factory=dict)
    memory_mb: int = 6144
    disk_mb: int = 1024

    def to_json(self) -> dict:
        return {
            "readable": [str(p) for p in self.readable],
            "writable": str(self.writable),
            "masks": {str(k): str(v) for k, v in self.masks.items()},
            "memory_mb": self.memory_mb,
            "disk_mb": self.disk_mb,
        }

    @classmethod
    def from_json(cls, data: dict) -> "Sandbox":
        return cls(
            [Path(p) for p in data["readable"]],
            Path(data["writable"]),
            {Path(k): Path(v) for k, v in data["masks"].items()},
            int(data["memory_mb"]),
            int(data["disk_mb"]),
        )

    def command(
        self, argv: list[str], env: dict[str, str], connection: Path | None = None, sockets: Path | None = None
    ) -> list[str]:
        """The bwrap command line that runs `argv` inside, with exactly the environment `env`; the grader's
        `connection` file is bound read-only and its `sockets` folder writable, where they are."""
        disk = str(self.disk_mb * 2**20)
        command = [
            "bwrap",
            "--unshare-all",
            "--unshare-user",
            "--disable-userns",
            "--die-with-parent",
            "--new-session",
            "--uid",
            str(NOBODY),
            "--gid",
            str(NOBODY),
            "--clearenv",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--size",
            disk,
            "--tmpfs",
            "/tmp",
            "--size",
            disk,
            "--tmpfs",
            "/dev/shm",
        ]
        for name in SYSTEM:
            path = Path(name)
            if path.is_symlink():
                command += ["--symlink", os.readlink(path), name]
            elif path.is_dir():
                command += ["--ro-bind", name, name]
        command += [arg for name in SYSTEM_FILES if Path(name).exists() for arg in ("--ro-bind", name, name)]
        for path in sorted(set(self.readable)):
            if not any(path != other and path.is_relative_to(other) for other in self.readable):
                command += ["--ro-bind", str(path), str(path)]
        for hidden, shown in self.masks.items():
            command += ["--ro-bind", str(shown), str(hidden)]
        command += ["--size", disk, "--tmpfs", str(self.writable), "--chdir", str(self.writable)]
        if connection is not None:
            command += ["--ro-bind", str(connection), str(connection)]
        if sockets is not None:
            command += ["--bind", str(sockets), str(sockets)]
        command += ["--remount-ro", "/", "--remount-ro", "/dev"]  # bwrap's own tmpfs under the mounts: not writable
        for key, value in env.items():
            command += ["--setenv", key, value]
        return command + ["--", *limited(argv, self.memory_mb, self.disk_mb)]


def limited(argv: list[str], memory_mb: int, disk_mb: int | None = None, processes: int | None = None) -> list[str]:
    """`argv` run with at most `memory_mb` of data per process (RLIMIT_DATA), no file over `disk_mb`, and at most
    `processes` processes and threads of its user (RLIMIT_NPROC)."""
    limits = [f"--data={memory_mb * 2**20}:{memory_mb * 2**20}"]
    if disk_mb is not None:
        limits.append(f"--fsize={disk_mb * 2**20}:{disk_mb * 2**20}")
    if processes is not None:
        limits.append(f"--nproc={processes}:{processes}")
    return ["prlimit", *limits, "--", *argv]


def check_available() -> None:
    """Raise SandboxUnavailable unless bubblewrap can start a sandbox here."""
    if not shutil.which("bwrap"):
        raise SandboxUnavailable(f"bubblewrap is not installed (`{INSTALL}`)")
    if not shutil.which("prlimit"):
        raise SandboxUnavailable("`prlimit` (util-linux) is not installed")
    probe = subprocess.run(
        [
            "bwrap",
            "--unshare-all",
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--uid",
            str(NOBODY),
            "--size",
            "1048576",
            "--tmpfs",
            "/tmp",
            "true",
        ],
        capture_output=True,
        text=True,
    )
    if "--size" in probe.stderr:
        raise SandboxUnavailable("bubblewrap cannot size a tmpfs (`--size`): version 0.7 or later is needed")
    if probe.returncode != 0:
        raise SandboxUnavailable(
            f"bubblewrap cannot make a sandbox here ({probe.stderr.strip()[:200]}): "
            "user namespaces may be switched off (sysctl kernel.unprivileged_userns_clone)"
        )


def check_runs(sandbox: Sandbox, env: dict[str, str], modules: list[str]) -> None:
    """Raise SandboxUnavailable, naming what it could not read, unless Python inside `sandbox` imports `modules`."""
    code = "; ".join(f"import {m}" for m in modules)
    probe = subprocess.run(sandbox.command([sys.executable, "-c", code], env), capture_output=True, text=True)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or [f"exit code {probe.returncode}"])[-1]
        raise SandboxUnavailable(
            f"Python cannot start inside the sandbox ({last[:300]}): the sandbox binds "
            f"{', '.join(map(str, sandbox.readable))} read-only; each must be readable by the "
            "user that runs the grader"
        )
