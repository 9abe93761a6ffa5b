"""Train and sample from the command line, for instructors and for the shipped checkpoints.

    python -m starter.cli train-vqvae --out runs/vqvae --epochs 15 --update ema --restart
    python -m starter.cli generate --checkpoint runs/vqvae/checkpoint.pt --mode reconstructions --out recon.png
    python -m starter.cli train-pixelcnn --model gated_pixelcnn --time-limit 390 --out runs/gated
    python -m starter.cli train-prior --vqvae data/checkpoints/vqvae.pt [--conditional] --out runs/prior
    python -m starter.cli train-classifier --out runs/classifier
    python -m starter.cli train-vqvae --dataset fashion --out runs/fashion_vqvae      (any command: MNIST or Fashion-MNIST)
    python -m starter.cli train-two-level --out runs/two_level
    python -m starter.cli train-prior --vqvae runs/two_level/checkpoint.pt --level top --conditional --out runs/top

Each command writes checkpoint.pt (config and metrics inside) and log.csv (one row per epoch) in --out.
"""
from __future__ import annotations

import argparse
import csv
import functools
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import TensorDataset
from torchvision.utils import save_image

from starter.checkpoints import load_model, save_checkpoint
from starter.config import DATA_ROOT, choose_device, seed_everything
from starter.data import load_mnist, make_loader
from starter.metrics import bits_per_dim, code_counts, entropy_nats, vqvae_report
from starter.models.classifier import Classifier, classifier_loss
from starter.models.pixelcnn import GatedPixelCNN, PixelCNN, nll_loss
from starter.models.prior import CodePrior, GatedCodePrior, encode_dataset
from starter.models.two_level import BottomPrior, TwoLevelVQVAE, encode_two_level, two_level_loss
from starter.models.vq import VQVAE, vqvae_loss
from starter.train import evaluate, fit, train_epoch

PIXEL_MODELS = {"pixelcnn": PixelCNN, "gated_pixelcnn": GatedPixelCNN}


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=DATA_ROOT, help="dataset root (default: %(default)s)")
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: best available)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dataset", choices=["mnist", "fashion"], default="mnist", help="MNIST or Fashion-MNIST")


def _training(parser: argparse.ArgumentParser, out: str, epochs: int) -> None:
    """Options every trainer has: output folder, batch size, epochs, learning rate, a training-set limit."""
    _common(parser)
    parser.add_argument("--out", type=Path, default=Path(out), help="output folder (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training images")


def train_vqvae(args: argparse.Namespace) -> Path:
    """Train a VQ-VAE, log every epoch to log.csv and save checkpoint.pt in --out."""
    seed_everything(args.seed)
    device = choose_device(args.device)
    train = _load(args, True, device, limit=args.limit)
    train_loader = make_loader(train, args.batch_size, shuffle=True, seed=args.seed,
                               num_workers=args.workers if device.type == "cpu" else 0)
    test_loader = make_loader(_load(args, False, device), 1000)
    config = {"num_codes": args.num_codes, "code_dim": args.code_dim, "hidden": args.hidden,
              "update": args.update, "restart": args.restart}
    model = VQVAE(**config).to(device)
    log_path = args.out / "log.csv"

    def log_epoch(epoch: int, history) -> None:
        report = vqvae_report(model, test_loader)
        _append_csv(log_path, {"epoch": epoch, **{k: v[-1] for k, v in history.items()},
                               "test_codes_used": report["used"], "test_perplexity": report["perplexity"]})

    loss = functools.partial(vqvae_loss, beta=args.beta)
    history = fit(model, train_loader, test_loader, loss, epochs=args.epochs, lr=args.lr,
                  on_epoch_end=log_epoch, progress=False)
    report = vqvae_report(model, test_loader)
    metrics = {"test_mse": report["mse"], "test_codes_used": report["used"], "test_perplexity": report["perplexity"],
               "epochs": args.epochs, "train_seconds": sum(history["seconds"]), "beta": args.beta, "lr": args.lr,
               "batch_size": args.batch_size, "dataset": args.dataset, "device": str(device)}
    return save_checkpoint(args.out / "checkpoint.pt", model, "vqvae", config, metrics)


