"""Where `make test`'s CPU time goes, by kind of process: `python bench/suite_cpu.py [pytest arguments]`.

Runs make test's pytest command (fast mode, one xdist worker per core) and reads /proc once a second meanwhile: each
process's CPU time (user + system) is summed by its kind (a sandboxed grading kernel, a notebook's kernel, the
browser, ...). Prints the table, the machine's CPU time over the run (from /proc/stat) and the wall time. A process
that lives less than a second between two readings is missed; the machine's total counts everything. Run it on an
idle machine: whatever else runs meanwhile is counted in the total.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

PYTEST = ["-m", "pytest", "-n", "auto", "--dist", "loadfile", "--no-loadscope-reorder", "--nbval-lax"]
TICK = os.sysconf("SC_CLK_TCK")
KINDS = [  # (kind, test on the command line), the first that matches
    ("sandbox launchers (bwrap, prlimit)", lambda cmd: Path(cmd.split(" ", 1)[0]).name in ("bwrap", "prlimit")),
    ("kernel server and the grading kernels forked from it", lambda cmd: "preloaded.py" in cmd),
    ("grading kernel (sandboxed)", lambda cmd: "ipykernel_launcher" in cmd and "/g-" in cmd),
    ("notebook kernel (nbval, nbclient, nbgrader, JupyterLab)", lambda cmd: "ipykernel_launcher" in cmd),
    ("sandbox probe (imports torch)", lambda cmd: "import starter.probes.serve" in cmd),
    ("Chromium and Playwright", lambda cmd: "chrom" in cmd or "playwright" in cmd),
    ("JupyterLab server", lambda cmd: "jupyterlab" in cmd),
    ("grader's workers (forked)", lambda cmd: "multiprocessing" in cmd or "forkserver" in cmd),
    ("pytest and its workers", lambda cmd: "pytest" in cmd or "exec(eval(sys.stdin.readline()))" in cmd),
    ("nbgrader", lambda cmd: "nbgrader" in cmd),
    ("autograders in their containers", lambda cmd: "starter.autograder" in cmd),
]


def kind_of(command: str) -> str:
    """The kind of the process that runs `command` (its command line), by the first of KINDS that matches."""
    return next((kind for kind, matches in KINDS if matches(command)), "other")


def machine_cpu() -> float:
    """CPU seconds the machine has spent busy since it started (every core)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / TICK  # all but idle and iowait


def processes() -> dict[tuple[str, str], tuple[str, float]]:
    """{(pid, start time): (command line, CPU seconds so far)} of every process now."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except (OSError, IndexError):
                continue
            found[entry, stat[19]] = command, (int(stat[11]) + int(stat[12])) / TICK
    return found


def main() -> None:
    before = processes()
    began, busy = time.perf_counter(), machine_cpu()
    env = {**os.environ, "COURSE_FAST": "1"}
    run = subprocess.Popen(
        [sys.executable, *PYTEST, *(sys.argv[1:] or ["--nbval-current-env", "tests", "solutions"]), "-q"],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    seen: dict[tuple[str, str], tuple[str, float]] = {}
    while run.poll() is None:
        for key, (command, cpu) in processes().items():
            start = before[key][1] if key in before else 0.0
            seen[key] = (command or seen.get(key, ("", 0))[0], cpu - start)
        time.sleep(1)
    wall, total = time.perf_counter() - began, machine_cpu() - busy
    cpu, count = Counter(), Counter()
    for command, seconds in seen.values():
        cpu[kind_of(command)] += seconds
        count[kind_of(command)] += 1
    print(f"{'process kind':<58} {'processes':>9} {'CPU s':>8} {'mean s':>7}")
    for kind, seconds in cpu.most_common():
        print(f"{kind:<58} {count[kind]:>9} {seconds:>8.1f} {seconds / count[kind]:>7.2f}")
    print(f"{'all processes seen':<58} {sum(count.values()):>9} {sum(cpu.values()):>8.1f}")
    print(
        f"machine: {total:.0f} CPU s in {wall:.0f} s wall on {os.cpu_count()} cores "
        f"({total / wall / os.cpu_count():.0%} busy); pytest exit code {run.returncode}"
    )


if __name__ == "__main__":
    main()
