"""Train and sample from the command line, for instructors and for the shipped checkpoints.

    python -m starter.cli train-vqvae --out runs/vqvae --epochs 15 --update ema --restart
    python -m starter.cli train-pixelcnn --model gated_pixelcnn --time-limit 390 --out runs/gated
    python -m starter.cli train-prior --vqvae data/checkpoints/vqvae.pt --model transformer_prior --out runs/prior
    python -m starter.cli train-prior --vqvae runs/two_level/checkpoint.pt --level top --num-classes 10 --out runs/top
    python -m starter.cli train-classifier --out runs/classifier
    python -m starter.cli train-two-level --out runs/two_level
    python -m starter.cli sample --checkpoint data/checkpoints/prior_gated.pt --temperature 0.9 --out digits.png
    python -m starter.cli generate --checkpoint runs/vqvae/checkpoint.pt --mode reconstructions --out recon.png
    python -m starter.cli train-vqvae --dataset fashion --out runs/fashion_vqvae  (any command: MNIST or Fashion-MNIST)

Each training command (`starter.trainers`) writes checkpoint.pt (config and metrics inside) and log.csv (one row per
epoch) in --out. The models a trainer offers (--model) and their size options come from the registry
(`starter.models.registry`): a new kind of model needs nothing here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import torch

from starter import trainers
from starter.checkpoints import load_model
from starter.clusters import draw_clusters
from starter.config import CHECKPOINTS, DATA_ROOT
from starter.models.registry import kind_of, kinds
from starter.models.sampling import sample
from starter.trainers import Session


def sample_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, required=True, help="a PixelCNN or a prior over 7x7 codes")
    parser.add_argument(
        "--vqvae",
        type=Path,
        help="for a prior: the VQ-VAE that decodes its codes "
        "(default: the one it was trained on, else the shipped vqvae.pt)",
    )
    parser.add_argument("--n", type=int, default=100, help="how many to draw (10 per row)")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=None, help="draw each position from its k likeliest values")
    parser.add_argument("--top-k-from-row", type=int, default=0, help="truncate from this row on")
    parser.add_argument(
        "--condition",
        type=int,
        default=None,
        help="for a class-conditional model: the class of every sample (default: row r is class r; a prior over "
        "clusters draws each sample's by its share)",
    )
    parser.add_argument(
        "--guidance",
        type=float,
        default=1.0,
        help="classifier-free guidance scale (for a prior trained with class dropout)",
    )
    parser.add_argument("--naive", action="store_true", help="a whole forward pass per position (the same draws)")
    parser.add_argument("--out", type=Path, default=Path("runs/samples.png"))


def draw(args: argparse.Namespace, session: Session) -> Path:
    """Draw --n grids from a PixelCNN or a prior (decoded by its VQ-VAE) into a 10-wide PNG grid."""
    model, metrics = load_model(args.checkpoint, device=session.device)
    family = kinds()[kind_of(model)].family
    if family not in {"pixels", "codes"}:
        raise SystemExit(
            f"{args.checkpoint} holds a {kind_of(model)}: `sample` draws from a PixelCNN or a prior over "
            "one VQ-VAE's codes (a two-level model's priors are sampled in notebook 05)"
        )
    if args.guidance != 1 and model.null_class is None:
        raise SystemExit(f"--guidance needs a prior trained with class dropout; {args.checkpoint} was not")
    condition = None
    if model.num_classes:
        if args.condition is not None:
            classes = torch.full((args.n,), args.condition)
        elif "cluster_shares" in metrics:  # a prior over clusters: each grid's drawn by its share (unconditional)
            classes = draw_clusters(metrics["cluster_shares"], args.n)
        else:
            classes = torch.arange(args.n) // 10 % model.num_classes
        condition = classes.to(session.device)
    grids = sample(
        model,
        args.n,
        args.temperature,
        condition=condition,
        top_k=args.top_k,
        top_k_from_row=args.top_k_from_row,
        cached=not args.naive,
        guidance=args.guidance,
    )
    if family == "pixels":
        images = grids.float() / (model.levels - 1)
    else:
        vqvae, _ = load_model(
            args.vqvae or Path(metrics.get("vqvae") or CHECKPOINTS / "vqvae.pt"), "vqvae", device=session.device
        )
        model.check_fits(vqvae)
        with torch.no_grad():
            images = vqvae.eval().decode(grids)
    return save_grid(images, args.out)


def generate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--mode", choices=["reconstructions", "independent"], default="reconstructions")
    parser.add_argument("--out", type=Path, default=Path("runs/samples.png"))


def generate(args: argparse.Namespace, session: Session) -> Path:
    """Write a 10x10 PNG grid: reconstructions of test digits, or decoded independent uniform codes."""
    model, _ = load_model(args.checkpoint, "vqvae", device=session.device)
    if args.mode == "reconstructions":
        images = session.data(False, limit=50).tensors[0]
        with torch.no_grad():
            grid = torch.stack([images, model(images)[0]], 1).flatten(0, 1)  # original, reconstruction side by side
    else:
        grid = model.decode(torch.randint(model.quantizer.num_codes, (100, 7, 7), device=session.device))
    return save_grid(grid, args.out)


def save_grid(images: torch.Tensor, path: Path) -> Path:
    """Write images in [0, 1] as a PNG grid 10 wide; returns `path`. torchvision is imported here, when a grid is
    written: importing it takes a second (it imports torch._dynamo), which the trainers need not pay."""
    from torchvision.utils import save_image

    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(images, path, nrow=10, padding=2, pad_value=1.0)
    return path


# name: (what it does, its options, its help, default output folder (trainers only), default epochs)
COMMANDS: dict[str, tuple[Callable, Callable, str, str | None, int]] = {
    "train-vqvae": (
        trainers.train_vqvae,
        trainers.vqvae_options,
        "train a VQ-VAE on MNIST or Fashion-MNIST",
        "runs/vqvae",
        10,
    ),
    "train-two-level": (
        trainers.train_two_level,
        trainers.two_level_options,
        "train a two-level VQ-VAE (4x4 top, 7x7 bottom codes)",
        "runs/two_level",
        15,
    ),
    "train-pixelcnn": (
        trainers.train_pixelcnn,
        trainers.pixelcnn_options,
        "train a PixelCNN on 8-bit MNIST pixels",
        "runs/pixelcnn",
        20,
    ),
    "train-classifier": (
        trainers.train_classifier,
        trainers.classifier_options,
        "train the MNIST classifier used to score samples",
        "runs/classifier",
        4,
    ),
    "train-prior": (
        trainers.train_prior,
        trainers.prior_options,
        "train a prior over a VQ-VAE's code grids",
        "runs/prior",
        20,
    ),
    "sample": (draw, sample_options, "draw from a PixelCNN or a prior into a PNG grid", None, 0),
    "generate": (generate, generate_options, "write a 10x10 PNG grid from a VQ-VAE checkpoint", None, 0),
}


def parser_for(commands: dict) -> argparse.ArgumentParser:
    """One sub-parser per command: the options every command has, every trainer's, then its own."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, (_, options, help_text, out, epochs) in commands.items():
        sub = subparsers.add_parser(name, help=help_text)
        sub.add_argument("--data", type=Path, default=DATA_ROOT, help="dataset root (default: %(default)s)")
        sub.add_argument("--device", default=None, help="cuda, mps or cpu (default: best available)")
        sub.add_argument("--seed", type=int, default=0)
        sub.add_argument("--dataset", choices=["mnist", "fashion"], default="mnist", help="MNIST or Fashion-MNIST")
        if out is not None:
            sub.add_argument("--out", type=Path, default=Path(out), help="output folder (default: %(default)s)")
            sub.add_argument("--batch-size", type=int, default=128)
            sub.add_argument("--epochs", type=int, default=epochs)
            sub.add_argument("--lr", type=float, default=1e-3)
            sub.add_argument("--limit", type=int, default=None, help="use only the first N training images")
            sub.add_argument("--test-limit", type=int, default=None, help="measure on the first N test images only")
            sub.add_argument("--half", action="store_true", help="store the weights as float16: half the file")
        options(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser_for(COMMANDS).parse_args(argv)
    path = COMMANDS[args.command][0](args, Session(args))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
