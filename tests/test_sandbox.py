"""One budget per sandbox, and nothing a kernel controls deciding what the grader touches, tried for real: a memory
hog spread over child processes, a fork loop, a full disk and full tmpfs folders, memory used by a child during a
measured request, a kernel that ignores interrupts while it floods the grader, a reply built to be costly to parse,
the kernel's own runtime files, the removal of any tree a kernel can leave, and the refusal where no cgroup can be
made. Small limits (hundreds of MB, dozens of processes), so that nothing here endangers the machine."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import nbformat
import pytest
import sandboxed
import torch
import zmq
from sandboxed import batch_for_kernels, started

from starter.build import student_version
from starter.checks.vq import check_squared_distances
from starter.config import PROJECT_ROOT
from starter.grading import budget, cli
from starter.grading.batch import Batch, Settings
from starter.grading.budget import Budget, BudgetUnavailable
from starter.grading.kernel import MESSAGE_LIMIT, RemoteKernel, guarded_context
from starter.grading.plan import Plan, Step
from starter.grading.scratch import remove_tree
from starter.probes import general

CGROUPS = "" if budget.available() else "no cgroup can be made here (run as root, or in a delegated cgroup)"
MISSING = sandboxed.MISSING or CGROUPS
confined = pytest.mark.skipif(  # in CI (bubblewrap installed, cgroups writable) a missing sandbox fails instead
    bool(MISSING) and not os.environ.get("CI"), reason=f"needs the grader's sandbox and cgroups: {MISSING}"
)
MB = 2**20
NOBODY = 65534
PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable  # one another user may run
REMOVE = (
    "import importlib.util, pathlib\n"
    "spec = importlib.util.spec_from_file_location('scratch', '{module}')\n"
    "module = importlib.util.module_from_spec(spec)\n"
    "spec.loader.exec_module(module)\n"
    "module.remove_tree(pathlib.Path('{tree}'))"
)
HOG = "b = bytearray({mb} * 2**20)\nfor i in range(0, len(b), 4096): b[i] = 1\nimport time; time.sleep({sleep})"


@pytest.fixture(scope="module")
def batch() -> Iterator[Batch]:
    with batch_for_kernels("sb-") as found:
        yield found


@pytest.fixture(scope="module")
def kernel(batch) -> Iterator[tuple[RemoteKernel, Budget]]:
    with started(batch, batch.server) as found:
        yield found


def ran(kernel: RemoteKernel, source: str) -> None:
    """Run a cell that must end without an exception (its asserts are the test's)."""
    assert kernel.execute(source) is None, source


def value(limits: Budget, name: str) -> int:
    """A number of the kernel's cgroup (v1 or v2 file name as given; its last word)."""
    folder = limits.kernel.folders[-1] if name.startswith("pids") else limits.kernel.folders[0]
    return int((folder / name).read_text().split()[-1])


@confined
@pytest.mark.parametrize("forked", [True, False], ids=["forked", "started-by-the-sandbox"])
def test_a_memory_hog_spread_over_child_processes_is_killed_at_the_sandbox_s_limit(batch, forked):
    """Three children of 600 MB each (each within the per-process limit) against 1.5 GB for the whole sandbox. They
    hold their memory until one is killed (or 20 s have passed), however slowly a loaded machine starts them."""
    with started(batch, batch.server if forked else None, memory_mb=1536) as (kernel, limits):
        assert (kernel.fallback is None) == forked
        ran(
            kernel,
            f"""
import subprocess, sys, time
children = []
for _ in range(3):
    children.append(subprocess.Popen([sys.executable, "-c", {HOG.format(mb=600, sleep=60)!r}]))
    time.sleep(1)
deadline = time.monotonic() + 20
while time.monotonic() < deadline and -9 not in [child.poll() for child in children]:
    time.sleep(0.1)
codes = [child.poll() for child in children]
for child in children:
    child.kill()
    child.wait()
assert -9 in codes, codes
""",
        )
        peak = "memory.max_usage_in_bytes" if limits.kernel.version == 1 else "memory.peak"
        assert value(limits, peak) <= 1536 * MB


@confined
@pytest.mark.parametrize("forked", [True, False], ids=["forked", "started-by-the-sandbox"])
def test_a_fork_loop_stops_at_the_process_limit_and_nothing_of_it_outlives_the_kernel(batch, forked):
    with started(batch, batch.server if forked else None, processes=40) as (kernel, limits):
        assert (kernel.fallback is None) == forked
        loop = "import os, time\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        time.sleep(0.1)"
        ran(kernel, f"import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', {loop!r}])")
        deadline = time.monotonic() + 20  # however slowly a loaded machine runs the loop
        while value(limits, "pids.events") == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert value(limits, "pids.current") <= 40 and value(limits, "pids.events") > 0  # "max N": N refused
        procs = [Path(folder / "cgroup.procs") for folder in limits.kernel.folders]
    assert not any(path.exists() for path in procs)  # every process killed, the cgroup removed


@confined
def test_writable_folders_hold_no_more_than_their_size_and_count_as_memory(kernel):
    kernel, limits = kernel
    for folder in ("/tmp", "/dev/shm", "."):
        ran(
            kernel,
            f"""
import errno, os
try:
    with open({folder!r} + "/fill", "wb") as file:
        for _ in range(80):
            file.write(b"x" * 2**20)
    raise AssertionError("wrote 80 MB")
except OSError as error:
    assert error.errno in (errno.ENOSPC, errno.EFBIG), error
""",
        )
    usage = "memory.usage_in_bytes" if limits.kernel.version == 1 else "memory.current"
    full = value(limits, usage)
    ran(kernel, "import os\nfor folder in ('/tmp', '/dev/shm', '.'):\n    os.remove(folder + '/fill')")
    assert full - value(limits, usage) > 150 * MB  # the three full folders were charged to the sandbox's memory
    assert sorted(p.name for p in kernel.folder.iterdir()) == ["connection.json", "spec"]  # nothing on disk


@confined
def test_memory_used_by_a_child_or_freed_during_a_request_is_measured(kernel):
    kernel, _ = kernel
    ran(
        kernel,
        f"""
import subprocess, sys, torch
def in_a_child(z, codebook):
    subprocess.run([sys.executable, "-c", {HOG.format(mb=300, sleep=0)!r}], check=True)
    return z @ codebook.T
def freed(z, codebook):
    waste = torch.ones(300 * 2**20 // 4)
    del waste
    return z @ codebook.T
""",
    )
    z, codebook = torch.randn(64, 8), torch.randn(16, 8)
    for name in ("in_a_child", "freed"):
        found, grown = kernel.measured(kernel.named(name), z, codebook)
        assert found.shape == (64, 16) and grown >= 250 * MB, (name, grown)


@confined
def test_the_memory_check_sees_what_a_child_process_computes(kernel):
    """Distances computed by broadcasting in a child process (512 MB there) fail the memory step of the check."""
    kernel, _ = kernel
    ran(
        kernel,
        """
import subprocess, sys, torch
CHILD = "import torch; z, c = torch.load('/tmp/z'); torch.save(((z[:, None] - c[None]) ** 2).sum(-1), '/tmp/d')"
def squared_distances(z, codebook):
    torch.save((z, codebook), "/tmp/z")
    subprocess.run([sys.executable, "-c", CHILD], check=True)
    return torch.load("/tmp/d")
""",
    )
    report = check_squared_distances(kernel.named("squared_distances"), memory_efficient=True)
    assert [step.status for step in report.steps] == ["pass", "fail"], report.steps
    assert "memory grew by more than" in report.steps[1].message
    ran(kernel, "import os\nos.remove('/tmp/z'); os.remove('/tmp/d')")


@confined
def test_a_reply_built_to_be_costly_to_parse_is_refused_unparsed(kernel):
    kernel, _ = kernel
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ran(
        kernel,
        """
class _Nested:
    def __repr__(self):
        return "[" * 20 + "[0]," * 500_000 + "0" + "]" * 20
_reply, __course__.reply = __course__.reply, lambda request: _Nested()
""",
    )
    with pytest.raises(Exception, match="not a string"):
        kernel.run(general.describe, 1)
    ran(kernel, "__course__.reply = _reply")
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024 < 100 * MB
    assert kernel.run(general.describe, 1)["type"] == "int"


def test_a_message_over_the_limit_is_dropped_unread():
    context = guarded_context()
    receiver, sender = context.socket(zmq.PAIR), zmq.Context.instance().socket(zmq.PAIR)
    port = receiver.bind_to_random_port("tcp://127.0.0.1")
    sender.connect(f"tcp://127.0.0.1:{port}")
    sender.send(b"x" * (MESSAGE_LIMIT + 1))
    sender.send(b"small")
    assert receiver.poll(5000) and receiver.recv() == b"small"  # the big one was dropped with its connection
    sender.close(0)
    context.destroy(0)


@confined
def test_the_kernel_cannot_write_its_runtime_files_or_plant_links_where_the_grader_cleans(kernel):
    kernel, _ = kernel
    outside = Path(tempfile.mkdtemp(prefix="victim-"))
    (outside / "k-1").write_text("the grader's")
    ran(
        kernel,
        f"""
import os
for attempt in (lambda: open("connection.json", "w"), lambda: os.symlink({str(outside)!r}, "sockets/k-1"),
                lambda: open("sockets/x", "w"), lambda: os.mkdir("sockets/d")):
    try:
        attempt()
        raise AssertionError("it could")
    except OSError:
        pass
assert os.listdir("sockets") == []
""",
    )
    assert not (kernel.folder / "sockets").exists() and (outside / "k-1").read_text() == "the grader's"
    remove_tree(outside)


@confined
def test_a_cell_that_ignores_interrupts_and_floods_times_out_at_its_deadline(batch):
    """Its status is a time-out, the checks after it are not run, and the grader's deadline held."""
    flood = """
import signal, threading
signal.signal(signal.SIGINT, signal.SIG_IGN)
kernel = get_ipython().kernel
def flood():
    while True:
        kernel.session.send(kernel.shell_stream, "execute_reply", {"status": "ok"}, parent={"header": {"msg_id": "?"}})
threading.Thread(target=flood, daemon=True).start()
while True:
    try:
        print("y" * 10_000)
    except BaseException:
        pass
"""
    saved, batch.settings = batch.settings, Settings(cell_timeout=3, notebook_timeout=120, memory_mb=2048)
    started_at = time.monotonic()
    try:
        results, status = batch.run(Plan("01_autoencoder", [Step("run", flood), Step("check", exercise="encoder")]))
    finally:
        batch.settings = saved
    assert time.monotonic() - started_at < 60
    assert status.startswith("timeout (a cell timed out after 3 s") and results == [], status


@pytest.mark.parametrize("user", [None, NOBODY])
def test_remove_tree_removes_any_tree_and_nothing_outside(user):
    """As this user and as an unprivileged one: deeper than the recursion limit and PATH_MAX, links (to files and
    folders outside, dangling, looping), folders and files without permissions, fifos, sockets."""
    if user is not None and os.geteuid() != 0:
        pytest.skip("needs root to act as another user")
    base = Path(tempfile.mkdtemp(prefix="tree-"))
    base.chmod(0o755)
    outside, tree = base / "outside", base / "tree"
    outside.mkdir()
    (outside / "keep").write_text("kept")
    tree.mkdir()
    _fill(tree, outside)
    if user is None:
        remove_tree(tree)
    else:
        subprocess.run(["chown", "-R", str(user), str(base)], check=True)
        subprocess.run([PYTHON, "-c", REMOVE.format(module=_scratch(), tree=tree)], user=user, check=True)
    assert not tree.exists() and (outside / "keep").read_text() == "kept"
    remove_tree(base)


def test_remove_tree_leaves_a_link_alone(tmp_path):
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "keep").write_text("kept")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    remove_tree(tmp_path / "link")
    assert (tmp_path / "target" / "keep").exists()


