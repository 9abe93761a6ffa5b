"""What the command line's training commands do (`python -m starter.cli train-...`): one function per trainer, next
to the function that adds its options, and `Session`, what they share: seeding, the device, the data, the per-epoch
log and the checkpoint."""

from __future__ import annotations

import argparse
import csv
import functools
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.utils.data import TensorDataset

from starter.checkpoints import load_model, save_checkpoint
from starter.clusters import CLUSTER_ON, find_clusters
from starter.config import choose_device, seed_everything
from starter.data import load_mnist, make_loader
from starter.metrics import bits_per_dim, code_counts, entropy_nats, vqvae_report
from starter.models.base import Autoregressive, GridModel, nll_loss
from starter.models.classifier import Classifier, classifier_loss
from starter.models.maskgit import MaskGITPrior
from starter.models.prior import encode_dataset
from starter.models.registry import Kind, kind_of, kinds, of_family
from starter.models.transformer import TransformerPrior
from starter.models.two_level import TwoLevelVQVAE, encode_two_level, two_level_loss
from starter.models.vq import VQVAE, vqvae_loss
from starter.train import History, WeightAverage, checked_decay, evaluate, fit


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
        return load_mnist(
            train, form=form, limit=limit, device=self.device, root=self.args.data, dataset=self.args.dataset
        )

    def splits(self, form: str = "float") -> tuple[TensorDataset, TensorDataset]:
        """The training and test splits of --dataset, cut to --limit and --test-limit images."""
        return self.data(True, form, self.args.limit), self.data(False, form, self.args.test_limit)

    def loaders(self, train: TensorDataset, test: TensorDataset, test_batch: int = 1000):
        """A shuffled, seeded loader of `train` in --batch-size batches and a loader of `test`."""
        return make_loader(train, self.args.batch_size, shuffle=True, seed=self.args.seed), make_loader(
            test, test_batch
        )

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
        settings = {
            "epochs": len(history["seconds"]),
            "train_seconds": sum(history["seconds"]),
            "lr": self.args.lr,
            "batch_size": self.args.batch_size,
            "dataset": self.args.dataset,
            "test_limit": self.args.test_limit,  # None: the whole test set
            "device": str(self.device),
            "device_name": torch.cuda.get_device_name() if self.device.type == "cuda" else self.device.type,
            "stored_as": "float16" if self.args.half else "float32",  # the metrics above: measured in float32
        }
        return save_checkpoint(
            self.args.out / "checkpoint.pt", model, kind_of(model), config, {**metrics, **settings}, self.args.half
        )


def kind_options(parser: argparse.ArgumentParser, families: tuple[str, ...], default: str) -> None:
    """--model among the registry's kinds of `families`, and every size option of those kinds (each kind has its
    own defaults; an option that the chosen kind does not have is an error)."""
    found = {name: kind for family in families for name, kind in of_family(family).items()}
    parser.add_argument("--model", choices=sorted(found), default=default, help="default: %(default)s")
    defaults: dict[str, list[str]] = {}
    for name, kind in found.items():
        for option, value in kind.options.items():
            defaults.setdefault(option, []).append(f"{name} {value}")
    for option, values in defaults.items():
        value = next(kind.options[option] for kind in found.values() if option in kind.options)
        parser.add_argument(f"--{option}", type=type(value), default=None, help="default: " + ", ".join(values))


def sizes(args: argparse.Namespace, kind: Kind) -> dict:
    """The chosen kind's size options: given ones, else its defaults."""
    given = {
        option: getattr(args, option)
        for option in {o for k in kinds().values() for o in k.options}
        if getattr(args, option, None) is not None
    }
    if set(given) - set(kind.options):
        raise SystemExit(
            f"--{', --'.join(sorted(set(given) - set(kind.options)))}: not an option of {kind.name} "
            f"(its options: {', '.join(kind.options)})"
        )
    return {**kind.options, **given}


def vqvae_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hidden", type=int, default=32, help="channels of the first conv layer")
    parser.add_argument("--num-codes", "-k", type=int, default=128, help="codebook size K")
    parser.add_argument("--code-dim", "-d", type=int, default=16, help="dimension of each code")
    parser.add_argument("--beta", type=float, default=0.25, help="commitment cost")
    parser.add_argument("--update", choices=["grad", "ema"], default="ema", help="codebook update rule")
    parser.add_argument("--restart", action="store_true", help="restart dead codes from encoder outputs")


