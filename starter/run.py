"""Execute the course notebooks headless and print a table of their key numbers and run times.

python -m starter.run                 # every solution notebook, full mode, executed copies in runs/
python -m starter.run --fast 01 02    # a quick pass over some of them (COURSE_FAST=1)
python -m starter.run --inplace       # refresh the stored outputs of solutions/ (maintainers)
python -m starter.run --fast --jobs 2 # two notebooks at a time, the cores shared out between their kernels
python -m starter.run --checks 02     # refresh only the stored outputs of the check cells (after a check changed)
"""

from __future__ import annotations

import argparse
import html
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from starter.build import KERNELSPEC
from starter.config import (
    CAPSTONE_ENV,
    FAST_ENV,
    PROJECT_ROOT,
    RESULTS_ENV,
    STATIC_ENV,
    thread_limits,
    threads_per_job,
)

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def settle_progress_bars(notebook: nbformat.NotebookNode) -> None:
    """Give each stored progress-bar widget its final text: the plain-text fallback that a notebook shows where its
    widgets do not render (untrusted, or on GitHub) is otherwise the bar's first state, "0%"."""
    state = notebook.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})

    def text(model_id: str) -> str:
        model = state.get(model_id.removeprefix("IPY_MODEL_"), {}).get("state", {})
        if "children" in model:
            return " ".join(filter(None, (text(child) for child in model["children"])))
        value = model.get("value")
        return html.unescape(value).replace("\u2007", " ").strip() if isinstance(value, str) else ""

    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view and view.get("model_id") in state:
                output["data"]["text/plain"] = text(view["model_id"])


def capstone_folder(target: Path, fast: bool) -> Path:
    """Where a run's notebooks save and read their capstone files: beside the executed copies, and in a folder of
    their own in fast mode, so that a smoke run's capstone-A file is never the one a full run of notebook 06 scores."""
    return target.parent / "fast-capstones" if fast else target.parent


def execute(
    source: Path, target: Path, fast: bool, timeout: int | None = None, threads: int | None = None
) -> tuple[float, dict]:
    """Run one notebook from its own folder (its kernel capped at `threads`); returns (seconds, the results it
    reported)."""
    notebook = nbformat.read(source, as_version=4)
    capstones = Path(os.environ.get(CAPSTONE_ENV) or capstone_folder(target, fast))
    capstones.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        results_file = Path(scratch) / "results.json"
        env = {
            **os.environ,
            RESULTS_ENV: str(results_file),
            FAST_ENV: "1" if fast else "0",
            STATIC_ENV: "1",
            CAPSTONE_ENV: str(capstones.resolve()),
            **(thread_limits(threads) if threads else {}),
        }  # STATIC: no one moves the sliders
        start = time.perf_counter()
        NotebookClient(
            notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(source.parent)}}
        ).execute(env=env)
        seconds = time.perf_counter() - start
        results = json.loads(results_file.read_text()) if results_file.exists() else {}
    settle_progress_bars(notebook)
    notebook.metadata["kernelspec"] = dict(KERNELSPEC)
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, target)
    return seconds, results


def exercises_and_checks(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy with only the set-up cells, then the exercise and check cells (the rest left empty, the Colab
    cell too)."""
    notebook = nbformat.from_dict(json.loads(json.dumps(notebook)))
    seen_exercise = False
    for cell in notebook.cells:
        tags = cell.metadata.get("tags", [])
        seen_exercise = seen_exercise or "exercise" in tags
        if cell.cell_type == "code" and (
            "google.colab" in cell.source or (seen_exercise and not {"exercise", "check"} & set(tags))
        ):
            cell.source = ""
    return notebook


def refresh_check_outputs(source: Path) -> None:
    """Run the set-up, exercise and check cells (fast mode: the checks draw their own inputs, so their output is the
    same in full mode) and store the check cells' new outputs; every other output is kept."""
    notebook = nbformat.read(source, as_version=4)
    ran = exercises_and_checks(notebook)
    NotebookClient(
        ran, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(source.parent)}}
    ).execute(env={**os.environ, FAST_ENV: "1", STATIC_ENV: "1"})
    for cell, new in zip(notebook.cells, ran.cells):
        if "check" in cell.metadata.get("tags", []):
            cell.outputs = new.outputs
    nbformat.write(notebook, source)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="notebook numbers to run, e.g. 01 03 (default: all)")
    parser.add_argument("--fast", action="store_true", help="fast mode: small subsets, few epochs")
    parser.add_argument("--inplace", action="store_true", help="write outputs back into solutions/")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "runs", help="folder for executed copies")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks run at once, sharing the cores out (default 1)")
    parser.add_argument("--checks", action="store_true", help="refresh only the check cells' outputs in solutions/")
    args = parser.parse_args(argv)
    sources = [
        p
        for p in sorted((PROJECT_ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
        if not args.only or p.name[:2] in args.only
    ]
    if args.checks:
        for source in sources:
            print(f"refreshing the check outputs of {source.name} ...", flush=True)
            refresh_check_outputs(source)
        return 0
    threads = threads_per_job(args.jobs) if args.jobs > 1 else None
    print(
        f"{len(sources)} notebook(s), {'fast' if args.fast else 'full'} mode, {args.jobs} at a time"
        + (f", {threads} torch thread(s) each" if threads else ", each with every core"),
        flush=True,
    )

    def run(source: Path) -> tuple[str, float, dict]:
        print(f"running {source.name} ...", flush=True)
        target = source if args.inplace else args.out / source.name
        return (source.stem, *execute(source, target, args.fast, threads=threads))

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        rows = list(pool.map(run, sources))
    print(f"\n{'notebook':<24} {'time':>8}  key numbers")
    for name, seconds, results in rows:
        numbers = ", ".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}" for k, v in results.items())
        print(f"{name:<24} {seconds:>7.0f}s  {numbers}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
