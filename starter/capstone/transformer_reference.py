"""The course's reference run for capstone C: a transformer prior over the codes of a capstone-A VQ-VAE, trained
with the course's own training loop for 3 epochs (within a time budget), saved as capstone C's safetensors file next
to a per-epoch log.csv.

    python -m starter.capstone.transformer_reference --vqvae runs/capstone_a/capstone_vqvae.safetensors \
        --out runs/capstone_c

Three epochs, not as many as 10 minutes allow: 10 epochs lower the test NLL (2.012 -> 1.881 nats/code) but not the
samples' KID (11.1 +- 1.2 -> 24.9 +- 6.6 over 3 sampling seeds; `bench/capstone_quality.py`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from starter.capstone.prior_reference import train_code_prior
from starter.capstone.reference import budget_parser, run
from starter.capstone.transformer_interface import BOUNDS, FILENAME, GRID, HEADS
from starter.models.transformer import TransformerPrior
from starter.trainers import Session


def parser() -> argparse.ArgumentParser:
    """Capstone C's reference run: the VQ-VAE, the budget's options, the sizes (within the bounds)."""
    parser = budget_parser(__doc__.splitlines()[0])
    parser.add_argument("--vqvae", type=Path, required=True, help="capstone A's safetensors file")
    parser.add_argument("--width", type=int, default=64, help="model width, %d..%d" % BOUNDS["width"])
    parser.add_argument("--layers", type=int, default=4, help="transformer blocks, %d..%d" % BOUNDS["layers"])
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.set_defaults(epochs=3)
    return parser


def train_transformer_reference(args: argparse.Namespace, session: Session) -> Path:
    """Capstone C's reference: a transformer prior of the sizes in `args` (`train_code_prior`)."""
    return train_code_prior(
        args,
        session,
        lambda codes: TransformerPrior(codes, GRID, args.width, args.layers, HEADS, dropout=args.dropout),
        FILENAME,
    )


def main(argv: list[str] | None = None) -> int:
    return run(train_transformer_reference, parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
