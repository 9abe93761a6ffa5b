"""Grading kernels that do not pay their imports: a server imports torch and ipykernel once, and each kernel is a
fork of it that enters a sandbox bubblewrap has made before it runs a line of the submission's code.

A kernel started the usual way spends about 4 CPU seconds importing torch, torch._dynamo and ipykernel before it
runs anything. Here bubblewrap builds the sandbox exactly as for such a kernel (see `sandbox`), with a placeholder
command (`PLACEHOLDER`) in it, in the kernel's cgroup and limits. The server, asked by the grader, forks; the fork
joins the cgroup, copies the placeholder's limits and enters its namespaces (user, mount, PID, network, IPC, UTS,
cgroup); its child, now inside the sandbox's PID namespace, takes the placeholder's credentials (uid, gid, no groups,
no capabilities, its bounding set, no new privileges, its umask), a session of its own, the kernel's environment
and folder, closes every file the server held, and becomes the ipykernel. When it ends, the fork kills the
placeholder, and bubblewrap ends the sandbox; when the sandbox ends, the kernel dies with it.

The server runs this file as a script (`RUN`), so that it imports nothing of the course: a fork holds the server's
memory, which must hold nothing of the grader's (and not with -I, whose flags would change the kernel's sys.path).
It starts with the kernels' thread limits as its only environment. It listens on an abstract Unix socket (no file
to leave behind; each sandbox has a network namespace of its own, so no kernel can reach it), and serves only
processes of the grader's own user, which in turn talks only to a server of its own user. Each connection is
forked at once and read by the fork, so that nothing of one request stays in the server for the next.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import resource
import secrets
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

PLACEHOLDER = ["/bin/sleep", "infinity"]  # what the sandbox runs until a fork of the server takes its place
RUN = "import runpy, sys; del sys.path[0]; runpy.run_path({script!r}, run_name='__main__')"  # not from its folder
PRELOAD = ("torch", "torch._dynamo", "ipykernel.kernelapp", "ipykernel.ipkernel")
NAMESPACES = {  # a sandbox's namespaces (see `_enter_namespaces` for the order they are entered in)
    "user": 0x10000000,
    "mnt": 0x00020000,
    "pid": 0x20000000,
    "net": 0x40000000,
    "ipc": 0x08000000,
    "uts": 0x04000000,
    "cgroup": 0x02000000,
}
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
CAPABILITY_VERSION_3 = 0x20080522
REQUEST_LIMIT = 2**20  # bytes of a request
START = 60  # seconds for a fork to enter a sandbox and say so


class EnterFailed(RuntimeError):
    """The server could not put a kernel into the sandbox: the message says why."""


# ---------------------------------------------------------------------------------------------- the grader's side


class Server:
    """A running server: its process and the address of the socket it listens on."""

    def __init__(self, threads_env: dict[str, str]):
        self.address = f"\0discrete-latents-kernels-{os.getpid()}-{secrets.token_hex(16)}"  # abstract: no file
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.address)
        listener.listen(16)
        self.process = subprocess.Popen(
            [sys.executable, "-s", "-c", RUN.format(script=__file__), str(listener.fileno())],
            env=threads_env,  # a kernel's /proc/self/environ shows this: nothing of the grader's
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=[listener.fileno()],
        )
        listener.close()

    def stop(self) -> None:
        """Stop the server (the kernels it started live in their sandboxes and end with them)."""
        self.process.kill()
        self.process.wait()


def start_kernel(address: str, target: int, cgroups: list[str], env: dict[str, str], cwd: str, connection: str) -> int:
    """Ask the server at `address` for a kernel in the sandbox whose placeholder is the process `target`, in the
    cgroup whose `cgroup.procs` files are `cgroups`; returns the kernel's process id, or raises EnterFailed."""
    request = {"target": target, "cgroups": cgroups, "env": env, "cwd": cwd, "connection": connection}
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.settimeout(START)
            server.connect(address)
            if _peer_uid(server) != os.getuid():
                raise EnterFailed("the kernel server's socket belongs to another user")
            server.sendall(json.dumps(request).encode() + b"\n")
            reply = json.loads(_read_line(server) or b"{}")
    except (OSError, ValueError) as error:
        raise EnterFailed(f"the kernel server did not answer ({error})") from None
    if not isinstance(reply.get("pid"), int):
        raise EnterFailed(str(reply.get("error", "the kernel server gave no answer")))
    return reply["pid"]


