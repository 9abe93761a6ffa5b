"""How far code priors' samples are from real digits, and what sampling levers do to that:
`python bench/prior_quality.py [--n 5000] [--seeds 3] [--priors prior.pt prior_gated.pt path/to/checkpoint.pt]
[--plain]`.

Every row decodes n code grids with vqvae.pt and scores them with the project's classifier, as notebooks 04 and 06
do (IS; FID-MNIST and KID against the classifier features of the whole test set), as the mean and standard deviation
(KID: standard error) over --seeds seeds, next to the floor (n real training digits) and the limit (their VQ-VAE
reconstructions) at the same n.
The levers need no retraining: a lower temperature, top-k sampling, and top-k only from a row on (the first rows,
which settle which digit it is, drawn from the whole distribution). `--plain`: T = 1 only. A MaskGIT model is
decoded in 1, 2, 4, 8 and 16 parallel steps instead, in 8 steps with less choice noise (the paper's 4.5, and
10) and at temperatures 0.9 and 1.15, and one code at a time in raster order (exact samples of what its
raster-order likelihood, printed beside its hidden-code loss, scores: on the first 1000 test grids). A
class-conditional prior is asked for the digits 0 to 9 in turn, and its accuracy (the share the classifier reads as
the digit asked for) is shown; one trained with class dropout is sampled at several classifier-free
guidance scales (--guidance). One conditioned on k-means clusters (`train-prior --clusters`) draws each grid's
cluster by its share of the training set: an unconditional prior. `--levers` keeps only the rows named (e.g.
`--levers "T = 1.0" "8 steps"`), `--device cuda` samples and scores on a GPU.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch

from starter.checkpoints import load_model
from starter.config import CHECKPOINTS
from starter.data import load_mnist
from starter.metrics import classifier_outputs, prior_sample_quality, subset_quality
from starter.models.maskgit import MaskGITPrior, decode_in_parallel, decode_in_raster_order, raster_nll

LEVERS = [
    ("T = 1.0", {}),
    ("T = 0.9", {"temperature": 0.9}),
    ("T = 0.8", {"temperature": 0.8}),
    ("top-k 32", {"top_k": 32}),
    ("top-k 16", {"top_k": 16}),
    ("top-k 8", {"top_k": 8}),
    ("top-k 16 from row 2", {"top_k": 16, "top_k_from_row": 2}),
    ("top-k 8 from row 2", {"top_k": 8, "top_k_from_row": 2}),
    ("top-k 4 from row 2", {"top_k": 4, "top_k_from_row": 2}),
    ("top-k 8 from row 3", {"top_k": 8, "top_k_from_row": 3}),
    ("top-k 4 from row 3", {"top_k": 4, "top_k_from_row": 3}),
]


def levers_of(
    prior: torch.nn.Module, metrics: dict, plain: bool, guidance: list[float]
) -> list[tuple[str, dict[str, Any]]]:
    """The rows a prior is sampled in: (lever name, options of `prior_sample_quality`)."""
    if isinstance(prior, MaskGITPrior):
        levers = [(f"{steps} steps", {"sampler": decode_in_parallel, "steps": steps}) for steps in (1, 2, 4, 8, 16)]
        levers += [  # the choice noise: the course's default is 20, the paper's 4.5
            (f"8 steps, choice noise {noise:g}", {"sampler": decode_in_parallel, "steps": 8, "choice_noise": noise})
            for noise in (4.5, 10)
        ]
        levers += [  # the temperature of the draws
            (f"8 steps, T = {t:g}", {"sampler": decode_in_parallel, "steps": 8, "temperature": t}) for t in (0.9, 1.15)
        ]
        levers += [("49 steps in raster order", {"sampler": decode_in_raster_order})]
    elif prior.null_class is not None:
        levers = [(f"guidance {scale:g}", {"guidance": scale}) for scale in guidance]
    else:
        levers = LEVERS[:1] if plain else LEVERS
    if "cluster_shares" in metrics:  # conditioned on clusters: the unconditional mixture over them
        shares = torch.tensor(metrics["cluster_shares"])
        levers = [(lever, {**options, "shares": shares}) for lever, options in levers]
    return levers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="images per sample")
    parser.add_argument("--seeds", type=int, default=3, help="samples per row, each of n images")
    parser.add_argument(
        "--priors",
        nargs="+",
        default=["prior.pt", "prior_gated.pt", "prior_transformer.pt", "maskgit.pt"],
        help="shipped checkpoint names or paths of code priors over vqvae.pt's codes",
    )
    parser.add_argument("--plain", action="store_true", help="sample at T = 1 only, no levers")
    parser.add_argument(
        "--guidance",
        type=float,
        nargs="+",
        default=[1, 1.5, 2, 3],
        help="guidance scales of a prior trained with class dropout",
    )
    parser.add_argument("--levers", nargs="+", default=None, help="only these rows of each prior, by lever name")
    parser.add_argument("--device", default="cpu", help="where to sample and score: cpu or cuda")
    args = parser.parse_args()
    vqvae, _ = load_model(CHECKPOINTS / "vqvae.pt", device=args.device)
    priors = []
    for name in args.priors:
        path = Path(name) if Path(name).exists() else CHECKPOINTS / name
        prior, metrics = load_model(path, device=args.device, num_codes=vqvae.quantizer.num_codes)
        priors.append((name, prior, metrics, levers_of(prior, metrics, args.plain, args.guidance)))
    unknown = set(args.levers or ()) - {lever for *_, levers in priors for lever, _ in levers}
    if unknown:
        parser.error(f"no prior here has the lever(s) {', '.join(sorted(unknown))}")
    classifier, _ = load_model(CHECKPOINTS / "classifier.pt", device=args.device)
    train, seeds = load_mnist(train=True).tensors[0].to(args.device), range(args.seeds)
    test = load_mnist(train=False).tensors[0].to(args.device)
    with torch.no_grad():
        reference = classifier_outputs(classifier, test)[1]
        test_codes = vqvae.encode(test[:1000])
        floor = subset_quality(classifier, train, reference, args.n, seeds)
        limit = subset_quality(classifier, train, reference, args.n, seeds, transform=lambda x: vqvae(x)[0])
    rows = {"real training digits (floor)": (floor, 0.0), "VQ-VAE reconstructions (limit)": (limit, 0.0)}
    for name, prior, metrics, levers in priors:
        masked = isinstance(prior, MaskGITPrior)
        nats = metrics.get("test_nats_per_code", metrics.get("test_hidden_code_nats"))
        print(f"{name}: {nats:.4f} test nats per {'hidden ' if masked else ''}code", flush=True)
        if masked:
            with torch.no_grad():
                print(f"{name}: {raster_nll(prior, test_codes):.4f} nats per code in raster order", flush=True)
        for lever, options in levers:
            if args.levers and lever not in args.levers:
                continue
            start = time.perf_counter()
            quality = prior_sample_quality(prior, vqvae, classifier, reference, args.n, seeds, **options)
            rows[f"{name}, {lever}"] = (quality, time.perf_counter() - start)
    print(
        f"{'images':<48} {'IS':>6} {'IS range':>8} {'FID-MNIST':>10} {'FID sd':>7} {'KID':>7} {'KID se':>7} "
        f"{'IS gap':>7} {'FID ratio':>10} {'accuracy':>9} {'seconds':>8}"
    )
    for name, (quality, seconds) in rows.items():
        print(
            f"{name:<48} {quality['IS']:>6.2f} {quality['IS range']:>8.2f} {quality['FID-MNIST']:>10.1f} "
            f"{quality['FID-MNIST sd']:>7.1f} {quality['KID']:>7.1f} {quality['KID sd'] / args.seeds**0.5:>7.1f} "
            f"{limit['IS'] - quality['IS']:>7.2f} "
            f"{quality['FID-MNIST'] / limit['FID-MNIST']:>10.2f} "
            f"{format(quality['accuracy'], '.2%') if 'accuracy' in quality else '':>9} {seconds:>8.1f}"
        )
    print(
        f"({args.n} images per sample, {args.seeds} samples per row, against the whole test set; KID's standard error "
        "is over the samples; IS gap and FID ratio are to the limit; targets: IS gap <= 0.3, FID ratio <= 1.5)"
    )


if __name__ == "__main__":
    main()
