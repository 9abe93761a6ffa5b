"""Train and sample from the command line, for instructors and for the shipped checkpoints.

    python -m starter.cli train-vqvae --out runs/vqvae --epochs 10 --update ema --restart
    python -m starter.cli generate --checkpoint runs/vqvae/checkpoint.pt --mode reconstructions --out recon.png
"""
from __future__ import annotations

import argparse
import csv
import functools
import sys
from pathlib import Path

import torch
from torchvision.utils import save_image

from starter.checkpoints import load_model, save_checkpoint
from starter.config import DATA_ROOT, choose_device, seed_everything
from starter.data import load_mnist, make_loader
from starter.metrics import vqvae_report
from starter.models.vq import VQVAE, vqvae_loss
from starter.train import fit


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=DATA_ROOT, help="dataset root (default: %(default)s)")
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: best available)")
    parser.add_argument("--seed", type=int, default=0)


def train_vqvae(args: argparse.Namespace) -> Path:
    """Train a VQ-VAE, log every epoch to log.csv and save checkpoint.pt in --out."""
    seed_everything(args.seed)
    device = choose_device(args.device)
    train = load_mnist(True, limit=args.limit, device=device, root=args.data)
    test = load_mnist(False, device=device, root=args.data)
    train_loader = make_loader(train, args.batch_size, shuffle=True, seed=args.seed,
                               num_workers=args.workers if device.type == "cpu" else 0)
    test_loader = make_loader(test, 1000)
    config = {"num_codes": args.num_codes, "code_dim": args.code_dim, "hidden": args.hidden,
              "update": args.update, "restart": args.restart}
    model = VQVAE(**config).to(device)
    args.out.mkdir(parents=True, exist_ok=True)
    log_path = args.out / "log.csv"

    def log_epoch(epoch: int, history) -> None:
        report = vqvae_report(model, test_loader)
        row = {"epoch": epoch, **{k: v[-1] for k, v in history.items()},
               "test_codes_used": report["used"], "test_perplexity": report["perplexity"]}
        with open(log_path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if epoch == 1:
                writer.writeheader()
            writer.writerow(row)
        print(", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)

    log_path.unlink(missing_ok=True)
    loss = functools.partial(vqvae_loss, beta=args.beta)
    history = fit(model, train_loader, test_loader, loss, epochs=args.epochs, lr=args.lr,
                  on_epoch_end=log_epoch, progress=False)
    report = vqvae_report(model, test_loader)
    metrics = {"test_mse": report["mse"], "test_codes_used": report["used"], "test_perplexity": report["perplexity"],
               "epochs": args.epochs, "train_seconds": sum(history["seconds"]), "beta": args.beta, "lr": args.lr,
               "batch_size": args.batch_size, "device": str(device)}
    return save_checkpoint(args.out / "checkpoint.pt", model, "vqvae", config, metrics)


def generate(args: argparse.Namespace) -> Path:
    """Write a 10x10 PNG grid: reconstructions of test digits, or decoded independent uniform codes."""
    seed_everything(args.seed)
    device = choose_device(args.device)
    model, _ = load_model(args.checkpoint, VQVAE, "vqvae", device=device)
    if args.mode == "reconstructions":
        images = load_mnist(False, limit=50, device=device, root=args.data).tensors[0]
        with torch.no_grad():
            pairs = torch.stack([images, model(images)[0]], 1)  # original, reconstruction side by side
        grid = pairs.flatten(0, 1)
    else:
        codes = torch.randint(model.quantizer.num_codes, (100, 7, 7), device=device)
        grid = model.decode(codes)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, args.out, nrow=10, padding=2, pad_value=1.0)
    return args.out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train-vqvae", help="train a VQ-VAE on MNIST")
    _common(train)
    train.add_argument("--out", type=Path, default=Path("runs/vqvae"), help="output folder (default: %(default)s)")
    train.add_argument("--hidden", type=int, default=32, help="channels of the first conv layer")
    train.add_argument("--num-codes", "-k", type=int, default=128, help="codebook size K")
    train.add_argument("--code-dim", "-d", type=int, default=16, help="dimension of each code")
    train.add_argument("--batch-size", type=int, default=128)
    train.add_argument("--epochs", type=int, default=10)
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--beta", type=float, default=0.25, help="commitment cost")
    train.add_argument("--update", choices=["grad", "ema"], default="ema", help="codebook update rule")
    train.add_argument("--restart", action="store_true", help="restart dead codes from encoder outputs")
    train.add_argument("--workers", type=int, default=0,
                       help="DataLoader workers (CPU only; the data sits in memory, so 0 is usually fastest)")
    train.add_argument("--limit", type=int, default=None, help="use only the first N training images")

    gen = commands.add_parser("generate", help="write a 10x10 PNG grid from a VQ-VAE checkpoint")
    _common(gen)
    gen.add_argument("--checkpoint", type=Path, required=True)
    gen.add_argument("--mode", choices=["reconstructions", "independent"], default="reconstructions")
    gen.add_argument("--out", type=Path, default=Path("runs/samples.png"))

    args = parser.parse_args(argv)
    path = {"train-vqvae": train_vqvae, "generate": generate}[args.command](args)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