def _scratch() -> Path:
    return PROJECT_ROOT / "starter" / "grading" / "scratch.py"


def _fill(tree: Path, outside: Path) -> None:
    """Everything a kernel can leave in its folder."""
    fd = os.open(tree, os.O_RDONLY)
    for _ in range(3000):  # 3000 levels: over Python's recursion limit, and 6000 characters of path
        os.mkdir("d", dir_fd=fd)
        fd, parent = os.open("d", os.O_RDONLY, dir_fd=fd), fd
        os.close(parent)
    os.close(fd)
    (tree / "to-file").symlink_to(outside / "keep")
    (tree / "to-folder").symlink_to(outside)
    (tree / "dangling").symlink_to(tree / "nowhere")
    (tree / "loop").symlink_to(tree / "loop")
    os.mkfifo(tree / "fifo")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tree / "socket"))
    for mode in (0o000, 0o500, 0o100):
        locked = tree / f"locked-{mode:o}"
        (locked / "inner").mkdir(parents=True)
        (locked / "inner" / "file").write_text("x")
        (locked / "inner" / "file").chmod(0o000)
        locked.chmod(mode)


def test_without_a_writable_cgroup_the_grader_refuses_unless_told(tmp_path, monkeypatch, capsys):
    """Neither layout at an empty cgroup root: batch grading stops, naming what it cannot limit; with
    --per-process-limits it grades (with per-process limits), and --self never refuses."""
    monkeypatch.setattr(budget, "CGROUP_ROOT", tmp_path / "cgroup")
    with pytest.raises(BudgetUnavailable, match="cgroup v2: .* cgroup v1: "):
        budget.find()
    notebook = tmp_path / "stub_01.ipynb"
    nbformat.write(student_version(nbformat.read(PROJECT_ROOT / "solutions" / "01_autoencoder.ipynb", 4)), notebook)
    assert cli.main([str(notebook), "--unconfined", "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "cannot give each submission a budget" in error and "--per-process-limits" in error
    assert "not limited" in error and not (tmp_path / "out" / "grades.csv").exists()
    unconfined = ["--unconfined"] if sandboxed.MISSING else []
    arguments = [str(notebook), "--cell-timeout", "30", "--per-process-limits", *unconfined]
    assert cli.main([*arguments, "--out", str(tmp_path / "out")]) == 0
    assert "0 / 7" in capsys.readouterr().out
    assert cli.main(["--self", str(notebook), "--cell-timeout", "30"]) == 0


def test_a_v2_layout_is_found_and_written_as_v2(tmp_path):
    """Where the cgroup root is a v2 hierarchy with memory and pids for its children (simulated with files)."""
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("memory pids\n")
    found = budget._v2(tmp_path, {"": ("", "/")})
    assert found == budget.Hierarchy(2, (tmp_path,))
    (tmp_path / "k").mkdir()
    budget.Cgroup(2, (tmp_path / "k",)).limit(300 * MB, 40)
    assert (tmp_path / "k" / "memory.max").read_text() == str(300 * MB)
    assert (tmp_path / "k" / "pids.max").read_text() == "40"


@pytest.mark.skipif(bool(CGROUPS), reason=CGROUPS)
def test_the_cgroups_of_a_killed_grader_are_removed_by_the_next(batch):
    gone = subprocess.Popen(["true"])  # a process that no longer exists
    gone.wait()
    left = batch.cgroups.create(f"course-{gone.pid}-left-kernel", 64 * MB, 8)
    budget.find()
    assert not any(folder.exists() for folder in left.folders)


def test_a_launcher_that_cannot_join_its_cgroup_never_runs_its_command(tmp_path):
    launcher = budget.Cgroup(1, (tmp_path / "missing", tmp_path / "pids")).launcher(["touch", str(tmp_path / "ran")])
    assert subprocess.run(launcher, capture_output=True).returncode == 125 and not (tmp_path / "ran").exists()
