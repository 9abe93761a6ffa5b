"""What the tiers of capstones B and C rest on: KID (and FID) of n images at several sampling seeds, on the codes of a
capstone-A VQ-VAE, for the real-data floor, the reconstruction limit, codes drawn independently, untrained priors,
and any gated (B) or transformer (C) prior files given, each scored as the grader does
(`starter.capstone.prior_score`) but from each seed:

    python bench/capstone_quality.py [--vqvae A.safetensors] [--seeds 3] [--n 1000] [--priors B.safetensors ...] \
        [--transformers C.safetensors ...]

The default VQ-VAE is capstone A's reference run; shipped checkpoints are not refused here.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

from starter.capstone.prior_interface import prior_tensors
from starter.capstone.prior_score import judge, load_vqvae, score_prior, score_transformer
from starter.capstone.transformer_interface import HEADS
from starter.config import CHECKPOINTS
from starter.data import load_mnist
from starter.metrics import classifier_outputs, frechet_distance, kernel_distance
from starter.models.prior import GatedCodePrior
from starter.models.transformer import TransformerPrior


def quality(images: torch.Tensor) -> tuple[float, float]:
    """(KID, FID) of images against the Fashion-MNIST test set, in the shipped classifier's features."""
    classifier, reference = judge()
    features = classifier_outputs(classifier, images)[1]
    return kernel_distance(features, reference), frechet_distance(features, reference)


def row(name: str, runs: list[tuple[float, ...]], nll: str = "") -> str:
    kids = [run[0] for run in runs]
    spread = f"{statistics.mean(kids):.1f} ± {statistics.stdev(kids):.1f}" if len(kids) > 1 else f"{kids[0]:.1f}"
    shown = " / ".join(f"{kid:.1f}" for kid in kids)
    fid = statistics.mean(run[1] for run in runs)
    return f"| {name} | {shown} | {spread} | {fid:.1f} | {nll} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vqvae", type=Path, default=CHECKPOINTS / "capstone_a_reference.safetensors")
    parser.add_argument("--priors", type=Path, nargs="*", default=[CHECKPOINTS / "capstone_b_reference.safetensors"])
    parser.add_argument(
        "--transformers", type=Path, nargs="*", default=[CHECKPOINTS / "capstone_c_reference.safetensors"]
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()
    vqvae, seeds = load_vqvae(args.vqvae), range(args.seeds)
    train = load_mnist(train=True, dataset="fashion").tensors[0]
    print(f"n = {args.n}, seeds {list(seeds)}, VQ-VAE {args.vqvae.name}\n")
    print("| images | KID per seed | KID mean ± sd | FID mean | test NLL (nats/code) |\n|---|---|---|---|---|")
    real = [train[torch.randperm(len(train), generator=torch.Generator().manual_seed(s))[: args.n]] for s in seeds]
    with torch.no_grad():
        print(row("real training images (floor)", [quality(images) for images in real]))
        print(row("their reconstructions (limit)", [quality(vqvae(images)[0]) for images in real]))
        codes = torch.cat([vqvae.encode(chunk) for chunk in train.split(1000)])
        counts = torch.bincount(codes.flatten(), minlength=vqvae.quantizer.num_codes).float()
        independent = [
            torch.multinomial(counts, args.n * 49, replacement=True, generator=torch.Generator().manual_seed(s))
            for s in seeds
        ]
        print(row("codes drawn independently", [quality(vqvae.decode(c.view(-1, 7, 7))) for c in independent]))
    torch.manual_seed(0)
    untrained = prior_tensors(GatedCodePrior(vqvae.quantizer.num_codes, 7, 64, 5, 32))
    untrained_transformer = prior_tensors(TransformerPrior(vqvae.quantizer.num_codes, 7, 64, 4, HEADS))
    scored = [("untrained gated prior", untrained, score_prior)]
    scored += [(path.name, path, score_prior) for path in args.priors]
    scored += [("untrained transformer prior", untrained_transformer, score_transformer)]
    scored += [(path.name, path, score_transformer) for path in args.transformers]
    with tempfile.TemporaryDirectory() as nothing_shipped:
        for name, prior, score in scored:
            results = [score(prior, args.vqvae, n=args.n, shipped=Path(nothing_shipped), seed=s) for s in seeds]
            runs = [(r.measured["KID"], r.measured["FID"]) for r in results]
            print(row(name, runs, f"{results[0].measured['test NLL (nats/code)']:.3f}"))


if __name__ == "__main__":
    main()
