"""Grade one submission: `python -m starter.grading.worker` reads a job (JSON) on stdin and writes one line per
check cell, as soon as its checks are done, to the file descriptor the job names.

This process is the grader's: it runs no student code. It starts the submission's kernel (sandboxed when the job
has a sandbox), runs the plan's cells there, and runs each exercise's checks here, with handles of the kernel's
objects; what the kernel answers is data, and the verdicts are computed here. What the kernel does after a check
cannot change it: its result has already left.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from starter.checks import FAIL, Report, StepResult
from starter.exercises import BY_ID, EXERCISES
from starter.grading.kernel import KernelGone, RemoteKernel
from starter.grading.plan import Plan
from starter.grading.sandbox import Sandbox


def failed(title: str, message: str) -> Report:
    return Report(title, [StepResult("the check ran", FAIL, message)])


def grade(plan: Plan, kernel_of: Callable[[], RemoteKernel], hidden: bool, emit: Callable[[dict], None]) -> None:
    """Run the plan; emit {"check": id, "reports": [...]} for each check cell as soon as it is decided."""
    try:
        kernel = kernel_of()
    except KernelGone as error:
        for step in plan.steps:
            if step.kind == "check":
                emit({"check": BY_ID[step.exercise].check_id, "reports": [asdict(failed(step.exercise, str(error)))]})
        return
    try:
        for step in plan.steps:
            if step.kind == "run":
                kernel.execute(step.source) if kernel.manager.is_alive() else None
                continue
            exercise = BY_ID[step.exercise]
            check = exercise.check_function()
            reports = []
            for arguments in exercise.calls(hidden):
                with contextlib.redirect_stdout(io.StringIO()):
                    reports.append(check(*[kernel.named(name) for name in exercise.names], **arguments))
            with contextlib.suppress(Exception):
                kernel.release()
            emit({"check": exercise.check_id, "reports": [asdict(report) for report in reports]})
    finally:
        kernel.stop()


def main() -> int:
    job = json.load(sys.stdin)
    for exercise in EXERCISES:  # every check and reference the checks need, loaded before any kernel starts
        exercise.check_function()
    out = os.fdopen(job["results_fd"], "w", buffering=1)
    sandbox = Sandbox.from_json(job["sandbox"]) if job.get("sandbox") else None

    def kernel_of() -> RemoteKernel:
        return RemoteKernel(Path(job["folder"]), job["env"], job["seed"], job["cell_timeout"], sandbox, job["memory_mb"])

    grade(Plan.from_json(job["plan"]), kernel_of, job["hidden"], lambda result: out.write(json.dumps(result) + "\n"))
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
