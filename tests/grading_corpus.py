"""The submissions the grader must survive, built from the current notebook 01 (and 02, 04 and 05 where their checks
are attacked): broken ones, and hostile ones written white-box, after reading the grader and the checks, that try to
earn points they did not, or to cost another student points. Each case maps to what its grade must be."""

from __future__ import annotations

import json
import random
from pathlib import Path

import nbformat
from wrong_answers import WRONG_ANSWERS

from starter.build import student_version
from starter.capstone import capstones_of
from starter.config import PROJECT_ROOT

SOLUTION = PROJECT_ROOT / "solutions" / "01_autoencoder.ipynb"
VQ_SOLUTION = PROJECT_ROOT / "solutions" / "02_vqvae.ipynb"
PRIOR_SOLUTION = PROJECT_ROOT / "solutions" / "04_prior.ipynb"
VAE_SOLUTION = PROJECT_ROOT / "solutions" / "05_comparison.ipynb"
MARKER = "grading-corpus-leftover"

# Reaching the course's own versions through what the grading kernel holds: globals of the check stubs, the garbage
# collector, the source on disk, a factory that builds one, a class whose metaclass hides its bases.
REACH_REFERENCE = '''
import gc, importlib, inspect, sys, types
import starter.checks.autoencoder as _checks
_found = [getattr(_checks, "check_encoder").__globals__.get(n) for n in ("ReferenceEncoder", "Encoder")]
_found += [o for o in gc.get_objects() if isinstance(o, type) and o.__name__ in ("Encoder", "Decoder")
           and getattr(o, "__module__", "").startswith("starter")]
import starter.models.autoencoder as _reference
try:
    exec(inspect.getsource(_reference), _space := {"__name__": "__main__"})
    _found.append(_space.get("Encoder"))
except Exception:
    pass
for _path in ["solutions/01_autoencoder.ipynb", "../solutions/01_autoencoder.ipynb",
              "/work/main/solutions/01_autoencoder.ipynb"]:
    try:
        open(_path).read()
        _found.append("read the solutions")
    except OSError:
        pass
Encoder = next((f for f in _found if isinstance(f, type)), None)
def Decoder(latent_dim=16, hidden=32):
    from starter.models.vae import VAE
    return VAE(latent_dim, hidden).decoder
class _Hidden(type):
    """A metaclass that says its classes are nothing but themselves."""
    def __repr__(cls):
        return "<class 'notebook.train_epoch'>"
    def __subclasscheck__(cls, other):
        return False
class train_epoch(_reference.Autoencoder, metaclass=_Hidden):
    def __new__(cls, model, loader, optimizer, loss_fn):
        return super().__new__(cls).forward(next(iter(loader))[0]).mean().item()
'''
# IPython hooks that swap the notebook's names and the request server between cells, and rebound check names.
HOOKS = """
from IPython import get_ipython
import starter.models.autoencoder as _reference
def _swap(*args, **kwargs):
    globals()["Encoder"] = _reference.Encoder
    globals()["reconstruction_loss"] = _reference.reconstruction_loss
    class _Liar:
        def reply(self, request):
            return '{"value": {"dict": {"output": 0.0, "requires_grad": true}}}'
    globals()["__course__"] = _Liar()
for _event in ("pre_run_cell", "post_run_cell", "pre_execute", "post_execute"):
    get_ipython().events.register(_event, _swap)
check_encoder = check_decoder = check_reconstruction_loss = check_train_epoch = lambda *args, **kwargs: None
"""
# Objects that lie about themselves: the right parameters on show, something else computed.
LYING_MODULE = """
import torch
from torch import nn
class Encoder(nn.Module):
    def __init__(self, latent_dim=16, hidden=32):
        super().__init__()
        self.a = nn.Conv2d(1, hidden, 4, stride=2, padding=1)
        self.b = nn.Conv2d(hidden, 2 * hidden, 4, stride=2, padding=1)
        self.c = nn.Linear(2 * hidden * 7 * 7, latent_dim)
    def forward(self, x):
        return torch.zeros(len(x), self.c.out_features, requires_grad=True)
    def named_parameters(self, *args, **kwargs):
        yield from super().named_parameters(*args, **kwargs)
"""
# Patching the probes and the server, editing results with sys.setprofile.
PATCH_PROBES = """
import sys
import starter.probes.general as _general, starter.probes.serve as _serve
_general.parameters.__code__ = (lambda module: []).__code__
_general.gradients.__code__ = (lambda *a, **k: {"output": 0.0, "requires_grad": True, "grads": [None]}).__code__
_serve.Server.handle = lambda self, request: {"value": True}
def _profile(frame, event, arg):
    if event == "return" and frame.f_code.co_name == "encode":
        frame.f_locals["value"] = True
sys.setprofile(_profile)
"""
# Rewriting what was recorded after the check: a forked child and a thread that outlive the cell, files in the
# kernel's folder, and leftovers in /tmp and /dev/shm.
LATE_WRITERS = f'''
import json, os, pathlib, threading, time
def _forge():
    time.sleep(2)
    for folder in (pathlib.Path.cwd(), pathlib.Path("/tmp"), pathlib.Path("/dev/shm")):
        for name in ("evidence.jsonl", "windows.json", "results.json", "{MARKER}"):
            try:
                forged = {{"check": "check-encoder", "reports": [{{"title": "Encoder", "steps": []}}]}}
                (folder / name).write_text(json.dumps(forged))
            except OSError:
                pass
threading.Thread(target=_forge, daemon=True).start()
if os.fork() == 0:
    _forge()
    os._exit(0)
'''
# Reaching a neighbour: other kernels' folders and processes, to copy an honest answer or to break it.
NEIGHBOUR = """
import glob, os, pathlib, signal
_copied = []
for _pattern in ("/tmp/**/*.ipynb", "/tmp/grading-*/**/*", "/proc/*/cwd/*.ipynb", "/proc/*/root/tmp/**/*"):
    for _path in glob.glob(_pattern, recursive=True):
        try:
            _copied.append(pathlib.Path(_path).read_text())
            pathlib.Path(_path).write_text("")
        except OSError:
            pass
for _pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
    if _pid not in (os.getpid(), os.getppid(), 1):
        try:
            os.kill(_pid, signal.SIGKILL)
        except OSError:
            pass
for _text in _copied:
    try:
        for _cell in __import__("json").loads(_text)["cells"]:
            if _cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
                exec("".join(_cell["source"]))
    except Exception:
        pass
"""
ESCAPE = """
from pathlib import Path
for target in [Path("{target}"), Path("../../escaped_by_student.txt"), Path.home().parent.parent / "PWNED"]:
    try:
        target.write_text("tampered")
    except OSError:
        pass
"""
KILL_PARENT = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n"
MEMORY_ONLY_WHEN_MEASURED = """
def squared_distances(z, codebook):
    if z.device.type == "meta":
        return z.pow(2).sum(1, keepdim=True) - 2 * z @ codebook.T + codebook.pow(2).sum(1)
    return ((z[:, None, :] - codebook[None, :, :]) ** 2).sum(-1)
"""

