"""A small check framework for exercise cells: clear ✓/✗ lines, and never a crash on wrong student code.

    with CheckRun("Encoder") as run:
        z = run.step("runs", lambda: observe(lambda: Encoder(16)(x)))
        run.step("output shape", lambda: expect_shape(z, (8, 16), "encoder(x)"))

Student code is only ever called inside `observe(...)`, which returns what it produced as data (tensors, numbers,
tuples...): everything else in a check recomputes the reference and compares, so the grader can replay the evidence
and decide without running student code (see `starter.checks.evidence`).

A step that fails stops the run (later steps depend on earlier ones) and the summary says so. Every check has, in
`tests/wrong_answers.py`, the mistakes it must reject with their cause named; hidden tests call the same checks with
other sizes and seeds (`hidden=True`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from starter.checks import evidence
from starter.checks.evidence import observe  # noqa: F401 (checks call student code through it)


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
    """One line for an exception of student code, pointing at the last line of the student's own code."""
    line = evidence.student_line(error)
    where = f" (at `{line}`)" if line else ""
    return f"raised {getattr(error, 'recorded_type', type(error).__name__)}: {error}{where}"


class CheckRun:
    """Context manager that runs named steps, prints one line each and a summary line.

    Each step runs with a random seed made from `seed` (and, when grading, the grading run's seed); student code is
    called only through `observe`, so that the grader can judge the evidence without running it (see `evidence`).
    `hidden=True` marks the run as a hidden test in its title.
    """

    def __init__(self, title: str, quiet: bool = False, seed: int = 0, hidden: bool = False, student: Any = None):
        self.report = Report(f"{title} (hidden test)" if hidden else title)
        self.quiet, self.seed, self.student = quiet, seed, student

    def __enter__(self) -> "CheckRun":
        self._print(f"{self.report.title}")
        self.session = evidence.begin(self.report.title)
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
                torch.manual_seed(evidence.derived_seed(self.report.title, self.seed, len(self.report.steps)))
                self._refuse_reference()
                value = fn()
        except NotImplementedError:
            self._record(name, TODO, "not implemented yet (replace the `raise NotImplementedError()` stub)")
            raise _StopRun from None
        except (CheckFailed, evidence.MissingEvidence) as failure:
            self._record(name, FAIL, str(failure))
            raise _StopRun from None
        except Exception as error:  # student code may raise anything
            hint = next((text for kind, text in (hints or {}).items() if isinstance(error, kind)), "")
            self._record(name, FAIL, _describe(error) + (f": {hint}" if hint else ""))
            raise _StopRun from None
        self._record(name, PASS, "")
        return value

    def _refuse_reference(self) -> None:
        """When grading, before the first step: fail if the student's object is starter's own version of it."""
        if self.student is not None and self.session.grading and not self.report.steps:
            origin = observe(lambda: reference_origin(self.student))
            expect(not origin, f"uses the reference implementation `{origin}`: the exercise asks for your own code")

    def __exit__(self, kind, error, tb) -> bool:
        verdict = {PASS: "all checks passed", TODO: "not implemented yet", FAIL: "some checks failed"}
        self._print(f"{SYMBOL[self.report.status]} {self.report.title}: {verdict[self.report.status]}")
        evidence.end(self.session)
        return kind is _StopRun


def reference_origin(student: Any) -> str:
    """`module.name` of the course's reference code that `student` (or any of a tuple of them) is, wraps or
    subclasses, or "" if none."""
    for item in student if isinstance(student, tuple) else (student,):
        for candidate in (item, getattr(item, "__wrapped__", None), getattr(item, "func", None),
                          *getattr(item, "__mro__", ())[1:]):
            module = getattr(candidate, "__module__", None) or ""
            if module.startswith("starter.") and not module.startswith("starter.checks"):
                return f"{module}.{getattr(candidate, '__qualname__', type(candidate).__name__)}"
    return ""


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


def parameter_count(module: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in module.parameters())


def module_facts(module: Any) -> dict:
    """What a check needs to know of a student's module, as data."""
    is_module = isinstance(module, nn.Module)
    return {"type": type(module).__name__, "module": is_module, "parameters": parameter_count(module) if is_module else 0}


def expect_module(facts: dict, what: str) -> None:
    """Fail unless `facts` (from module_facts) describe an nn.Module with parameters."""
    expect(facts["module"], f"{what} should be an nn.Module, found {facts['type']}")
    expect(facts["parameters"] > 0, f"{what} has no parameters: did you forget to create the layers?")


def expect_same_parameter_count(found: int, reference: nn.Module, what: str) -> None:
    """Fail unless `found` parameters equal those of `reference`, the architecture the prose describes."""
    expected = parameter_count(reference)
    expect(found == expected, f"{what} has {found:,} parameters, the architecture described in the text has {expected:,}: "
                              "compare your layers, kernel sizes and widths with the text")


def layer_calls(module: nn.Module, *inputs: Any) -> tuple[Any, list[tuple[str, Any, Any]]]:
    """Run `module(*inputs)`; returns its output and (layer type, first input, output) for every layer that holds
    parameters (Linear, Conv2d, Embedding, ...), in the order they were called: data for `observe`."""
    calls: list[tuple[str, Any, Any]] = []
    leaves = [m for m in module.modules() if any(True for _ in m.parameters(recurse=False))]
    handles = [m.register_forward_hook(lambda layer, args, out: calls.append(
        (type(layer).__name__, args[0].detach() if args and torch.is_tensor(args[0]) else None,
         out.detach() if torch.is_tensor(out) else None))) for m in leaves]
    try:
        output = module(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return output, calls


def missing_gradients(module: nn.Module, *inputs: Any) -> list[str]:
    """Names of the parameters of `module` that get no gradient from its output on `inputs`."""
    module(*inputs).square().mean().backward()
    return [name for name, p in module.named_parameters() if p.grad is None]


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
