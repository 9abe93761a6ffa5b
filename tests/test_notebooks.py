"""Student notebooks are generated from the solutions and carry no solutions (an untouched stub meets its check in
tests/test_agreement.py)."""

from __future__ import annotations

import nbformat
import pytest

from starter.build import CLONE_CELL, KERNELSPEC, MarkerError, build, colab_badge, strip_source
from starter.config import CAPSTONE_ENV, PROJECT_ROOT
from starter.run import WIDGET_VIEW, execute

SOLUTIONS = sorted((PROJECT_ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))


def test_strip_source_keeps_indentation_and_drops_hidden_tests():
    source = (
        "def f(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\n"
        "### BEGIN HIDDEN TESTS\nassert f(1) == 2\n### END HIDDEN TESTS\ncheck(f)"
    )
    assert strip_source(source) == "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\ncheck(f)"


@pytest.mark.parametrize(
    "source", ["### BEGIN SOLUTION\nx = 1", "### END SOLUTION", "### BEGIN SOLUTION\n### BEGIN HIDDEN TESTS"]
)
def test_unbalanced_markers_are_errors(source):
    with pytest.raises(MarkerError):
        strip_source(source)


def test_student_notebooks_are_in_sync_with_solutions():
    stale = build(PROJECT_ROOT / "solutions", PROJECT_ROOT / "notebooks", check=True)
    assert not stale, f"run `make notebooks`: out of date: {[p.name for p in stale]}"
    assert SOLUTIONS, "no solution notebooks found"


def test_a_fast_run_keeps_its_capstone_files_apart_from_a_full_run_s(tmp_path, monkeypatch):
    """The kernels of a fast `starter.run` get a capstone folder of their own, so that a smoke run's capstone-A file
    never sits beside the solutions, where a full run of notebook 06 scores whatever file it finds (a stale one, once:
    0 of 3 points)."""
    monkeypatch.delenv(CAPSTONE_ENV, raising=False)
    source, runs = tmp_path / "solutions" / "probe.ipynb", tmp_path / "runs"
    source.parent.mkdir()
    cell = (
        "from starter import FAST\nfrom starter.capstone import saved_path\n"
        "saved_path('capstone_a.txt').write_text(str(FAST))"
    )
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)]), source)
    for fast in (False, True):
        execute(source, runs / source.name, fast)
    assert (runs / "capstone_a.txt").read_text() == "False"
    assert (runs / "fast-capstones" / "capstone_a.txt").read_text() == "True"
    assert not list(source.parent.glob("capstone_*"))


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solutions_are_complete_and_executed(path):
    notebook = nbformat.read(path, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code if c.outputs), "outputs need execution counts for nbval"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"], "stored error outputs"
    checks = [c for c in code if "check" in c.metadata.get("tags", [])]
    assert checks, "no check cells"
    for cell in checks:
        text = "".join(o.get("text", "") for o in cell.outputs)
        assert "all checks passed" in text, f"check cell {cell.id} does not pass in the stored solution"
        assert cell.metadata["nbgrader"]["grade_id"] == cell.id and cell.metadata["nbgrader"]["points"] > 0


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_notebooks_open_clean(path):
    """JupyterLab's own kernelspec (no change on opening), and progress bars stored with their final text."""
    for notebook in (
        nbformat.read(path, as_version=4),
        nbformat.read(PROJECT_ROOT / "notebooks" / path.name, as_version=4),
    ):
        assert notebook.metadata.kernelspec == KERNELSPEC
        bars = [
            o["data"]["text/plain"]
            for c in notebook.cells
            for o in c.get("outputs", [])
            if WIDGET_VIEW in o.get("data", {})
        ]
        assert not [bar for bar in bars if "100%" not in bar], "progress bars stored at their first state"


def test_colab_badges_and_clone_cells_use_the_one_repository_address():
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    for path in SOLUTIONS:
        notebook = nbformat.read(PROJECT_ROOT / "notebooks" / path.name, as_version=4)
        assert notebook.cells[0].source == colab_badge(path.name) and colab_badge(path.name) in readme
        assert [c.source for c in nbformat.read(path, as_version=4).cells if "google.colab" in c.source] == [CLONE_CELL]
        assert [c.source for c in notebook.cells if "google.colab" in c.source] == [CLONE_CELL]


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_prose_is_markdown_not_commented_text(path):
    """Every line of a prose cell starting with '#' would render as a heading: a leftover of percent-format sources."""
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        lines = [line for line in cell.source.splitlines() if line.strip()]
        if cell.cell_type == "markdown" and len(lines) >= 3:
            assert not all(line.startswith("#") for line in lines), f"markdown cell {cell.id} is all headings"


@pytest.mark.parametrize("fast", [False, True])
def test_a_claim_has_marks_of_its_own_and_none_in_fast_mode(monkeypatch, capsys, fast):
    from starter import summary

    monkeypatch.setattr(summary, "FAST", fast)
    summary.claim("A beats B", True)
    summary.claim("B beats A", False)
    lines = capsys.readouterr().out.splitlines()
    if fast:
        assert lines == ["[fast mode: not evaluated] A beats B", "[fast mode: not evaluated] B beats A"]
    else:
        assert lines == ["[holds] A beats B", "[does not hold in this run] B beats A"]


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_no_claim_wears_a_check_s_mark(path):
    """✓ and ✗ belong to checks (the student's code): no code cell prints them itself, and no stored output of a
    cell that makes claims starts a line with them."""
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        assert "✓" not in cell.source and "✗" not in cell.source, cell.id
        if "claim(" in cell.source:
            lines = "".join(o.get("text", "") for o in cell.outputs).splitlines()
            assert not [line for line in lines if line.startswith(("✓", "✗"))], cell.id


@pytest.mark.parametrize(
    "ours, theirs, runs, mark",
    [
        ((60.0, 2.0), (70.0, 2.0), 3, "[holds]"),  # 10 apart, standard error of the difference 1.6
        ((70.0, 2.0), (60.0, 2.0), 3, "[does not hold in this run]"),
        ((66.0, 3.0), (69.0, 3.0), 3, "[ties at this n"),  # 3 apart, twice the standard error 4.9
        ((60.0, 0.0), (70.0, 0.0), 1, "[ties at this n"),  # one seed: no spread, no claim
    ],
)
def test_a_comparison_holds_only_beyond_its_uncertainty(monkeypatch, capsys, ours, theirs, runs, mark):
    from starter import summary

    monkeypatch.setattr(summary, "FAST", False)
    summary.claim_lower("ours is lower", ours, theirs, runs)
    assert capsys.readouterr().out.startswith(mark)
    monkeypatch.setattr(summary, "FAST", True)
    summary.claim_lower("ours is lower", ours, theirs, runs)
    assert capsys.readouterr().out == "[fast mode: not evaluated] ours is lower\n"
