"""A small check framework for exercise cells: clear ✓/✗ lines, and never a crash on wrong student code.

    @check
    def check_encoder(Encoder, latent_dim=16, hidden=False) -> Report:
        with CheckRun("Encoder", Encoder.kernel, hidden=hidden) as run:
            model = run.step("builds Encoder(16)", lambda: Encoder(latent_dim=latent_dim))
            run.step("output shape", lambda: expect_shape(model(x), (8, 16), "encoder(x)"))

A check holds the student's objects only as handles (`starter.checks.kernel`): calling one runs the student's code
in the student's process and returns data; the small probes and fixtures it may run there are `starter.probes`.
In a notebook, `@check` turns the objects a check cell passes into handles of the notebook's own process
(withholding the course's versions of the exercise meanwhile); in a grading run the grader passes handles of a
sandboxed kernel and runs the very same check code in its own process.

A step that fails stops the run (later steps depend on earlier ones) and the summary says so. Every check has, in
`tests/`, the mistakes it must reject with their cause named and the correct answers it must accept; hidden tests
call the same checks with other sizes (`hidden=True`).
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
from typing import Any, Callable, Mapping, Sequence

import torch

from starter.checks.kernel import Handle, Kernel, LocalKernel, derived_seed
from starter.exercises import EXERCISES, withheld_twins
from starter.probes.serve import torch_seeded
from starter.probes.wire import WireError
from starter.report import FAIL, PASS, TODO, Report, StepResult

NBGRADER_ENV = "NBGRADER_EXECUTION"  # set by nbgrader while it validates or autogrades a notebook


class CheckFailed(AssertionError):
    """Raised inside a step to report what was expected and what was found."""


class _StopRun(Exception):
    """Internal: a step failed, skip the remaining steps of this run."""


def _describe(error: BaseException) -> str:
    """One line for an exception of student code, pointing at the last line of the student's own code."""
    where = f" (at `{error.where}`)" if getattr(error, "where", "") else ""
    return f"raised {getattr(error, 'recorded_type', type(error).__name__)}: {error}{where}"


class CheckRun:
    """Context manager that runs named steps, prints one line each and a summary line.

    Each step runs with torch seeded from the kernel's seed (the grading run's, 0 in a notebook), the title, `seed`
    and the step's number, so the check draws the same inputs wherever it runs. `hidden=True` marks the run as a
    hidden test in its title.
    """

    def __init__(self, title: str, kernel: Kernel, seed: int = 0, hidden: bool = False, quiet: bool = False):
        self.report = Report(f"{title} (hidden test)" if hidden else title)
        self.kernel, self.seed, self.quiet = kernel, seed, quiet

    def __enter__(self) -> "CheckRun":
        self._print(f"{self.report.title}")
        self.kernel.begin(self.report.title, self.seed)
        return self

    def _print(self, text: str) -> None:
        if not self.quiet:
            print(text)

    def _record(self, name: str, status: str, message: str) -> None:
        self.report.steps.append(StepResult(name, status, message))
        self._print(self.report.steps[-1].line())

    def note(self, text: str) -> None:
        """Print a remark that is not a step (it neither passes nor fails)."""
        self._print(f"  · {text}")

    def step(self, name: str, fn: Callable[[], Any], hints: Mapping[type, str] | None = None) -> Any:
        """Run `fn`; record ✓, or ✗ with the reason, and stop the run on failure. Returns fn's value.

        `hints` maps an exception type that student code may raise to the likely cause, added to the message.
        """
        try:
            with torch_seeded(derived_seed(self.kernel.seed, self.report.title, self.seed, len(self.report.steps))):
                value = fn()
        except NotImplementedError:
            self._record(name, TODO, "not implemented yet (replace the `raise NotImplementedError()` stub)")
            raise _StopRun from None
        except CheckFailed as failure:
            self._record(name, FAIL, str(failure))
            raise _StopRun from None
        except WireError as error:
            self._record(name, FAIL, f"the student's code did not answer with data ({error})")
            raise _StopRun from None
        except Exception as error:  # student code may raise anything
            hint = next((text for kind, text in (hints or {}).items() if isinstance(error, kind)), "")
            self._record(name, FAIL, _describe(error) + (f": {hint}" if hint else ""))
            raise _StopRun from None
        self._record(name, PASS, "")
        return value

    def __exit__(self, kind, error, tb) -> bool:
        self._print(self.report.summary())
        return kind is _StopRun