def _load(args: argparse.Namespace, train: bool, device: torch.device, form: str = "float", limit: int | None = None):
    """The training or test split of --dataset, in memory on `device`."""
    return load_mnist(train, form=form, limit=limit, device=device, root=args.data, dataset=args.dataset)


def train_two_level(args: argparse.Namespace) -> Path:
    """Train a two-level VQ-VAE (4x4 top codes, 7x7 bottom codes) and save checkpoint.pt in --out."""
    seed_everything(args.seed)
    device = choose_device(args.device)
    train_loader = make_loader(_load(args, True, device, limit=args.limit), args.batch_size, shuffle=True, seed=args.seed)
    test_loader = make_loader(_load(args, False, device), 1000)
    config = {"top_codes": args.top_codes, "bottom_codes": args.bottom_codes, "code_dim": args.code_dim,
              "hidden": args.hidden}
    model = TwoLevelVQVAE(**config).to(device)
    history = fit(model, train_loader, test_loader, functools.partial(two_level_loss, beta=args.beta),
                  epochs=args.epochs, lr=args.lr, progress=False,
                  on_epoch_end=lambda epoch, h: _append_csv(args.out / "log.csv", {"epoch": epoch, **{k: v[-1] for k, v in h.items()}}))
    metrics = {"test_mse": history.last("test_recon"), "epochs": args.epochs, "train_seconds": sum(history["seconds"]),
               "beta": args.beta, "lr": args.lr, "dataset": args.dataset, "device": str(device)}
    return save_checkpoint(args.out / "checkpoint.pt", model, "two_level_vqvae", config, metrics)


