"""Statistical checks for samplers: the draws of a fixed model must follow softmax(logits / T).

The model gives the same non-trivial logits at every position. For each temperature the sampler draws `DRAWS`
values; their empirical distribution over the live classes (plus one bin for "any other class") must lie within
total variation `tolerance(DRAWS)` of softmax(logits / T). By the Bretagnolle-Huber-Carol inequality,
P(TV >= eps) <= 2^bins * exp(-2 n eps^2), so a correct sampler fails with probability below `FALSE_ALARM` whatever
the seed; the check still runs with a fixed seed, so its verdict is deterministic.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from starter.checks import CheckFailed, expect

LOGITS = torch.tensor([2.0, 1.0, 0.0, -1.0])  # the live classes; every other class has logit DEAD
DEAD = -40.0
TEMPERATURES = (0.5, 1.0, 2.0)
FALSE_ALARM = 1e-6


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


def tolerance(draws: int, bins: int = len(LOGITS) + 1) -> float:
    """Total-variation bound that `draws` correct samples exceed with probability below FALSE_ALARM."""
    return math.sqrt((bins * math.log(2) - math.log(FALSE_ALARM)) / (2 * draws))


def _histogram(values: torch.Tensor) -> torch.Tensor:
    """Frequencies of the live classes, then of everything else."""
    values = values.long().flatten().cpu()
    counts = torch.stack([(values == c).sum() for c in range(len(LOGITS))] + [(values >= len(LOGITS)).sum()])
    return counts.double() / len(values)


def _with_other(probs: torch.Tensor) -> torch.Tensor:
    return torch.cat([probs.double(), torch.zeros(1, dtype=torch.double)])


def _causes(temperature: float, levels: int) -> dict[str, torch.Tensor]:
    """The distributions that the usual mistakes draw from, by the message that names them."""
    argmax = torch.nn.functional.one_hot(LOGITS.argmax(), len(LOGITS)).float()
    uniform = torch.cat([torch.full((len(LOGITS),), 1 / levels), torch.tensor([1 - len(LOGITS) / levels])])
    causes = {"it takes the argmax instead of drawing: use torch.multinomial(probs, 1)": _with_other(argmax),
              "a softmax over the wrong dimension: the classes are dim=1": uniform.double()}
    if temperature != 1:
        causes["the temperature is ignored: divide the logits by it"] = _with_other(LOGITS.softmax(0))
        causes["the logits are multiplied by the temperature: divide them by it"] = _with_other((LOGITS * temperature).softmax(0))
    return causes


def expect_draws_follow_softmax(draw: Callable[[nn.Module, float], torch.Tensor], levels: int, draws: int) -> None:
    """`draw(model, temperature)` returns about `draws` sampled values from a FixedLogits model; for each
    temperature their distribution must match softmax(LOGITS / T) within `tolerance`."""
    for temperature in TEMPERATURES:
        values = draw(FixedLogits(levels), temperature)
        expect(values.numel() >= draws // 2, f"expected about {draws} draws, found {values.numel()}")
        found, expected = _histogram(values), _with_other((LOGITS / temperature).softmax(0))
        gap, bound = 0.5 * (found - expected).abs().sum().item(), tolerance(values.numel())
        if gap > bound:
            cause = next((text for text, probs in _causes(temperature, levels).items()
                          if 0.5 * (found - probs).abs().sum().item() <= bound), "")
            shown = ", ".join(f"{p:.3f}" for p in found[:len(LOGITS)])
            wanted = ", ".join(f"{p:.3f}" for p in expected[:len(LOGITS)])
            raise CheckFailed(f"at temperature {temperature}, the draws of classes 0-3 have frequencies ({shown}), "
                              f"softmax(logits / T) gives ({wanted}): total variation {gap:.3f} > {bound:.3f}"
                              + (f": {cause}" if cause else ""))
