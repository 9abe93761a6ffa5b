"""Re-measure every shipped checkpoint on this machine: `python bench/checkpoints.py [--pixel-images N]`.

Prints each number next to the one stored in the checkpoint when it was trained. The PixelCNNs are slow on a CPU,
so by default they are measured on the first 2000 test images (the stored numbers use all 10 000). The gated
prior's samples are scored as in notebook 04 (IS and FID-MNIST of 5000 decoded digits against the whole test set,
mean and sd over 3 seeds) next to the floor (5000 real training digits) and the limit (their VQ-VAE
reconstructions).
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import TensorDataset

from starter.checkpoints import load_model
from starter.clusters import mixture_nats_per_code
from starter.config import CHECKPOINTS
from starter.data import load_mnist, make_loader
from starter.metrics import (
    bits_per_dim,
    classifier_outputs,
    code_counts,
    entropy_nats,
    prior_sample_quality,
    subset_quality,
    vqvae_report,
)
from starter.models.base import nll_loss
from starter.models.classifier import classifier_loss
from starter.models.prior import encode_dataset
from starter.models.two_level import encode_two_level, two_level_loss
from starter.train import evaluate
from starter.trainers import cluster_splits

SAMPLING = {"T = 1": {}, "top-k 8 from row 2": {"top_k": 8, "top_k_from_row": 2}}  # notebook 04's two sampling modes
SAMPLES = 5000  # images per set, as in notebooks 04-06: FID-MNIST is biased at small n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pixel-images", type=int, default=2000, help="test images for the PixelCNNs (max 10000)")
    args = parser.parse_args()
    test = load_mnist(train=False)
    loader = make_loader(test, 1000)
    rows = []

    def row(name: str, metric: str, measured: float, stored: float | None, started: float, note: str = "") -> None:
        rows.append((name, metric, measured, stored, time.perf_counter() - started, note))

    def prior_row(file: str, codes: TensorDataset, note: str = "") -> None:
        start = time.perf_counter()
        prior, stored = load_model(CHECKPOINTS / file)
        measured = evaluate(prior, make_loader(codes, 1000), nll_loss)["loss"]
        row(
            file,
            "test nats/code",
            measured,
            stored["test_nats_per_code"],
            start,
            f"{note}marginal entropy {entropy_nats(code_counts(codes.tensors[0], prior.num_codes)):.2f} nats",
        )

    start = time.perf_counter()
    vqvae, stored = load_model(CHECKPOINTS / "vqvae.pt")
    report = vqvae_report(vqvae, loader)
    row("vqvae.pt", "test MSE", report["mse"], stored["test_mse"], start)
    row("vqvae.pt", "codes used", report["used"], stored["test_codes_used"], start)
    row("vqvae.pt", "perplexity", report["perplexity"], stored["test_perplexity"], start)

    pixels = load_mnist(train=False, form="int", limit=args.pixel_images)
    for file in ("pixelcnn_plain.pt", "pixelcnn_gated.pt"):
        start = time.perf_counter()
        model, stored = load_model(CHECKPOINTS / file)
        measured = bits_per_dim(evaluate(model, make_loader(pixels, 250), nll_loss)["loss"])
        row(
            file,
            "test bits/dim",
            measured,
            stored["test_bits_per_dim"],
            start,
            f"{args.pixel_images} images; trained {stored['epochs']} epochs on {stored['device_name']}",
        )

    codes = encode_dataset(vqvae, test)
    for file in (
        "prior.pt",
        "prior_conditional.pt",
        "prior_gated.pt",
        "prior_gated_conditional.pt",
        "prior_transformer.pt",
        "prior_transformer_conditional.pt",
    ):
        prior_row(file, codes)
    start = time.perf_counter()
    clustered, stored = load_model(CHECKPOINTS / "prior_gated_clusters.pt")
    on = stored["cluster_on"]  # train-prior's default seed, on the points it clustered
    _, clusters = cluster_splits(load_mnist(train=True), test, stored["clusters"], seed=0, on=on)
    prior_row("prior_gated_clusters.pt", TensorDataset(codes.tensors[0], clusters.tensors[1]), "given its cluster; ")
    start = time.perf_counter()
    mixture = mixture_nats_per_code(clustered, codes.tensors[0], torch.tensor(stored["cluster_shares"]))
    row("prior_gated_clusters.pt", "test nats/code", mixture, None, start, "the mixture over its clusters")
    start = time.perf_counter()
    maskgit, stored = load_model(CHECKPOINTS / "maskgit.pt")
    torch.manual_seed(0)
    measured = evaluate(maskgit, make_loader(codes, 1000), lambda model, batch: model.loss(batch))["loss"]
    row(
        "maskgit.pt",
        "hidden-code nats",
        measured,
        stored["test_hidden_code_nats"],
        start,
        "a random share hidden (seed 0)",
    )

    start = time.perf_counter()
    classifier, stored = load_model(CHECKPOINTS / "classifier.pt")
    accuracy = 1 - evaluate(classifier, loader, classifier_loss)["error"]
    row("classifier.pt", "test accuracy", accuracy, stored["test_accuracy"], start)

    with torch.no_grad():
        start = time.perf_counter()
        reference = classifier_outputs(classifier, test.tensors[0])[1]
        train, seeds = load_mnist(train=True).tensors[0], range(3)
        floor = subset_quality(classifier, train, reference, SAMPLES, seeds)
        limit = subset_quality(classifier, train, reference, SAMPLES, seeds, transform=lambda x: vqvae(x)[0])
        for name, quality in (("real digits (floor)", floor), ("recon (limit)", limit)):
            note = f"{SAMPLES} training digits, sd {quality['FID-MNIST sd']:.1f}"
            row("vqvae.pt", f"{name} FID-MNIST", quality["FID-MNIST"], None, start, note)
        prior, _ = load_model(CHECKPOINTS / "prior_gated.pt")
        for lever, options in SAMPLING.items():
            start = time.perf_counter()
            quality = prior_sample_quality(prior, vqvae, classifier, reference, SAMPLES, seeds, **options)
            note = f"{lever}; IS gap {limit['IS'] - quality['IS']:.2f}"
            row("prior_gated.pt", "samples IS", quality["IS"], None, start, f"{note} (range {quality['IS range']:.2f})")
            row(
                "prior_gated.pt",
                "samples FID-MNIST",
                quality["FID-MNIST"],
                None,
                start,
                f"{lever}; sd {quality['FID-MNIST sd']:.1f}; {quality['FID-MNIST'] / limit['FID-MNIST']:.2f}x limit",
            )

    start = time.perf_counter()
    two_level, stored = load_model(CHECKPOINTS / "two_level_vqvae.pt")
    top, bottom = encode_two_level(two_level, test.tensors[0])
    row(
        "two_level_vqvae.pt",
        "test MSE",
        evaluate(two_level, loader, two_level_loss)["recon"],
        stored["test_mse"],
        start,
    )
    prior_row("top_prior.pt", TensorDataset(top, test.tensors[1]))
    prior_row("bottom_prior.pt", TensorDataset(bottom, top))

    start = time.perf_counter()
    fashion = load_mnist(train=False, dataset="fashion")
    fashion_vqvae, stored = load_model(CHECKPOINTS / "fashion_vqvae.pt")
    report = vqvae_report(fashion_vqvae, make_loader(fashion, 1000))
    row("fashion_vqvae.pt", "test MSE", report["mse"], stored["test_mse"], start, "Fashion-MNIST")
    row("fashion_vqvae.pt", "perplexity", report["perplexity"], stored["test_perplexity"], start, "Fashion-MNIST")
    prior_row("fashion_prior.pt", encode_dataset(fashion_vqvae, fashion), "Fashion-MNIST; ")

    print(f"{'checkpoint':<28} {'metric':<17} {'measured':>9} {'stored':>9} {'seconds':>8}  note")
    for name, metric, measured, stored_value, seconds, note in rows:
        stored_text = "-" if stored_value is None else f"{stored_value:.4f}"
        print(f"{name:<28} {metric:<17} {measured:>9.4f} {stored_text:>9} {seconds:>8.1f}  {note}")


if __name__ == "__main__":
    main()
