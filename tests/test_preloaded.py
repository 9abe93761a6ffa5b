"""Kernels forked from the kernel server (`starter.grading.preloaded`) are confined exactly as kernels that
bubblewrap starts itself: the same credentials, capabilities, namespaces, file system, limits, cgroup, environment
and Python path, no descriptor or variable of the server's, no way back to the server; each ends its sandbox when it
ends and ends with it; the server serves only the grader's user; and where it cannot help, the sandbox starts the
kernel itself."""

from __future__ import annotations

import ast
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
import sandboxed
from sandboxed import batch_for_kernels, started

from starter.config import thread_limits
from starter.grading import budget, preloaded
from starter.grading.batch import Batch
from starter.grading.kernel import RemoteKernel

CGROUPS = "" if budget.available() else "no cgroup can be made here (run as root, or in a delegated cgroup)"
MISSING = sandboxed.MISSING or CGROUPS
pytestmark = pytest.mark.skipif(  # in CI (bubblewrap installed, cgroups writable) a missing sandbox fails instead
    bool(MISSING) and not os.environ.get("CI"), reason=f"needs the grader's sandbox and cgroups: {MISSING}"
)
NOBODY = 65534

FACTS = """
import collections, json, os, resource, subprocess, sys
status = dict(line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\\t" in line)

def link(fd):
    try:
        return os.readlink(f"/proc/self/fd/{fd}").split("[")[0].split(":")[0]
    except OSError:
        return "closed meanwhile"

facts = {key: status[key].strip() for key in (
    "Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "Umask")}
facts["the sandbox's namespaces"] = {
    name: os.readlink(f"/proc/self/ns/{name}") == os.readlink(f"/proc/1/ns/{name}")
    for name in ("mnt", "pid", "net", "ipc", "uts", "cgroup")}
facts["/"] = sorted(os.listdir("/"))
facts["limits"] = {n: resource.getrlimit(getattr(resource, n)) for n in dir(resource) if n.startswith("RLIMIT_")}
facts["cgroup"] = open("/proc/self/cgroup").read()
facts["a user namespace"] = subprocess.run(["unshare", "--user", "true"], capture_output=True).returncode == 0
facts["sys.path"] = [p.replace(os.getcwd(), "<folder>") for p in sys.path]
facts["environment"] = {k: v.replace(os.getcwd(), "<folder>") for k, v in os.environ.items()}
facts["descriptors"] = sorted(collections.Counter(link(fd) for fd in os.listdir("/proc/self/fd")).items())
facts["parent outside"] = os.getppid() == 0
facts["signals"] = {key: status[key].strip() for key in ("SigBlk", "SigIgn", "Cpus_allowed_list")}
facts["oom_score_adj"] = open("/proc/self/oom_score_adj").read()
try:
    facts["security label"] = open("/proc/self/attr/current").read()
except OSError as error:
    facts["security label"] = type(error).__name__
facts["environ"] = open("/proc/self/environ").read()
facts["thread limits"] = (__import__("torch").get_num_threads(), os.environ.get("OMP_NUM_THREADS"))
import matplotlib, matplotlib.pyplot  # a first figure: the backend, and its figures shown at the end of each cell
matplotlib.pyplot.close(matplotlib.pyplot.figure())
hooks = get_ipython().events.callbacks
facts["matplotlib"] = (matplotlib.get_backend(), os.environ.get("MPLBACKEND"),
                       sorted((key, repr(value)) for key, value in matplotlib.rcParams.items()),
                       [f.__name__ for event in ("pre_execute", "post_execute") for f in hooks[event]])
json.dumps(facts)
"""


@pytest.fixture(scope="module")
def batch() -> Iterator[Batch]:
    with batch_for_kernels("pl-") as found:
        yield found


def evaluated(kernel: RemoteKernel, source: str) -> object:
    """Run `source` in the kernel and return the value of its last line (a literal)."""
    *body, last = source.strip().splitlines()
    assert kernel.execute("\n".join(body)) is None
    msg_id = kernel.client.execute("", silent=True, user_expressions={"value": last})
    reply = kernel._reply(msg_id)["user_expressions"]["value"]
    assert reply["status"] == "ok", reply
    return ast.literal_eval(reply["data"]["text/plain"])


