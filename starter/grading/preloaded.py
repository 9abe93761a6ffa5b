"""Grading kernels that do not pay their imports: a server imports torch, ipykernel and matplotlib once, and each
kernel is a fork of it that enters a sandbox bubblewrap has made before it runs a line of the submission's code.

A kernel started the usual way spends about 4 CPU seconds importing torch, torch._dynamo and ipykernel before it
runs anything, and 0.6 s more on matplotlib at its first figure (most set-up cells draw one). Here bubblewrap builds
the sandbox exactly as for such a kernel (see `sandbox`), with a placeholder command (`PLACEHOLDER`) in it, in the
kernel's cgroup and limits. The server, asked by the grader, forks; the fork checks that the placeholder is in the
kernel's (new) cgroup, copies its limits and enters its namespaces (user, mount, PID, network, IPC, UTS, cgroup),
and forks the kernel, which it puts into that cgroup before the kernel does anything. The kernel, inside the
sandbox's PID namespace, takes the placeholder's credentials (uid, gid, groups, no capabilities, its bounding set,
no new privileges, its umask), a session of its own, the kernel's environment and folder, closes every file the
server held, and runs ipykernel. The fork, outside the kernel's cgroup (so that the kernel's memory cannot get it
killed), waits for the kernel (reaping what the kernel made its siblings) and then kills the placeholder: bubblewrap
ends the sandbox when the kernel ends, and the kernel dies with the sandbox, as bubblewrap's own command would. The
grader also watches the kernel's process itself, in case the fork was killed.

Differences remain. Memory pages the kernel shares with the server, copy-on-write, are charged to the server's cgroup
until the kernel writes them, and then to the kernel's (the collector is kept off them: `gc.freeze`), so a request
that touches many of them is measured a few MB larger than in a kernel that imported torch itself. matplotlib was
set up outside the sandbox, from an empty folder (no matplotlibrc, no user's fonts; its rcParams are the kernel's,
tested): its font list is of the system's fonts as the server saw them, and the configuration and cache folders it
reports are that folder, removed.

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
import fcntl
import gc
import json
import os
import resource
import secrets
import signal
import socket
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

PLACEHOLDER = ["/bin/sleep", "infinity"]  # what the sandbox runs until a fork of the server takes its place
RUN = (  # dies with the grader (checked: not already orphaned), imports nothing from its folder
    "import ctypes, os, runpy, sys; ctypes.CDLL(None).prctl(1, 9); os.getppid() == int(sys.argv[2]) or os._exit(1); "
    "del sys.path[0]; runpy.run_path({script!r}, run_name='__main__')"
)
PRELOAD = ("torch", "torch._dynamo", "ipykernel.kernelapp", "ipykernel.ipkernel", "matplotlib.pyplot")
# ipykernel's backend for every kernel. Its module is not preloaded: imported in a kernel at its first figure, it
# hooks into the kernel's shell (figures shown at the end of a cell) as in a kernel started the usual way.
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
NAMESPACES = {  # a sandbox's namespaces (see `_enter_namespaces` for the order they are entered in)
    "user": 0x10000000,
    "mnt": 0x00020000,
    "pid": 0x20000000,
    "net": 0x40000000,
    "ipc": 0x08000000,
    "uts": 0x04000000,
    "cgroup": 0x02000000,
}
PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 4, 24, 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
CAPABILITY_VERSION_3 = 0x20080522
NS_GET_PARENT = 0xB702  # ioctl: the user namespace that owns a user namespace
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
            [sys.executable, "-s", "-c", RUN.format(script=__file__), str(listener.fileno()), str(os.getpid())],
            env=threads_env,  # a kernel's /proc/self/environ shows this: nothing of the grader's
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=[listener.fileno()],
            start_new_session=True,  # not stopped by a Ctrl-C meant for the grader, which stops it itself
        )
        listener.close()

    def stop(self) -> None:
        """Stop the server (the kernels it started live in their sandboxes and end with them)."""
        self.process.kill()
        self.process.wait()


def start_kernel(address: str, target: int, cgroups: list[str], env: dict[str, str], cwd: str, connection: str) -> int:
    """Ask the server at `address` for a kernel in the sandbox whose placeholder is the process `target`, in the
    cgroup whose `cgroup.procs` files are `cgroups`; returns the kernel's process id (EnterFailed if none)."""
    request = {"target": target, "cgroups": cgroups, "env": env, "cwd": cwd, "connection": connection}
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.settimeout(START)
            server.connect(address)
            if _peer(server)[1] != os.getuid():
                raise EnterFailed("the kernel server's socket belongs to another user")
            server.sendall(json.dumps(request).encode() + b"\n")
            reply = json.loads(_read_line(server) or b"{}")
    except (OSError, ValueError) as error:
        raise EnterFailed(f"the kernel server did not answer ({error})") from None
    if not isinstance(reply.get("pid"), int):
        raise EnterFailed(str(reply.get("error", "the kernel server gave no answer")))
    return reply["pid"]