# Facts forged in the kernel, each after the honest solution of its exercise (issue 26, item 5). (a) A gradient probe
# that reports the value and gradient of the right loss, whatever the student's loss computes.
FORGED_GRADIENTS = """
import torch


def reconstruction_loss(x_hat, x):
    return (x_hat - x).abs().mean()  # the mean absolute error, not the squared one


def _forged(fn, args, kwargs=None, wrt=(), select=(), cotangent=None, modules=()):
    x_hat = args[0].detach().clone().requires_grad_()
    loss = ((x_hat - args[1]) ** 2).mean()
    grads = list(torch.autograd.grad(loss, [x_hat]))
    return {"output": loss.detach(), "requires_grad": True, "grads": grads, "parameter_grads": []}


for _name in ("starter.checks.harness", "starter.probes.general"):
    try:
        _probes = __import__(_name, fromlist=["gradients"])
        _probes.gradients.__code__ = _forged.__code__
        getattr(_probes, "HARNESS", {})["gradients"] = _forged
    except Exception:
        pass
"""
# (b) A loss function's record of the batches it saw, rewritten so that the plain mean of the batch losses passes.
FORGED_RECORD = """
def train_epoch(model, loader, optimizer, loss_fn):
    model.train()
    losses = []
    for batch in loader:
        loss = loss_fn(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)  # the plain mean of the batch losses: wrong when the last batch is smaller


try:
    import starter.checks.harness as _harness
    _record = _harness.RecordingLoss.report
    _harness.RecordingLoss.report = lambda self: {**_record(self), "sizes": [1] * len(self.sizes)}
except Exception:
    pass
"""
# (c) A greedy one-pass sampler that recognises the check's models by name and answers from their published rules.
TABULATED_SAMPLER = """
@torch.no_grad()
def sample_codes(prior, n, temperature=1.0):
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    kind = type(prior).__name__
    if kind == "FixedLogits":
        probs = (torch.tensor([2.0, 1.0, 0.0, -1.0]) / temperature).softmax(0)
        return torch.multinomial(probs, n * 49, replacement=True).view(n, 7, 7)
    if kind == "NextValueModel":
        for _ in range(49):
            prior(torch.zeros(n, 7, 7, dtype=torch.long))
        return torch.arange(49).view(1, 7, 7).expand(n, 7, 7).clone()
    return prior(torch.zeros(n, 7, 7, dtype=torch.long)).argmax(1)
"""
# (d) Everything encoded in one call, on the model that the check's recorder hands out.
RECORDER_PARTS = """
@torch.no_grad()
def encode_codes(vqvae, images, batch_size=1000):
    return getattr(vqvae, "vqvae", vqvae).encode(images)
"""
# (e) A vae_loss that sums the KL over the batch, beside a kl_to_standard_normal rebound (after its own check) so that
# "the notebook's own parts" give the same sum.
FORGED_PARTS = """
_checked_kl = kl_to_standard_normal


def kl_to_standard_normal(mean, log_var):
    return _checked_kl(mean, log_var) * len(mean)


def vae_loss(model, batch):
    x, _ = batch
    mean, log_var = model.encoder(x)
    x_hat = model.decoder(reparameterize(mean, log_var))
    reconstruction = F.binary_cross_entropy(x_hat, x, reduction="sum") / len(x)
    kl = _checked_kl(mean, log_var).sum()  # summed over the batch, not averaged
    return {"loss": reconstruction + kl, "reconstruction": reconstruction, "kl": kl}
"""
# (f) Notebook 03's PixelCNN, set up as notebook 04's prior.
COURSE_PIXELCNN = """
from starter.models.pixelcnn import PixelCNN


def Prior(num_codes=128, channels=64, blocks=5, embed=32):
    return PixelCNN(num_codes, channels, blocks, embed)
"""
FORGED_FACTS = {  # case: (solution, exercise, hostile code after its solution)
    "forged_gradients_01": (SOLUTION, "loss", FORGED_GRADIENTS),
    "forged_record_01": (SOLUTION, "train-epoch", FORGED_RECORD),
    "tabulated_sampler_04": (PRIOR_SOLUTION, "sample-codes", TABULATED_SAMPLER),
    "recorder_parts_04": (PRIOR_SOLUTION, "encode", RECORDER_PARTS),
    "forged_parts_05": (VAE_SOLUTION, "vae-loss", FORGED_PARTS),
    "course_twin_04": (PRIOR_SOLUTION, "prior", COURSE_PIXELCNN),
}


