"""One training loop for the whole course: fit() with tqdm.auto progress bars and a train/test history."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Callable, Iterable, Mapping, Union

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from starter.config import FAST

Batch = tuple  # (inputs, labels) as yielded by starter.data.make_loader
LossOutput = Union[torch.Tensor, Mapping[str, torch.Tensor]]
LossFn = Callable[[nn.Module, Batch], LossOutput]
SMOKE_RUN = "fast mode: a smoke run on a small subset, so the numbers below mean nothing (full mode trains for real)"


class History(dict):
    """Per-epoch metrics, e.g. history["train_loss"], history["test_loss"], history["seconds"]."""

    def last(self, key: str) -> float:
        """The value of `key` after the final epoch."""
        return self[key][-1]


def as_dict(output: LossOutput) -> dict[str, torch.Tensor]:
    """A loss function may return one scalar or a dict with a "loss" entry plus extra terms to log."""
    if isinstance(output, Mapping):
        if "loss" not in output:
            raise KeyError(f"a loss dict needs a 'loss' entry to optimise, got keys {sorted(output)}")
        return dict(output)
    return {"loss": output}


def train_epoch(
    model: nn.Module, loader: Iterable[Batch], optimizer: torch.optim.Optimizer, loss_fn: LossFn
) -> dict[str, float]:
    """One pass over `loader` with gradient steps; returns each term averaged over examples."""
    model.train()
    totals: dict[str, float] = defaultdict(float)
    count = 0
    for batch in loader:
        terms = as_dict(loss_fn(model, batch))
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
        size = len(batch[0])
        count += size
        for key, value in terms.items():
            totals[key] += float(value.detach()) * size
    return {key: total / max(count, 1) for key, total in totals.items()}


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable[Batch], loss_fn: LossFn) -> dict[str, float]:
    """Each loss term averaged over every example of `loader`, without gradients."""
    model.eval()
    totals: dict[str, float] = defaultdict(float)
    count = 0
    for batch in loader:
        size = len(batch[0])
        count += size
        for key, value in as_dict(loss_fn(model, batch)).items():
            totals[key] += float(value) * size
    return {key: total / max(count, 1) for key, total in totals.items()}


class StepSchedule:
    """An optimizer that clips the gradients' norm before each step and moves its learning rate after each one,
    from `lr_at(step)` (a factor of the base rate): what transformers are trained with. It has the two methods a
    training loop calls, zero_grad() and step()."""

    def __init__(self, optimizer: torch.optim.Optimizer, lr_at: Callable[[int], float], clip: float = 1.0):
        self.optimizer, self.clip = optimizer, clip
        self.schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        nn.utils.clip_grad_norm_([p for group in self.optimizer.param_groups for p in group["params"]], self.clip)
        self.optimizer.step()
        self.schedule.step()


def checked_decay(decay: float) -> float:
    """A weight average's decay per step: a number strictly between 0 and 1, else ValueError saying so."""
    if not 0 < decay < 1:
        raise ValueError(f"an average's decay is between 0 and 1 (e.g. 0.999), got {decay}")
    return decay


class WeightAverage:
    """An exponential moving average of a model's weights, w_avg <- decay * w_avg + (1 - decay) * w after every step
    of its optimizer (torch's AveragedModel): it smooths out the noise of the last steps, and often samples and
    scores better than the weights it follows. `module` is the averaged copy; `copy_to(model)` puts it in place."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, decay: float):
        self.average = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(checked_decay(decay)), use_buffers=True)
        self.hook = optimizer.register_step_post_hook(lambda *_: self.average.update_parameters(model))

    @property
    def module(self) -> nn.Module:
        return self.average.module

    def copy_to(self, model: nn.Module) -> None:
        """Give `model` the averaged weights, and stop following its steps."""
        self.hook.remove()
        model.load_state_dict(self.module.state_dict())


def fit(
    model: nn.Module,
    train_loader: Iterable[Batch],
    test_loader: Iterable[Batch] | None,
    loss_fn: LossFn,
    epochs: int,
    lr: float = 1e-3,
    optimizer: torch.optim.Optimizer | StepSchedule | None = None,
    epoch_fn: Callable = train_epoch,
    on_epoch_end: Callable[[int, History], None] | None = None,
    progress: bool = True,
    desc: str = "epochs",
    lr_decay: float = 1.0,
    time_limit: float = float("inf"),
) -> History:
    """Train `model` for `epochs` with Adam (or `optimizer`), evaluating on `test_loader` after each epoch.

    `epoch_fn(model, loader, optimizer, loss_fn)` does one epoch; it may return a float or a dict of terms.
    `lr_decay` multiplies the learning rate after every epoch (a StepSchedule moves it itself); `time_limit`
    (seconds) stops after the epoch that passes it. In fast mode it first says that the run is a smoke run.
    """
    if FAST and progress:
        print(SMOKE_RUN)
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=lr_decay) if lr_decay != 1.0 else None
    history = History()
    bar = tqdm(range(1, epochs + 1), desc=desc, disable=not progress)
    began = time.perf_counter()
    for epoch in bar:
        start = time.perf_counter()
        train_terms = epoch_fn(model, train_loader, optimizer, loss_fn)
        if schedule is not None:
            schedule.step()
        if not isinstance(train_terms, Mapping):
            train_terms = {"loss": float(train_terms)}
        for key, value in train_terms.items():
            history.setdefault(f"train_{key}", []).append(value)
        if test_loader is not None:
            for key, value in evaluate(model, test_loader, loss_fn).items():
                history.setdefault(f"test_{key}", []).append(value)
        history.setdefault("seconds", []).append(time.perf_counter() - start)
        bar.set_postfix({k: f"{v[-1]:.4g}" for k, v in history.items() if k.endswith("_loss")})
        if on_epoch_end is not None:
            on_epoch_end(epoch, history)
        if time.perf_counter() - began >= time_limit:
            break
    return history
