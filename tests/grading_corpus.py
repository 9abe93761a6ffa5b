"""The submissions the grader must survive, built from the current notebook 01: broken ones, and hostile ones that
try to forge their grade. Each case maps to what its grade must be."""
from __future__ import annotations

import json
import random
from pathlib import Path

import nbformat

from starter.build import student_version
from starter.config import PROJECT_ROOT
from wrong_answers import WRONG_ANSWERS

SOLUTION = PROJECT_ROOT / "solutions" / "01_autoencoder.ipynb"
EXERCISES = ("encoder", "decoder", "loss", "train-epoch")
CHECKS = [f"check-{name}" for name in EXERCISES]

# Hostile code, each piece written as a student could, knowing only the public package and the files around it.
FORGE_LOG = f"""
import json as _json, os as _os
for _cell in {CHECKS!r}:
    with open(_os.environ.get("COURSE_GRADING_LOG", "evidence.jsonl"), "a") as _log:
        _log.write(_json.dumps({{"cell": _cell, "status": "pass", "title": "Encoder", "evidence": []}}) + "\\n")
_os.environ["COURSE_GRADING_LOG"] = "/dev/null"
"""
PATCH_REPORT = """
import starter.checks
starter.checks.Report.status = property(lambda self: "pass")
starter.checks.Report.passed = property(lambda self: True)
"""
PATCH_FRAMEWORK = """
import builtins, sys
import starter.checks, starter.checks.evidence
starter.checks.CheckRun.step = lambda self, name, fn, hints=None: None
sys.modules["starter.checks.autoencoder"].check_reconstruction_loss = lambda *args, **kwargs: None
starter.checks.evidence.Session.save = lambda self: None
builtins.NotImplementedError = KeyboardInterrupt
"""
ENVIRONMENT = """
import os
os.environ.pop("COURSE_GRADING_SEED", None)
os.environ["COURSE_CHECK_CELL"] = "check-train-epoch"
print("✓ Encoder: all checks passed")
"""
REFERENCE_EVIDENCE = """
import os
from starter.checks.autoencoder import check_decoder, check_encoder, check_reconstruction_loss, check_train_epoch
from starter.models.autoencoder import Decoder as _D, Encoder as _E, reconstruction_loss as _r
from starter.train import train_epoch as _t
for _cell, _check, _answer in [("check-encoder", check_encoder, _E), ("check-decoder", check_decoder, _D),
                               ("check-loss", check_reconstruction_loss, _r),
                               ("check-train-epoch", check_train_epoch, lambda *a: _t(*a)["loss"])]:
    os.environ["COURSE_CHECK_CELL"] = _cell
    _check(_answer)
"""
LATE_CHILD = FORGE_LOG.replace('"/dev/null"', '"evidence.jsonl"') + """
import os as _os, threading as _threading, time as _time
def _later():
    _time.sleep(8)
""" + "\n".join("    " + line for line in FORGE_LOG.strip().splitlines()) + """
_threading.Thread(target=_later, daemon=True).start()
if _os.fork() == 0:
    _later()
    _os._exit(0)
"""
EXIT_AFTER_FORGE = FORGE_LOG + "\nimport os\nos._exit(0)\n"
KILL_PARENT = FORGE_LOG + "\nimport os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n"
READ_SOLUTION = f"""
import json as _json
for _cell in _json.load(open({str(SOLUTION)!r}))["cells"]:
    if _cell.get("metadata", {{}}).get("nbgrader", {{}}).get("solution"):
        exec("".join(_cell["source"]))
"""
IMPORT_REFERENCE = {
    "encoder": "from starter.models.autoencoder import Encoder",
    "decoder": "from starter.models import autoencoder\nDecoder = autoencoder.Decoder",
    "loss": "import starter.models.autoencoder as reference\nreconstruction_loss = reference.reconstruction_loss",
    "train-epoch": "from starter.train import train_epoch as reference_epoch\n"
                   "def train_epoch(*args):\n    return reference_epoch(*args)['loss']",
}


def _solution() -> nbformat.NotebookNode:
    return nbformat.read(SOLUTION, as_version=4)


def _edited(notebook: nbformat.NotebookNode, sources: dict[str, str], after: bool = False) -> nbformat.NotebookNode:
    """`notebook` with code added before (or after) the code of some exercise cells, by grade_id."""
    for cell in notebook.cells:
        source = sources.get(cell.get("metadata", {}).get("nbgrader", {}).get("grade_id"))
        if source is not None:
            cell.source = cell.source + "\n" + source if after else source + "\n" + cell.source
    return notebook


def _stubs(**sources: str) -> nbformat.NotebookNode:
    return _edited(student_version(_solution()), {k.replace("_", "-"): v for k, v in sources.items()})