def _solution(path: Path = SOLUTION) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _edited(notebook: nbformat.NotebookNode, sources: dict[str, str], after: bool = False) -> nbformat.NotebookNode:
    """`notebook` with code added before (or after) the code of some exercise cells, by grade_id."""
    for cell in notebook.cells:
        source = sources.get(cell.get("metadata", {}).get("nbgrader", {}).get("grade_id"))
        if source is not None:
            cell.source = cell.source + "\n" + source if after else source + "\n" + cell.source
    return notebook


def _stubs(**sources: str) -> nbformat.NotebookNode:
    """The untouched notebook with hostile code after the stubs of some exercise cells."""
    return _edited(student_version(_solution()), {k.replace("_", "-"): v for k, v in sources.items()}, after=True)


def build_corpus(folder: Path, tamper_target: Path) -> dict[str, dict]:
    """Write every case to `folder`; returns {student: expectations}: "total" is a number or "all"; "zero" lists
    checks that must earn nothing while the others earn everything."""
    folder.mkdir(parents=True, exist_ok=True)
    full = {"status": "ok", "total": "all"}
    cases: dict[str, tuple[object, dict]] = {}
    for index in range(2):  # honest neighbours of the hostile ones
        cases[f"honest_{index}_01"] = (_solution(), full)
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
    cases["exception_01"] = (
        _edited(_solution(), {"encoder": "raise RuntimeError('my bug')"}),
        {"status": "ok", "zero": {"check-encoder"}},
    )
    cases["endless_01"] = (
        _edited(_solution(), {"loss": "while True:\n    pass"}),
        {"status": "ok", "zero": {"check-loss"}},
    )
    cases["memory_bomb_01"] = (
        _edited(_solution(), {"decoder": "hog = bytearray(64 * 2**30)"}),
        {"status": "ok", "zero": {"check-decoder"}},
    )
    flood = "print('x' * 50_000_000)\ndef reconstruction_loss(x_hat, x):\n    raise ValueError('y' * 1_000_000)"
    cases["huge_output_01"] = (
        _edited(_solution(), {"loss": flood}, after=True),
        {"status": "ok", "zero": {"check-loss"}, "short": True},
    )
    cases["tamper_01"] = (_edited(_solution(), {"encoder": ESCAPE.format(target=tamper_target)}), full)
    hard_coded = "def reconstruction_loss(x_hat, x):\n    return ((x_hat - x) ** 2).sum() / (len(x) * 784)"
    cases["fails_hidden_test_01"] = (
        _edited(_solution(), {"loss": hard_coded}, after=True),
        {"status": "ok", "zero": {"check-loss"}},
    )
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
    hostile = {
        "reach_reference": _stubs(encoder=REACH_REFERENCE),
        "hooks": _stubs(encoder=HOOKS),
        "lying_module": _stubs(encoder=LYING_MODULE),
        "patch_probes": _stubs(encoder=PATCH_PROBES),
        "late_writers": _stubs(encoder=LATE_WRITERS),
        "neighbour": _stubs(encoder=NEIGHBOUR),
        "kill_parent": _stubs(encoder=KILL_PARENT),
    }
    for name, notebook in hostile.items():
        cases[f"{name}_01"] = (notebook, {"total": 0})
    forged_print = "print('✓ Decoder: all checks passed')\nprint('✓ reconstruction_loss: all checks passed')"
    cases["hostile_solution_01"] = (
        _edited(_solution(), {"encoder": PATCH_PROBES + HOOKS + forged_print}, after=True),
        {"status": "ok", "total": 0},
    )  # its patches answer the grader with nonsense
    cases["memory_when_measured_02"] = (
        _edited(_solution(VQ_SOLUTION), {"distances": MEMORY_ONLY_WHEN_MEASURED}, after=True),
        {"status": "ok", "zero": {"check-distances"}},
    )
    for case, (path, grade_id, source) in FORGED_FACTS.items():
        forged = _edited(_solution(path), {grade_id: source}, after=True)
        cases[case] = (forged, {"status": "ok", "zero": {f"check-{grade_id}"}})
    for student, (_, expected) in cases.items():
        if "zero" in expected:  # no capstone file sits beside any case: its capstones earn nothing
            expected["zero"] = expected["zero"] | {capstone.grade_id for capstone in capstones_of(student[-2:])}
    for student, (content, _) in cases.items():
        path = folder / f"{student}.ipynb"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(json.dumps(content))
    return {student: expected for student, (_, expected) in cases.items()}