def test_a_kernel_from_the_server_is_confined_as_one_bubblewrap_starts(batch):
    with started(batch, None) as (own, _):
        assert own.fallback == "no kernel server"
        expected = json.loads(evaluated(own, FACTS))
    with started(batch, batch.server) as (forked, _):
        assert forked.fallback is None
        found = json.loads(evaluated(forked, FACTS))
    for key in ("descriptors", "environ", "parent outside"):  # where they differ, and how
        expected.pop(key), found.pop(key)
    assert found == expected
    assert expected["CapEff"] == expected["CapPrm"] == "0000000000000000" and expected["NoNewPrivs"] == "1"
    assert all(expected["the sandbox's namespaces"].values()) and not expected["a user namespace"]


def test_what_a_kernel_changes_in_the_preloaded_modules_the_next_kernel_does_not_see(batch):
    """A hostile submission that alters torch's or matplotlib's state, which the server imported once, alters only its
    own copy: its honest neighbour, forked from the same server, starts from the defaults."""
    changes = (
        "import matplotlib, torch\nmatplotlib.rcParams['lines.linewidth'] = 99.0\n"
        "torch.set_default_dtype(torch.float64)\ntorch.nn.functional.relu = None\n"
        "(matplotlib.rcParams['lines.linewidth'], str(torch.get_default_dtype()))"
    )
    seen = (
        "import matplotlib, torch\n(matplotlib.rcParams['lines.linewidth'], str(torch.get_default_dtype()), "
        "torch.nn.functional.relu is not None)"
    )
    with started(batch, batch.server) as (hostile, _):
        assert hostile.fallback is None and evaluated(hostile, changes) == (99.0, "torch.float64")
    with started(batch, batch.server) as (honest, _):
        assert honest.fallback is None and evaluated(honest, seen) == (1.5, "torch.float32", True)


def test_the_forked_kernel_holds_nothing_of_the_server_s_and_cannot_reach_it(batch):
    with started(batch, batch.server) as (kernel, _):
        facts = json.loads(evaluated(kernel, FACTS))
        assert facts["parent outside"]  # its parent, the server's fork, is outside its PID namespace
        threads = [f"{name}={value}" for name, value in thread_limits(batch.threads).items()]
        assert sorted(facts["environ"].split("\0")[:-1]) == sorted(threads)  # the server's, as it started
        files = [kind for kind, _ in facts["descriptors"] if kind.startswith("/")]  # its own: stdio, IPython's history
        assert not [name for name in files if name != "/dev/null" and "/profile_default/" not in name], files
        reached = evaluated(
            kernel,
            f"import socket\nsocket_ = socket.socket(socket.AF_UNIX)\n"
            f"try:\n    socket_.connect({batch.server!r}); reached = True\n"
            "except OSError:\n    reached = False\nreached",
        )
        assert reached is False


def test_a_forked_kernel_ends_its_sandbox_and_the_sandbox_ends_it(batch):
    with started(batch, batch.server) as (kernel, limits):
        assert kernel.fallback is None
        kernel.execute("import os; os._exit(3)")
        deadline = time.monotonic() + 10
        while kernel.manager.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not kernel.manager.is_alive()  # the placeholder was killed, and bubblewrap ended
    with started(batch, batch.server) as (kernel, limits):
        assert kernel.fallback is None
        procs = limits.kernel.folders[0] / "cgroup.procs"
        assert len(procs.read_text().split()) >= 2
        kernel.stop()
        deadline = time.monotonic() + 10
        while procs.read_text().split() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert procs.read_text().split() == []  # the kernel, its fork and the sandbox, all gone


def test_a_kernel_whose_fork_of_the_server_was_killed_is_seen_to_end(batch):
    """Then nothing ends the sandbox with the kernel: the grader watches the kernel itself."""
    with started(batch, batch.server) as (kernel, limits):
        procs = [int(pid) for pid in (limits.kernel.folders[0] / "cgroup.procs").read_text().split()]
        parents = {pid: int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) for pid in procs}
        fork = next(
            parent
            for pid, parent in parents.items()
            if parent not in procs and "python" in Path(f"/proc/{pid}/comm").read_text()
        )
        os.kill(fork, 9)
        asked = time.monotonic()
        assert kernel.execute("import os; os._exit(3)") == "the kernel stopped"
        assert time.monotonic() - asked < 10 and not kernel.alive  # not after the cell's time-out (60 s)


