"""What the grader writes, as each submission is done, so that a batch that is stopped (Ctrl-C, SIGKILL) loses
nothing: `results/<key>.json` per graded submission (written atomically; the key comes from the submission's
content and what it was graded against, so running the same command again skips it), and after each one
`grades.csv` (one row per student and notebook) and `feedback/<student>/<notebook>.md`, both rewritten atomically.
`summary.md`, at the end, says per check how many earned it and the commonest reasons why not.

Names and messages are data, never syntax: a student id names its feedback folder through `file_name` (no two ids
share one, none leaves `feedback/`), and everything quoted is escaped for where it goes: one line of printable
text (`visible`), then markdown (`markdown`, `markdown_line`) or a spreadsheet cell (`spreadsheet`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from starter.files import write_atomically
from starter.report import FAIL, PASS, Report, ReportError, StepResult, overall_status

MESSAGE_LIMIT = 500  # characters of a check message kept in the feedback
NAME_LIMIT = 100  # bytes (UTF-8) of a file name made from a student id; file systems allow 255
FORMULA = ("=", "+", "-", "@", "\t", "\r")  # how a spreadsheet cell that is a formula starts (OWASP)


@dataclass
class CheckScore:
    grade_id: str
    points: int
    earned: int = 0
    status: str = "not run"
    messages: list[str] = field(default_factory=list)


@dataclass
class Grade:
    student: str
    origin: str
    notebook: str = ""
    status: str = "ok"
    checks: list[CheckScore] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(check.earned for check in self.checks)

    @property
    def possible(self) -> int:
        return sum(check.points for check in self.checks)

    @classmethod
    def from_json(cls, data: dict) -> "Grade":
        return cls(**{**data, "checks": [CheckScore(**check) for check in data["checks"]]})


def received(data: list) -> list[Report]:
    """The reports a worker sent for one check cell; one that is malformed becomes a failed report saying why."""
    return [_received(item) for item in data]


def _received(item: object) -> Report:
    try:
        return Report.from_dict(item)
    except ReportError as error:
        return Report("a malformed report", [StepResult("the grader reads the check's report", FAIL, str(error))])


def score(check: CheckScore, reports: list[Report]) -> CheckScore:
    """A check cell's points: all of them when every check run in it passed; its feedback lines, each cut short."""
    check.status = overall_status(report.status for report in reports)
    check.earned = check.points if check.status == PASS else 0
    check.messages = [line[:MESSAGE_LIMIT] for report in reports for line in report.lines()]
    return check


def file_name(text: str) -> str:
    """A file name for `text` that no other text gets: `text` itself when it is a plain name (letters, digits, `.`,
    `-`, `_`, not only dots, at most NAME_LIMIT bytes), else its plain characters cut to fit, `+` and a hash of it."""
    plain = re.sub(r"[^\w.-]", "_", text)
    if plain == text and text.strip(".") and len(text.encode()) <= NAME_LIMIT:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    cut = plain.encode()[: NAME_LIMIT - 13].decode("utf-8", "ignore")  # whole characters only
    return f"{cut}+{digest}"  # a plain name never holds `+`


