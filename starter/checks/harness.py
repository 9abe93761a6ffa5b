"""What a check may run in the student's process besides the student's own code: small probes of an object (its
parameters, gradients through it) and fixtures to hand to student code (a model that records how it is called).

Everything here runs beside the student's code and is only a way to get data out: a verdict never rests on
what a probe says alone. It holds none of the course's answers (a fixture's loss, for instance, is not any
exercise's), so it can sit in a grading kernel.
"""

from __future__ import annotations

import copy as copying
from typing import Any, Callable

import torch
from torch import nn
from torch.nn import functional as F

HARNESS: dict[str, Callable] = {}


def harness(function: Callable) -> Callable:
    """Make `function` runnable from a check by its name."""
    HARNESS[function.__name__] = function
    return function


def function(name: str) -> Callable:
    if name not in HARNESS:
        raise KeyError(f"no harness function {name!r}")
    return HARNESS[name]


def _module(value: Any, what: str = "the object") -> nn.Module:
    if not isinstance(value, nn.Module):
        raise TypeError(f"{what} should be an nn.Module, found {type(value).__name__}")
    return value


@harness
def describe(value: Any) -> dict:
    """What kind of object `value` is."""
    return {"type": type(value).__name__, "module": isinstance(value, nn.Module), "class": isinstance(value, type)}


@harness
def parameters(module: Any) -> list[tuple[str, torch.Tensor]]:
    """The module's parameters, by name, in registration order."""
    return [(name, p.detach()) for name, p in _module(module).named_parameters()]


@harness
def buffers(module: Any) -> list[tuple[str, torch.Tensor]]:
    """The module's buffers, by name."""
    return [(name, b.detach()) for name, b in _module(module).named_buffers()]


@harness
def load_parameters(module: Any, values: list[torch.Tensor]) -> None:
    """Copy `values` into the module's parameters, in registration order (what an optimiser step does)."""
    found = list(_module(module).parameters())
    if len(found) != len(values) or any(p.shape != v.shape for p, v in zip(found, values)):
        raise ValueError("the module's parameters changed shape")
    with torch.no_grad():
        for parameter, value in zip(found, values):
            parameter.copy_(value)


@harness
def set_training(module: Any, training: bool) -> None:
    _module(module).train(training)


@harness
def copy(value: Any) -> Any:
    return copying.deepcopy(value)


def _select(output: Any, path: tuple) -> Any:
    for key in path:
        output = output[key]
    return output


@harness
def gradients(
    fn: Callable,
    args: list,
    kwargs: dict | None = None,
    wrt: tuple[int, ...] = (),
    select: tuple = (),
    cotangent: torch.Tensor | None = None,
    modules: tuple = (),
) -> dict:
    """Call fn(*args) with the arguments at `wrt` as fresh leaves that require gradients, then backpropagate
    `cotangent` (or 1 for a scalar) from the part of the output at `select` (keys or indices, in turn).
    Returns the output, whether that part requires a gradient, the gradients of those arguments and of the
    parameters of each of `modules` (None where none reaches)."""
    args = [a.detach().clone().requires_grad_() if i in wrt else a for i, a in enumerate(args)]
    output = fn(*args, **(kwargs or {}))
    chosen = _select(output, select)
    facts = {"output": output, "requires_grad": bool(torch.is_tensor(chosen) and chosen.requires_grad)}
    if facts["requires_grad"]:
        leaves = [args[i] for i in wrt] + [p for m in modules for p in _module(m).parameters()]
        target = chosen.sum() if cotangent is None else chosen
        grads = torch.autograd.grad(target, leaves, grad_outputs=cotangent, allow_unused=True) if leaves else ()
        facts["grads"] = list(grads[: len(wrt)])
        facts["parameter_grads"] = list(grads[len(wrt) :])
    return facts


@harness
def output_summary(fn: Callable, args: list, index: torch.Tensor) -> dict:
    """Call fn(*args) and return only a summary of its (2-d) output: shape, the values at the flat positions
    `index`, and the sum of each row. For measuring memory: the summary is small."""
    output = fn(*args)
    if not torch.is_tensor(output) or output.dim() != 2:
        return {
            "output": output if not torch.is_tensor(output) else None,
            "shape": list(output.shape) if torch.is_tensor(output) else None,
        }
    return {"shape": list(output.shape), "values": output.flatten()[index], "row_sums": output.sum(1)}


