"""Which submissions' exercise code is nearly the same, and which is nearly the course's own: a report that ranks
and explains, for an instructor to read, never a verdict.

Each exercise cell is normalised first: comments and docstrings dropped, the names the cell itself binds
(variables, arguments, functions, classes) renamed in order of appearance, the cell's top-level definitions and a
class's methods put in a fixed order, the layout rewritten by `ast.unparse`. Its fingerprint is the set of 5-token
windows of that text (as MOSS and JPlag compare programs), less every window the stub of the cell already holds:
the code the course hands out never counts. Two submissions are as similar as the share of windows they have in
common over all their exercises (Jaccard), and a pair is reported when that share and the amount of shared code
are both high. Short cells, which independent students can write alike, count little. A submission that cannot be
compared cheaply is left out, and the report says so: an exercise cell longer than CELL_LIMIT characters (a
fingerprint costs time and memory in proportion), code that nests too deeply for Python's parser or `ast`, or any
other failure to fingerprint it.
"""

from __future__ import annotations

import ast
import builtins
import csv
import io
import itertools
import re
import tokenize
import zlib
from dataclasses import dataclass
from pathlib import Path

from starter.build import strip_source
from starter.exercises import BY_ID
from starter.files import write_atomically
from starter.grading.reports import markdown, spreadsheet
from starter.grading.submissions import exercise_sources
from starter.grading.withheld import definition_source

WINDOW = 5
THRESHOLD = 0.6  # share of windows in common from which a pair is reported
MINIMUM = 40  # ... if they also have at least this many windows in common
CELL_LIMIT = 20_000  # characters of an exercise cell fingerprinted (the course's longest answer is under 2,000)


class Renamer(ast.NodeTransformer):
    """Rename the names a cell binds (not builtins, not what it imports or uses from elsewhere) to v0, v1, ..."""

    def __init__(self, bound: set[str]):
        self.bound, self.names = bound, {}

    def rename(self, name: str) -> str:
        if name not in self.bound:
            return name
        return self.names.setdefault(name, f"v{len(self.names)}")

    def visit_Name(self, node: ast.Name) -> ast.AST:
        node.id = self.rename(node.id)
        return node

    def visit_arg(self, node: ast.arg) -> ast.AST:
        node.arg, node.annotation = self.rename(node.arg), None
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.name, node.returns = self.rename(node.name), None
        return self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        node.name = self.rename(node.name)
        return self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if isinstance(node.value, ast.Name) and node.value.id == "self":
            node.attr = self.rename(node.attr)  # the student's own attribute names
        return self.generic_visit(node)


def bound_names(tree: ast.AST) -> set[str]:
    """What a cell names itself: assignment targets, arguments, functions, classes, attributes of self."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            names.add(node.attr)
    return (names - set(dir(builtins))) - {"self", "forward", "__init__"}


def without_docstrings(body: list[ast.stmt]) -> list[ast.stmt]:
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        body = body[1:] or [ast.Pass()]
    return body


def normalised(source: str) -> str:
    """The cell's code with comments, docstrings, annotations, its own names and the order of its definitions
    normalised (the text unchanged when it does not parse)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return source
    bound = bound_names(tree)

    def shape(node: ast.AST) -> str:  # the definition with its own names blanked: an order that renaming keeps
        return re.sub(r"(id|arg|name|attr)='(\w+)'", lambda m: f"{m[1]}='_'" if m[2] in bound else m[0], ast.dump(node))

    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            node.body = without_docstrings(node.body)
        if isinstance(node, (ast.Module, ast.ClassDef)):
            definitions = sorted((n for n in node.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))), key=shape)
            node.body = [n for n in node.body if not isinstance(n, (ast.FunctionDef, ast.ClassDef))] + definitions
    return ast.unparse(ast.fix_missing_locations(Renamer(bound).visit(tree)))


def windows(source: str) -> set[int]:
    """The 5-token windows of a normalised source, hashed."""
    try:
        tokens = [
            t.string
            for t in tokenize.generate_tokens(io.StringIO(normalised(source)).readline)
            if t.type
            not in (
                tokenize.NL,
                tokenize.NEWLINE,
                tokenize.INDENT,
                tokenize.DEDENT,
                tokenize.COMMENT,
                tokenize.ENDMARKER,
            )
        ]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        tokens = source.split()
    return {
        zlib.crc32(" ".join(tokens[i : i + WINDOW]).encode("utf-8", "surrogatepass"))
        for i in range(max(0, len(tokens) - WINDOW + 1))
    }


def fingerprint(source: str, stub: str) -> set[int]:
    """The windows of an exercise cell that the cell's stub does not already hold."""
    return windows(source) - windows(stub)


@dataclass
class Match:
    first: str
    second: str
    score: float  # windows in common / windows of either, over the exercises both wrote
    shared: int  # windows in common
    exercises: dict[str, float]  # per exercise: its own share in common


def compare(first: dict[str, set[int]], second: dict[str, set[int]]) -> tuple[float, int, dict[str, float]]:
    """How alike two sets of exercise fingerprints are: overall share, windows in common, share per exercise."""
    common = union = 0
    per_exercise = {}
    for exercise in first.keys() & second.keys():
        a, b = first[exercise], second[exercise]
        if a and b:
            both, either = len(a & b), len(a | b)
            common, union = common + both, union + either
            per_exercise[exercise] = both / either
    return (common / union if union else 0.0), common, per_exercise


