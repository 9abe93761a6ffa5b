"""A submission's Jupyter kernel, seen from the grader: it runs the notebook's cells and answers the checks' requests.

The kernel is started (in its sandbox, when there is one) from a kernel spec whose command line is the sandbox's,
and talks over Unix sockets in the submission's own folder (its network is cut). For each request of a check the
grader sends a silent execution whose only content is a user expression, `__course__.reply('<json>')`: the reply
comes back on the shell channel as the expression's text, and is parsed as data and nothing else.
"""

from __future__ import annotations

import ast
import json
import os
import queue
import shutil
import subprocess
import sys
import time
from pathlib import Path

from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager

from starter.checks import wire
from starter.checks.kernel import Kernel, peak_memory, reset_peak_memory
from starter.grading.sandbox import Sandbox

SOCKET_PATH = 100  # characters of a Unix socket's path (the system's limit is 107)
BOOT = "import starter.checks.serve as _serve\n__course__ = _serve.Server(get_ipython().user_ns)\ndel _serve"


class KernelGone(RuntimeError):
    """The kernel stopped (it exited, was killed for memory, or was stopped after a time-out)."""


class KernelTimeout(RuntimeError):
    """The kernel did not answer in time; it was interrupted."""


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


class RemoteKernel(Kernel):
    """A kernel for one submission, in `folder` (its own, writable), confined by `sandbox` if given."""

    def __init__(
        self,
        folder: Path,
        env: dict[str, str],
        seed: int,
        timeout: float,
        sandbox: Sandbox | None = None,
        memory_mb: int = 6144,
    ):
        super().__init__(seed)
        self.folder, self.timeout = folder, timeout
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        if sandbox is None and shutil.which("prlimit"):
            argv = ["prlimit", f"--data={memory_mb * 2**20}:{memory_mb * 2**20}", "--", *argv]
        spec = folder / "spec" / "kernels" / "grading"
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(
            json.dumps(
                {
                    "argv": sandbox.command(argv, env) if sandbox else argv,
                    "display_name": "grading",
                    "language": "python",
                    "interrupt_mode": "message",
                }
            )
        )
        (folder / "runtime").mkdir()
        if len(str(folder / "runtime" / "k-99")) > SOCKET_PATH:
            raise KernelGone(
                f"the path of the kernel's folder {folder} is too long for its sockets: set TMPDIR to a shorter folder"
            )
        self.manager = KernelManager(
            kernel_name="grading",
            transport="ipc",
            ip=str(folder / "runtime" / "k"),
            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec.parent)]),
            connection_file=str(folder / "runtime" / "connection.json"),
        )
        self.manager.start_kernel(
            cwd=str(folder),
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")} if sandbox else env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.client = self.manager.client()
        self.client.start_channels()
        try:
            self.client.wait_for_ready(timeout=120)
        except RuntimeError as error:
            self.stop()
            raise KernelGone(f"the kernel did not start ({error})") from None
        if self.execute(BOOT) is not None:
            self.stop()
            raise KernelGone("the kernel could not load the course's request server")

    def _reply(self, msg_id: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            if not self.manager.is_alive():
                raise KernelGone("the kernel stopped")
            try:
                message = self.client.get_shell_msg(timeout=min(1.0, max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                if time.monotonic() > deadline:
                    self._interrupt()
                    raise KernelTimeout(f"no answer within {timeout:.0f} s") from None
                continue
            finally:
                self._drain_output()
            if message.get("parent_header", {}).get("msg_id") == msg_id:
                return message.get("content", {})

    def _interrupt(self) -> None:
        """Interrupt what runs, and wait (a while) for the kernel to be ready again; stop it if it is not."""
        self.manager.interrupt_kernel()
        msg_id = self.client.kernel_info()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.manager.is_alive():
            try:
                message = self.client.get_shell_msg(timeout=1)
            except queue.Empty:
                continue
            if message.get("parent_header", {}).get("msg_id") == msg_id:
                return
        self.stop()

    def _drain_output(self) -> None:
        """Discard what the kernel printed: the grader reads nothing it prints."""
        while True:
            try:
                self.client.get_iopub_msg(timeout=0)
            except queue.Empty:
                return

    def execute(self, source: str) -> str | None:
        """Run a cell; None if it ran, else what went wrong (an exception's name, a time-out)."""
        msg_id = self.client.execute(source, store_history=False, allow_stdin=False)
        try:
            content = self._reply(msg_id, self.timeout)
        except KernelTimeout:
            return f"timed out after {self.timeout:.0f} s"
        return None if content.get("status") == "ok" else str(content.get("ename", "error"))

    def transport(self, message: dict, measure: bool) -> tuple[dict, int | None]:
        expression = f"__course__.reply({wire.dumps(message)!r})"
        pids = descendants(self.manager.provisioner.process.pid) if measure and self.manager.provisioner else []
        before = sum(peak_memory(pid) or 0 for pid in pids if reset_peak_memory(pid)) if pids else None
        msg_id = self.client.execute(
            "", silent=True, store_history=False, allow_stdin=False, user_expressions={"reply": expression}
        )
        content = self._reply(msg_id, self.timeout)
        grown = sum(peak_memory(pid) or 0 for pid in pids) - before if before is not None else None
        result = content.get("user_expressions", {}).get("reply", {})
        if result.get("status") != "ok":
            raise wire.WireError(f"the request failed in the kernel ({result.get('ename', content.get('status'))})")
        try:
            text = ast.literal_eval(result.get("data", {}).get("text/plain", ""))
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise wire.WireError("a reply that is not a string") from None
        return wire.loads(text), grown

    def stop(self) -> None:
        try:
            self.client.stop_channels()
        finally:
            if self.manager.has_kernel:
                self.manager.shutdown_kernel(now=True)
