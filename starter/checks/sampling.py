"""Checks of samplers, which get the stand-in model (`starter.probes.stand_in.Probe`) with logits and a rule drawn
for each run, and are judged by the grids they return.

Distribution: the stand-in gives the same logits at every position: LIVE's values, in a random order, on four
classes drawn at random, DEAD on every other class. For each temperature the sampler draws about `draws` values;
their empirical distribution over the live classes (plus one bin for "any other class") must lie within total
variation `tolerance(draws)` of softmax(logits / T). By the Bretagnolle-Huber-Carol inequality,
P(TV >= eps) <= 2^bins * exp(-2 n eps^2), so a correct sampler fails with probability below `FALSE_ALARM` whatever
the seed; the check still runs with a fixed seed, so its verdict is deterministic.

Order: the stand-in puts all but a negligible probability on one value per position, which depends on the value
before it in raster order, on how many calls came before, and (where rows must be cropped) on whether the position
is on the input's last row. So the grid a sampler returns shows the order it drew in, how often it called the
model and what it fed it; the check draws the same grid itself (`raster_draws`) and compares.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from starter.checks import CheckFailed, expect
from starter.probes.stand_in import Probe

TEMPERATURES = (0.5, 1.0, 2.0)
FALSE_ALARM = 1e-6
LIVE = torch.tensor([2.0, 1.0, 0.0, -1.0])  # the live classes' logits, each moved by up to SPREAD
SPREAD = 0.2
DEAD = -40.0
SHARP = 50.0  # the logit of the one value an order check's stand-in gives a position: the others have e^-50


def tolerance(draws: int, bins: int = len(LIVE) + 1) -> float:
    """Total-variation bound that `draws` correct samples exceed with probability below FALSE_ALARM."""
    return math.sqrt((bins * math.log(2) - math.log(FALSE_ALARM)) / (2 * draws))


def draw_logits(levels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits over `levels` classes for one run (LIVE's values in a random order on four classes drawn at random,
    DEAD on the others), and those four classes."""
    classes = torch.randperm(levels)[: len(LIVE)]
    logits = torch.full((levels,), DEAD)
    logits[classes] = LIVE[torch.randperm(len(LIVE))] + SPREAD * torch.rand(len(LIVE))
    return logits, classes


def order_stand_in(levels: int, crop: bool) -> dict:
    """The tensors of a stand-in for an order check, drawn for one run: its table and start (see `Probe`)."""
    return {
        "logits": torch.zeros(levels),
        "table": torch.randperm(levels),
        "start": int(torch.randint(levels, ())),
        "sharpness": SHARP,
        "crop": crop,
    }


def raster_draws(stand_in: dict, n: int, size: tuple[int, int], pixels: bool, crop: bool) -> torch.Tensor:
    """The grids ((n, 1, H, W) `pixels` or (n, H, W) codes) that a sampler drawing one position at a time in raster
    order, one call each, on the rows drawn so far if `crop`, gets from a new stand-in made of `stand_in`."""
    model, (height, width) = Probe(**stand_in), size
    grid = torch.zeros(n, height, width, dtype=torch.long)
    fed = grid[:, None] if pixels else grid
    for i in range(height):
        for j in range(width):
            grid[:, i, j] = model(fed[..., : i + 1, :] if crop else fed)[:, :, i, j].argmax(1)
    return fed


def _histogram(values: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Frequencies of the live classes, then of everything else."""
    values = values.long().flatten().cpu()
    live = torch.stack([(values == c).sum() for c in classes])
    return torch.cat([live, (len(values) - live.sum()).view(1)]).double() / len(values)


def _with_other(probs: torch.Tensor) -> torch.Tensor:
    return torch.cat([probs.double(), torch.zeros(1, dtype=torch.double)])


def _causes(live: torch.Tensor, temperature: float, levels: int) -> dict[str, torch.Tensor]:
    """The distributions that the usual mistakes draw from, by the message that names them."""
    argmax = torch.nn.functional.one_hot(live.argmax(), len(live)).float()
    uniform = torch.cat([torch.full((len(live),), 1 / levels), torch.tensor([1 - len(live) / levels])])
    causes = {
        "it takes the argmax instead of drawing: use torch.multinomial(probs, 1)": _with_other(argmax),
        "a softmax over the wrong dimension: the classes are dim=1": uniform.double(),
    }
    if temperature != 1:
        causes["the temperature is ignored: divide the logits by it"] = _with_other(live.softmax(0))
        causes["the logits are multiplied by the temperature: divide them by it"] = _with_other(
            (live * temperature).softmax(0)
        )
    return causes


def expect_draws_follow_softmax(draw: Callable[[torch.Tensor, float], torch.Tensor], levels: int, draws: int) -> None:
    """`draw(logits, temperature)` returns about `draws` values sampled from a stand-in that gives `logits` (drawn
    here, over `levels` classes) at every position; for each temperature their distribution must match
    softmax(logits / T) within `tolerance`."""
    logits, classes = draw_logits(levels)
    live = logits[classes]
    for temperature in TEMPERATURES:
        values = draw(logits, temperature)
        expect(torch.is_tensor(values), f"the sampler should return a tensor, found {type(values).__name__}")
        expect(values.numel() >= draws // 2, f"expected about {draws} draws, found {values.numel()}")
        found, expected = _histogram(values, classes), _with_other((live / temperature).softmax(0))
        gap, bound = 0.5 * (found - expected).abs().sum().item(), tolerance(values.numel())
        if gap > bound:
            cause = next(
                (
                    text
                    for text, probs in _causes(live, temperature, levels).items()
                    if 0.5 * (found - probs).abs().sum().item() <= bound
                ),
                "",
            )
            shown = ", ".join(f"{p:.3f}" for p in found[: len(live)])
            wanted = ", ".join(f"{p:.3f}" for p in expected[: len(live)])
            raise CheckFailed(
                f"at temperature {temperature}, the draws of classes {classes.tolist()} have frequencies ({shown}), "
                f"softmax(logits / T) gives ({wanted}): total variation {gap:.3f} > {bound:.3f}"
                + (f": {cause}" if cause else "")
            )
