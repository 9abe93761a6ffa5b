"""Train and sample from the command line, for instructors and for the shipped checkpoints.

    python -m starter.cli train-vqvae --out runs/vqvae --epochs 15 --update ema --restart
    python -m starter.cli generate --checkpoint runs/vqvae/checkpoint.pt --mode reconstructions --out recon.png
    python -m starter.cli train-pixelcnn --model gated_pixelcnn --time-limit 390 --out runs/gated
    python -m starter.cli train-prior --vqvae data/checkpoints/vqvae.pt [--conditional] --out runs/prior
    python -m starter.cli train-classifier --out runs/classifier
    python -m starter.cli train-vqvae --dataset fashion --out runs/fashion_vqvae      (any command: MNIST or Fashion-MNIST)
    python -m starter.cli train-two-level --out runs/two_level
    python -m starter.cli train-prior --vqvae runs/two_level/checkpoint.pt --level top --conditional --out runs/top

Each training command writes checkpoint.pt (config and metrics inside) and log.csv (one row per epoch) in --out.
Each command is a function next to the one that adds its options, registered in COMMANDS; `Session` is what they
share: seeding, the device, the data, the per-epoch log and the checkpoint.
"""
from __future__ import annotations

import argparse
import csv
import functools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.utils.data import TensorDataset
from torchvision.utils import save_image

from starter.checkpoints import load_model, save_checkpoint
from starter.config import DATA_ROOT, choose_device, seed_everything
from starter.data import load_mnist, make_loader
from starter.metrics import bits_per_dim, code_counts, entropy_nats, vqvae_report
from starter.models.classifier import Classifier, classifier_loss
from starter.models.pixelcnn import GatedPixelCNN, PixelCNN, nll_loss
from starter.models.prior import CodePrior, GatedCodePrior, encode_dataset
from starter.models.registry import kind_of
from starter.models.two_level import BottomPrior, TwoLevelVQVAE, encode_two_level, two_level_loss
from starter.models.vq import VQVAE, vqvae_loss
from starter.train import History, evaluate, fit


