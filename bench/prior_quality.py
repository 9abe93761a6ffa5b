"""How far the shipped priors' samples are from real digits, and what sampling levers do to that: `python
bench/prior_quality.py [--n 1000]`.

Every row decodes n code grids with vqvae.pt and scores them with the project's classifier, as notebook 04 does
(IS; FID-MNIST against the classifier features of the test digits after the first n). The levers tried are the
ones that need no retraining: a lower temperature, and top-k sampling.
"""
from __future__ import annotations

import argparse
import time

import torch

from starter.checkpoints import load_model
from starter.config import CHECKPOINTS, seed_everything
from starter.data import load_mnist
from starter.metrics import classifier_outputs, sample_quality
from starter.models.sampling import sample

LEVERS = [("T = 1.0", {}), ("T = 0.9", {"temperature": 0.9}), ("T = 0.8", {"temperature": 0.8}),
          ("T = 0.7", {"temperature": 0.7}), ("top-k 32", {"top_k": 32}), ("top-k 16", {"top_k": 16}),
          ("top-k 8", {"top_k": 8}), ("T = 0.9, top-k 32", {"temperature": 0.9, "top_k": 32})]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="images per row")
    args = parser.parse_args()
    vqvae, _ = load_model(CHECKPOINTS / "vqvae.pt")
    classifier, _ = load_model(CHECKPOINTS / "classifier.pt")
    images = load_mnist(train=False).tensors[0]
    with torch.no_grad():
        reference = classifier_outputs(classifier, images[args.n:])[1]
        rows = {"VQ-VAE reconstructions": (sample_quality(classifier, vqvae(images[: args.n])[0], reference), 0.0)}
        for prior_file in ("prior.pt", "prior_gated.pt"):
            prior, _ = load_model(CHECKPOINTS / prior_file)
            for name, lever in LEVERS:
                seed_everything(0)
                start = time.perf_counter()
                digits = vqvae.decode(sample(prior, args.n, **lever))
                rows[f"{prior_file}, {name}"] = (sample_quality(classifier, digits, reference),
                                                 time.perf_counter() - start)
    recon = rows["VQ-VAE reconstructions"][0]
    print(f"{'images':<32} {'IS':>6} {'FID-MNIST':>10} {'IS gap':>7} {'FID ratio':>10} {'seconds':>8}")
    for name, (quality, seconds) in rows.items():
        print(f"{name:<32} {quality['IS']:>6.2f} {quality['FID-MNIST']:>10.1f} {recon['IS'] - quality['IS']:>7.2f} "
              f"{quality['FID-MNIST'] / recon['FID-MNIST']:>10.2f} {seconds:>8.1f}")
    print(f"({args.n} images per row; targets: IS gap <= 0.3, FID ratio <= 1.5)")


if __name__ == "__main__":
    main()
