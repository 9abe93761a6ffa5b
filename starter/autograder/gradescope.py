"""Gradescope: the autograder zip (`package`) and its entry point (`python -m starter.autograder.gradescope`, which
`run_autograder` runs), after Gradescope's autograder specification: `setup.sh` and `run_autograder` at the root
of the zip, whose files Gradescope puts in /autograder/source; the submission in /autograder/submission; the results
in /autograder/results/results.json. Each check cell is two tests: its visible check's ✓/✗ lines, shown at once and
worth nothing, and its points with all its lines (its hidden tests' too), shown once grades are published. A
capstone, graded on the weights file uploaded with the notebook, is one test, shown at once."""

from __future__ import annotations

import stat
import sys
import zipfile
from pathlib import Path

from starter.autograder.bundle import PYTHON, Bundle
from starter.autograder.platform import PREFIX, Layout, Outcome, check_name, main, passed, split
from starter.capstone import BY_GRADE_ID as CAPSTONES

ROOT = Path("/autograder")
LAYOUT = Layout("Gradescope", ROOT / "submission", ROOT / "source", ROOT / "results" / "results.json")
SETUP = f"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image (Ubuntu): bubblewrap (the grader's
# sandbox), setpriv and prlimit (util-linux), Python {PYTHON} (by uv), then the course and its grader (install.sh).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends bubblewrap util-linux curl ca-certificates
curl -LsSf https://astral.sh/uv/install.sh | env UV_INSTALL_DIR=/usr/local/bin sh
export UV_PYTHON_INSTALL_DIR={PREFIX}/python
uv python install {PYTHON}
cd {LAYOUT.course}
sh install.sh "$(uv python find {PYTHON})"
"""
PUBLISHED = (
    "Each check's points depend on its hidden tests too: they and your score are shown once grades are published. "
    "The visible checks, the same as your notebook's check cells, are below."
)


def results(outcome: Outcome) -> dict:
    """results.json for `outcome`: a score of 0 and the reason when the notebook was not graded."""
    common = {"execution_time": round(outcome.seconds), "stdout_visibility": "hidden"}
    if not outcome.graded:
        failed = {"name": "Your notebook", "score": 0.0, "max_score": float(outcome.possible), "status": "failed"}
        output = f"Not graded: {outcome.why}."
        return {"score": 0.0, "output": output, **common, "tests": [{**failed, "output": output}]}
    tests = []
    for check in outcome.grade.checks:
        name = check_name(check)
        if check.grade_id in CAPSTONES:  # graded on its weights alone, as the notebook's own cell shows: one test
            status = "passed" if check.earned == check.points else "failed"
            score = {"score": float(check.earned), "max_score": float(check.points), "status": status}
            tests.append({"name": name, **score, "output": "\n".join(check.messages), "visibility": "visible"})
            continue
        shown, _ = split(check)
        status = "passed" if passed(shown) else "failed"
        tests.append({"name": name, "status": status, "output": "\n".join(shown), "visibility": "visible"})
        tests.append(
            {
                "name": f"{name}, with its hidden tests",
                "score": float(check.earned),
                "max_score": float(check.points),
                "output": "\n".join(check.messages),
                "visibility": "after_published",
            }
        )
    output = f"Graded by the course's grader (status: {outcome.grade.status}). {PUBLISHED}"
    return {"score": float(outcome.grade.total), "output": output, **common, "tests": tests}


def package(bundle: Bundle, out: Path) -> Path:
    """Write out/gradescope/<notebook>-autograder.zip: setup.sh and run_autograder at its root, beside the wheel,
    requirements.txt, install.sh and solutions/<notebook>.ipynb."""
    folder = out / "gradescope" / bundle.notebook
    bundle.write_installer(folder)
    bundle.write_solution(folder)
    (folder / "setup.sh").write_text(SETUP, encoding="utf-8")
    what = f"Gradescope runs this for each submission, as root, from {ROOT}: the course's grader grades it."
    (folder / "run_autograder").write_text(bundle.entry("starter.autograder.gradescope", what), encoding="utf-8")
    archive = out / "gradescope" / f"{bundle.notebook}-autograder.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(str(path.relative_to(folder)), (1980, 1, 1, 0, 0, 0))
            info.external_attr = (stat.S_IFREG | (0o755 if path.suffix in {"", ".sh"} else 0o644)) << 16
            info.compress_type = zipfile.ZIP_STORED if path.suffix == ".whl" else zipfile.ZIP_DEFLATED
            zipped.writestr(info, path.read_bytes())
    return archive


if __name__ == "__main__":
    sys.exit(main(LAYOUT, results))