def _peer(connection: socket.socket) -> tuple[int, int]:
    """The process id and user id of the process at the other end of the Unix socket `connection`."""
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _ = struct.unpack("3i", credentials)
    return pid, uid


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


def serve(listening: int) -> str:
    """Import what every kernel needs, then fork for each connection on the socket `listening`, for ever; returns
    only in a kernel, with its connection file (so that the kernel runs from the top of the stack)."""
    with tempfile.TemporaryDirectory() as empty:  # matplotlib reads nothing of the grader's: no matplotlibrc, no fonts
        folder = os.getcwd()
        os.chdir(empty)
        os.environ.update(HOME=empty, MPLCONFIGDIR=empty, MPLBACKEND=INLINE_BACKEND)
        for module in PRELOAD:
            __import__(module)
        os.chdir(folder)
    gc.freeze()  # never scanned again: the collector does not copy the imports' pages into every kernel
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # forks are reaped by the system
    listener = socket.socket(fileno=listening)
    while True:
        connection, _ = listener.accept()
        if os.fork() == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            listener.close()
            return _enter(connection)
        connection.close()


def _enter(connection: socket.socket) -> str:
    """In a fork of the server: read the request, enter the sandbox, start the kernel in it and tell the grader;
    then wait for the kernel and end the sandbox with it. Returns only in the kernel."""
    try:
        if not _from_the_grader(connection):
            raise PermissionError("only the grader's user, outside any sandbox, may ask for a kernel")
        request = json.loads(_read_line(connection))
        target = int(request["target"])
        placeholder = os.pidfd_open(target)
        for procs in request["cgroups"]:  # a fresh cgroup for each kernel: not a process that took the number since
            if str(target) not in Path(procs).read_text().split():
                raise PermissionError("the placeholder is not in the kernel's cgroup")
        cgroups = [os.open(procs, os.O_WRONLY) for procs in request["cgroups"]]
        namespaces = {name: os.open(f"/proc/{target}/ns/{name}", os.O_RDONLY) for name in NAMESPACES}
        status = _status(target)
        limits = {which: resource.prlimit(target, which) for which in _limits()}
        signal.pidfd_send_signal(placeholder, 0)  # still alive: what was read above is the placeholder's
        if _label(str(target)) != _label("self"):
            raise PermissionError("the sandbox runs under another security label (AppArmor, SELinux) than the server")
        _enter_namespaces(namespaces)
        go_read, go_write = os.pipe()
        ready_read, ready_write = os.pipe()
        kernel = os.fork()
        if kernel == 0:
            os.close(go_write), os.close(ready_read)
            connection.detach()  # closed below with every other descriptor of the server's
            if os.read(go_read, 2) != b"go":  # not before it is in the kernel's cgroup
                os._exit(1)
            for which, value in limits.items():
                resource.setrlimit(which, value)
            return _become_kernel(request, int(status["NSpid"].split()[-1]), ready_write)
        os.close(go_read), os.close(ready_write)
        for procs in cgroups:  # the kernel's, not this fork's: the kernel's memory cannot get this process killed
            os.write(procs, str(kernel).encode())
            os.close(procs)
        os.write(go_write, b"go")
        with os.fdopen(ready_read, "rb") as ready:
            said = ready.read(4096).decode(errors="replace")
        reply = {"pid": kernel} if said == "ok" else {"error": said or "the kernel's process ended at once"}
        connection.sendall(json.dumps(reply).encode() + b"\n")
        connection.close()
        while os.waitpid(-1, 0)[0] != kernel:  # its children made with CLONE_PARENT are this process's too
            pass
        signal.pidfd_send_signal(placeholder, signal.SIGKILL)  # the sandbox ends with its kernel
        with contextlib.suppress(ChildProcessError):
            while True:  # whatever else is left, killed with the sandbox's PID namespace, is reaped here
                os.wait()
        os._exit(0)
    except BaseException as error:  # noqa: BLE001 - whatever it is, the grader is told, and the fork ends
        try:
            connection.sendall(json.dumps({"error": f"{type(error).__name__}: {error}"}).encode() + b"\n")
        finally:
            os._exit(1)


