"""A copy of the `starter` package with the answers of a notebook (and of every later one) withheld: what a grading
kernel imports, and what a release for graded use ships.

Each twin of an exercise (`starter.exercises`) becomes a stub that raises `Withheld` with the same message a
notebook's own check gives, and every module of `starter.checks` becomes a stub too (checks run in the grader's
process). What a grading kernel runs for the checks is `starter.probes`, which it gets whole: it holds no answer.
The reference runs of the notebook's capstones, and of later ones, are left out (`starter.capstone`).
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

from starter.capstone import withheld_references
from starter.exercises import defined_names, stub_source, withheld_message, withheld_twins

STARTER = Path(__file__).resolve().parent.parent


def first_line(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> int:
    """The line (from 1) where a definition starts: its first decorator's, else its own."""
    return min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])


def replace_definitions(source: str, stubs: dict[str, str]) -> str:
    """`source` with each top-level function or class named in `stubs` replaced by the stub: a function with its
    decorators, a class below its own (a registered kind stays registered, and loading one says it is withheld)."""
    lines = source.splitlines(keepends=True)
    nodes = [n for n in ast.parse(source).body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name in stubs]
    for node in sorted(nodes, key=lambda n: n.lineno, reverse=True):
        start = node.lineno if isinstance(node, ast.ClassDef) else first_line(node)
        lines[start - 1 : node.end_lineno] = [stubs[node.name]]
    return "".join(lines)


def definition_source(twin: str, source: Path = STARTER) -> str:
    """The source of a top-level function or class of the course ("starter.module:name"), decorators included, as
    `inspect.getsource` gives it, read from its file without importing the module (and torch with it)."""
    module, name = twin.split(":")
    text = (source.parent / f"{module.replace('.', '/')}.py").read_text(encoding="utf-8")
    for node in ast.parse(text).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return "".join(text.splitlines(keepends=True)[first_line(node) - 1 : node.end_lineno])
    raise LookupError(f"{twin}: no top-level function or class of that name")


def check_stubs(source: str) -> str:
    """A module with the same check functions as `source`, each only saying that the checks run elsewhere."""
    names = [name for name in defined_names(source) if name.startswith("check_")]
    return (
        '"""Withheld: the checks run where the notebook is graded."""\n'
        "from starter.exercises import checked_elsewhere\n\n\n"
        + "\n\n".join(f"def {name}(*args, **kwargs):\n    checked_elsewhere({name!r})\n" for name in names)
    )


def withheld_copy(notebook: str, target: Path, source: Path = STARTER) -> Path:
    """Write `target`/starter: the package at `source` with the answers of notebook "NN" and later ones withheld.
    Returns the new package's folder."""
    by_module: dict[str, dict[str, str]] = {}
    for twin, exercise in withheld_twins(notebook).items():
        module, name = twin.split(":")
        by_module.setdefault(module, {})[name] = withheld_message(twin, exercise)
    package = target / "starter"
    if package.exists():
        shutil.rmtree(package)
    for path in sorted(source.rglob("*.py")):
        relative = path.relative_to(source)
        module = ".".join(("starter", *relative.with_suffix("").parts)).removesuffix(".__init__")
        if "__pycache__" in relative.parts or module in withheld_references(notebook):
            continue
        text = path.read_text(encoding="utf-8")
        if relative.parts[0] == "checks":
            text = check_stubs(text)
        elif module in by_module:
            names = defined_names(text)
            text = replace_definitions(
                text,
                {
                    name: stub_source(name, message, names[name])
                    for name, message in by_module[module].items()
                    if name in names
                },
            )
        destination = package / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(text, encoding="utf-8")
    return package
