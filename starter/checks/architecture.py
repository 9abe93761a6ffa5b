"""Is a student's module the architecture the text describes? Decided by behaviour, not by what it says it is.

The check gives the student's module new weights (drawn by the check), runs it, and compares its outputs with
those of the course's version of the architecture holding the same weights. The module's parameter list is only
used to know where each weight goes: its layers are matched to the reference's by their parameters' shapes, in
registration order, trying other orders among layers of the same shape when the first does not fit.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Callable, Iterator

import torch
from torch import nn

from starter.checks import CheckFailed, expect
from starter.checks.kernel import Handle
from starter.probes import general

Layer = tuple[tuple[int, ...], ...]  # the shapes of one layer's parameters
MAX_ORDERS = 2000  # orders of same-shaped layers tried before giving up


def layers(named: list[tuple[str, torch.Tensor]]) -> list[list[int]]:
    """Indices of `named` parameters grouped into layers: parameters whose names share the part before the last dot."""
    groups: dict[str, list[int]] = {}
    for index, (name, _) in enumerate(named):
        groups.setdefault(name.rpartition(".")[0], []).append(index)
    return list(groups.values())


def _shapes(named: list[tuple[str, torch.Tensor]], indices: list[int]) -> Layer:
    return tuple(tuple(named[i][1].shape) for i in indices)


def _describe_difference(found: list[Layer], expected: list[Layer]) -> str:
    extra = [layer for layer in found if layer not in expected or found.count(layer) > expected.count(layer)]
    missing = [layer for layer in expected if layer not in found or expected.count(layer) > found.count(layer)]
    show = lambda layer: " + ".join(str(shape) for shape in layer)  # noqa: E731
    parts = []
    if missing:
        parts.append(f"the text's layers include one with parameters {show(missing[0])}")
    if extra:
        parts.append(f"yours include one with {show(extra[0])}")
    return "; ".join(parts)


def matchings(found: list[tuple[str, torch.Tensor]], reference: nn.Module, what: str) -> Iterator[list[int]]:
    """Ways to place the student's parameters into the reference's: for each reference parameter (in order), the
    index of the student's parameter that plays its part. The first follows registration order; the others change
    the order of layers of the same shapes. CheckFailed, saying what differs, when no placement exists."""
    expected = list(reference.named_parameters())
    found_layers, expected_layers = layers(found), layers(expected)
    found_shapes = [_shapes(found, layer) for layer in found_layers]
    expected_shapes = [_shapes(expected, layer) for layer in expected_layers]
    if sorted(found_shapes) != sorted(expected_shapes):
        count = sum(p.numel() for _, p in found)
        wanted = sum(p.numel() for _, p in expected)
        raise CheckFailed(
            f"{what} has {count:,} parameters in {len(found_layers)} layers, the architecture described "
            f"in the text has {wanted:,} in {len(expected_layers)}: "
            + (_describe_difference(found_shapes, expected_shapes) or "compare your layers with the text")
        )
    by_shape: dict[Layer, list[int]] = defaultdict(list)
    for index, shapes in enumerate(found_shapes):
        by_shape[shapes].append(index)
    slots = defaultdict(list)  # for each shape, the reference layers of that shape, in order
    for index, shapes in enumerate(expected_shapes):
        slots[shapes].append(index)
    shapes_order = list(by_shape)
    orders = itertools.product(*(itertools.permutations(by_shape[s]) for s in shapes_order))
    for order in itertools.islice(orders, MAX_ORDERS):
        placement = [0] * len(expected)
        for shapes, students in zip(shapes_order, order):
            for reference_layer, student_layer in zip(slots[shapes], students):
                for r, s in zip(expected_layers[reference_layer], found_layers[student_layer]):
                    placement[r] = s
        yield placement


def behaves_like(
    module: Handle,
    reference: nn.Module,
    inputs: tuple,
    what: str,
    run: Callable[[nn.Module], torch.Tensor] | None = None,
    atol: float = 1e-4,
) -> dict:
    """Give the student's `module` the reference's weights (drawn by the check: seed first) and compare outputs on
    `inputs`. Returns {"output": student's output, "reference": the reference holding the student's placement of
    the weights, "placement": that placement (`matchings`), "names": the student's parameters' names, "matched":
    bool}. `run(model)` computes an output from a model (default: model(*inputs)).
    CheckFailed when the parameters do not fit the architecture."""
    kernel = module.kernel
    found = kernel.run(general.parameters, module)
    values = [p.detach().clone() for p in reference.parameters()]
    first = next(matchings(found, reference, what))
    student_values = [None] * len(found)
    for r, s in enumerate(first):
        student_values[s] = values[r]
    kernel.run(general.load_parameters, module, student_values)
    output = kernel.call(module, *inputs) if run is None else None
    if run is not None:
        output = run(module)
    names = [name for name, _ in found]
    for placement in matchings(found, reference, what):
        with torch.no_grad():
            for parameter, s in zip(reference.parameters(), placement):
                parameter.copy_(student_values[s])
            expected = reference(*inputs) if run is None else run(reference)
        if (
            torch.is_tensor(output)
            and output.shape == expected.shape
            and torch.allclose(output.double(), expected.double(), atol=atol, rtol=1e-4)
        ):
            return {"output": output, "reference": reference, "placement": placement, "names": names, "matched": True}
    with torch.no_grad():
        for parameter, s in zip(reference.parameters(), first):
            parameter.copy_(student_values[s])
    return {"output": output, "reference": reference, "placement": first, "names": names, "matched": False}


def expect_same_as(
    facts: dict,
    what: str,
    variants: dict[str, Callable[[nn.Module], torch.Tensor]],
    atol: float = 1e-4,
    diagnose: Callable[[], None] | None = None,
) -> None:
    """Fail unless the student's output matched the reference's; name the mistake whose variant it matches, or
    else let `diagnose` fail with a more precise message, if it can."""
    if facts["matched"]:
        return
    output = facts["output"]
    expect(torch.is_tensor(output), f"{what} should return a tensor, found {type(output).__name__}")
    with torch.no_grad():
        for cause, variant in variants.items():
            value = variant(facts["reference"])
            if value.shape == output.shape and torch.allclose(output.double(), value.double(), atol=atol, rtol=1e-4):
                raise CheckFailed(
                    f"{what}: the output differs from the architecture in the text with the same weights: {cause}"
                )
    if diagnose is not None:
        diagnose()
    raise CheckFailed(
        f"{what}: the output differs from the architecture in the text holding the same weights "
        "(same layers, but not combined as the text says): compare your forward() with the text"
    )