def _label(process: str) -> str:
    """The security label (AppArmor, SELinux) that `process` ("self" or a number) runs under; "" without one."""
    try:
        return Path(f"/proc/{process}/attr/current").read_text()
    except OSError:
        return ""


def _from_the_grader(connection: socket.socket) -> bool:
    """Whether the process at the other end of `connection` is of this process's user and user namespace."""
    pid, uid = _peer(connection)
    try:
        return uid == os.getuid() and os.readlink(f"/proc/{pid}/ns/user") == os.readlink("/proc/self/ns/user")
    except OSError:
        return False


def _enter_namespaces(namespaces: dict[str, int]) -> None:
    """setns into each of `namespaces` ({name: descriptor}): as root, every one but the user namespace first, then
    that; otherwise first the user namespace that owns the others (bubblewrap's outer one: --disable-userns puts
    the sandbox in a second one inside it), then them, then the sandbox's own."""
    left, user = dict(namespaces), namespaces["user"]
    del left["user"]

    def enter_those_allowed() -> None:
        for name in list(left):
            with contextlib.suppress(PermissionError):
                _call("setns", left[name], NAMESPACES[name])
                os.close(left.pop(name))

    enter_those_allowed()
    if left:
        with contextlib.suppress(OSError):  # none, or this process's own
            owner = fcntl.ioctl(user, NS_GET_PARENT)
            try:
                _call("setns", owner, NAMESPACES["user"])
            finally:
                os.close(owner)
        enter_those_allowed()
    _call("setns", user, NAMESPACES["user"])
    os.close(user)
    enter_those_allowed()
    if left:
        raise PermissionError(f"cannot enter the sandbox's {', '.join(left)} namespaces")


def _limits() -> list[int]:
    """Every resource limit this system has."""
    return [getattr(resource, name) for name in dir(resource) if name.startswith("RLIMIT_")]


def _become_kernel(request: dict, placeholder_pid: int, ready: int) -> str:
    """In the sandbox's namespaces and cgroup (`placeholder_pid`: the placeholder's number there): take the
    placeholder's credentials, the kernel's environment and folder, close what the server held, say "ok" on
    `ready`, and return the kernel's connection file."""
    try:
        status = _status(placeholder_pid)  # as seen from the sandbox: its ids, not the system's
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        os.setsid()
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
        sys.modules["numpy"].random.seed()  # not the server's state: each kernel's own, as if it had imported numpy
        sys.path[:0] = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p]  # as ipykernel's has it
        sys.argv = [sys.executable, "-m", "ipykernel_launcher", "-f", request["connection"]]
        os.write(ready, b"ok")
        os.close(ready)
        return request["connection"]
    except BaseException as error:  # noqa: BLE001 - told to the fork, which tells the grader
        os.write(ready, f"{type(error).__name__}: {error}".encode()[:4000])
        os._exit(1)


if __name__ == "__main__":
    connection_file = serve(int(sys.argv[1]))  # returns in a kernel only
    from ipykernel import kernelapp

    kernelapp.launch_new_instance(argv=["-f", connection_file])
