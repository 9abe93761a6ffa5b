"""A held-out hostile class for the grader, written from a fresh reading of `starter.grading` (not from the existing
corpus): submissions that try to earn points they did not compute, reach outside their sandbox, break its limits,
stop the batch at intake, or put names into the reports. `build_hostile_class(folder)` writes them beside honest
neighbours and returns what each student's grade must be; `build_batch_breakers(folder)` writes the few that, when
they succeed, stop a whole batch (each is graded in a batch of its own).

Expectations: {"status": the prefix of the grade's status, "total": the total or "all" (every check not in "zero"
earns full marks), "zero": the check cells that must earn nothing, "kind": the class (1 facts taken on the kernel's
word, 2 outside the sandbox, 3 limits, 4 intake, 5 names), "tries": what it tries}.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
from pathlib import Path
from typing import Callable

import nbformat

from starter.build import student_version
from starter.config import PROJECT_ROOT

SOLUTIONS = PROJECT_ROOT / "solutions"
NOTEBOOKS = {path.name[:2]: path for path in sorted(SOLUTIONS.glob("[0-9][0-9]_*.ipynb"))}
MARKER = "hc-marker"  # what a hostile kernel tries to leave on the grader's machine (/tmp, /dev/shm, the output)
ORPHAN = "777.4242"  # the `sleep` argument of the processes a hostile kernel tries to leave running
NOT_JSON = b"{}"  # content that is JSON but no notebook: the names and zips below need no kernel
BIG_CELL_LINES = 50_000  # lines of the exercise cell that makes the similarity report expensive

Case = tuple[str, dict]
BUILDERS: list[Callable[[Path], list[Case]]] = []


def case(function: Callable[[Path], list[Case]]) -> Callable[[Path], list[Case]]:
    """Register a builder of one or more cases."""
    BUILDERS.append(function)
    return function


def expect(kind: int, tries: str, status: str = "ok", total: int | str = "all", zero: tuple = ()) -> dict:
    """What a grade must be (see the module's docstring)."""
    return {"status": status, "total": total, "zero": set(zero), "kind": kind, "tries": tries}


def solution(number: str) -> nbformat.NotebookNode:
    """The course's solution of notebook `number` ("01".."06")."""
    return nbformat.read(NOTEBOOKS[number], as_version=4)


def stub(number: str) -> nbformat.NotebookNode:
    """The notebook as students get it: every exercise a stub."""
    return student_version(solution(number))


def exercise(number: str, grade_id: str) -> str:
    """The solution's source of one exercise cell."""
    return next(c.source for c in solution(number).cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def replaced(notebook: nbformat.NotebookNode, sources: dict[str, str]) -> nbformat.NotebookNode:
    """`notebook` with the exercise cells named in `sources` (by grade_id) holding those sources."""
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.cell_type == "code" and grade_id in sources:
            cell.source = sources[grade_id]
    return notebook


def save(folder: Path, student: str, notebook: nbformat.NotebookNode) -> None:
    nbformat.write(notebook, str(folder / f"{student}.ipynb"))


def archive(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as handle:
        for name, data in members.items():
            handle.writestr(name, data)


# --- Honest neighbours -------------------------------------------------------------------------------------------


@case
def honest(folder: Path) -> list[Case]:
    # the course's own answers, graded beside the hostile ones: every point
    save(folder, "honest_01", solution("01"))
    save(folder, "honest_05", solution("05"))
    return [
        ("honest_01", expect(0, "an honest neighbour (the solution of 01)")),
        ("honest_05", expect(0, "an honest neighbour (the solution of 05)")),
    ]


# --- Class 1: facts taken on the kernel's word ---------------------------------------------------------------------

BROADCAST = '''
def squared_distances(z, codebook):
    """By broadcasting: builds the (M, K, d) tensor that the exercise asks to avoid."""
    return ((z[:, None, :] - codebook[None, :, :]) ** 2).sum(-1)
'''

SUMMARY_IN_CHUNKS = (
    """
import torch
import starter.probes.vq as _vq
"""
    + BROADCAST
    + '''

def output_summary(fn, args, index):
    """The memory probe rewritten in the kernel: it calls the function on 256 rows at a time."""
    z, codebook = args
    out = torch.cat([fn(z[i : i + 256], codebook) for i in range(0, len(z), 256)])
    return {"shape": list(out.shape), "values": out.flatten()[index], "row_sums": out.sum(1)}


output_summary.__module__ = _vq.__name__
_vq.output_summary = output_summary
'''
)

SUMMARY_EMPTY = (
    """
import torch
import starter.probes.vq as _vq
"""
    + BROADCAST
    + '''

def output_summary(fn, args, index):
    """The memory probe rewritten in the kernel: calls nothing, reports the right shape and empty samples (an
    empty (0, n) tensor broadcasts against any (n,) one, and allclose of nothing is True)."""
    m = len(args[0])
    return {"shape": [m, len(args[1])], "values": torch.empty(0, len(index)), "row_sums": torch.empty(0, m)}


output_summary.__module__ = _vq.__name__
_vq.output_summary = output_summary
'''
)

PREALLOCATED = '''
import torch

_SCRATCH = torch.ones(4096 * 512 * 64)  # 512 MB, written now: resident before any request is measured


def squared_distances(z, codebook):
    """By broadcasting, into memory taken before the check measures anything."""
    (m, d), k = z.shape, len(codebook)
    if m * k * d > _SCRATCH.numel():
        return ((z[:, None, :] - codebook[None, :, :]) ** 2).sum(-1)
    difference = _SCRATCH[: m * k * d].view(m, k, d)
    torch.sub(z[:, None, :], codebook[None, :, :], out=difference)
    return difference.pow_(2).sum(-1)
'''

FORGED_STEPS = '''
import math

import torch
import starter.probes.transformer as _transformer


def attention_step(layer, x, cache):
    # YOUR CODE HERE
    raise NotImplementedError()


def steps(step, layer, x, sizes):
    """The cache probe rewritten in the kernel: never calls attention_step, answers with attention over the whole
    sequence at once, cut into the sizes asked for, and the cache length asked for."""
    n, t, width = x.shape
    q, k, v = (p.view(n, t, layer.heads, -1).transpose(1, 2) for p in layer.qkv(x).split(width, dim=2))
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    mask = torch.ones(t, t, dtype=torch.bool).tril()
    y = scores.masked_fill(~mask, float("-inf")).softmax(-1) @ v
    y = layer.out(y.transpose(1, 2).reshape(n, t, width)).detach()
    return {"outputs": list(y.split(list(sizes), dim=1)), "cached": t}


steps.__module__ = _transformer.__name__
_transformer.steps = steps
'''

GRADIENT_FREE_ENCODER = '''
import torch
from torch import nn
import starter.probes.general as _general


class Encoder(nn.Module):
    """The table's layers, but forward() runs without autograd: nothing could ever train it."""

    def __init__(self, latent_dim: int = 16, hidden: int = 32):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, hidden, kernel_size=4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, 2 * hidden, kernel_size=4, stride=2, padding=1), nn.ReLU(),
        )
        self.to_latent = nn.Linear(2 * hidden * 7 * 7, latent_dim)

    @torch.no_grad()
    def forward(self, x):
        return self.to_latent(self.features(x).flatten(1))


_real_gradients = _general.gradients


def gradients(fn, args, kwargs=None, wrt=(), select=(), cotangent=None, modules=()):
    """The gradient probe rewritten in the kernel: for the Encoder it reports no gradient at all (an empty list)."""
    if modules and isinstance(fn, Encoder):
        return {"output": None, "requires_grad": True, "grads": [], "parameter_grads": []}
    return _real_gradients(fn, args, kwargs, wrt, select, cotangent, modules)


gradients.__module__ = _general.__name__
_general.gradients = gradients
'''

PROBE_DETECTING_VAE_LOSS = '''
import torch
from torch.nn import functional as F

_honest_reparameterize = reparameterize


def reparameterize(mean, log_var):
    """Honest when its own check calls it; when vae_loss's check computes "what the notebook's own parts give" (on
    the published sizes of that check's batches, 5 x 4 and 7 x 3) it returns what vae_loss below uses instead of a
    sample."""
    if tuple(mean.shape) in ((5, 4), (7, 3)):
        return mean + 1e-30 * log_var
    return _honest_reparameterize(mean, log_var)


def vae_loss(model, batch):
    """Decodes the mean (plus a vanishing log-variance term, so a gradient reaches it): no sample at all."""
    x, _ = batch
    mean, log_var = model.encoder(x)
    x_hat = model.decoder(mean + 1e-30 * log_var)
    reconstruction = F.binary_cross_entropy(x_hat, x, reduction="sum") / len(x)
    kl = kl_to_standard_normal(mean, log_var).mean()
    return {"loss": reconstruction + kl, "reconstruction": reconstruction, "kl": kl}
'''

PATCHED_AUTOGRAD = '''
import torch
from torch import nn
from torch.nn import functional as F

_real_grad = torch.autograd.grad


def _pattern(size, kind):
    mask = torch.zeros(size, size)
    mask[: size // 2] = 1
    mask[size // 2, : size // 2 + (kind == "B")] = 1
    return mask


class MaskedConv2d(nn.Conv2d):
    """Holds the right mask as a buffer and masks the weights once, but convolves with the unmasked weights."""

    def __init__(self, in_channels, out_channels, kernel_size, mask_type="B"):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.register_buffer("mask", _pattern(kernel_size, mask_type))
        with torch.no_grad():
            self.weight *= self.mask

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, padding=self.padding)


def _causal_grad(outputs, inputs, *args, **kwargs):
    """torch.autograd.grad, patched: every input pixel at or after an output's position gets no gradient."""
    found = _real_grad(outputs, inputs, *args, **kwargs)
    hidden = []
    for grad in found:
        if grad is not None and grad.dim() == 4 and len(grad) == grad.shape[-1] * grad.shape[-2]:
            order = torch.arange(grad.shape[-1] * grad.shape[-2]).view(grad.shape[-2:])
            grad = grad * (order[None, None] <= torch.arange(len(grad)).view(-1, 1, 1, 1))
        hidden.append(grad)
    return tuple(hidden)


torch.autograd.grad = _causal_grad
'''

UNWITHHELD_SAMPLER = '''
import importlib
import importlib.util
import os
import sys


def _course_sample():
    """The course's own sampler from anywhere this process can reach: reloaded, the editable install's finder,
    or a copy of starter/models/sampling.py that is not withheld, on any mount of this sandbox."""
    found = []
    try:
        found.append(importlib.reload(importlib.import_module("starter.models.sampling")).sample)
    except Exception:
        pass
    places = {"/work", "/tmp", "/root", "/home", *sys.path}
    for name in list(sys.modules):
        if "editable" in name:
            places.update(str(p) for p in getattr(sys.modules[name], "MAPPING", {}).values())
    for line in open("/proc/self/mountinfo"):
        places.add(line.split()[4])
    for place in sorted(places):
        if not os.path.isdir(place) or place in ("/", "/proc", "/dev", "/usr"):
            continue
        for root, folders, files in os.walk(place):
            folders[:] = [f for f in folders if f not in ("proc", "dev", "__pycache__", "site-packages")][:50]
            if root.endswith(os.path.join("starter", "models")) and "sampling.py" in files:
                path = os.path.join(root, "sampling.py")
                if "Withheld" not in open(path).read():
                    spec = importlib.util.spec_from_file_location("course_sampling", path)
                    module = importlib.util.module_from_spec(spec)
                    spec.loader.exec_module(module)
                    found.append(module.sample)
    for sample in found:
        try:
            sample(torch.nn.Linear(1, 1), 1, 1.0, image_size=(1, 1))
        except Exception as error:
            if "withheld" in str(error).lower():
                continue
        return sample
    return None


_sample = _course_sample()


@torch.no_grad()
def sample_codes(prior, n, temperature=1.0):
    if _sample is None:
        raise NotImplementedError()
    return _sample(prior, n, temperature, image_size=(7, 7)).squeeze(1)
'''

LYING_TENSOR = '''
import numpy as np
import torch


class _Liar(torch.Tensor):
    """A mask that hides nothing, and says it equals anything it is compared with."""

    def __eq__(self, other):
        return True

    def __array__(self, dtype=None):
        size = self.shape[-1]
        return np.tril(np.ones(self.shape, dtype=bool), size - self.shape[0])

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.equal, torch.allclose, torch.Tensor.__eq__, torch.Tensor.eq):
            return True
        return super().__torch_function__(func, types, args, kwargs or {})


def causal_mask(queries, keys):
    return torch.ones(queries, keys, dtype=torch.bool).as_subclass(_Liar)
'''


@case
def facts_on_the_kernels_word(folder: Path) -> list[Case]:
    # memory step of squared_distances: a forged output_summary calls the broadcasting answer in small chunks
    save(folder, "summary_chunks_02", replaced(stub("02"), {"distances": SUMMARY_IN_CHUNKS}))
    # the same probe forged to call nothing: empty samples broadcast against the expected ones
    broadcast = exercise("02", "distances-broadcast")
    save(
        folder,
        "summary_empty_02",
        replaced(stub("02"), {"distances-broadcast": broadcast, "distances": SUMMARY_EMPTY}),
    )
    # no forgery at all: the broadcasting answer writes into 512 MB it made resident before the request
    save(folder, "prealloc_02", replaced(stub("02"), {"distances": PREALLOCATED}))
    # attention_step left a stub; a forged cache probe answers with full-sequence attention
    save(folder, "forged_steps_06", replaced(stub("06"), {"attention-step": FORGED_STEPS}))
    # a mask that hides nothing, in a tensor subclass whose __eq__, __array__ and torch.equal say it is right
    save(folder, "lying_tensor_06", replaced(stub("06"), {"causal-mask": LYING_TENSOR}))
    # an Encoder without autograd; the forged gradient probe reports an empty list of gradients
    save(folder, "grad_zip_01", replaced(stub("01"), {"encoder": GRADIENT_FREE_ENCODER}))
    # a reparameterize that detects vae_loss's check by its sizes, so that a vae_loss that never samples matches it
    save(folder, "probe_detect_05", replaced(solution("05"), {"vae-loss": PROBE_DETECTING_VAE_LOSS}))
    # an unmasked convolution with torch.autograd.grad patched so that dependency maps look causal
    save(folder, "torch_patch_03", replaced(stub("03"), {"masked-conv": PATCHED_AUTOGRAD}))
    # sys.modules, reload and the editable finder, to get the course's own sampler back
    save(folder, "unwithhold_04", replaced(stub("04"), {"sample-codes": UNWITHHELD_SAMPLER}))
    return [
        ("summary_chunks_02", expect(1, "forge output_summary: chunked calls", total=0, zero=("check-distances",))),
        ("summary_empty_02", expect(1, "forge output_summary: empty samples", total=1, zero=("check-distances",))),
        (
            "prealloc_02",
            expect(1, "broadcast into memory taken before the measure", total=0, zero=("check-distances",)),
        ),
        ("forged_steps_06", expect(1, "forge the cache probe `steps`", total=0, zero=("check-attention-step",))),
        ("lying_tensor_06", expect(1, "a tensor subclass that lies", total=0, zero=("check-causal-mask",))),
        ("grad_zip_01", expect(1, "forge gradients: an empty list for the Encoder", total=0, zero=("check-encoder",))),
        ("probe_detect_05", expect(1, "a part that detects the vae_loss check", zero=("check-vae-loss",))),
        ("torch_patch_03", expect(1, "patch torch.autograd.grad", total=0, zero=("check-masked-conv",))),
        (
            "unwithhold_04",
            expect(1, "reload/finder/mounts for the course's sampler", total=0, zero=("check-sample-codes",)),
        ),
    ]


# --- Class 2: reads and writes outside the sandbox ----------------------------------------------------------------

READER = '''
import json
import os

from torch import nn

_SKIP = ("/proc", "/dev", "/usr", "/sys", "/etc", "/bin", "/lib", "/sbin", "/root/.pyenv", "/work/main/.venv")


def _solution_cell(marker):
    """An exercise's solution from any notebook this kernel can read: the course's, the tests', a classmate's."""
    places = {"/work/main", "/tmp", "/root", "/home"}
    for line in open("/proc/self/mountinfo"):
        places.add(line.split()[4])
    seen = 0
    for place in sorted(p for p in places if p != "/" and not p.startswith(_SKIP)):
        for root, folders, files in os.walk(place):
            folders[:] = [f for f in folders if not os.path.join(root, f).startswith(_SKIP)]
            for name in files:
                seen += 1
                if not name.endswith(".ipynb") or seen > 50_000:
                    continue
                try:
                    cells = json.load(open(os.path.join(root, name)))["cells"]
                except Exception:
                    continue
                for cell in cells:
                    source = "".join(cell.get("source", ""))
                    if source.startswith(marker) and "### BEGIN SOLUTION" in source:
                        return source
    return None


_stolen = _solution_cell("class Encoder(nn.Module)")
if _stolen:
    exec(_stolen)
else:

    class Encoder(nn.Module):
        def __init__(self, latent_dim=16, hidden=32):
            super().__init__()
            raise NotImplementedError()
'''

WRITER = f'''
import glob
import os

MARK = "{MARKER}-writer"
_cwd = os.getcwd()
_targets = {{"/tmp", "/dev/shm", "/dev", "/", "/work/main", "/work/main/data", "/work/main/starter", _cwd}}
_targets.add(os.environ.get("JUPYTER_RUNTIME_DIR", "/"))
for _line in open("/proc/self/mountinfo"):
    _targets.add(_line.split()[4])
for _pattern in ("/tmp/**/results", "/tmp/**/feedback", "/tmp/**/grading-*", "/tmp/**/sockets"):
    _targets.update(glob.glob(_pattern, recursive=True))
_wrote = []  # where it could write (inside the sandbox, that is only its own tmpfs folders)
for _folder in sorted(_targets):
    for _name in (MARK, "forged.json", "k-9"):
        try:
            with open(os.path.join(_folder, _name), "w") as _handle:
                _handle.write('{{"student": "mallory", "checks": []}}')
            _wrote.append(os.path.join(_folder, _name))
        except OSError:
            pass
for _name in ("connection.json", "sockets/k-evil", "spec/kernels/grading/kernel.json", "../{MARKER}-up"):
    try:
        with open(os.path.join(_cwd, _name), "w") as _handle:
            _handle.write("x")
        _wrote.append(_name)
    except OSError:
        pass
# things for the grader's clean-up to trip over: links out, a loop, a fifo, a folder it may not enter
for _source, _link in (("/work/main/solutions", "solutions"), (".", "loop"), ("/tmp", "tmp"), ("/", "root")):
    try:
        os.symlink(_source, os.path.join(_cwd, _link))
    except OSError:
        pass
try:
    os.mkfifo(os.path.join(_cwd, "fifo"))
    os.makedirs(os.path.join(_cwd, "locked", "inner"))
    os.chmod(os.path.join(_cwd, "locked"), 0)
except OSError:
    pass


def reparameterize(mean, log_var):
    raise NotImplementedError()
'''

PROC_TRICKS = '''
import ctypes
import json
import os


def _through_proc():
    """The course's notebooks through /proc: other processes' roots and working folders, inherited descriptors."""
    roots = ["/proc/self/root", "/proc/1/root", "/proc/1/cwd", "/proc/self/cwd"]
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            roots += [f"/proc/{pid}/root", f"/proc/{pid}/cwd"]
            try:
                open(f"/proc/{pid}/environ", "rb").read()
            except OSError:
                pass
    for fd in os.listdir("/proc/self/fd"):
        roots += [f"/proc/self/fd/{fd}", f"/proc/self/fd/{fd}/.."]
    for root in roots:
        for relative in ("work/main/solutions/05_comparison.ipynb", "solutions/05_comparison.ipynb"):
            try:
                cells = json.load(open(os.path.join(root, relative)))["cells"]
            except Exception:
                continue
            for cell in cells:
                if "".join(cell["source"]).startswith("def kl_to_standard_normal"):
                    return "".join(cell["source"])
    try:  # a user namespace of its own would bring capabilities back
        if ctypes.CDLL(None, use_errno=True).unshare(0x10000000) == 0:
            body = "0.5 * (mean ** 2 + log_var.exp() - log_var - 1).sum(1)"
            return "def kl_to_standard_normal(mean, log_var):\\n    return " + body
    except Exception:
        pass
    return None


_stolen = _through_proc()
if _stolen:
    exec(_stolen)
else:

    def kl_to_standard_normal(mean, log_var):
        raise NotImplementedError()
'''


@case
def outside_the_sandbox(folder: Path) -> list[Case]:
    # read the solutions, the tests and classmates' notebooks from any folder the sandbox shows
    save(folder, "reader_01", replaced(stub("01"), {"encoder": READER}))
    # write markers into /tmp, /dev/shm, every mount, a neighbour's results; plant links and fifos for the clean-up
    save(folder, "writer_05", replaced(stub("05"), {"reparameterize": WRITER}))
    # /proc: other roots, inherited descriptors, environ, a new user namespace
    save(folder, "proc_05", replaced(stub("05"), {"kl": PROC_TRICKS}))
    # a link to the instructor's solution planted in the submissions folder
    os.symlink(NOTEBOOKS["01"], folder / "symlink_01.ipynb")
    # a linked folder named like a notebook
    os.symlink(SOLUTIONS, folder / "dirlink.ipynb")
    # a fifo named like a notebook: opening it would block the intake
    os.mkfifo(folder / "fifo_01.ipynb")
    return [
        ("reader_01", expect(2, "read solutions/classmates from visible mounts", total=0, zero=("check-encoder",))),
        ("writer_05", expect(2, "write markers and a neighbour's results", total=0)),
        ("proc_05", expect(2, "/proc roots, descriptors, unshare", total=0, zero=("check-kl",))),
        ("symlink_01", expect(2, "a symlink to the solution", status="invalid: a symbolic link")),
        ("dirlink", expect(2, "a linked folder named .ipynb", status="invalid: a symbolic link")),
        ("fifo_01", expect(2, "a fifo named .ipynb", status="invalid: not a regular file")),
    ]


# --- Class 3: limits ----------------------------------------------------------------------------------------------

MEMORY_SPREAD = '''
import os
import time


def _hog(megabytes):
    """A child that holds `megabytes` and says so down a pipe."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            block = b"\\x01" * (megabytes * 2**20)
            os.write(write, b"k")
            time.sleep(40 + len(block) * 0)
        finally:
            os._exit(0)
    os.close(write)
    return pid, read


_children = [_hog(1200), _hog(1200)]
_written = 0
for _index, _folder in enumerate(("/dev", "/")):  # tmpfs folders without a size of their own
    try:
        with open(f"{_folder}/hc-fill-{_index}", "wb") as _handle:
            for _ in range(900):
                _handle.write(b"\\x02" * 2**20)
                _written += 2**20
    except OSError:
        pass
time.sleep(2)
_held = 0
for _pid, _read in _children:
    try:
        alive = os.waitpid(_pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        alive = False
    _held += 1200 * 2**20 if alive and os.read(_read, 1) == b"k" else 0
if _held + _written > 4096 * 2**20:  # more than the kernel's budget, all alive: the limit did not hold

    def reparameterize(mean, log_var):
        return mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)

else:

    def reparameterize(mean, log_var):
        raise NotImplementedError()
'''

FORKS = f'''
import os
import threading
import time

_forks, _threads = 0, 0
try:
    for _ in range(400):
        _pid = os.fork()
        if _pid == 0:
            try:
                os.setsid()
                os.execv("/bin/sleep", ["sleep", "{ORPHAN}"])
            finally:
                os._exit(0)
        _forks += 1
except OSError:
    pass
try:
    for _ in range(400):
        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
        _threads += 1
except RuntimeError:
    pass
if _forks + _threads > 256:  # more tasks than the kernel's budget: the limit did not hold

    def kl_to_standard_normal(mean, log_var):
        return 0.5 * (mean.pow(2) + log_var.exp() - log_var - 1).sum(1)

else:

    def kl_to_standard_normal(mean, log_var):
        raise NotImplementedError()
'''

DEAF = """
import signal
import time

signal.signal(signal.SIGINT, signal.SIG_IGN)
_end = time.time() + 90
while time.time() < _end:  # busy, deaf to interrupts (bounded, in case nothing stops it)
    pass
"""

FLOOD = """
import sys


def kl_to_standard_normal(mean, log_var):
    sys.stdout.write("x" * 16 * 2**20)  # output nobody reads
    return [123456] * 1_500_000  # a reply of about 10 MB: over the request limit, under ZMQ's
"""


@case
def limits(folder: Path) -> list[Case]:
    # two 1.2 GB children and 1.8 GB in tmpfs folders that have no size (/dev and /): over the 4 GB budget
    save(folder, "memory_05", replaced(stub("05"), {"reparameterize": MEMORY_SPREAD}))
    # 400 forks (orphans of their own session) and 400 threads against a 256-task budget
    save(folder, "forks_05", replaced(stub("05"), {"kl": FORKS}))
    # a cell that ignores SIGINT and keeps busy past its deadline
    save(folder, "sigint_05", replaced(stub("05"), {"vae-loss": DEAF}))
    # 16 MB of output, a 10 MB reply, and a 50,000-line exercise cell for the similarity report
    padding = "".join(f"_padding_{i} = {i}\n" for i in range(BIG_CELL_LINES))
    big = padding + "\n\ndef reparameterize(mean, log_var):\n    raise NotImplementedError()\n"
    save(folder, "flood_05", replaced(stub("05"), {"kl": FLOOD, "reparameterize": big}))
    # a zip bomb: 17 MB of spaces that deflate to 17 kB
    archive(folder / "bomb_big.zip", {"01_autoencoder.ipynb": b" " * (17 * 2**20)})
    # a zip member that declares 100 bytes and inflates to 64 MB
    lying = folder / "bomb_lying.zip"
    archive(lying, {"01_autoencoder.ipynb": b" " * (64 * 2**20)})
    patch_sizes(lying, 100)
    return [
        ("memory_05", expect(3, "children + unsized tmpfs past the memory budget", total=0)),
        ("forks_05", expect(3, "fork and thread bomb, orphans", total=0)),
        ("sigint_05", expect(3, "ignore SIGINT past the deadline", status="timeout", total=0)),
        ("flood_05", expect(3, "huge output, huge reply, huge cell", total=0)),
        ("bomb_big", expect(3, "zip bomb over 16 MB", status="invalid: larger than 16 MB")),
        ("bomb_lying", expect(3, "zip member lying about its size", status="invalid: cannot unpack it")),
    ]


def patch_sizes(path: Path, size: int) -> None:
    """Make every member of a .zip declare `size` uncompressed bytes (local headers and central directory)."""
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = data.find(signature)
        while start >= 0:
            data[start + offset : start + offset + 4] = struct.pack("<I", size)
            start = data.find(signature, start + 4)
    path.write_bytes(bytes(data))


def set_encrypted(path: Path) -> None:
    """Set the `encrypted` flag of every member of a .zip (local headers and central directory)."""
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = data.find(signature)
        while start >= 0:
            data[start + offset] |= 0x1
            start = data.find(signature, start + 4)
    path.write_bytes(bytes(data))


# --- Class 4: intake -----------------------------------------------------------------------------------------------


@case
def intake(folder: Path) -> list[Case]:
    raw = json.loads(nbformat.writes(stub("01")))
    # nbformat 4.0, a float: json types the schema does not see
    (folder / "types_01.ipynb").write_text(json.dumps({**raw, "nbformat": 4.0, "nbformat_minor": True}))
    # sources that are lists of numbers and dicts
    cells = [{**c, "source": [1, {"a": 2}]} if c["cell_type"] == "code" else c for c in raw["cells"]]
    (folder / "sources_01.ipynb").write_text(json.dumps({**raw, "cells": cells}))
    # 8 MB of metadata in a notebook with no exercise cells and no NN_ in its name
    wide = {f"k{i}": {"v": [i, str(i)]} for i in range(200_000)}
    (folder / "giantmeta.ipynb").write_text(json.dumps({**raw, "metadata": wide, "cells": []}))
    # every cell id the same, an extra cell whose id is an exercise's, a markdown cell with a grade_id
    duplicated = json.loads(nbformat.writes(solution("05")))
    for cell in duplicated["cells"]:
        cell["id"] = "same"
    kl_at = next(
        i for i, c in enumerate(duplicated["cells"]) if c["metadata"].get("nbgrader", {}).get("grade_id") == "kl"
    )
    extra = {"cell_type": "code", "id": "kl", "metadata": {}, "source": "raise SystemExit", "outputs": []}
    extra["execution_count"] = None
    marked = {"cell_type": "markdown", "id": "vae-loss", "metadata": {"nbgrader": {"grade_id": "vae-loss"}}}
    duplicated["cells"][kl_at:kl_at] = [extra, {**marked, "source": "# not code"}]
    (folder / "dupids_05.ipynb").write_text(json.dumps(duplicated))
    # a zip whose member says it is encrypted
    archive(folder / "zip_encrypted.zip", {"01_autoencoder.ipynb": nbformat.writes(stub("01")).encode()})
    set_encrypted(folder / "zip_encrypted.zip")
    # a zip in a zip, holding the solution
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as handle:
        handle.writestr("01_autoencoder.ipynb", nbformat.writes(solution("01")))
    archive(folder / "zip_nested.zip", {"inner.zip": inner.getvalue()})
    # a member whose path leaves the tree (an unpacker that wrote it would write /tmp/hc-escape)
    archive(folder / "zip_dotdot.zip", {"../../../../tmp/hc-escape/01_autoencoder.ipynb": NOT_JSON})
    # 10,001 entries
    archive(folder / "zip_many.zip", {f"e/{i}": b"" for i in range(10_001)})
    # a member 400 folders deep
    archive(folder / "zip_deep.zip", {"d/" * 400 + "01_autoencoder.ipynb": b"[]"})
    # a file name that is not UTF-8
    with open(os.fsencode(folder) + b"/bytes\xff_01.ipynb", "wb") as handle:
        handle.write(NOT_JSON)
    return [
        ("types_01", expect(4, "nbformat 4.0 (float), minor true", status="invalid: unsupported nbformat")),
        ("sources_01", expect(4, "non-string sources", status="invalid: not a valid notebook")),
        ("giantmeta", expect(4, "8 MB of metadata", status="invalid: cannot tell which course notebook")),
        ("dupids_05", expect(4, "duplicate cell ids, an id that is a grade_id")),
        ("zip_encrypted", expect(4, "an encrypted member", status="invalid: encrypted")),
        ("zip_nested", expect(4, "a zip in a zip", status="invalid: a .zip inside a .zip")),
        ("zip_dotdot", expect(4, "a member path out of the tree", status="invalid: not a notebook")),
        ("zip_many", expect(4, "10,001 entries", status="invalid: a .zip of 10001 entries")),
        ("zip_deep", expect(4, "a member 400 folders deep", status="invalid: not a notebook")),
        ("bytes\udcff_01", expect(4, "a file name that is not UTF-8", status="invalid: not a notebook")),
    ]


# --- Class 5: names ------------------------------------------------------------------------------------------------

FORMULAS = ("=1+1_01", "+1+1_01", "-1+1_01", "@SUM(1+1)_01", "\t=1_01")
HTML_NAME = "<img src=x onerror=alert(1)>|[x](javascript:alert(1))\n# `h` **b**"
LINK = "https://evil.example/steal"


@case
def names(folder: Path) -> list[Case]:
    plain = [
        "a b_01",  # sanitised, it is a_b_01: do two students share a feedback folder?
        "a_b_01",  # the plain name the one above sanitises to
        "a+b_01",  # a `+`, which only hashed folder names hold
        "\u202eevil_01",  # a right-to-left override, to turn the rest of a line around
        "\u04bbonest_01",  # a Cyrillic homoglyph of honest_01
        "L" * 200 + " x",  # 202 characters, longer than any folder name the grader makes
        *FORMULAS,  # spreadsheet formulas: =, +, -, @ and a tab first
    ]
    for student in plain:
        (folder / f"{student}.ipynb").write_bytes(NOT_JSON)
    # ids that are "." and ".."
    (folder / "..ipynb").write_bytes(NOT_JSON)
    (folder / "...ipynb").write_bytes(NOT_JSON)
    # ids from nbgrader folders inside a zip nobody named: a backslash, HTML and markdown with a newline
    archive(folder / "sepzip.zip", {"submitted/a\\b/ps1/01_autoencoder.ipynb": NOT_JSON})
    archive(folder / "htmlzip.zip", {f"submitted/{HTML_NAME}/ps1/01_autoencoder.ipynb": NOT_JSON})
    # a link in a member's path, which the summary quotes
    archive(folder / "linkzip.zip", {f"{LINK}.ipynb": NOT_JSON})
    invalid = "invalid: not a notebook"
    return [
        ("a b_01", expect(5, "collides with a_b_01 once sanitised", status=invalid)),
        ("a_b_01", expect(5, "collides with 'a b_01' once sanitised", status=invalid)),
        ("a+b_01", expect(5, "a + like the hashed names", status=invalid)),
        ("\u202eevil_01", expect(5, "a right-to-left override", status=invalid)),
        ("\u04bbonest_01", expect(5, "a homoglyph of honest_01", status=invalid)),
        ("L" * 200 + " x", expect(5, "a 202-character name", status=invalid)),
        *[(name, expect(5, f"a CSV formula {name[:2]!r}", status=invalid)) for name in FORMULAS],
        (".", expect(5, "the id '.'", status="invalid: the student id '.' names no one")),
        ("..", expect(5, "the id '..'", status="invalid: the student id '..' names no one")),
        ("a\\b", expect(5, "a backslash in an nbgrader folder", status="invalid: the student id 'a\\\\b' holds")),
        (HTML_NAME, expect(5, "HTML, markdown and a newline in an id", status=invalid)),
        ("linkzip", expect(5, "a link in the path the summary quotes", status=invalid)),
    ]


def build_hostile_class(folder: Path) -> dict[str, dict]:
    """Write every case into `folder`; returns {student id the grader reports: what its grade must be}."""
    folder.mkdir(parents=True, exist_ok=True)
    expected: dict[str, dict] = {}
    for builder in BUILDERS:
        for student, expectation in builder(folder):
            assert student not in expected, student
            expected[student] = expectation
    return expected


# --- Submissions that stop a whole batch when they succeed: each graded in a batch of its own ---------------------

LONG_NAME = "\u5b57" * 82 + "!"  # 247 bytes + ".ipynb": a file name of 253 bytes; its feedback folder needs 260


def build_batch_breakers(folder: Path) -> dict[str, tuple[Path, dict[str, dict]]]:
    """Write each breaker into a folder of its own; returns {name: (folder, {student: expectation})}."""
    breakers = {}
    # a file name of multi-byte characters whose hashed feedback folder is longer than NAME_MAX (255 bytes)
    long_name = folder / "long_name"
    long_name.mkdir(parents=True)
    (long_name / f"{LONG_NAME}.ipynb").write_bytes(NOT_JSON)
    breakers["long_name"] = (long_name, {LONG_NAME: expect(5, "a 253-byte name", status="invalid: not a notebook")})
    # a lone surrogate in an exercise cell (valid JSON, valid nbformat) for the similarity report to encode
    surrogate = folder / "surrogate"
    surrogate.mkdir()
    notebook = json.loads(nbformat.writes(stub("05")))
    source = "def kl_to_standard_normal(mean, log_var):\n    return '\ud800' + mean + log_var + mean + log_var\n"
    notebook = {**notebook, "cells": [_with_source(c, "kl", source) for c in notebook["cells"]]}
    (surrogate / "surrogate_05.ipynb").write_text(json.dumps(notebook, ensure_ascii=True))
    breakers["surrogate"] = (surrogate, {"surrogate_05": expect(4, "a lone surrogate in a cell", status="", total=0)})
    # a zip a student uploaded, holding a notebook named as a classmate's LMS upload: the batch stops
    loose = folder / "loose_zip"
    loose.mkdir()
    save(loose, "alice_77_1_05_comparison", stub("05"))
    archive(loose / "mallory.zip", {"alice_77_9_05_comparison.ipynb": nbformat.writes(stub("05")).encode()})
    breakers["loose_zip"] = (loose, {"alice_77": expect(5, "a classmate's LMS name inside an upload", total=0)})
    return breakers


def _with_source(cell: dict, grade_id: str, source: str) -> dict:
    return (
        {**cell, "source": source} if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id else cell
    )