class Session:
    """What every command shares: a seed, a device, the --dataset splits, and (for trainers) an --out folder with a
    fresh log.csv, one row per epoch, and the checkpoint with the run's settings in its metrics."""

    def __init__(self, args: argparse.Namespace):
        seed_everything(args.seed)
        self.args, self.device = args, choose_device(args.device)
        if hasattr(args, "epochs"):
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "log.csv").unlink(missing_ok=True)

    def data(self, train: bool, form: str = "float", limit: int | None = None) -> TensorDataset:
        """The training or test split of --dataset, in memory on the device."""
        return load_mnist(train, form=form, limit=limit, device=self.device, root=self.args.data,
                          dataset=self.args.dataset)

    def loaders(self, train: TensorDataset, test: TensorDataset, test_batch: int = 1000, workers: int = 0):
        """A shuffled, seeded loader of `train` in --batch-size batches and a loader of `test`."""
        return (make_loader(train, self.args.batch_size, shuffle=True, seed=self.args.seed, num_workers=workers),
                make_loader(test, test_batch))

    def log(self, epoch: int, history: History, **extra: float) -> None:
        """Append the epoch's row (the last value of every history entry, and `extra`) to log.csv, and print it."""
        row = {"epoch": epoch, **{key: values[-1] for key, values in history.items()}, **extra}
        path = self.args.out / "log.csv"
        new = not path.exists()
        with open(path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        print(", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)

    def save(self, model: nn.Module, config: dict, history: History, **metrics) -> Path:
        """Write --out/checkpoint.pt: the model, its config, `metrics` and the settings of this run."""
        settings = {"epochs": len(history["seconds"]), "train_seconds": sum(history["seconds"]), "lr": self.args.lr,
                    "batch_size": self.args.batch_size, "dataset": self.args.dataset, "device": str(self.device),
                    "device_name": torch.cuda.get_device_name() if self.device.type == "cuda" else self.device.type}
        return save_checkpoint(self.args.out / "checkpoint.pt", model, kind_of(model), config, {**metrics, **settings})


@dataclass
class Command:
    """A sub-command: what it does, the options it adds, its help line, and (for trainers) its defaults."""

    run: Callable[[argparse.Namespace, Session], Path]
    options: Callable[[argparse.ArgumentParser], None]
    help: str
    out: str | None = None  # default output folder; None: not a trainer
    epochs: int = 0


def vqvae_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hidden", type=int, default=32, help="channels of the first conv layer")
    parser.add_argument("--num-codes", "-k", type=int, default=128, help="codebook size K")
    parser.add_argument("--code-dim", "-d", type=int, default=16, help="dimension of each code")
    parser.add_argument("--beta", type=float, default=0.25, help="commitment cost")
    parser.add_argument("--update", choices=["grad", "ema"], default="ema", help="codebook update rule")
    parser.add_argument("--restart", action="store_true", help="restart dead codes from encoder outputs")
    parser.add_argument("--workers", type=int, default=0,
                        help="DataLoader workers (CPU only; the data sits in memory, so 0 is usually fastest)")


def train_vqvae(args: argparse.Namespace, session: Session) -> Path:
    """Train a VQ-VAE; log codebook use on the test set after every epoch."""
    workers = args.workers if session.device.type == "cpu" else 0
    train_loader, test_loader = session.loaders(session.data(True, limit=args.limit), session.data(False), workers=workers)
    config = {"num_codes": args.num_codes, "code_dim": args.code_dim, "hidden": args.hidden,
              "update": args.update, "restart": args.restart}
    model = VQVAE(**config).to(session.device)

    def log_epoch(epoch: int, history: History) -> None:
        report = vqvae_report(model, test_loader)
        session.log(epoch, history, test_codes_used=report["used"], test_perplexity=report["perplexity"])

    history = fit(model, train_loader, test_loader, functools.partial(vqvae_loss, beta=args.beta), epochs=args.epochs,
                  lr=args.lr, on_epoch_end=log_epoch, progress=False)
    report = vqvae_report(model, test_loader)
    return session.save(model, config, history, test_mse=report["mse"], test_codes_used=report["used"],
                        test_perplexity=report["perplexity"], beta=args.beta)


def two_level_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hidden", type=int, default=32, help="channels of the first conv layer")
    parser.add_argument("--top-codes", type=int, default=128, help="codebook size of the 4x4 top level")
    parser.add_argument("--bottom-codes", type=int, default=32, help="codebook size of the 7x7 bottom level")
    parser.add_argument("--code-dim", "-d", type=int, default=16, help="dimension of each code")
    parser.add_argument("--beta", type=float, default=0.25, help="commitment cost")


def train_two_level(args: argparse.Namespace, session: Session) -> Path:
    """Train a two-level VQ-VAE (4x4 top codes, 7x7 bottom codes)."""
    train_loader, test_loader = session.loaders(session.data(True, limit=args.limit), session.data(False))
    config = {"top_codes": args.top_codes, "bottom_codes": args.bottom_codes, "code_dim": args.code_dim,
              "hidden": args.hidden}
    model = TwoLevelVQVAE(**config).to(session.device)
    history = fit(model, train_loader, test_loader, functools.partial(two_level_loss, beta=args.beta),
                  epochs=args.epochs, lr=args.lr, on_epoch_end=session.log, progress=False)
    return session.save(model, config, history, test_mse=history.last("test_recon"), beta=args.beta)


PIXEL_MODELS = {"pixelcnn": PixelCNN, "gated_pixelcnn": GatedPixelCNN}


def pixelcnn_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", choices=sorted(PIXEL_MODELS), default="gated_pixelcnn")
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=7)
    parser.add_argument("--time-limit", type=float, default=float("inf"), help="stop after the epoch that passes it (s)")
    parser.add_argument("--lr-decay", type=float, default=0.99, help="learning-rate factor per epoch")


def bf16_on_gpu(loss_fn: Callable, device: torch.device) -> Callable:
    """Run the forward pass in bfloat16 on a GPU (autocast computes the loss itself in float32)."""
    def wrapped(model, batch):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            return loss_fn(model, batch)
    return wrapped


def train_pixelcnn(args: argparse.Namespace, session: Session) -> Path:
    """Train a (gated) PixelCNN on 8-bit MNIST; stop at --epochs or --time-limit; report test bits/dim."""
    torch.backends.cudnn.benchmark = True
    train_loader, test_loader = session.loaders(session.data(True, form="int", limit=args.limit),
                                                session.data(False, form="int"), test_batch=500)
    config = {"levels": 256, "channels": args.channels, "blocks": args.blocks}
    model = PIXEL_MODELS[args.model](**config).to(session.device)
    history = fit(model, train_loader, test_loader, bf16_on_gpu(nll_loss, session.device), epochs=args.epochs,
                  lr=args.lr, lr_decay=args.lr_decay, time_limit=args.time_limit, progress=False,
                  on_epoch_end=lambda epoch, h: session.log(epoch, h, test_bits_per_dim=bits_per_dim(h.last("test_loss"))))
    test_nll = evaluate(model, test_loader, nll_loss)["loss"]  # the stored number in float32
    return session.save(model, config, history, test_bits_per_dim=bits_per_dim(test_nll), lr_decay=args.lr_decay)


def classifier_options(parser: argparse.ArgumentParser) -> None:
    """The classifier has no options beyond every trainer's."""


def train_classifier(args: argparse.Namespace, session: Session) -> Path:
    """Train the MNIST classifier that scores generated digits."""
    train_loader, test_loader = session.loaders(session.data(True, limit=args.limit), session.data(False))
    model = Classifier().to(session.device)
    history = fit(model, train_loader, test_loader, classifier_loss, epochs=args.epochs, lr=args.lr,
                  on_epoch_end=session.log, progress=False)
    return session.save(model, {}, history, test_accuracy=1 - history.last("test_error"))


def prior_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vqvae", type=Path, required=True, help="VQ-VAE checkpoint whose codes to model")
    parser.add_argument("--level", choices=["one", "top", "bottom"], default="one",
                        help="one: a VQ-VAE's 7x7 codes; top/bottom: a two-level VQ-VAE's 4x4 or 7x7 codes")
    parser.add_argument("--conditional", action="store_true", help="condition on the label (one and top levels)")
    parser.add_argument("--model", choices=["plain", "gated"], default="plain",
                        help="PixelCNN with residual blocks, or gated PixelCNN without blind spot (level one only)")
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--embed", type=int, default=32, help="dimension of the code embedding")
    parser.add_argument("--lr-decay", type=float, default=0.95, help="learning-rate factor per epoch")
    parser.add_argument("--dropout", type=float, default=0.0, help="dropout in the gated blocks while training")
    parser.add_argument("--init", type=Path, help="start from this trained prior's weights (same settings)")


def code_datasets(args: argparse.Namespace, session: Session) -> tuple[TensorDataset, TensorDataset, nn.Module, dict]:
    """(train codes, test codes, a new prior, its config) for --level of the VQ-VAE in --vqvae. Each dataset holds
    (codes, condition): the labels, or for the bottom level the top codes."""
    sizes = {"channels": args.channels, "blocks": args.blocks, "embed": args.embed}
    classes = 10 if args.conditional else 0
    if args.level == "one":
        vqvae, _ = load_model(args.vqvae, "vqvae", device=session.device)
        encode = functools.partial(encode_dataset, vqvae)
        config = {"num_codes": vqvae.quantizer.num_codes, "grid": 7, "num_classes": classes, **sizes}
        build = GatedCodePrior if args.model == "gated" else CodePrior
        if args.model == "gated":
            config["dropout"] = args.dropout
    else:
        vqvae, _ = load_model(args.vqvae, "two_level_vqvae", device=session.device)
        top_k, bottom_k = vqvae.top_quantizer.num_codes, vqvae.bottom_quantizer.num_codes

        def encode(dataset: TensorDataset) -> TensorDataset:
            images, labels = dataset.tensors
            top, bottom = encode_two_level(vqvae, images)
            return TensorDataset(top, labels) if args.level == "top" else TensorDataset(bottom, top)

        if args.level == "top":
            config, build = {"num_codes": top_k, "grid": 4, "num_classes": classes, **sizes}, CodePrior
        else:
            config, build = {"num_codes": bottom_k, "top_codes": top_k, **sizes}, BottomPrior
    train, test = encode(session.data(True, limit=args.limit)), encode(session.data(False))
    return train, test, build(**config).to(session.device), config


def train_prior(args: argparse.Namespace, session: Session) -> Path:
    """Train a PixelCNN prior on the code grids of a trained VQ-VAE: one-level, or a two-level model's top or bottom."""
    if args.model == "gated" and args.level != "one":
        raise SystemExit("--model gated goes with --level one (a one-level VQ-VAE's codes)")
    if args.dropout and args.model != "gated":
        raise SystemExit("--dropout goes with --model gated")
    train, test, model, config = code_datasets(args, session)
    if args.init:
        start_from(model, args.init)
    history = fit(model, *session.loaders(train, test), nll_loss, epochs=args.epochs, lr=args.lr,
                  lr_decay=args.lr_decay, on_epoch_end=session.log, progress=False)
    nats = history.last("test_loss")
    return session.save(model, config, history, test_nats_per_code=nats, test_bits_per_code=bits_per_dim(nats),
                        marginal_entropy_nats=entropy_nats(code_counts(test.tensors[0], model.num_codes)),
                        vqvae=str(args.vqvae), level=args.level, lr_decay=args.lr_decay,
                        init=str(args.init) if args.init else None)


def start_from(model: nn.Module, checkpoint: Path) -> None:
    """Copy a trained model's weights into `model`, or exit saying why they do not fit."""
    trained, _ = load_model(checkpoint, kind_of(model), device=next(model.parameters()).device)
    try:
        model.load_state_dict(trained.state_dict())
    except RuntimeError as error:
        reason = str(error).splitlines()[1].strip()  # torch's first listed mismatch
        raise SystemExit(f"--init {checkpoint} does not fit this model ({reason}); use the settings it was "
                         f"trained with") from None


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
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, args.out, nrow=10, padding=2, pad_value=1.0)
    return args.out


