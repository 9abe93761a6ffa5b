"""A check's report as data: its steps, their ✓/✗ lines and the pass rule, written once. It imports no torch, so
that the grader's own process (`starter.grading.reports`) does not pay for it; `starter.checks` makes the reports."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

PASS, FAIL, TODO = "pass", "fail", "not implemented"
SYMBOL = {PASS: "✓", FAIL: "✗", TODO: "✗"}
VERDICT = {PASS: "all checks passed", TODO: "not implemented yet", FAIL: "some checks failed"}


class ReportError(ValueError):
    """A report received as data (from another process) is not well-formed."""


def overall_status(statuses: Iterable[str]) -> str:
    """The pass rule, of a report's steps and of a check cell's reports: "pass" when there is at least one status
    and every one passes, "not implemented" when one is, else "fail"."""
    found = set(statuses)
    if TODO in found:
        return TODO
    return PASS if found == {PASS} else FAIL


def _fields(data: object, types: dict[str, type], what: str) -> list[Any]:
    """The values of `data`, a dict with exactly the keys of `types`, each of its type; else ReportError."""
    if type(data) is not dict:
        raise ReportError(f"{what} should be a dict, found {type(data).__name__}")
    missing, extra = sorted(set(types) - set(data)), len(set(data) - set(types))
    if missing or extra:
        raise ReportError(f"{what} should have exactly the keys {sorted(types)}: {missing} missing, {extra} other(s)")
    for key, kind in types.items():
        if type(data[key]) is not kind:
            raise ReportError(f"{what}: {key} should be a {kind.__name__}, found {type(data[key]).__name__}")
    return [data[key] for key in types]


@dataclass
class StepResult:
    name: str
    status: str
    message: str = ""

    def line(self) -> str:
        """The step's ✓/✗ line, with its message if any, as a notebook prints it and the grader writes it."""
        return f"  {SYMBOL[self.status]} {self.name}" + (f": {self.message}" if self.message else "")

    @classmethod
    def from_dict(cls, data: object) -> "StepResult":
        """A step received as data; raises ReportError unless it is well-formed."""
        name, status, message = _fields(data, {"name": str, "status": str, "message": str}, "a step")
        if status not in SYMBOL:
            raise ReportError(f"a step's status should be one of {sorted(SYMBOL)}, found {status[:40]!r}")
        return cls(name, status, message)


@dataclass
class Report:
    title: str
    steps: list[StepResult] = field(default_factory=list)

    @property
    def status(self) -> str:
        """ "pass" when every step passed, "not implemented" when a stub was hit, else "fail"."""
        return overall_status(step.status for step in self.steps)

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def lines(self) -> list[str]:
        """The title with the status, then one ✓/✗ line per step: the report as the grader's feedback shows it."""
        return [f"{self.title}: {self.status}", *(step.line() for step in self.steps)]

    def summary(self) -> str:
        """The last line a notebook prints for the report, e.g. "✓ Encoder: all checks passed"."""
        return f"{SYMBOL[self.status]} {self.title}: {VERDICT[self.status]}"

    def to_dict(self) -> dict[str, Any]:
        """The report as data, to send to another process."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> "Report":
        """A report received as data (e.g. from another process); raises ReportError unless it is well-formed."""
        title, steps = _fields(data, {"title": str, "steps": list}, "a report")
        return cls(title, [StepResult.from_dict(step) for step in steps])

    def _ipython_display_(self) -> None:
        """Shown as the last line of a cell, a report adds nothing: its lines were printed as the checks ran."""
