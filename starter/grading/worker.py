"""Grade one submission, in a process of the grader's own: `run(job, results)` starts the submission's kernel
(sandboxed when the job has a sandbox, in its cgroup when it has a budget), runs the plan's cells there, and runs
each exercise's checks here, with handles of the kernel's objects, sending one result per check cell down `results`
as soon as it is decided, and {"timeout": why} if the kernel had to be stopped after a time-out.

This process runs no student code: what the kernel answers is data, and the verdicts are computed here. What the
kernel does after a check cannot change it: its result has already left. It has a memory limit of its own (its
cgroup, else RLIMIT_DATA), so that a kernel's answers cannot make it grow without bound. Workers are forked from a
server that has imported torch (with the compiler that its optimizers import on first use, a second) and every check
once (`starter.grading.batch`), so that a submission does not pay for that.
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Callable

import torch
import torch._dynamo  # noqa: F401  torch imports it (and sympy) at a worker's first optimizer: once here instead

from starter.exercises import BY_ID, EXERCISES
from starter.grading.budget import Budget
from starter.grading.kernel import KernelGone, RemoteKernel
from starter.grading.kernel_user import KernelUser
from starter.grading.plan import Plan
from starter.grading.sandbox import Sandbox
from starter.report import FAIL, Report, StepResult

CHECKS = {exercise.grade_id: exercise.check_function() for exercise in EXERCISES}  # loaded before any kernel runs


def failed(title: str, message: str) -> Report:
    return Report(title, [StepResult("the check ran", FAIL, message)])


def first_exercise_cell(plan: Plan) -> int | None:
    """The index of the plan's first exercise cell (after the instructor's set-up cells), or None."""
    return next((index for index, step in enumerate(plan.steps) if step.kind == "run" and step.exercise), None)


def grade(plan: Plan, kernel_of: Callable[[], RemoteKernel], hidden: bool, emit: Callable[[dict], None]) -> None:
    """Run the plan; emit {"check": id, "reports": [...]} for each check step as soon as it is decided, and
    {"timeout": why} if the kernel was stopped after a time-out (the steps left are not run)."""
    try:
        kernel = kernel_of()
    except KernelGone as error:
        for step in plan.steps:
            if step.kind == "check":
                emit({"check": BY_ID[step.exercise].check_id, "reports": [failed(step.exercise, str(error)).to_dict()]})
        return
    first = first_exercise_cell(plan)
    try:
        for index, step in enumerate(plan.steps):
            if kernel.stopped:
                break
            if step.kind == "run":
                if index == first:
                    kernel.mark_baseline()  # a measured request counts what student code holds from here on
                if kernel.alive:
                    kernel.execute(step.source)
                continue
            exercise = BY_ID[step.exercise]
            reports = []
            for arguments in exercise.calls(hidden):
                with contextlib.redirect_stdout(io.StringIO()):
                    reports.append(CHECKS[exercise.grade_id](*[kernel.named(n) for n in exercise.names], **arguments))
            with contextlib.suppress(Exception):
                kernel.release()
            emit({"check": exercise.check_id, "reports": [report.to_dict() for report in reports]})
        if kernel.stopped:
            emit({"timeout": kernel.stopped})
    finally:
        kernel.stop()


def limit_memory(budget: Budget | None, memory_mb: int) -> None:
    """Put this process into its budget's worker cgroup; without one, limit its data to `memory_mb`."""
    if budget is not None:
        budget.worker.join(os.getpid())
    else:
        resource.setrlimit(resource.RLIMIT_DATA, (memory_mb * 2**20, memory_mb * 2**20))


def run(job: dict, results: Connection) -> None:
    """The worker process: its own session (so that a time-out stops everything it started), the job's threads."""
    os.setsid()
    budget = Budget.from_json(job["budget"]) if job.get("budget") else None
    limit_memory(budget, job["memory_mb"])
    torch.set_num_threads(job["threads"])
    sandbox = Sandbox.from_json(job["sandbox"]) if job.get("sandbox") else None
    user = KernelUser.from_json(job["user"]) if job.get("user") else None

    def kernel_of() -> RemoteKernel:
        return RemoteKernel(
            Path(job["folder"]),
            job["env"],
            job["seed"],
            job["cell_timeout"],
            sandbox,
            job["memory_mb"],
            budget.kernel if budget else None,
            user,
            job.get("server"),
        )

    try:
        grade(Plan.from_json(job["plan"]), kernel_of, job["hidden"], results.send)
    except Exception as error:  # a bug of the grader's: say so, keeping what was already sent
        results.send({"crashed": f"{type(error).__name__}: {error}"[:300]})
    finally:
        results.close()
