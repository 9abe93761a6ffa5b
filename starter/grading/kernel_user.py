"""The kernel's confinement where no sandbox can be made (a container that allows no user namespaces) and the grader
is root: the kernel runs as an unprivileged user of its own, with no groups and no way back to root, each of its
processes limited in memory and file size and that user in processes and threads. What it can read is what file
permissions allow it: whoever installs the grader makes the answers, the hidden tests and the results root's alone.
Unlike the sandbox, it shares the container's network, /tmp and /dev/shm, and nothing it writes there is counted."""

from __future__ import annotations

import os
import pwd
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from starter.grading.sandbox import limited

# Run as root by the kernel's launcher: the grader's connection file, readable by the kernel's group, then the kernel.
LAUNCHER = 'chgrp "$1" "$2" && chmod 640 "$2" && cd "$HOME" && shift 2 && exec "$@"'


@dataclass(frozen=True)
class KernelUser:
    """The user a kernel runs as (`uid`, `gid`), and its limits: `memory_mb` of data per process, no file over
    `disk_mb`, at most `processes` processes and threads of that user together."""

    uid: int
    gid: int
    memory_mb: int = 6144
    disk_mb: int = 1024
    processes: int = 256

    @classmethod
    def named(cls, name: str, memory_mb: int = 6144, disk_mb: int = 1024, processes: int = 256) -> "KernelUser":
        """The user `name` of this system (KeyError where there is none) with these limits."""
        entry = pwd.getpwnam(name)
        return cls(entry.pw_uid, entry.pw_gid, memory_mb, disk_mb, processes)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "KernelUser":
        return cls(**{key: int(value) for key, value in data.items()})

    def become(self) -> list[str]:
        """The command line prefix that runs a command as this user, without groups or new privileges."""
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", "--no-new-privs", "--"]

    def drop(self, argv: list[str]) -> list[str]:
        """`argv` run as this user (`become`), within its limits."""
        return self.become() + limited(argv, self.memory_mb, self.disk_mb, self.processes)

    def kernel_command(self, argv: list[str]) -> list[str]:
        """The kernel spec's command line: as root, make the grader's connection file (`{connection_file}`) readable
        by this user's group and enter the kernel's home ($HOME), then run `argv` as this user (`drop`)."""
        return ["/bin/sh", "-c", LAUNCHER, "sh", str(self.gid), "{connection_file}", *self.drop(argv)]

    def admit(self, folder: Path, env: dict[str, str], sockets: Path) -> None:
        """Let this user run a kernel from the grader's `folder`: it may pass through it (not list it or make anything
        in it), and its home, runtime folder (from the kernel's `env`) and `sockets` folder are its own."""
        folder.chmod(0o711)
        for path in (Path(env["HOME"]), Path(env["JUPYTER_RUNTIME_DIR"]), sockets):
            path.mkdir(exist_ok=True)
            os.chown(path, self.uid, self.gid)

    def readable(self, paths: list[Path]) -> list[Path]:
        """Those of `paths` that this user can read (or, for a folder, list); RuntimeError if it cannot tell."""
        probe = 'for path do test -r "$path" && echo "$path"; done; true'
        result = subprocess.run([*self.become(), "/bin/sh", "-c", probe, "sh", *map(str, paths)], capture_output=True)
        if result.returncode != 0:
            raise RuntimeError(f"cannot run a command as uid {self.uid}: {result.stderr.decode(errors='replace')}")
        return [Path(os.fsdecode(line)) for line in result.stdout.splitlines()]

    def stop_all(self) -> None:
        """Kill every process of this user: what a kernel left running (started in a session of its own, say)."""
        subprocess.run([*self.become(), "/bin/sh", "-c", "kill -KILL -1"], capture_output=True)