def train_vqvae(args: argparse.Namespace, session: Session) -> Path:
    """Train a VQ-VAE; log codebook use on the test set after every epoch."""
    train_loader, test_loader = session.loaders(*session.splits())
    config = {
        "num_codes": args.num_codes,
        "code_dim": args.code_dim,
        "hidden": args.hidden,
        "update": args.update,
        "restart": args.restart,
    }
    model = VQVAE(**config).to(session.device)

    def log_epoch(epoch: int, history: History) -> None:
        report = vqvae_report(model, test_loader)
        session.log(epoch, history, test_codes_used=report["used"], test_perplexity=report["perplexity"])

    history = fit(
        model,
        train_loader,
        test_loader,
        functools.partial(vqvae_loss, beta=args.beta),
        epochs=args.epochs,
        lr=args.lr,
        on_epoch_end=log_epoch,
        progress=False,
    )
    report = vqvae_report(model, test_loader)
    return session.save(
        model,
        config,
        history,
        test_mse=report["mse"],
        test_codes_used=report["used"],
        test_perplexity=report["perplexity"],
        beta=args.beta,
    )


def two_level_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hidden", type=int, default=32, help="channels of the first conv layer")
    parser.add_argument("--top-codes", type=int, default=128, help="codebook size of the 4x4 top level")
    parser.add_argument("--bottom-codes", type=int, default=32, help="codebook size of the 7x7 bottom level")
    parser.add_argument("--code-dim", "-d", type=int, default=16, help="dimension of each code")
    parser.add_argument("--beta", type=float, default=0.25, help="commitment cost")


def train_two_level(args: argparse.Namespace, session: Session) -> Path:
    """Train a two-level VQ-VAE (4x4 top codes, 7x7 bottom codes)."""
    train_loader, test_loader = session.loaders(*session.splits())
    config = {
        "top_codes": args.top_codes,
        "bottom_codes": args.bottom_codes,
        "code_dim": args.code_dim,
        "hidden": args.hidden,
    }
    model = TwoLevelVQVAE(**config).to(session.device)
    history = fit(
        model,
        train_loader,
        test_loader,
        functools.partial(two_level_loss, beta=args.beta),
        epochs=args.epochs,
        lr=args.lr,
        on_epoch_end=session.log,
        progress=False,
    )
    return session.save(model, config, history, test_mse=history.last("test_recon"), beta=args.beta)