def build_corpus(folder: Path, tamper_target: Path) -> dict[str, dict]:
    """Write every case to `folder`; returns {student: expectations}. "total" is a number or "all"; "zero" lists
    checks that must earn nothing while the others earn everything; "confined" cases hold only when the grader could
    confine submissions."""
    folder.mkdir(parents=True, exist_ok=True)
    full = {"status": "ok", "total": "all"}
    cases: dict[str, tuple[object, dict]] = {}
    cases["solution_01"] = (_solution(), full)
    cases["untouched_01"] = (student_version(_solution()), {"status": "ok", "total": 0})
    cases["not_json_01"] = (b"\x89PNG this is not a notebook", {"status": "invalid: not JSON", "total": 0})
    cases["not_a_notebook_01"] = ({"hello": "world"}, {"status": "invalid: not a notebook", "total": 0})
    old = _solution()
    old["nbformat"] = 3
    cases["nbformat3_01"] = (old, {"status": "invalid: unsupported nbformat 3", "total": 0})

    shuffled = _solution()
    shuffled.cells = [c for c in shuffled.cells if c.get("id") != "decoder"]
    random.Random(0).shuffle(shuffled.cells)
    cases["deleted_reordered_01"] = (shuffled, {"status": "ok", "zero": {"check-decoder"}})

    cases["exception_01"] = (_edited(_solution(), {"encoder": "raise RuntimeError('my bug')"}),
                             {"status": "ok", "zero": {"check-encoder"}})
    cases["endless_01"] = (_edited(_solution(), {"loss": "while True:\n    pass"}), {"status": "ok", "zero": {"check-loss"}})
    cases["memory_bomb_01"] = (_edited(_solution(), {"decoder": "hog = bytearray(64 * 2**30)"}),
                               {"status": "ok", "zero": {"check-decoder"}})
    flood = ("print('x' * 50_000_000)\n"
             "def reconstruction_loss(x_hat, x):\n    raise ValueError('y' * 1_000_000)")
    cases["huge_output_01"] = (_edited(_solution(), {"loss": flood}, after=True),
                               {"status": "ok", "zero": {"check-loss"}, "short": True})
    escape = (f"from pathlib import Path\nfor target in [Path({str(tamper_target)!r}), Path('../../escaped_by_student.txt'),\n"
              f"               Path.home().parent.parent / 'PWNED']:\n"
              "    try:\n        target.write_text('tampered')\n    except OSError:\n        pass")
    cases["tamper_01"] = (_edited(_solution(), {"encoder": escape}), {"status": "ok", "total": "all"})
    hard_coded = "def reconstruction_loss(x_hat, x):\n    return ((x_hat - x) ** 2).sum() / (len(x) * 784)"
    cases["fails_hidden_test_01"] = (_edited(_solution(), {"loss": hard_coded}, after=True),
                                     {"status": "ok", "zero": {"check-loss"}})
    false_passes = _solution()
    for cell in false_passes.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        wrong = {"encoder": WRONG_ANSWERS["encoder"][0], "train-epoch": WRONG_ANSWERS["train-epoch"][0]}.get(grade_id)
        if wrong:
            cell.source = wrong.apply(cell.source)
    cases["false_passes_01"] = (false_passes, {"status": "ok", "zero": {"check-encoder", "check-train-epoch"}})

    forged = student_version(_solution())
    for cell in forged.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
            cell.source = "print('✓ all checks passed')"
    cases["forged_checks_01"] = (forged, {"status": "ok", "total": 0})
    hostile = {"forge_log": _stubs(encoder=FORGE_LOG), "patch_report": _stubs(encoder=PATCH_REPORT),
               "patch_framework": _stubs(encoder=PATCH_FRAMEWORK), "environment": _stubs(encoder=ENVIRONMENT),
               "reference_evidence": _stubs(encoder=REFERENCE_EVIDENCE), "late_child": _stubs(encoder=LATE_CHILD),
               "exit_after_forge": _stubs(encoder=EXIT_AFTER_FORGE), "kill_parent": _stubs(encoder=KILL_PARENT),
               "import_reference": _stubs(**{k.replace("-", "_"): v for k, v in IMPORT_REFERENCE.items()})}
    for name, notebook in hostile.items():
        cases[f"{name}_01"] = (notebook, {"total": 0})
    cases["read_solution_01"] = (_stubs(encoder=READ_SOLUTION), {"total": 0, "confined": True})
    forged_print = "print('✓ Decoder: all checks passed')\nprint('✓ reconstruction_loss: all checks passed')"
    cases["hostile_solution_01"] = (_edited(_solution(), {"encoder": PATCH_REPORT + forged_print}, after=True),
                                    {"status": "ok", "zero": {"check-encoder"}})  # no more than the honest checks

    for student, (content, _) in cases.items():
        path = folder / f"{student}.ipynb"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(json.dumps(content))
    return {student: expected for student, (_, expected) in cases.items()}