def similar_pairs(prints: dict[str, dict[str, set[int]]], references: dict[str, dict[str, set[int]]]) -> list[Match]:
    """Every pair of submissions, and every submission against the course's code, above the reporting thresholds,
    most similar first."""
    found = []
    for (a, first), (b, second) in itertools.chain(
        itertools.combinations(prints.items(), 2), itertools.product(prints.items(), references.items())
    ):
        score, shared, per_exercise = compare(first, second)
        if score >= THRESHOLD and shared >= MINIMUM:
            found.append(Match(a, b, score, shared, {e: s for e, s in per_exercise.items() if s >= THRESHOLD}))
    return sorted(found, key=lambda m: (-m.score, -m.shared, m.first, m.second))


def write_report(
    matches: list[Match],
    out: Path,
    submissions: int,
    left_out: list[str] | None = None,
    weights: list[tuple[str, str, float]] | None = None,
) -> None:
    """similarity.csv (one line per pair) and similarity.md (how to read it, the pairs, the submissions left out,
    and the capstone weights that two submissions share: (first, second, relative distance))."""
    handle = io.StringIO()
    writer = csv.writer(handle)
    writer.writerow(["first", "second", "score", "shared_windows", "exercises"])
    for match in matches:
        exercises = " ".join(f"{e}:{s:.2f}" for e, s in sorted(match.exercises.items()))
        row = [match.first, match.second, f"{match.score:.2f}", match.shared, exercises]
        writer.writerow([spreadsheet(cell) for cell in row])
    write_atomically(out / "similarity.csv", handle.getvalue())
    lines = [
        "# Similar submissions",
        "",
        f"{submissions} submission(s) compared exercise by exercise, after normalising names, comments, layout and "
        "the order of definitions, and leaving out the code the notebooks hand out. A pair is listed when at least "
        f"{THRESHOLD:.0%} of their code is the same (windows of {WINDOW} tokens) and that code is substantial "
        f"({MINIMUM}+ windows). `course` stands for the course's own solutions and `starter` code.",
        "",
        "This ranks pairs worth a look and says where they are alike; it proves nothing. Short or standard "
        "answers can be alike by chance, and a shared tutorial or a study group can explain more. Read the cells.",
        "",
    ]
    if not matches:
        lines.append("No pair is above the thresholds.")
    else:
        lines += [
            "| first | second | share in common | windows in common | exercises most alike |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {markdown(m.first)} | {markdown(m.second)} | {m.score:.0%} | {m.shared} | "
            f"{markdown(', '.join(f'{e} ({s:.0%})' for e, s in sorted(m.exercises.items(), key=lambda x: -x[1])))} |"
            for m in matches
        ]
    if left_out:
        lines += [
            "",
            f"Left out, their code too long (a cell over {CELL_LIMIT:,} characters) or too deeply nested to "
            "normalise (read their cells):",
        ]
        lines += [f"- {markdown(label)}" for label in left_out]
    if weights:
        lines += [
            "",
            "## Capstone weights",
            "",
            "These submissions handed in the same capstone weights, or nearly (relative L2 distance at most 1e-3): "
            "training from different seeds never gives that. A copy of a shipped checkpoint is in its feedback.",
            "",
            "| first | second | relative distance |",
            "|---|---|---|",
        ]
        lines += [f"| {markdown(a)} | {markdown(b)} | {gap:.1e} |" for a, b, gap in weights]
    write_atomically(out / "similarity.md", "\n".join(lines) + "\n")


def notebook_fingerprints(notebook, solution) -> dict[str, set[int]]:
    """A notebook's exercise cells (those of the course notebook `solution`), as fingerprints by grade_id."""
    return source_fingerprints(exercise_sources(notebook), solution)


def source_fingerprints(sources: dict[str, str], solution) -> dict[str, set[int]]:
    """Exercise cells' sources by grade_id (those of the course notebook `solution`), as fingerprints."""
    stubs = exercise_stubs(solution)
    return {grade_id: fingerprint(sources[grade_id], stub) for grade_id, stub in stubs.items() if grade_id in sources}


def submission_fingerprints(sources: dict[str, str], solution) -> dict[str, set[int]] | None:
    """A submission's fingerprints, or None when it cannot be compared cheaply: a cell over CELL_LIMIT characters,
    code that nests too deeply for the parser or `ast`, or any other failure (it must never stop a batch)."""
    if any(len(source) > CELL_LIMIT for source in sources.values()):
        return None
    try:
        return source_fingerprints(sources, solution)
    except Exception:  # noqa: BLE001 (RecursionError, MemoryError from 3.11's parser, a lone surrogate, ...)
        return None


def course_fingerprints(name: str, solution) -> dict[str, dict[str, set[int]]]:
    """The course's own answers to a notebook's exercises: its solution cells, and starter's versions (twins)."""
    stubs = exercise_stubs(solution)
    twins = {
        grade_id: "\n\n".join(definition_source(twin) for twin in BY_ID[grade_id].twins)
        for grade_id in stubs
        if grade_id in BY_ID
    }
    return {
        f"course solution ({name[:2]})": notebook_fingerprints(solution, solution),
        f"starter ({name[:2]})": {grade_id: fingerprint(source, stubs[grade_id]) for grade_id, source in twins.items()},
    }


def exercise_stubs(solution) -> dict[str, str]:
    """The stub students get for each exercise cell of a solution notebook, by grade_id."""
    return {
        c.metadata["nbgrader"]["grade_id"]: strip_source(c.source)
        for c in solution.cells
        if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")
    }