def decay(text: str) -> float:
    """A weight average's decay per step, read from the command line (`checked_decay`)."""
    try:
        return checked_decay(float(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def cluster_count(text: str) -> int:
    """--clusters: a whole number of clusters, at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a number of clusters is a whole number of at least 1, got {text}")
    return int(text)


def autoregressive_options(parser: argparse.ArgumentParser, lr_decay: float) -> None:
    """What every trainer of an autoregressive model has: learning-rate decay, a time limit, a start."""
    parser.add_argument(
        "--lr-decay",
        type=float,
        default=lr_decay,
        help="learning-rate factor per epoch (default: %(default)s; a transformer has its own schedule)",
    )
    parser.add_argument(
        "--time-limit", type=float, default=float("inf"), help="stop after the epoch that passes it (s)"
    )
    parser.add_argument(
        "--init",
        type=Path,
        help="start from this trained model's weights (same settings; MaskGIT: also an autoregressive transformer's, "
        "or a MaskGIT model with fewer --layers, whose blocks come first and the new ones start as the identity)",
    )
    parser.add_argument(
        "--ema",
        type=decay,
        metavar="DECAY",
        help="keep an exponential moving average of the weights with this decay per step (e.g. 0.999); the test "
        "loss is the average's, and the average is saved",
    )


def fit_autoregressive(
    args: argparse.Namespace,
    session: Session,
    model: GridModel,
    train: TensorDataset,
    test: TensorDataset,
    log: Callable,
) -> tuple[History, float | None]:
    """Train a PixelCNN or a prior with its own loss: from --init's weights if given, with its own optimizer if it
    has one, ending with the average of its weights if --ema is given. Returns the history and the per-epoch
    learning-rate decay (None: the model's own schedule)."""
    if args.init:
        trained, _ = load_model(args.init, device=session.device)
        try:
            if isinstance(model, MaskGITPrior) and isinstance(trained, TransformerPrior):
                model.start_from(trained)
            elif (
                isinstance(model, MaskGITPrior)
                and isinstance(trained, MaskGITPrior)
                and len(trained.blocks) < len(model.blocks)
            ):
                model.grow_from(trained)
            else:
                model.load_state_dict(trained.state_dict())
        except (RuntimeError, ValueError) as error:
            raise SystemExit(
                f"--init {args.init} does not fit this model ({str(error).splitlines()[-1].strip()}); "
                "use the settings it was trained with"
            ) from None
    train_loader, test_loader = session.loaders(train, test, test_batch=500)
    steps = args.epochs * len(train_loader)
    schedule = model.make_optimizer(args.lr, steps)  # a StepSchedule, or None: Adam with --lr-decay per epoch
    optimizer = schedule or torch.optim.Adam(model.parameters(), lr=args.lr)
    average = WeightAverage(model, schedule.optimizer if schedule else optimizer, args.ema) if args.ema else None

    def loss(model: GridModel, batch: tuple) -> torch.Tensor:
        return model.loss(batch)

    def log_average(epoch: int, history: History) -> None:
        """The epoch's test loss is the average's (the weights that are saved); the last step's is kept beside it."""
        history.setdefault("test_last_step_loss", []).append(history["test_loss"][-1])
        history["test_loss"][-1] = evaluate(average.module, test_loader, loss)["loss"]
        log(epoch, history)

    history = fit(
        model,
        train_loader,
        test_loader,
        loss,
        epochs=args.epochs,
        optimizer=optimizer,
        lr_decay=1.0 if schedule else args.lr_decay,
        time_limit=args.time_limit,
        on_epoch_end=log_average if average else log,
        progress=False,
    )
    if average:
        average.copy_to(model)
    return history, None if schedule else args.lr_decay


def pixelcnn_options(parser: argparse.ArgumentParser) -> None:
    kind_options(parser, ("pixels",), "gated_pixelcnn")
    autoregressive_options(parser, lr_decay=0.99)


def train_pixelcnn(args: argparse.Namespace, session: Session) -> Path:
    """Train a (gated) PixelCNN on 8-bit MNIST; stop at --epochs or --time-limit; report test bits/dim."""
    kind = kinds()[args.model]
    config = {"levels": 256, **sizes(args, kind)}
    model = kind.model(**config).to(session.device)
    train, test = session.splits(form="int")
    history, lr_decay = fit_autoregressive(
        args,
        session,
        model,
        train,
        test,
        lambda epoch, h: session.log(epoch, h, test_bits_per_dim=bits_per_dim(h.last("test_loss"))),
    )
    nats = evaluate(model, make_loader(test, 500), nll_loss)["loss"]  # the stored number, in float32
    return session.save(model, config, history, test_bits_per_dim=bits_per_dim(nats), lr_decay=lr_decay, ema=args.ema)


def classifier_options(parser: argparse.ArgumentParser) -> None:
    """The classifier has no options beyond every trainer's."""


def train_classifier(args: argparse.Namespace, session: Session) -> Path:
    """Train the MNIST classifier that scores generated digits."""
    train_loader, test_loader = session.loaders(*session.splits())
    model = Classifier().to(session.device)
    history = fit(
        model,
        train_loader,
        test_loader,
        classifier_loss,
        epochs=args.epochs,
        lr=args.lr,
        on_epoch_end=session.log,
        progress=False,
    )
    return session.save(model, {}, history, test_accuracy=1 - history.last("test_error"))


def prior_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vqvae", type=Path, required=True, help="VQ-VAE checkpoint whose codes to model")
    parser.add_argument(
        "--level",
        choices=["one", "top", "bottom"],
        default="one",
        help="one: a VQ-VAE's 7x7 codes; top/bottom: a two-level VQ-VAE's 4x4 or 7x7 codes",
    )
    classes = parser.add_mutually_exclusive_group()
    classes.add_argument(
        "--num-classes", type=int, default=0, help="condition on the label, one of N classes (one and top levels)"
    )
    classes.add_argument("--conditional", dest="num_classes", action="store_const", const=10, help="--num-classes 10")
    classes.add_argument(
        "--clusters",
        type=cluster_count,
        default=0,
        metavar="N",
        help="condition on each image's k-means cluster (one of N; see --cluster-on) instead of a label: no label is "
        "used, and drawing the cluster by its share of the training set makes an unconditional prior (one level)",
    )
    parser.add_argument(
        "--cluster-on",
        choices=CLUSTER_ON,
        default=None,
        help="with --clusters, what k-means groups: the pixels (default), the pixels of the images deskewed, or "
        "the deskewed images' points averaged with their nearest neighbours' (starter.clusters.cluster_points)",
    )
    kind_options(parser, ("codes", "masked codes"), "prior")
    autoregressive_options(parser, lr_decay=0.95)


def code_datasets(args: argparse.Namespace, session: Session) -> tuple[TensorDataset, TensorDataset, GridModel, dict]:
    """(train codes, test codes, a new prior, its config) for --level of the VQ-VAE in --vqvae. Each dataset holds
    (codes, condition): the labels, or for the bottom level the top codes."""
    if args.clusters and args.level != "one":
        raise SystemExit("--clusters is for one-level priors (--level one)")
    if args.cluster_on and not args.clusters:
        raise SystemExit("--cluster-on says what --clusters groups: set --clusters too")
    splits = session.splits()
    if args.level == "one":
        vqvae, _ = load_model(args.vqvae, "vqvae", device=session.device)
        encode = functools.partial(encode_dataset, vqvae)
        kind = kinds()[args.model]
        if args.clusters:
            splits = cluster_splits(*splits, args.clusters, args.seed, args.cluster_on or "pixels")
        config = {
            "num_codes": vqvae.quantizer.num_codes,
            "grid": 7,
            "num_classes": args.clusters or args.num_classes,
            **sizes(args, kind),
        }
    else:
        vqvae, _ = load_model(args.vqvae, "two_level_vqvae", device=session.device)
        top_k, bottom_k = vqvae.top_quantizer.num_codes, vqvae.bottom_quantizer.num_codes

        def encode(dataset: TensorDataset) -> TensorDataset:
            images, labels = dataset.tensors
            top, bottom = encode_two_level(vqvae, images)
            return TensorDataset(top, labels) if args.level == "top" else TensorDataset(bottom, top)

        if args.level == "top":
            kind = kinds()[args.model]
            config = {"num_codes": top_k, "grid": 4, "num_classes": args.num_classes, **sizes(args, kind)}
        else:
            if args.model != "prior" or args.num_classes:
                raise SystemExit(
                    "--level bottom trains a bottom_prior, conditioned on the top codes: leave out --model and "
                    "--num-classes"
                )
            kind = kinds()["bottom_prior"]
            config = {"num_codes": bottom_k, "top_codes": top_k, **sizes(args, kind)}
    train, test = map(encode, splits)
    return train, test, kind.model(**config).to(session.device), config


def cluster_splits(
    train: TensorDataset, test: TensorDataset, k: int, seed: int, on: str = "pixels"
) -> tuple[TensorDataset, ...]:
    """The splits with each image's label replaced by its k-means cluster (centres found on the training images'
    points, `cluster_points` of the images `on` pixels, deskewed pixels or neighbours)."""
    try:
        clusters = find_clusters(train.tensors[0], test.tensors[0], k, seed, on)
    except ValueError as error:
        raise SystemExit(f"--clusters {k}: {error}") from None
    return tuple(TensorDataset(split.tensors[0], members) for split, members in zip((train, test), clusters))


def cluster_shares(args: argparse.Namespace, train: TensorDataset) -> dict:
    """For --clusters: each cluster's share of the training set, p(c), what unconditional sampling draws from."""
    if not args.clusters:
        return {}
    counts = torch.bincount(train.tensors[1], minlength=args.clusters)
    shares = (counts / counts.sum()).tolist()
    return {"clusters": args.clusters, "cluster_on": args.cluster_on or "pixels", "cluster_shares": shares}


def train_prior(args: argparse.Namespace, session: Session) -> Path:
    """Train a prior over the code grids of a trained VQ-VAE: one-level, or a two-level model's top or bottom."""
    train, test, model, config = code_datasets(args, session)
    history, lr_decay = fit_autoregressive(args, session, model, train, test, session.log)
    nats = history.last("test_loss")
    if not isinstance(model, Autoregressive):  # a masked model: the loss of hidden codes given the visible ones
        return session.save(
            model,
            config,
            history,
            test_hidden_code_nats=nats,
            **cluster_shares(args, train),
            vqvae=str(args.vqvae),
            level=args.level,
            init=str(args.init) if args.init else None,
            ema=args.ema,
        )
    return session.save(
        model,
        config,
        history,
        test_nats_per_code=nats,
        test_bits_per_code=bits_per_dim(nats),
        marginal_entropy_nats=entropy_nats(code_counts(test.tensors[0], model.num_codes)),
        **cluster_shares(args, train),
        vqvae=str(args.vqvae),
        level=args.level,
        lr_decay=lr_decay,
        init=str(args.init) if args.init else None,
        ema=args.ema,
    )
