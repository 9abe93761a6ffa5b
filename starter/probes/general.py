"""Probes of any object, run in the student's process: what a module holds, new weights for it, gradients through
a function. Each one only gets data out or puts data in; what it reports is trusted only where the README says so
("What a grade guarantees": the facts only the student's process can see)."""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn


def as_module(value: Any, what: str = "the object") -> nn.Module:
    """`value`, which must be an nn.Module."""
    if not isinstance(value, nn.Module):
        raise TypeError(f"{what} should be an nn.Module, found {type(value).__name__}")
    return value


def describe(value: Any) -> dict:
    """What kind of object `value` is."""
    return {"type": type(value).__name__, "module": isinstance(value, nn.Module), "class": isinstance(value, type)}


def parameters(module: Any) -> list[tuple[str, torch.Tensor]]:
    """The module's parameters, by name, in registration order."""
    return [(name, p.detach()) for name, p in as_module(module).named_parameters()]


def buffers(module: Any) -> list[tuple[str, torch.Tensor]]:
    """The module's buffers, by name."""
    return [(name, b.detach()) for name, b in as_module(module).named_buffers()]


def load_parameters(module: Any, values: list[torch.Tensor]) -> None:
    """Copy `values` into the module's parameters, in registration order (what an optimiser step does)."""
    found = list(as_module(module).parameters())
    if len(found) != len(values) or any(p.shape != v.shape for p, v in zip(found, values)):
        raise ValueError("the module's parameters changed shape")
    with torch.no_grad():
        for parameter, value in zip(found, values):
            parameter.copy_(value)


def set_training(module: Any, training: bool) -> None:
    """Put the module in training (True) or evaluation mode."""
    as_module(module).train(training)


def set_gradients(module: Any, values: list[torch.Tensor]) -> None:
    """Give the module's parameters these .grad values (gradients left over from earlier work)."""
    for parameter, value in zip(as_module(module).parameters(), values):
        parameter.grad = value.clone()


def _select(output: Any, path: tuple) -> Any:
    for key in path:
        output = output[key]
    return output


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
        leaves = [args[i] for i in wrt] + [p for m in modules for p in as_module(m).parameters()]
        target = chosen.sum() if cotangent is None else chosen
        grads = torch.autograd.grad(target, leaves, grad_outputs=cotangent, allow_unused=True) if leaves else ()
        facts["grads"] = list(grads[: len(wrt)])
        facts["parameter_grads"] = list(grads[len(wrt) :])
    return facts


def global_of(fn: Any, name: str) -> Any:
    """The object that the function `fn` finds under `name` in its module (for a notebook function: the notebook's
    own `name`), or None."""
    return getattr(fn, "__globals__", {}).get(name)
