"""The course's reference run for capstone B: a gated prior over the codes of a capstone-A VQ-VAE, trained within a
time budget with the course's own training loop, saved as capstone B's safetensors file next to a per-epoch log.csv.

    python -m starter.capstone.prior_reference --vqvae runs/capstone_a/capstone_vqvae.safetensors \
        --out runs/capstone_b --minutes 10
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from safetensors.torch import save_file
from torch import nn

from starter.capstone.prior_interface import BOUNDS, FILENAME, GRID, prior_tensors
from starter.capstone.prior_score import load_vqvae
from starter.capstone.reference import budget_parser, run, train_within_budget
from starter.models.base import nll_loss
from starter.models.prior import GatedCodePrior, encode_dataset
from starter.trainers import Session


def parser() -> argparse.ArgumentParser:
    """Capstone B's reference run: the VQ-VAE, the budget's options, the sizes (within the bounds)."""
    parser = budget_parser(__doc__.splitlines()[0])
    parser.add_argument("--vqvae", type=Path, required=True, help="capstone A's safetensors file")
    parser.add_argument("--channels", type=int, default=64, help="channels, %d..%d" % BOUNDS["channels"])
    parser.add_argument("--blocks", type=int, default=5, help="gated blocks, %d..%d" % BOUNDS["blocks"])
    parser.add_argument("--embed", type=int, default=32, help="code embedding size, %d..%d" % BOUNDS["embed"])
    return parser


def train_code_prior(
    args: argparse.Namespace, session: Session, make_prior: Callable[[int], nn.Module], filename: str
) -> Path:
    """Encode Fashion-MNIST with the capstone-A VQ-VAE, train `make_prior(num_codes)` on its code grids within the
    budget, write the prior as `filename` and return its path."""
    vqvae = load_vqvae(args.vqvae).to(session.device)
    train, test = (encode_dataset(vqvae, split) for split in session.splits())
    prior = make_prior(vqvae.quantizer.num_codes).to(session.device)
    train_within_budget(prior, session.loaders(train, test), nll_loss, args, session)
    path = args.out / filename
    save_file(prior_tensors(prior), str(path))
    return path


def train_prior_reference(args: argparse.Namespace, session: Session) -> Path:
    """Capstone B's reference: a gated prior of the sizes in `args` (`train_code_prior`)."""
    return train_code_prior(
        args, session, lambda codes: GatedCodePrior(codes, GRID, args.channels, args.blocks, args.embed), FILENAME
    )


def main(argv: list[str] | None = None) -> int:
    return run(train_prior_reference, parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