COMMANDS = {
    "train-vqvae": Command(train_vqvae, vqvae_options, "train a VQ-VAE on MNIST or Fashion-MNIST", "runs/vqvae", 10),
    "train-two-level": Command(train_two_level, two_level_options,
                               "train a two-level VQ-VAE (4x4 top, 7x7 bottom codes)", "runs/two_level", 15),
    "train-pixelcnn": Command(train_pixelcnn, pixelcnn_options, "train a PixelCNN on 8-bit MNIST pixels",
                              "runs/pixelcnn", 20),
    "train-classifier": Command(train_classifier, classifier_options,
                                "train the MNIST classifier used to score samples", "runs/classifier", 4),
    "train-prior": Command(train_prior, prior_options, "train a PixelCNN prior over a VQ-VAE's code grids",
                           "runs/prior", 20),
    "generate": Command(generate, generate_options, "write a 10x10 PNG grid from a VQ-VAE checkpoint"),
}


def parser_for(commands: dict[str, Command]) -> argparse.ArgumentParser:
    """One sub-parser per command: the options every command has, every trainer's, then its own."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, command in commands.items():
        sub = subparsers.add_parser(name, help=command.help)
        sub.add_argument("--data", type=Path, default=DATA_ROOT, help="dataset root (default: %(default)s)")
        sub.add_argument("--device", default=None, help="cuda, mps or cpu (default: best available)")
        sub.add_argument("--seed", type=int, default=0)
        sub.add_argument("--dataset", choices=["mnist", "fashion"], default="mnist", help="MNIST or Fashion-MNIST")
        if command.out is not None:
            sub.add_argument("--out", type=Path, default=Path(command.out), help="output folder (default: %(default)s)")
            sub.add_argument("--batch-size", type=int, default=128)
            sub.add_argument("--epochs", type=int, default=command.epochs)
            sub.add_argument("--lr", type=float, default=1e-3)
            sub.add_argument("--limit", type=int, default=None, help="use only the first N training images")
        command.options(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser_for(COMMANDS).parse_args(argv)
    path = COMMANDS[args.command].run(args, Session(args))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