def _peer_uid(connection: socket.socket) -> int:
    """The user id of the process at the other end of the Unix socket `connection`."""
    _, uid, _ = struct.unpack("3i", connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    return uid


def _read_line(connection: socket.socket) -> bytes:
    """One line (at most REQUEST_LIMIT bytes) from `connection`, without its newline."""
    data = b""
    while not data.endswith(b"\n") and len(data) < REQUEST_LIMIT:
        part = connection.recv(65536)
        if not part:
            break
        data += part
    return data.rstrip(b"\n")


_SERVERS: dict[tuple, Server] = {}


def shared(threads_env: dict[str, str]) -> Server:
    """This process's server for kernels with these thread limits (started on first use, stopped at exit)."""
    key = tuple(sorted(threads_env.items()))
    server = _SERVERS.get(key)
    if server is None or server.process.poll() is not None:
        if not _SERVERS:
            atexit.register(stop_all)
        server = _SERVERS[key] = Server(threads_env)
    return server


def stop_all() -> None:
    """Stop every server this process started."""
    while _SERVERS:
        _SERVERS.popitem()[1].stop()


def placeholder(root: int, deadline: float) -> int:
    """The process id of the sandbox's placeholder below `root` (bubblewrap's process), once it runs; EnterFailed
    if it does not by `deadline` (time.monotonic)."""
    while time.monotonic() < deadline:
        for pid in _descendants(root):
            try:
                if os.readlink(f"/proc/{pid}/exe") == os.path.realpath(PLACEHOLDER[0]):
                    return pid
            except OSError:
                continue
        time.sleep(0.01)
    raise EnterFailed("the sandbox did not start its placeholder")


def _descendants(root: int) -> list[int]:
    """The processes below `root` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], list(children.get(root, []))
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


# ---------------------------------------------------------------------------------------------- the server's side


_libc = ctypes.CDLL(None, use_errno=True)


def _call(name: str, *args: int) -> None:
    """Call the C library's `name`; OSError on failure."""
    if getattr(_libc, name)(*args) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{name}: {os.strerror(error)}")


class _CapabilityHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapabilityData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _drop_capabilities() -> None:
    """No capability left: effective, permitted, inheritable and ambient."""
    _call("prctl", PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header, data = _CapabilityHeader(CAPABILITY_VERSION_3, 0), (_CapabilityData * 2)()
    _call("capset", ctypes.byref(header), ctypes.byref(data))


def _status(pid: int) -> dict[str, str]:
    """The fields of /proc/`pid`/status."""
    with open(f"/proc/{pid}/status") as status:
        return dict(line.split(":\t", 1) for line in status.read().splitlines() if ":\t" in line)


def serve(listening: int) -> None:
    """Import what every kernel needs, then fork a kernel for each connection on the socket `listening`, for ever."""
    for module in PRELOAD:
        __import__(module)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # forks are reaped by the system
    _call("prctl", PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # the server dies with the grader
    listener = socket.socket(fileno=listening)
    while True:
        connection, _ = listener.accept()
        if os.fork() == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            listener.close()
            _enter(connection)
        connection.close()


def _enter(connection: socket.socket) -> None:
    """In a fork of the server: read the request, enter the sandbox, start the kernel in it; never returns."""
    try:
        _call("prctl", PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if _peer_uid(connection) != os.getuid():
            raise PermissionError("only the grader's user may ask for a kernel")
        request = json.loads(_read_line(connection))
        target = int(request["target"])
        handle = os.pidfd_open(target)
        namespaces = {name: os.open(f"/proc/{target}/ns/{name}", os.O_RDONLY) for name in NAMESPACES}
        status = _status(target)
        limits = {r: resource.prlimit(target, r) for r in _limits()}
        signal.pidfd_send_signal(handle, 0)  # still the process those files were read from
        for path in request["cgroups"]:
            with open(path, "w") as procs:
                procs.write(str(os.getpid()))
        _enter_namespaces(namespaces)
        for which, value in limits.items():
            resource.setrlimit(which, value)
        ready_read, ready_write = os.pipe()
        kernel = os.fork()
        if kernel == 0:
            os.close(ready_read)
            connection.detach()  # closed below with every other descriptor of the server's
            _become_kernel(request, status, ready_write)
        os.close(ready_write)
        with os.fdopen(ready_read, "rb") as ready:
            said = ready.read(4096).decode(errors="replace")
        if said != "ok":
            connection.sendall(json.dumps({"error": said or "the kernel's process ended at once"}).encode() + b"\n")
            os._exit(1)
        connection.sendall(json.dumps({"pid": kernel}).encode() + b"\n")
        connection.close()
        os.waitpid(kernel, 0)
        signal.pidfd_send_signal(handle, signal.SIGKILL)  # the sandbox ends with its kernel
        os._exit(0)
    except BaseException as error:  # noqa: BLE001 - whatever it is, the grader is told, and the fork ends
        try:
            connection.sendall(json.dumps({"error": f"{type(error).__name__}: {error}"}).encode() + b"\n")
        finally:
            os._exit(1)


def _enter_namespaces(namespaces: dict[str, int]) -> None:
    """setns into each of `namespaces` ({name: descriptor}), as nsenter does: first every one but the user namespace
    (with the rights this process has, as root), then the user namespace and those that needed its rights."""
    left = dict(namespaces)
    for name in [n for n in NAMESPACES if n != "user"]:
        with contextlib.suppress(PermissionError):
            _call("setns", left[name], NAMESPACES[name])
            os.close(left.pop(name))
    for name in NAMESPACES:
        if name in left:
            _call("setns", left[name], NAMESPACES[name])
            os.close(left.pop(name))


def _limits() -> list[int]:
    """Every resource limit this system has."""
    return [getattr(resource, name) for name in dir(resource) if name.startswith("RLIMIT_")]


def _become_kernel(request: dict, status: dict[str, str], ready: int) -> None:
    """In the sandbox's namespaces: take the placeholder's credentials, the kernel's environment and folder, close
    what the server held, say "ok" on `ready`, then run the ipykernel; never returns."""
    try:
        _call("prctl", PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        os.setsid()
        status = _status(int(status["NSpid"].split()[-1]))  # as seen from the sandbox: its ids, not the system's
        bounding = int(status["CapBnd"], 16)
        for capability in range(int(Path("/proc/sys/kernel/cap_last_cap").read_text()) + 1):
            if not bounding >> capability & 1:
                _call("prctl", PR_CAPBSET_DROP, capability, 0, 0, 0)
        uid, gid = int(status["Uid"].split()[0]), int(status["Gid"].split()[0])
        groups = [int(g) for g in status["Groups"].split()]
        try:
            os.setgroups(groups)
        except PermissionError:  # a namespace that denies setgroups: the groups are those of its creation
            if os.getgroups() != groups:
                raise
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        _drop_capabilities()
        _call("prctl", PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        _call("prctl", PR_SET_DUMPABLE, 1, 0, 0, 0)  # as after an execve: the kernel may read its own /proc
        os.umask(int(status["Umask"], 8))
        os.chdir(request["cwd"])
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.closerange(3, ready)
        os.closerange(ready + 1, 2**31 - 1)  # all, whatever the limit copied above
        env = {"PWD": request["cwd"], **request["env"]}  # bubblewrap sets PWD where it starts the command
        if not {"LC_ALL", "LC_CTYPE", "LANG"} & set(env) and "LC_CTYPE" in os.environ:
            env["LC_CTYPE"] = os.environ["LC_CTYPE"]  # set by Python's locale coercion (PEP 538), as in the kernel's
        os.environ.clear()
        os.environ.update(env)
        threads = request["env"].get("OMP_NUM_THREADS", "")
        if threads.isdigit():  # torch read the server's when it was imported
            sys.modules["torch"].set_num_threads(int(threads))
        sys.path[:0] = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p]  # as ipykernel's has it
        sys.argv = [sys.executable, "-m", "ipykernel_launcher", "-f", request["connection"]]
        os.write(ready, b"ok")
        os.close(ready)
    except BaseException as error:  # noqa: BLE001 - told to the fork, which tells the grader
        os.write(ready, f"{type(error).__name__}: {error}".encode()[:4000])
        os._exit(1)
    from ipykernel import kernelapp

    kernelapp.launch_new_instance(argv=["-f", request["connection"]])
    os._exit(0)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
