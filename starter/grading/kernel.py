"""A submission's Jupyter kernel, seen from the grader: it runs the notebook's cells and answers the checks' requests.

The kernel is started (in its sandbox and its cgroup, when there are) from a kernel spec whose command line is the
sandbox's, or, with a sandbox and a cgroup, forked into that sandbox by the kernel server, which imported torch once
(`preloaded`). It talks over Unix sockets (its network is cut). Nothing it controls decides what the grader touches:
the spec and the connection file are in a folder of the grader's (the connection file bound read-only into the
sandbox), and the sockets' folder, the only one it can write outside its tmpfs, is removed as soon as the grader is
connected, before any student code runs, so that nothing can be made there again. The grader listens on the shell
and control channels only (what the kernel prints never reaches it), drops unread any message over
MESSAGE_LIMIT (ZMQ's MAXMSGSIZE) and checks its deadline on every message.

For each request of a check the grader sends a silent execution whose only content is a user expression,
`__course__.reply('<json>')`: the reply comes back on the shell channel as the expression's text, and is parsed as
data and nothing else (a string literal, checked to be one before it is parsed).
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import zmq
from jupyter_client import KernelManager
from jupyter_client.channels import ZMQSocketChannel
from jupyter_client.kernelspec import KernelSpecManager

from starter.checks.kernel import Kernel, peak_memory, reset_peak_memory
from starter.grading.budget import Cgroup, read
from starter.grading.kernel_user import KernelUser
from starter.grading.preloaded import PLACEHOLDER, EnterFailed, start_kernel
from starter.grading.sandbox import SOCKET_PATH, Sandbox, limited
from starter.grading.scratch import remove_tree
from starter.probes import wire

BOOT = "import starter.probes.serve as _serve\n__course__ = _serve.Server(get_ipython().user_ns)\ndel _serve"
MESSAGE_LIMIT = 2 * wire.REPLY_LIMIT + 2**20  # bytes of a message from the kernel: a reply, quoted twice, and more
QUEUE = 4  # messages a socket keeps unread (ZMQ's receive high-water mark)
START = 120  # seconds for a kernel to start
GRACE = 10  # seconds for an interrupted kernel to answer again (at most its cell time-out)
STRING = re.compile(r"""'[^'\\\n]*+(?:\\.[^'\\\n]*+)*+'|"[^"\\\n]*+(?:\\.[^"\\\n]*+)*+\"""")  # one literal


class KernelGone(RuntimeError):
    """The kernel stopped (it exited, was killed for memory, or was stopped after a time-out)."""


class KernelTimeout(KernelGone):
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


def placeholder(root: int, deadline: float) -> int:
    """The process id of the sandbox's placeholder below `root` (bubblewrap's process), once it runs; EnterFailed
    if it does not by `deadline` (time.monotonic)."""
    while time.monotonic() < deadline:
        for pid in descendants(root)[1:]:
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/exe") == os.path.realpath(PLACEHOLDER[0]):
                    return pid
        time.sleep(0.01)
    raise EnterFailed("the sandbox did not start its placeholder")


def resident_memory(pid: int) -> int | None:
    """A process's resident memory now (bytes), or None where /proc does not say."""
    try:
        return int(re.search(r"VmRSS:\s+(\d+)", (Path("/proc") / str(pid) / "status").read_text())[1]) * 1024
    except (OSError, TypeError):
        return None


def guarded_context() -> zmq.Context:
    """A ZMQ context whose sockets drop, unread, any message part over MESSAGE_LIMIT, and keep at most QUEUE."""
    context = zmq.Context()
    context.setsockopt(zmq.MAXMSGSIZE, MESSAGE_LIMIT)
    context.setsockopt(zmq.RCVHWM, QUEUE)
    return context


def receive(channel: ZMQSocketChannel, timeout: float) -> dict | None:
    """The next message on `channel` within `timeout` seconds, its size checked before it is parsed; None if none
    came, or what came is too big or not a message of the protocol."""
    if not channel.socket.poll(int(timeout * 1000)):
        return None
    parts = channel.socket.recv_multipart(zmq.NOBLOCK)
    if sum(len(part) for part in parts) > MESSAGE_LIMIT:
        return None
    try:
        return channel.session.deserialize(channel.session.feed_identities(parts)[1])
    except Exception:  # a kernel can send anything: what is not a signed message of the protocol is dropped
        return None


def reply_text(plain: object) -> str:
    """The string whose repr the kernel sent as the expression's text; WireError unless it is one string literal
    (checked before it is parsed, so that no other expression is ever parsed)."""
    if not isinstance(plain, str) or len(plain) > MESSAGE_LIMIT or not STRING.fullmatch(plain):
        raise wire.WireError("a reply that is not a string")
    return ast.literal_eval(plain)


class RemoteKernel(Kernel):
    """A kernel for one submission, in `folder` (the grader's; in the sandbox, the kernel's own tmpfs is there),
    confined by `sandbox`, else run as `user` if given, and limited by `cgroup` if given (else its processes by
    `memory_mb` each). With a sandbox and a cgroup, the kernel server at `server` (see `preloaded`) puts a kernel
    into the sandbox; where it cannot, the sandbox starts one itself."""

    def __init__(
        self,
        folder: Path,
        env: dict[str, str],
        seed: int,
        timeout: float,
        sandbox: Sandbox | None = None,
        memory_mb: int = 6144,
        cgroup: Cgroup | None = None,
        user: KernelUser | None = None,
        server: str | None = None,
    ):
        super().__init__(seed)
        self.folder, self.timeout, self.cgroup = folder, timeout, cgroup
        self.stopped: str | None = None  # why the grader stopped the kernel, once it has
        self.baseline: int | None = None  # its memory before any student code ran (`mark_baseline`)
        self.forked: int | None = None  # a pidfd of the kernel, where the kernel server started it
        sockets, connection = folder / "sockets", folder / "connection.json"
        if len(str(sockets / "k-99")) > SOCKET_PATH:
            raise KernelGone(
                f"the path of the kernel's folder {folder} is too long for its sockets: set TMPDIR to a shorter folder"
            )
        sockets.mkdir()
        if server and sandbox and cgroup:
            self.fallback = self._enter(server, sandbox, cgroup, env)
        else:
            self.fallback = "no kernel server" if server is None else "no sandbox or no cgroup"
        if self.fallback is not None:  # why the server did not start the kernel (None: it did)
            argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
            if sandbox:
                argv = sandbox.command(argv, env, connection, sockets)
            elif user:
                user.admit(folder, env, sockets)
                argv = user.kernel_command(argv)
            else:
                Path(env["HOME"]).mkdir(exist_ok=True)  # else IPython leaves a folder of its own in TMPDIR
                argv = limited(argv, memory_mb)
            self._launch(argv, env, sandbox, cgroup)
        self.client = self.manager.client(context=self.manager.context)
        self.client.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=True)
        try:
            self._connected(sockets)
        except KernelGone as error:
            self.stop()
            raise KernelGone(f"the kernel did not start ({error})") from None
        if self.execute(BOOT) is not None:
            self.stop()
            raise KernelGone("the kernel could not load the course's request server")

    def _enter(self, server: str, sandbox: Sandbox, cgroup: Cgroup, env: dict[str, str]) -> str | None:
        """Start the sandbox with its placeholder and have the kernel server put a kernel into it; None if it did,
        else why not (the sandbox is then stopped)."""
        sockets, connection = self.folder / "sockets", self.folder / "connection.json"
        self._launch(sandbox.command(PLACEHOLDER, env, connection, sockets), env, sandbox, cgroup)
        try:
            target = placeholder(self.manager.provisioner.process.pid, time.monotonic() + START)
            cgroups = [str(folder / "cgroup.procs") for folder in cgroup.folders]
            pid = start_kernel(server, target, cgroups, env, str(self.folder), str(connection))
            if str(pid) not in (cgroup.folders[0] / "cgroup.procs").read_text().split():
                raise EnterFailed("the kernel the server started is not in its cgroup")
            self.forked = os.pidfd_open(pid)  # its parent is the server's fork: bubblewrap does not see it end
            return None
        except (EnterFailed, OSError) as error:
            self.manager.shutdown_kernel(now=True)
            self.manager.context.destroy(linger=0)
            return str(error)

    def _launch(self, argv: list[str], env: dict[str, str], sandbox: Sandbox | None, cgroup: Cgroup | None) -> None:
        """Start `argv` (in `cgroup`, if given) as the kernel's process, from a kernel spec in the grader's folder."""
        specs = self._spec(cgroup.launcher(argv) if cgroup else argv)
        self.manager = KernelManager(
            kernel_name="grading",
            transport="ipc",
            ip=str(self.folder / "sockets" / "k"),
            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(specs)]),
            connection_file=str(self.folder / "connection.json"),
            context=guarded_context(),
        )
        self.manager.start_kernel(
            cwd=str(self.folder),
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")} if sandbox else env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def _spec(self, argv: list[str]) -> Path:
        """Write the kernel spec that starts `argv` in the grader's folder; returns the folder of kernel specs."""
        spec = self.folder / "spec" / "kernels" / "grading"
        spec.mkdir(parents=True, exist_ok=True)
        kernel = {"argv": argv, "display_name": "grading", "language": "python", "interrupt_mode": "message"}
        (spec / "kernel.json").write_text(json.dumps(kernel))
        return spec.parent

    def _connected(self, sockets: Path) -> None:
        """Wait until the kernel answers on the shell and the control channel, then remove its sockets' folder (the
        connections stay; no new file can be made where it was)."""
        deadline = time.monotonic() + START
        self._await(self.client.shell_channel, self.client.kernel_info(), deadline)
        request = self.client.session.msg("kernel_info_request")
        self.client.control_channel.send(request)
        self._await(self.client.control_channel, request["header"]["msg_id"], deadline)
        remove_tree(sockets)

    def _await(self, channel: ZMQSocketChannel, msg_id: str, deadline: float) -> dict:
        """The content of the reply to `msg_id` on `channel`; KernelTimeout once `deadline` is past, which is
        checked on every message, whatever the kernel sends."""
        while True:
            if self.stopped:
                raise KernelGone(self.stopped)
            left = deadline - time.monotonic()
            if left <= 0:
                raise KernelTimeout(f"no answer within {self.timeout:.0f} s")
            if not self._running():
                raise KernelGone("the kernel stopped")
            message = receive(channel, min(1.0, left))
            if message is not None and message.get("parent_header", {}).get("msg_id") == msg_id:
                return message.get("content", {})

    def _reply(self, msg_id: str) -> dict:
        """The reply to the request `msg_id`; after a time-out the kernel is interrupted, and stopped if it does
        not answer again within GRACE seconds (or the cell time-out, if shorter)."""
        try:
            return self._await(self.client.shell_channel, msg_id, time.monotonic() + self.timeout)
        except KernelTimeout:
            self._interrupt(msg_id)
            raise

    def _interrupt(self, msg_id: str) -> None:
        """Interrupt what runs and wait for its reply; stop the kernel if none comes within GRACE seconds (or the cell
        time-out, if shorter)."""
        self.client.control_channel.send(self.client.session.msg("interrupt_request"))
        try:
            self._await(self.client.shell_channel, msg_id, time.monotonic() + min(GRACE, self.timeout))
        except KernelGone:
            self.stop(f"a cell timed out after {self.timeout:.0f} s and ignored the interrupt: its kernel was stopped")

    def _running(self) -> bool:
        """Whether the kernel's process runs: bubblewrap's, and the forked kernel's where the server started it."""
        ended = self.forked is not None and select.select([self.forked], [], [], 0)[0]  # a pidfd reads once it ends
        return self.manager.is_alive() and not ended

    @property
    def alive(self) -> bool:
        return self.stopped is None and self._running()

    def execute(self, source: str) -> str | None:
        """Run a cell; None if it ran, else what went wrong (an exception's name, a time-out, a kernel gone)."""
        if not self.alive:
            return self.stopped or "the kernel stopped"
        msg_id = self.client.execute(source, store_history=False, allow_stdin=False)
        try:
            content = self._reply(msg_id)
        except KernelTimeout:
            return f"timed out after {self.timeout:.0f} s"
        except KernelGone as error:
            return str(error)
        return None if content.get("status") == "ok" else str(content.get("ename", "error"))

    def transport(self, message: dict, measure: bool) -> tuple[dict, int | None]:
        if self.stopped:
            raise KernelGone(self.stopped)
        expression = f"__course__.reply({wire.dumps(message)!r})"
        with self._measuring(measure) as grown:
            msg_id = self.client.execute(
                "", silent=True, store_history=False, allow_stdin=False, user_expressions={"reply": expression}
            )
            content = self._reply(msg_id)
            growth = grown()
        result = content.get("user_expressions", {}).get("reply", {})
        if not isinstance(result, dict) or result.get("status") != "ok":
            raise wire.WireError("the request failed in the kernel")
        data = result.get("data")
        return wire.loads(reply_text(data.get("text/plain") if isinstance(data, dict) else None)), growth

    def _pids(self) -> list[int]:
        return descendants(self.manager.provisioner.process.pid) if self.manager.provisioner else []

    def usage(self) -> int | None:
        """The memory the kernel holds now: its cgroup's usage; without one, the sum over its processes."""
        if self.cgroup is not None:
            name = "memory.current" if self.cgroup.version == 2 else "memory.usage_in_bytes"
            return int(read(self.cgroup.folders[0] / name))
        pids = self._pids()
        return sum(resident_memory(pid) or 0 for pid in pids) if pids else None

    def mark_baseline(self) -> None:
        """Remember what the kernel holds now (before the first cell of student code), so that a measured request
        counts what student code took earlier and still holds as grown too (memory written into before the
        request is not seen by a peak measured from the request's start)."""
        with contextlib.suppress(OSError, ValueError):
            self.baseline = self.usage()

    @contextlib.contextmanager
    def _measuring(self, measure: bool) -> Iterator[Callable[[], int | None]]:
        """Yields what says how much the kernel's peak memory grew meanwhile: its cgroup's, all its processes
        included; without one, the sum over its processes as they were on entry; nothing unless `measure`. Growth
        counts from the baseline (`mark_baseline`) where the kernel held more than that on entry."""
        if not measure:
            yield lambda: None
            return
        if self.cgroup is not None:
            with self.cgroup.measuring() as grown:
                start = self.usage()  # read once the peak is counted: what is charged after this is in the peak
                yield lambda: self._above_baseline(grown(), start)
        else:
            pids = self._pids()
            before = sum(peak_memory(pid) or 0 for pid in pids if reset_peak_memory(pid)) if pids else None
            yield (
                lambda: (
                    self._above_baseline(sum(peak_memory(pid) or 0 for pid in pids) - before, before)
                    if before is not None
                    else None
                )
            )

    def _above_baseline(self, grown: int | None, start: int | None) -> int | None:
        """`grown` (a peak above the usage `start` on a request's entry), counted from the baseline if lower."""
        if grown is None or start is None or self.baseline is None:
            return grown
        return grown + max(0, start - self.baseline)

    def stop(self, reason: str = "the kernel was stopped") -> None:
        """Stop the kernel (once), saying why."""
        if self.stopped:
            return
        self.stopped = reason
        try:
            self.client.stop_channels()
        finally:
            if self.manager.has_kernel:
                self.manager.shutdown_kernel(now=True)
            self.manager.context.destroy(linger=0)
            if self.forked is not None:
                os.close(self.forked)