def visible(text: str) -> str:
    """`text` as one line of printable characters: control and format characters (newlines, terminal escapes,
    bidirectional overrides) and the undecodable bytes of file names written as Python escapes."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def markdown(text: str) -> str:
    """`text` quoted as plain text in markdown (a table cell, a heading, a list item): one line, with backslashes,
    backticks, `|` and `<` escaped, links broken (`](`, and `://`, which renderers turn into links by themselves) and
    a leading `#` escaped."""
    escaped = re.sub(r"[\\`|<]|(?<=\])\(", lambda match: "\\" + match[0], unlinked(visible(text)))
    return re.sub(r"^(\s*)#", r"\1\\#", escaped)


def unlinked(text: str) -> str:
    """`text` with every `://` and `www.` broken by a zero-width space (as HTML's entity), so that no renderer makes
    a link of it."""
    return re.sub(r"(?<=:/)/|(?<=www)\.", lambda match: "&#8203;" + match[0], text, flags=re.IGNORECASE)


def markdown_line(text: str) -> str:
    """A check's message as a line of a feedback list: one line, its code spans kept, HTML and links neutralised."""
    return unlinked(visible(text)).replace("<", "&lt;").replace("](", "]\\(")


def spreadsheet(value: str | int) -> str | int:
    """A grades.csv cell as a spreadsheet shows it: one line, and text that would start a formula behind a `'`."""
    if isinstance(value, int):
        return value
    return ("'" if value.startswith(FORMULA) else "") + visible(value)


class Results:
    """The output folder of a batch: what has been graded so far, by key."""

    def __init__(self, out: Path, check_ids: list[str]):
        self.out, self.check_ids = out, check_ids
        self.grades: dict[str, Grade] = {}
        for path in sorted((out / "results").glob("*.json")):
            try:
                self.grades[path.stem] = Grade.from_json(json.loads(path.read_text(encoding="utf-8")))
            except (ValueError, TypeError, KeyError):
                continue  # a result that was being written when the batch stopped: graded again

    def add(self, key: str, grade: Grade) -> None:
        """Record one submission's grade and bring grades.csv and its feedback up to date."""
        self.grades[key] = grade
        write_atomically(self.out / "results" / f"{key}.json", json.dumps(asdict(grade)))
        write_atomically(
            self.out / "feedback" / file_name(grade.student) / f"{file_name(grade.notebook or 'unknown')}.md",
            feedback(grade),
        )
        write_atomically(self.out / "grades.csv", self.table())

    def table(self, keys: list[str] | None = None) -> str:
        """grades.csv: one row per student and notebook, sorted; the points of every check of every notebook."""
        handle = io.StringIO()
        writer = csv.writer(handle)
        writer.writerow(["student", "notebook", "status", "total", "possible", *self.check_ids])
        chosen = [self.grades[k] for k in (keys if keys is not None else self.grades) if k in self.grades]
        for grade in sorted(chosen, key=lambda g: (g.student, g.notebook, g.origin)):
            earned = {check.grade_id: check.earned for check in grade.checks}
            row = [grade.student, grade.notebook, grade.status, grade.total, grade.possible]
            writer.writerow([spreadsheet(cell) for cell in row] + [earned.get(i, "") for i in self.check_ids])
        return handle.getvalue()

    def finish(self, keys: list[str], seconds: float) -> None:
        """This batch's grades.csv (its submissions only) and summary.md."""
        write_atomically(self.out / "grades.csv", self.table(keys))
        write_atomically(self.out / "summary.md", summary([self.grades[k] for k in keys if k in self.grades], seconds))


def feedback(grade: Grade) -> str:
    lines = [
        f"# {markdown(grade.student)}: {grade.notebook or 'unknown notebook'}",
        "",
        f"Status: {markdown(grade.status)}. Score: {grade.total} / {grade.possible}.",
        "",
    ]
    for check in grade.checks:
        lines.append(f"## {check.grade_id}: {check.earned} / {check.points} ({check.status})")
        lines += [f"- {markdown_line(message)}" for message in check.messages] or ["- this check did not run"]
        lines.append("")
    return "\n".join(lines)


def first_failure(check: CheckScore) -> str:
    """The first ✗ line of a check's feedback, without the numbers that vary from one submission to the next."""
    line = next((m.strip() for m in check.messages if m.strip().startswith("✗")), check.status)
    return re.sub(r"-?\d+(\.\d+)?(e-?\d+)?", "#", line)[:200]


def summary(grades: list[Grade], seconds: float) -> str:
    """summary.md: the batch at a glance, then per check how many earned it and the commonest failures."""
    graded = [g for g in grades if g.checks]
    lines = [
        "# Grading summary",
        "",
        f"{len(grades)} submission(s), {len(graded)} graded, {len(grades) - len(graded)} not graded "
        f"(invalid or unknown notebooks); {seconds:.0f} s.",
        "",
    ]
    for grade in (g for g in grades if not g.checks):
        lines.append(f"- not graded: {markdown(grade.origin)}: {markdown(grade.status)}")
    by_notebook: dict[str, list[Grade]] = {}
    for grade in graded:
        by_notebook.setdefault(grade.notebook, []).append(grade)
    for notebook, group in sorted(by_notebook.items()):
        totals = sorted(g.total for g in group)
        lines += [
            "",
            f"## {notebook}: {len(group)} submission(s), median {totals[len(totals) // 2]} / {group[0].possible}",
            "",
            "| check | points | earned it | most common reasons it was not earned |",
            "|---|---|---|---|",
        ]
        for index, check in enumerate(group[0].checks):
            scores = [g.checks[index] for g in group if index < len(g.checks)]
            earned = sum(1 for s in scores if s.earned == s.points)
            reasons = Counter(first_failure(s) for s in scores if s.earned < s.points).most_common(3)
            shown = markdown("; ".join(f"{count}× {reason}" for reason, count in reasons))
            lines.append(f"| {check.grade_id} | {check.points} | {earned} / {len(scores)} | {shown} |")
    return "\n".join(lines) + "\n"
