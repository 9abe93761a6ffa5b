"""PrairieLearn: a question graded externally (`question`) with the image that grades it, and its entry point
(`python -m starter.autograder.prairielearn`, which the question's `tests/grade` runs), after PrairieLearn's external
grading documentation: the student's files in /grade/student, the question's tests/ in /grade/tests, the results in
/grade/results/results.json (`score` from 0 to 1, `gradable`, `message`, one test per check cell). PrairieLearn shows
results at once: a test shows its visible check's ✓/✗ lines and only the verdict of each of its hidden tests."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

from starter.autograder.bundle import PYTHON, Bundle
from starter.autograder.platform import Layout, Outcome, check_name, is_title, main, split
from starter.capstone import files_of

ROOT = Path("/grade")
LAYOUT = Layout("PrairieLearn", ROOT / "student", ROOT / "tests", ROOT / "results" / "results.json")
ENTRY = LAYOUT.course / "grade"
TIMEOUT = 600  # seconds: the most PrairieLearn allows a grading job
DOCKERFILE = f"""# The image that grades the discrete-latents course on PrairieLearn: build it from this folder,
# push it to Docker Hub and name it as each question's externalGradingOptions.image. Python {PYTHON}, bubblewrap
# (the grader's sandbox), setpriv and prlimit (util-linux), then the course and its grader (install.sh).
FROM python:{PYTHON}-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends bubblewrap util-linux && rm -rf /var/lib/apt/lists/*
COPY . /tmp/course
RUN cd /tmp/course && sh install.sh python3 && rm -rf /tmp/course
"""
QUESTION = """<pl-question-panel>
  <p>Upload your notebook <code>{notebook}.ipynb</code>. The course's grader runs its exercise cells and checks
  them: a check earns its points when its visible check and its hidden tests all pass.{capstones}</p>
  <pl-file-upload file-names="{notebook}.ipynb"{optional}></pl-file-upload>
</pl-question-panel>

<pl-submission-panel>
  <pl-external-grader-results></pl-external-grader-results>
</pl-submission-panel>
"""


def results(outcome: Outcome) -> dict:
    """results.json for `outcome`: not gradable (the student loses no attempt), with a score of 0 and the reason, when
    the notebook was not graded; the reason is a format error of the submission's unless the autograder failed."""
    if not outcome.graded:
        message = f"Not graded: {outcome.why}."
        errors = {} if outcome.failed else {"format_errors": [message]}
        return {"gradable": False, "score": 0.0, "message": message, **errors}
    tests = []
    for check in outcome.grade.checks:
        shown, hidden = split(check)
        output = "\n".join(shown + [line for line in hidden if is_title(line)])  # a hidden test's verdict: no steps
        tests.append({"name": check_name(check), "points": check.earned, "max_points": check.points, "output": output})
    grade = outcome.grade
    return {
        "gradable": True,
        "score": grade.total / grade.possible if grade.possible else 0.0,
        "max_points": grade.possible,
        "message": f"{grade.total} / {grade.possible} points (status: {grade.status}).",
        "tests": tests,
    }


def question_html(notebook: str) -> str:
    """question.html: the notebook to upload, and the capstone weights files that may go with it."""
    files = files_of(notebook)
    capstones = "".join(
        f" Upload the weights your notebook saved, <code>{name}</code>, beside it: the capstone is graded on them."
        for name in files
    )
    optional = f' optional-file-names="{",".join(files)}"' if files else ""
    return QUESTION.format(notebook=notebook, capstones=capstones, optional=optional)


def question(bundle: Bundle, out: Path, image: str) -> Path:
    """Write out/prairielearn/questions/discrete-latents-<notebook>/ (info.json, question.html, tests/ with the
    entry point and the solution) and out/prairielearn/image/ (the Dockerfile and what it installs); returns the
    question's folder."""
    folder = out / "prairielearn" / "questions" / f"discrete-latents-{bundle.notebook}"
    tests = folder / "tests"
    bundle.write_solution(tests)
    what = f"PrairieLearn runs this for each submission, as root: the course's grader grades {LAYOUT.submission}."
    (tests / ENTRY.name).write_text(bundle.entry("starter.autograder.prairielearn", what), encoding="utf-8")
    (tests / ENTRY.name).chmod(0o755)
    info = {
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"discrete-latents/{bundle.notebook}")),
        "title": bundle.title(),
        "topic": "discrete-latents",
        "tags": ["discrete-latents", "notebook"],
        "type": "v3",
        "singleVariant": True,
        "gradingMethod": "External",
        "externalGradingOptions": {"enabled": True, "image": image, "entrypoint": str(ENTRY), "timeout": TIMEOUT},
    }
    (folder / "info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    (folder / "question.html").write_text(question_html(bundle.notebook), encoding="utf-8")
    image_folder = out / "prairielearn" / "image"
    bundle.write_installer(image_folder)
    (image_folder / "Dockerfile").write_text(DOCKERFILE, encoding="utf-8")
    return folder


if __name__ == "__main__":
    sys.exit(main(LAYOUT, results))