# Fixtures: objects a check hands to student code.


class Fixture:
    """A harness object that can report what happened to it, as data."""

    def report(self) -> Any:
        raise NotImplementedError


@harness
def report(fixture: Any) -> Any:
    if not isinstance(fixture, Fixture):
        raise TypeError("not a fixture")
    return fixture.report()


@harness
def tiny_autoencoder() -> nn.Module:
    """A small model of 28x28 images for training-loop checks (none of the course's architectures)."""
    return nn.Sequential(
        nn.Flatten(), nn.Linear(784, 4), nn.ReLU(), nn.Linear(4, 784), nn.Sigmoid(), nn.Unflatten(1, (1, 28, 28))
    )


@harness
def batches(inputs: torch.Tensor, labels: torch.Tensor, sizes: list[int]) -> torch.utils.data.DataLoader:
    """A DataLoader over (inputs, labels) that yields batches of `sizes` examples, in order (as fit's loaders do,
    with `.dataset` and `len`)."""
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    return torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(inputs, labels),
        batch_sampler=[list(range(s, s + n)) for s, n in zip(starts, sizes)],
    )


@harness
def sgd(module: Any, lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(_module(module).parameters(), lr=lr)


class RecordingLoss(Fixture):
    """A loss function for training loops: the mean absolute reconstruction error; records each batch's loss,
    size, and whether the model was in training mode."""

    def __init__(self):
        self.losses, self.sizes, self.modes = [], [], []

    def __call__(self, model: nn.Module, batch: tuple) -> torch.Tensor:
        x = batch[0]
        loss = (model(x) - x).abs().mean()
        self.losses.append(loss.item())
        self.sizes.append(len(x))
        self.modes.append(model.training)
        return loss

    def report(self) -> dict:
        return {"losses": self.losses, "sizes": self.sizes, "train_mode": self.modes}


@harness
def recording_loss() -> RecordingLoss:
    return RecordingLoss()


LOGITS = torch.tensor([2.0, 1.0, 0.0, -1.0])  # the live classes of FixedLogits; every other class has logit DEAD
DEAD = -40.0


class FixedLogits(nn.Module):
    """Returns LOGITS at every position of its input, for (N, 1, H, W) pixel or (N, H, W) code grids."""

    def __init__(self, levels: int):
        super().__init__()
        self.levels = levels
        self.dummy = nn.Parameter(torch.zeros(1))  # samplers ask next(model.parameters()).device

    def forward(self, x: torch.Tensor, *condition) -> torch.Tensor:
        logits = torch.full((self.levels,), DEAD)
        logits[: len(LOGITS)] = LOGITS
        n, (height, width) = x.shape[0], x.shape[-2:]
        return logits.view(1, -1, 1, 1).expand(n, -1, height, width).clone()


@harness
def fixed_logits(levels: int) -> FixedLogits:
    return FixedLogits(levels)


class NextValueModel(nn.Module, Fixture):
    """Puts all probability on (the previous value in raster order + 1) % levels; records the height of every
    input it gets. For (N, 1, H, W) pixel grids (`pixels`) or (N, H, W) code grids."""

    def __init__(self, levels: int, pixels: bool):
        super().__init__()
        self.levels, self.pixels, self.heights = levels, pixels, []
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, *condition) -> torch.Tensor:
        self.heights.append(x.shape[-2])
        n, (h, w) = x.shape[0], x.shape[-2:]
        previous = torch.cat([torch.full((n, 1), -1, dtype=torch.long), x.long().reshape(n, -1)[:, :-1]], 1)
        target = (previous + 1) % self.levels
        return F.one_hot(target, self.levels).float().mul(50).view(n, h, w, -1).permute(0, 3, 1, 2)

    def report(self) -> list[int]:
        return self.heights


@harness
def next_value_model(levels: int, pixels: bool) -> NextValueModel:
    return NextValueModel(levels, pixels)


class EncodeRecorder(Fixture):
    """Stands in for a VQ-VAE: delegates encode() and records the size of each batch it is given."""

    def __init__(self, vqvae: nn.Module):
        self.vqvae, self.sizes = vqvae, []

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        self.sizes.append(len(images))
        return self.vqvae.encode(images)

    def __getattr__(self, name: str):
        return getattr(self.vqvae, name)

    def report(self) -> list[int]:
        return self.sizes