def _append_csv(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
    print(", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)


def _autocast(loss_fn, device: torch.device):
    """Run the forward pass in bfloat16 on a GPU (the loss itself is computed in float32 by autocast)."""
    def wrapped(model, batch):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            return loss_fn(model, batch)
    return wrapped


def train_pixelcnn(args: argparse.Namespace) -> Path:
    """Train a (gated) PixelCNN on 8-bit MNIST; log test bits/dim per epoch; stop at --epochs or --time-limit."""
    seed_everything(args.seed)
    device = choose_device(args.device)
    torch.backends.cudnn.benchmark = True
    train = _load(args, True, device, form="int", limit=args.limit)
    test = _load(args, False, device, form="int")
    train_loader = make_loader(train, args.batch_size, shuffle=True, seed=args.seed)
    test_loader = make_loader(test, 500)
    config = {"levels": 256, "channels": args.channels, "blocks": args.blocks}
    model = PIXEL_MODELS[args.model](**config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=args.lr_decay)
    start, epoch = time.perf_counter(), 0
    while epoch < args.epochs and time.perf_counter() - start < args.time_limit:
        epoch += 1
        train_terms = train_epoch(model, train_loader, optimizer, _autocast(nll_loss, device))
        schedule.step()
        test_nll = evaluate(model, test_loader, _autocast(nll_loss, device))["loss"]
        _append_csv(args.out / "log.csv", {"epoch": epoch, "train_bits_per_dim": bits_per_dim(train_terms["loss"]),
                                           "test_bits_per_dim": bits_per_dim(test_nll),
                                           "seconds": time.perf_counter() - start})
    seconds = time.perf_counter() - start
    test_nll = evaluate(model, test_loader, nll_loss)["loss"]  # final number in float32
    metrics = {"test_bits_per_dim": bits_per_dim(test_nll), "epochs": epoch, "train_seconds": seconds,
               "batch_size": args.batch_size, "lr": args.lr, "lr_decay": args.lr_decay, "device": str(device),
               "device_name": torch.cuda.get_device_name() if device.type == "cuda" else device.type}
    return save_checkpoint(args.out / "checkpoint.pt", model, args.model, config, metrics)


def train_classifier(args: argparse.Namespace) -> Path:
    """Train the MNIST classifier that scores generated digits."""
    seed_everything(args.seed)
    device = choose_device(args.device)
    train = _load(args, True, device, limit=args.limit)
    test_loader = make_loader(_load(args, False, device), 1000)
    model = Classifier().to(device)
    history = fit(model, make_loader(train, args.batch_size, shuffle=True, seed=args.seed), test_loader,
                  classifier_loss, epochs=args.epochs, lr=args.lr, progress=False,
                  on_epoch_end=lambda epoch, h: _append_csv(args.out / "log.csv", {"epoch": epoch, **{k: v[-1] for k, v in h.items()}}))
    metrics = {"test_accuracy": 1 - history.last("test_error"), "epochs": args.epochs,
               "train_seconds": sum(history["seconds"]), "device": str(device)}
    return save_checkpoint(args.out / "checkpoint.pt", model, "classifier", {}, metrics)


def _code_datasets(args: argparse.Namespace, device: torch.device):
    """(train codes, test codes, prior class, its config, checkpoint kind) for --level of the VQ-VAE in --vqvae.
    Each dataset holds (codes, condition): the labels, or for the bottom level the top codes."""
    sizes = {"channels": args.channels, "blocks": args.blocks, "embed": args.embed}
    classes = 10 if args.conditional else 0
    if args.level == "one":
        vqvae, _ = load_model(args.vqvae, "vqvae", device=device)
        encode = functools.partial(encode_dataset, vqvae)
        config = {"num_codes": vqvae.quantizer.num_codes, "grid": 7, "num_classes": classes, **sizes}
        build, kind = (GatedCodePrior, "gated_prior") if args.model == "gated" else (CodePrior, "prior")
    else:
        vqvae, _ = load_model(args.vqvae, "two_level_vqvae", device=device)
        top_k, bottom_k = vqvae.top_quantizer.num_codes, vqvae.bottom_quantizer.num_codes

        def encode(dataset: TensorDataset) -> TensorDataset:
            images, labels = dataset.tensors
            top, bottom = encode_two_level(vqvae, images)
            return TensorDataset(top, labels) if args.level == "top" else TensorDataset(bottom, top)

        if args.level == "top":
            config, build, kind = {"num_codes": top_k, "grid": 4, "num_classes": classes, **sizes}, CodePrior, "prior"
        else:
            config, build, kind = {"num_codes": bottom_k, "top_codes": top_k, **sizes}, BottomPrior, "bottom_prior"
    train, test = encode(_load(args, True, device, limit=args.limit)), encode(_load(args, False, device))
    return train, test, build, config, kind


def train_prior(args: argparse.Namespace) -> Path:
    """Train a PixelCNN prior on the code grids of a trained VQ-VAE: one-level, or a two-level model's top or bottom."""
    seed_everything(args.seed)
    device = choose_device(args.device)
    train, test, build, config, kind = _code_datasets(args, device)
    model = build(**config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=args.lr_decay)
    history = fit(model, make_loader(train, args.batch_size, shuffle=True, seed=args.seed), make_loader(test, 1000),
                  nll_loss, epochs=args.epochs, optimizer=optimizer, progress=False,
                  on_epoch_end=lambda epoch, h: (schedule.step(), _append_csv(
                      args.out / "log.csv", {"epoch": epoch, **{key: v[-1] for key, v in h.items()}})))
    metrics = {"test_nats_per_code": history.last("test_loss"), "test_bits_per_code": bits_per_dim(history.last("test_loss")),
               "marginal_entropy_nats": entropy_nats(code_counts(test.tensors[0], model.num_codes)),
               "epochs": args.epochs, "train_seconds": sum(history["seconds"]), "vqvae": str(args.vqvae),
               "level": args.level, "dataset": args.dataset, "device": str(device)}
    return save_checkpoint(args.out / "checkpoint.pt", model, kind, config, metrics)


def generate(args: argparse.Namespace) -> Path:
    """Write a 10x10 PNG grid: reconstructions of test digits, or decoded independent uniform codes."""
    seed_everything(args.seed)
    device = choose_device(args.device)
    model, _ = load_model(args.checkpoint, "vqvae", device=device)
    if args.mode == "reconstructions":
        images = _load(args, False, device, limit=50).tensors[0]
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

    train = commands.add_parser("train-vqvae", help="train a VQ-VAE on MNIST or Fashion-MNIST")
    _training(train, "runs/vqvae", epochs=10)
    train.add_argument("--hidden", type=int, default=32, help="channels of the first conv layer")
    train.add_argument("--num-codes", "-k", type=int, default=128, help="codebook size K")
    train.add_argument("--code-dim", "-d", type=int, default=16, help="dimension of each code")
    train.add_argument("--beta", type=float, default=0.25, help="commitment cost")
    train.add_argument("--update", choices=["grad", "ema"], default="ema", help="codebook update rule")
    train.add_argument("--restart", action="store_true", help="restart dead codes from encoder outputs")
    train.add_argument("--workers", type=int, default=0,
                       help="DataLoader workers (CPU only; the data sits in memory, so 0 is usually fastest)")

    gen = commands.add_parser("generate", help="write a 10x10 PNG grid from a VQ-VAE checkpoint")
    _common(gen)
    gen.add_argument("--checkpoint", type=Path, required=True)
    gen.add_argument("--mode", choices=["reconstructions", "independent"], default="reconstructions")
    gen.add_argument("--out", type=Path, default=Path("runs/samples.png"))

    pixels = commands.add_parser("train-pixelcnn", help="train a PixelCNN on 8-bit MNIST pixels")
    _training(pixels, "runs/pixelcnn", epochs=20)
    pixels.add_argument("--model", choices=sorted(PIXEL_MODELS), default="gated_pixelcnn")
    pixels.add_argument("--channels", type=int, default=64)
    pixels.add_argument("--blocks", type=int, default=7)
    pixels.add_argument("--time-limit", type=float, default=float("inf"), help="stop after the epoch that passes it (s)")
    pixels.add_argument("--lr-decay", type=float, default=0.99, help="learning-rate factor per epoch")

    judge = commands.add_parser("train-classifier", help="train the MNIST classifier used to score samples")
    _training(judge, "runs/classifier", epochs=4)

    prior = commands.add_parser("train-prior", help="train a PixelCNN prior over a VQ-VAE's code grids")
    _training(prior, "runs/prior", epochs=20)
    prior.add_argument("--vqvae", type=Path, required=True, help="VQ-VAE checkpoint whose codes to model")
    prior.add_argument("--level", choices=["one", "top", "bottom"], default="one",
                       help="one: a VQ-VAE's 7x7 codes; top/bottom: a two-level VQ-VAE's 4x4 or 7x7 codes")
    prior.add_argument("--conditional", action="store_true", help="condition on the label (one and top levels)")
    prior.add_argument("--model", choices=["plain", "gated"], default="plain",
                       help="PixelCNN with residual blocks, or gated PixelCNN without blind spot (level one only)")
    prior.add_argument("--channels", type=int, default=64)
    prior.add_argument("--blocks", type=int, default=5)
    prior.add_argument("--embed", type=int, default=32, help="dimension of the code embedding")
    prior.add_argument("--lr-decay", type=float, default=0.95, help="learning-rate factor per epoch")

    two = commands.add_parser("train-two-level", help="train a two-level VQ-VAE (4x4 top, 7x7 bottom codes)")
    _training(two, "runs/two_level", epochs=15)
    two.add_argument("--hidden", type=int, default=32, help="channels of the first conv layer")
    two.add_argument("--top-codes", type=int, default=128, help="codebook size of the 4x4 top level")
    two.add_argument("--bottom-codes", type=int, default=32, help="codebook size of the 7x7 bottom level")
    two.add_argument("--code-dim", "-d", type=int, default=16, help="dimension of each code")
    two.add_argument("--beta", type=float, default=0.25, help="commitment cost")

    args = parser.parse_args(argv)
    if args.command == "train-prior" and args.model == "gated" and args.level != "one":
        parser.error("--model gated goes with --level one (a one-level VQ-VAE's codes)")
    if args.command.startswith("train"):  # a fresh log in the output folder
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "log.csv").unlink(missing_ok=True)
    commands_by_name = {"train-vqvae": train_vqvae, "train-pixelcnn": train_pixelcnn, "train-classifier": train_classifier,
                        "train-prior": train_prior, "train-two-level": train_two_level, "generate": generate}
    path = commands_by_name[args.command](args)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