def check(function: Callable[..., Report]) -> Callable[..., Report]:
    """Make a check callable from a notebook with the notebook's own objects. It gets them as handles of this
    process, and while it calls them the course's versions of the exercises of this notebook and later ones are
    withheld (as in a grading kernel). Under nbgrader (NBGRADER_EXECUTION set) a check that does not pass raises
    AssertionError, so that nbgrader awards it nothing. Called with handles (the grader), it just runs."""
    notebook = next(e.notebook for e in EXERCISES if e.check.split(":")[1] == function.__name__)

    @functools.wraps(function)
    def run(*objects: Any, **options: Any) -> Report:
        if objects and all(isinstance(o, Handle) for o in objects):
            return function(*objects, **options)
        kernel = LocalKernel(withheld_twins(notebook))
        report = function(*[kernel.adopt(o) for o in objects], **options)
        if os.environ.get(NBGRADER_ENV) and not report.passed:
            failed = "; ".join(f"{s.name}: {s.message}" for s in report.steps if s.status != PASS)
            raise AssertionError(f"{report.title}: {report.status} ({failed})")
        return report

    return run


def passes(check_function: Callable[..., Report], *handles: Handle, **options: Any) -> bool:
    """Whether a check passes on `handles`, run quietly and leaving the kernel's seeding as it was: for a check that
    relies on a student's parts of other exercises only once they pass their own checks."""
    kernel = handles[0].kernel
    context, count = kernel.context, kernel.count
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return check_function(*handles, **options).passed
    finally:
        kernel.context, kernel.count = context, count


def _shape(value: Any) -> Any:
    return tuple(value.shape) if hasattr(value, "shape") else type(value).__name__


def expect_shape(value: Any, expected: Sequence[int], what: str, hint: str = "") -> None:
    """Fail with 'expected (..), found (..)' (and `hint`) unless `value` is a tensor of shape `expected`."""
    if not isinstance(value, torch.Tensor):
        raise CheckFailed(f"{what} should be a torch.Tensor, found {type(value).__name__}")
    if tuple(value.shape) != tuple(expected):
        raise CheckFailed(
            f"{what}: expected shape {tuple(expected)}, found {_shape(value)}" + (f": {hint}" if hint else "")
        )


def expect_integer(value: torch.Tensor, what: str) -> None:
    """Fail unless `value` holds integer indices (torch.long)."""
    expect(value.dtype == torch.long, f"{what} should be integer indices (torch.long), found {value.dtype}")


def parameter_count(module: torch.nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in module.parameters())


def expect_same_parameter_count(found: int, reference: torch.nn.Module, what: str) -> None:
    """Fail unless `found` parameters equal those of `reference`, the architecture the prose describes."""
    expected = parameter_count(reference)
    expect(
        found == expected,
        f"{what} has {found:,} parameters, the architecture described in the text has {expected:,}: "
        "compare your layers, kernel sizes and widths with the text",
    )


def expect_close(
    found: Any,
    expected: torch.Tensor,
    what: str,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    causes: Mapping[str, torch.Tensor] | None = None,
) -> None:
    """Fail unless `found` matches `expected` in shape and value, naming the largest difference.

    `causes` maps the description of a likely mistake to the value that mistake produces: when `found` equals one
    of them, the message names that mistake.
    """
    expect_shape(found, expected.shape, what)
    found, expected = found.detach().double(), expected.detach().double()
    if not torch.allclose(found, expected, atol=atol, rtol=rtol):
        gap = (found - expected).abs().max().item()
        cause = next(
            (
                text
                for text, value in (causes or {}).items()
                if value.shape == found.shape
                and torch.allclose(found, value.detach().double(), atol=atol, rtol=rtol, equal_nan=True)
            ),
            "",
        )
        raise CheckFailed(
            f"{what}: values differ from the reference (largest difference {gap:.3g})" + (f": {cause}" if cause else "")
        )


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