@harness
def encode_recorder(vqvae: Any) -> EncodeRecorder:
    return EncodeRecorder(_module(vqvae))


@harness
def course_model(kind: str, config: dict) -> nn.Module:
    """One of the course's models (of an earlier notebook than the one checked), e.g. a small VQ-VAE."""
    from starter.models.registry import kinds

    return kinds()[kind].model(**config)


@harness
def largest_tensor(fn: Callable, *shapes: list[int]) -> int:
    """Elements of the largest tensor fn builds on shape-only tensors: where memory cannot be measured (no /proc)."""
    from starter.metrics import largest_tensor as count

    return count(fn, *[tuple(shape) for shape in shapes])


@harness
def dependency_map(
    network: Any,
    channels: int,
    size: int = 8,
    draws: int = 1,
    scale: float = 1.0,
    positive: bool = False,
    residual: bool = False,
) -> torch.Tensor | None:
    """(size², size, size) bool: which input pixels the output at each raster position depends on, by autograd
    on positive inputs (the union over `draws` of them); None when the output does not depend on the input through
    differentiable operations. `positive`: first make every parameter positive, so that with positive inputs no
    ReLU is ever off and autograd sees every dependency the architecture allows. `scale`: the network gets
    inputs * scale; `residual`: the dependency of network(h) - h."""
    if positive:
        with torch.no_grad():
            for parameter in _module(network).parameters():
                parameter.abs_()
    positions = size * size
    seen = torch.zeros(positions, size, size, dtype=torch.bool)
    rows, cols = torch.arange(positions) // size, torch.arange(positions) % size
    for _ in range(draws):  # one copy of the input per output position, all in one batch
        x = (torch.rand(1, channels, size, size) + 0.1).expand(positions, -1, -1, -1).clone().requires_grad_()
        out = network(x * scale)
        if not torch.is_tensor(out) or not out.requires_grad or out.dim() != 4 or len(out) != positions:
            return None
        out = out - x if residual else out
        (grad,) = torch.autograd.grad(out[torch.arange(positions), :, rows, cols].sum(), x, allow_unused=True)
        if grad is None:
            return None
        seen |= grad.abs().sum(1) > 0
    return seen


@harness
def masked_stack(MaskedConv2d: type) -> nn.Module:
    """A 7x7 mask-A layer, then two 3x3 mask-B layers, with ReLUs between: a small stack of the student's layer."""
    return nn.Sequential(
        MaskedConv2d(1, 8, 7, "A"), nn.ReLU(), MaskedConv2d(8, 8, 3, "B"), nn.ReLU(), MaskedConv2d(8, 8, 3, "B")
    )


@harness
def calls(fn: Callable, args: list, times: int = 2) -> list:
    """fn(*args), `times` times in a row."""
    return [fn(*args) for _ in range(times)]


@harness
def seeded_call(fn: Callable, args: list, seed: int) -> Any:
    """fn(*args) with torch seeded by `seed` just before (so a check can draw the same noise itself)."""
    torch.manual_seed(seed)
    return fn(*args)


@harness
def global_of(fn: Any, name: str) -> Any:
    """The object that the function `fn` finds under `name` in its module (for a notebook function: the notebook's
    own `name`), or None."""
    return getattr(fn, "__globals__", {}).get(name)


@harness
def set_gradients(module: Any, values: list[torch.Tensor]) -> None:
    """Give the module's parameters these .grad values (gradients left over from earlier work)."""
    for parameter, value in zip(_module(module).parameters(), values):
        parameter.grad = value.clone()


class AttentionLayer(nn.Module):
    """What a self-attention layer holds (notebook 06): `heads`, the projection `qkv` to queries, keys and values,
    and the output projection `out`; its use is the student's to write."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)


@harness
def attention_layer(width: int, heads: int) -> AttentionLayer:
    return AttentionLayer(width, heads)


@harness
def steps(step: Callable, layer: Any, x: torch.Tensor, sizes: list[int]) -> dict:
    """Feed the positions of x to step(layer, positions, cache) in chunks of `sizes` positions, with one cache; what
    each call returned and how many positions the cache holds at the end."""
    from starter.models.transformer import KVCache

    cache, outputs, start = KVCache(x.shape[1]), [], 0
    for size in sizes:
        outputs.append(step(layer, x[:, start : start + size], cache))
        start += size
    return {"outputs": outputs, "cached": cache.length}
