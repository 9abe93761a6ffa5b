"""A small check framework for exercise cells: clear ✓/✗ lines, and never a crash on wrong student code.

    with CheckRun("Encoder") as run:
        encoder = run.step("builds Encoder(latent_dim=16)", lambda: Encoder(16))
        run.step("output shape", lambda: expect_shape(encoder(x), (8, 16), "encoder(x)"))

A step that fails stops the run (later steps depend on earlier ones) and the summary says so. Every check has, in
`tests/wrong_answers.py`, the mistakes it must reject with their cause named; hidden tests call the same checks with
other sizes and seeds (`hidden=True`).
"""
from __future__ import annotations

import json
import os
import traceback
from pathlib import Path
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

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
    """Context manager that runs named steps, prints one line each and a summary line.

    Each step runs with the random seed `seed`; `hidden=True` marks the run as a hidden test in its title.
    """

    def __init__(self, title: str, quiet: bool = False, seed: int = 0, hidden: bool = False):
        self.report = Report(f"{title} (hidden test)" if hidden else title)
        self.quiet, self.seed = quiet, seed

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

    def note(self, text: str) -> None:
        """Print a remark that is not a step (it neither passes nor fails)."""
        self._print(f"  · {text}")

    def step(self, name: str, fn: Callable[[], Any], hints: Mapping[type, str] | None = None) -> Any:
        """Run `fn`; record ✓, or ✗ with the reason, and stop the run on failure. Returns fn's value.

        `hints` maps an exception type that student code may raise to the likely cause, added to the message.
        """
        try:
            with torch.random.fork_rng():
                torch.manual_seed(self.seed)
                value = fn()
        except NotImplementedError:
            self._record(name, TODO, "not implemented yet (replace the `raise NotImplementedError()` stub)")
            raise _StopRun from None
        except CheckFailed as failure:
            self._record(name, FAIL, str(failure))
            raise _StopRun from None
        except Exception as error:  # student code may raise anything
            hint = next((text for kind, text in (hints or {}).items() if isinstance(error, kind)), "")
            self._record(name, FAIL, _describe(error) + (f": {hint}" if hint else ""))
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


def expect_shape(value: Any, expected: Sequence[int], what: str, hint: str = "") -> None:
    """Fail with 'expected (..), found (..)' (and `hint`) unless `value` is a tensor of shape `expected`."""
    if not isinstance(value, torch.Tensor):
        raise CheckFailed(f"{what} should be a torch.Tensor, found {type(value).__name__}")
    if tuple(value.shape) != tuple(expected):
        raise CheckFailed(f"{what}: expected shape {tuple(expected)}, found {_shape(value)}" + (f": {hint}" if hint else ""))


def expect_integer(value: torch.Tensor, what: str) -> None:
    """Fail unless `value` holds integer indices (torch.long)."""
    expect(value.dtype == torch.long, f"{what} should be integer indices (torch.long), found {value.dtype}")


def expect_same_parameter_count(model: nn.Module, reference: nn.Module, what: str) -> None:
    """Fail unless `model` has exactly as many parameters as `reference`, the architecture the prose describes."""
    found, expected = (sum(p.numel() for p in m.parameters()) for m in (model, reference))
    expect(found == expected, f"{what} has {found:,} parameters, the architecture described in the text has {expected:,}: "
                              "compare your layers, kernel sizes and widths with the text")


def layer_calls(module: nn.Module, *inputs: Any) -> tuple[Any, list[tuple[nn.Module, torch.Tensor, Any]]]:
    """Run `module(*inputs)`; returns its output and (layer, first input, output) for every layer that holds
    parameters (Linear, Conv2d, Embedding, ...), in the order they were called."""
    calls: list[tuple[nn.Module, torch.Tensor, Any]] = []
    leaves = [m for m in module.modules() if any(True for _ in m.parameters(recurse=False))]
    handles = [m.register_forward_hook(lambda layer, args, out: calls.append((layer, args[0] if args else None, out)))
               for m in leaves]
    try:
        output = module(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return output, calls


def expect_close(found: Any, expected: torch.Tensor, what: str, atol: float = 1e-5, rtol: float = 1e-4,
                 causes: Mapping[str, torch.Tensor] | None = None) -> None:
    """Fail unless `found` matches `expected` in shape and value, naming the largest difference.

    `causes` maps the description of a likely mistake to the value that mistake produces: when `found` equals one
    of them, the message names that mistake.
    """
    expect_shape(found, expected.shape, what)
    found, expected = found.detach().double(), expected.detach().double()
    if not torch.allclose(found, expected, atol=atol, rtol=rtol):
        gap = (found - expected).abs().max().item()
        cause = next((text for text, value in (causes or {}).items()
                      if value.shape == found.shape and torch.allclose(found, value.detach().double(), atol=atol, rtol=rtol)), "")
        raise CheckFailed(f"{what}: values differ from the reference (largest difference {gap:.3g})"
                          + (f": {cause}" if cause else ""))


def expect(condition: bool, message: str) -> None:
    """Fail with `message` unless `condition` holds."""
    if not condition:
        raise CheckFailed(message)


def expect_raises(fn: Callable[[], Any], error: type[BaseException], message: str) -> None:
    """Fail with `message` unless calling `fn` raises `error` (naming what it raised instead, if anything)."""
    try:
        fn()
    except error:
        return
    except Exception as other:  # noqa: BLE001 (student code may raise anything)
        raise CheckFailed(f"{message}, but it {_describe(other)}") from None
    raise CheckFailed(message)
