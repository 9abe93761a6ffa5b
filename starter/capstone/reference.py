"""The course's reference run for capstone A: a VQ-VAE trained on Fashion-MNIST within a time budget, with the
course's own training loop, saved as the capstone's safetensors file next to a per-epoch log.csv.

    python -m starter.capstone.reference --out /tmp/capstone_a --minutes 10
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import save_file
from torch import nn

from starter.capstone.interface import BOUNDS, FILENAME, submission_tensors
from starter.config import DATA_ROOT
from starter.models.vq import VQVAE, vqvae_loss
from starter.train import fit
from starter.trainers import Session


def budget_parser(description: str) -> argparse.ArgumentParser:
    """The options of every capstone's reference run: where to write, the budget, the optimiser, the data."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, required=True, help="folder for the safetensors file and log.csv")
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget, evaluation included")
    parser.add_argument("--epochs", type=int, default=100, help="at most this many epochs")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: best available)")
    parser.add_argument("--data", type=Path, default=DATA_ROOT, help="dataset root (default: %(default)s)")
    parser.set_defaults(dataset="fashion", limit=None, test_limit=None)
    return parser


def parser() -> argparse.ArgumentParser:
    """Capstone A's reference run: the budget's options and the sizes (within the interface's bounds)."""
    parser = budget_parser(__doc__.splitlines()[0])
    parser.add_argument("--num-codes", type=int, default=64, help="codebook size K, %d..%d" % BOUNDS["num_codes"])
    parser.add_argument("--code-dim", type=int, default=16, help="code dimension, %d..%d" % BOUNDS["code_dim"])
    parser.add_argument("--hidden", type=int, default=32, help="channels of the first conv, %d..%d" % BOUNDS["hidden"])
    parser.add_argument("--beta", type=float, default=0.25, help="commitment cost")
    return parser


def train_within_budget(
    model: nn.Module, loaders: tuple, loss: Callable, args: argparse.Namespace, session: Session
) -> None:
    """Train `model` epoch by epoch with Adam, logging each epoch, and start no epoch that the last one's time says
    would end past the budget (`args.minutes`, at most `args.epochs` epochs)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    began, epoch_seconds = time.perf_counter(), 0.0
    for epoch in range(1, args.epochs + 1):
        if time.perf_counter() - began + epoch_seconds > args.minutes * 60:
            break
        history = fit(model, *loaders, loss, epochs=1, optimizer=optimizer, progress=False)
        epoch_seconds = history.last("seconds")
        session.log(epoch, history, elapsed=time.perf_counter() - began)


def train_reference(args: argparse.Namespace, session: Session) -> Path:
    """Train an EMA VQ-VAE with restarts within the budget; write the capstone file and return its path."""
    model = VQVAE(args.num_codes, args.code_dim, args.hidden, update="ema", restart=True).to(session.device)
    loss = functools.partial(vqvae_loss, beta=args.beta)
    train_within_budget(model, session.loaders(*session.splits()), loss, args, session)
    path = args.out / FILENAME
    save_file(submission_tensors(model), str(path))
    return path


def run(train: Callable[[argparse.Namespace, Session], Path], args: argparse.Namespace) -> int:
    """Run a reference run's `train` with `args` and say where it wrote the capstone file."""
    print(f"wrote {train(args, Session(args))}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(train_reference, parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