def test_a_kernel_outlives_the_server_that_started_it(batch):
    server = preloaded.Server(thread_limits(batch.threads))
    with started(batch, server.address) as (kernel, _):
        assert kernel.fallback is None
        maps = Path(f"/proc/{server.process.pid}/maps").read_text().splitlines()  # torch and ipykernel imported
        assert not [line for line in maps if line.split()[1].endswith("s") and "w" in line.split()[1]]  # none shared
        server.stop()
        assert evaluated(kernel, "x = 6 * 7\nx") == 42 and kernel.alive


def test_where_the_server_cannot_help_the_sandbox_starts_the_kernel_itself(batch):
    with started(batch, "\0no-such-kernel-server") as (kernel, _):
        assert "did not answer" in kernel.fallback
        assert evaluated(kernel, "1 + 1\n1 + 1") == 2


@pytest.mark.skipif(os.geteuid() != 0, reason="asking as another user needs root")
def test_the_server_serves_only_its_own_user(batch):
    ask = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "s.connect('\\0' + sys.argv[1])\n"
        "s.sendall(b'{\"target\": 1}\\n')\n"
        "print(s.recv(4096).decode())"
    )
    python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
    asked = subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", python, "-c", ask, batch.server[1:]],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "only the grader's user" in json.loads(asked.stdout)["error"], asked.stdout + asked.stderr


ENTER_AS_A_USER = """
import json, os, runpy, subprocess, sys, time
preloaded = runpy.run_path(sys.argv[1])
sandbox = subprocess.Popen(["bwrap", "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
                            "--uid", "65534", "--gid", "65534", "--ro-bind", "/", "/", "--proc", "/proc",
                            "--dev", "/dev", "--", "/bin/sleep", "60"])
def own_sleep():  # the placeholder: the only sleep of this user (others' /proc/*/exe cannot be read)
    for entry in (e for e in os.listdir("/proc") if e.isdigit()):
        try:
            if os.readlink(f"/proc/{entry}/exe").endswith("/sleep"):
                return int(entry)
        except OSError:
            pass

while (target := own_sleep()) is None:
    time.sleep(0.01)
namespaces = {name: os.open(f"/proc/{target}/ns/{name}", os.O_RDONLY) for name in preloaded["NAMESPACES"]}
read, write = os.pipe()
if os.fork() == 0:
    try:
        preloaded["_enter_namespaces"](namespaces)
        if os.fork() == 0:  # in the sandbox's PID namespace, and its /proc
            kinds = ("user", "mnt", "pid", "net", "ipc", "uts", "cgroup")
            names = {n: os.readlink(f"/proc/self/ns/{n}") for n in kinds}
            os.write(write, json.dumps(names).encode())
            os._exit(0)
        os.wait()
    except BaseException as error:
        os.write(write, json.dumps({"error": repr(error)}).encode())
    os._exit(0)
os.close(write)
entered = json.loads(os.read(read, 65536) or b"{}")
print(json.dumps([entered, {n: os.readlink(f"/proc/{target}/ns/{n}") for n in entered}]))
sandbox.kill()
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="becoming another user needs root")
def test_a_grader_that_is_not_root_enters_the_sandbox_s_namespaces_too():
    """Not root, the server's fork must enter bubblewrap's outer user namespace before the others (they belong to
    it), and the sandbox's own last."""
    user = (
        1000 if not any(line.split(":")[2] == "1000" for line in Path("/etc/passwd").read_text().splitlines()) else 4321
    )
    script = Path(preloaded.__file__)
    entered = subprocess.run(
        [
            "setpriv",
            f"--reuid={user}",
            f"--regid={user}",
            "--clear-groups",
            sys.executable,
            "-c",
            ENTER_AS_A_USER,
            script,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    if "setting up uid map" in entered.stderr or "No permission" in entered.stderr:
        pytest.skip(f"user namespaces are not allowed to other users here: {entered.stderr.strip()[:200]}")
    found, expected = json.loads(entered.stdout)
    assert found == expected and len(found) == 7, entered.stderr


def test_the_server_starts_with_the_thread_limits_as_its_whole_environment():
    server = preloaded.Server({"OMP_NUM_THREADS": "1"})
    try:
        environ = Path(f"/proc/{server.process.pid}/environ").read_bytes().split(b"\0")[:-1]
        assert environ == [b"OMP_NUM_THREADS=1"]
        assert server.address.startswith("\0")  # abstract: no file left behind
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(server.address)
    finally:
        server.stop()
