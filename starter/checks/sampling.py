"""Statistical checks for samplers: the draws of a fixed model must follow softmax(logits / T).

The model (`starter.checks.harness.FixedLogits`) gives the same non-trivial logits at every position. For each
temperature the sampler draws `DRAWS` values; their empirical distribution over the live classes (plus one bin for
"any other class") must lie within total variation `tolerance(DRAWS)` of softmax(logits / T). By the
Bretagnolle-Huber-Carol inequality, P(TV >= eps) <= 2^bins * exp(-2 n eps^2), so a correct sampler fails with
probability below `FALSE_ALARM` whatever the seed; the check still runs with a fixed seed, so its verdict is
deterministic.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from starter.checks import CheckFailed, expect
from starter.checks.harness import LOGITS

TEMPERATURES = (0.5, 1.0, 2.0)
FALSE_ALARM = 1e-6


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
    causes = {
        "it takes the argmax instead of drawing: use torch.multinomial(probs, 1)": _with_other(argmax),
        "a softmax over the wrong dimension: the classes are dim=1": uniform.double(),
    }
    if temperature != 1:
        causes["the temperature is ignored: divide the logits by it"] = _with_other(LOGITS.softmax(0))
        causes["the logits are multiplied by the temperature: divide them by it"] = _with_other(
            (LOGITS * temperature).softmax(0)
        )
    return causes


def expect_draws_follow_softmax(draw: Callable[[float], torch.Tensor], levels: int, draws: int) -> None:
    """`draw(temperature)` returns about `draws` values sampled from a model that gives the logits LOGITS at every
    position (the harness's FixedLogits); for each temperature their distribution must match softmax(LOGITS / T)
    within `tolerance`."""
    for temperature in TEMPERATURES:
        values = draw(temperature)
        expect(torch.is_tensor(values), f"the sampler should return a tensor, found {type(values).__name__}")
        expect(values.numel() >= draws // 2, f"expected about {draws} draws, found {values.numel()}")
        found, expected = _histogram(values), _with_other((LOGITS / temperature).softmax(0))
        gap, bound = 0.5 * (found - expected).abs().sum().item(), tolerance(values.numel())
        if gap > bound:
            cause = next(
                (
                    text
                    for text, probs in _causes(temperature, levels).items()
                    if 0.5 * (found - probs).abs().sum().item() <= bound
                ),
                "",
            )
            shown = ", ".join(f"{p:.3f}" for p in found[: len(LOGITS)])
            wanted = ", ".join(f"{p:.3f}" for p in expected[: len(LOGITS)])
            raise CheckFailed(
                f"at temperature {temperature}, the draws of classes 0-3 have frequencies ({shown}), "
                f"softmax(logits / T) gives ({wanted}): total variation {gap:.3f} > {bound:.3f}"
                + (f": {cause}" if cause else "")
            )
