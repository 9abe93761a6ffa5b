"""A small check framework for exercise cells: clear ✓/✗ lines, and never a crash on wrong student code.

    with CheckRun("Encoder") as run:
        encoder = run.step("builds Encoder(latent_dim=16)", lambda: Encoder(16))
        run.step("output shape", lambda: expect_shape(encoder(x), (8, 16), "encoder(x)"))

A step that fails stops the run (later steps depend on earlier ones) and the summary says so.
"""
from __future__ import annotations

import json
import os
import traceback
from pathlib import Path
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import torch

GRADING_LOG_ENV = "COURSE_GRADING_LOG"

PASS, FAIL, TODO = "pass", "fail", "not implemented"
SYMBOL = {PASS: "✓", FAIL: "✗", TODO: "✗"}


class CheckFailed(AssertionError):
    """Raised inside a step to report what was expected and what was found."""


class _StopRun(Exception):
    """Internal: a step failed, skip the remaining steps of this run."""


@dataclass
class StepResult:
    name: str
    status: str
    message: str = ""


@dataclass
class Report:
    title: str
    steps: list[StepResult] = field(default_factory=list)

    @property
    def status(self) -> str:
        """"pass" when every step passed, "not implemented" when a stub was hit, else "fail"."""
        statuses = {step.status for step in self.steps}
        if TODO in statuses:
            return TODO
        return PASS if self.steps and statuses == {PASS} else FAIL

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def _ipython_display_(self) -> None:
        """Shown as the last line of a cell, a report adds nothing: its lines were printed as the checks ran."""


def _describe(error: BaseException) -> str:
    """One line for an unexpected exception, pointing at the last line of the student's own code."""
    library = (str(Path(__file__).resolve().parent.parent), "site-packages", "dist-packages")
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not any(part in f.filename for part in library)]
    where = f" (at `{frames[-1].line}`)" if frames and frames[-1].line else ""
    return f"raised {type(error).__name__}: {error}{where}"


class CheckRun:
    """Context manager that runs named steps, prints one line each and a summary line."""

    def __init__(self, title: str, quiet: bool = False):
        self.report = Report(title)
        self.quiet = quiet

    def __enter__(self) -> "CheckRun":
        self._print(f"{self.report.title}")
        return self

    def _print(self, text: str) -> None:
        if not self.quiet:
            print(text)

    def _record(self, name: str, status: str, message: str) -> None:
        self.report.steps.append(StepResult(name, status, message))
        detail = f": {message}" if message else ""
        self._print(f"  {SYMBOL[status]} {name}{detail}")

    def step(self, name: str, fn: Callable[[], Any]) -> Any:
        """Run `fn`; record ✓, or ✗ with the reason, and stop the run on failure. Returns fn's value."""
        try:
            with torch.random.fork_rng():
                torch.manual_seed(0)
                value = fn()
        except NotImplementedError:
            self._record(name, TODO, "not implemented yet (replace the `raise NotImplementedError()` stub)")
            raise _StopRun from None
        except CheckFailed as failure:
            self._record(name, FAIL, str(failure))
            raise _StopRun from None
        except Exception as error:  # student code may raise anything
            self._record(name, FAIL, _describe(error))
            raise _StopRun from None
        self._record(name, PASS, "")
        return value

    def __exit__(self, kind, error, tb) -> bool:
        verdict = {PASS: "all checks passed", TODO: "not implemented yet", FAIL: "some checks failed"}
        self._print(f"{SYMBOL[self.report.status]} {self.report.title}: {verdict[self.report.status]}")
        _log_for_grader(self.report)
        return kind is _StopRun


def _log_for_grader(report: Report) -> None:
    """When the grader runs a notebook it sets COURSE_GRADING_LOG; append the report there as JSON."""
    path = os.environ.get(GRADING_LOG_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(json.dumps({"cell": os.environ.get("COURSE_CHECK_CELL"), "title": report.title, "status": report.status,
                                  "steps": [asdict(s) for s in report.steps]}) + "\n")


def _shape(value: Any) -> Any:
    return tuple(value.shape) if hasattr(value, "shape") else type(value).__name__


def expect_shape(value: Any, expected: Sequence[int], what: str) -> None:
    """Fail with 'expected (..), found (..)' unless `value` is a tensor of shape `expected`."""
    if not isinstance(value, torch.Tensor):
        raise CheckFailed(f"{what} should be a torch.Tensor, found {type(value).__name__}")
    if tuple(value.shape) != tuple(expected):
        raise CheckFailed(f"{what}: expected shape {tuple(expected)}, found {_shape(value)}")


def expect_close(found: Any, expected: torch.Tensor, what: str, atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """Fail unless `found` matches `expected` in shape and value, naming the largest difference."""
    expect_shape(found, expected.shape, what)
    found, expected = found.detach().double(), expected.detach().double()
    if not torch.allclose(found, expected, atol=atol, rtol=rtol):
        gap = (found - expected).abs().max().item()
        raise CheckFailed(f"{what}: values differ from the reference (largest difference {gap:.3g})")


def expect(condition: bool, message: str) -> None:
    """Fail with `message` unless `condition` holds."""
    if not condition:
        raise CheckFailed(message)


def expect_raises(fn: Callable[[], Any], error: type[BaseException], message: str) -> None:
    """Fail with `message` unless calling `fn` raises `error`."""
    try:
        fn()
    except error:
        return
    raise CheckFailed(message)
