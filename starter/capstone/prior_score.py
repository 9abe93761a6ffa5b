"""The grader of capstones B and C: a submitted prior over the codes of the student's own capstone-A VQ-VAE (a gated
PixelCNN for B, a transformer for C), scored on the samples the grader draws from it itself. No student code runs:
both files go into the course's architectures (`interface`, `prior_interface`, `transformer_interface`), and the
course's sampler draws.

What it measures, on the Fashion-MNIST test set (10,000 images) the kernel never sees:
- the prior's negative log-likelihood in nats per code of the grids the VQ-VAE encodes the test images to (reported:
  it depends on the VQ-VAE, so it earns nothing by itself);
- KID and FID of N_SAMPLES images decoded from grids drawn at temperature 1 (seed 0, so that a file always gets the
  same score), in the features of the shipped Fashion-MNIST classifier, against the whole test set. The points
  come from KID, which has no small-sample bias (`starter.metrics.kernel_distance`).

Tiers, by that KID: 3 points <= 25, 2 points <= 45, 1 point <= 100. The measurements behind them, at n = 1000 on the
codes of capstone A's reference run (`capstone_a_reference.safetensors`, 64 codes), KID at sampling seeds 0 / 1 / 2:
- the reference run (`python -m starter.capstone.prior_reference --blocks 5`: GatedCodePrior with 64 channels, 5
  blocks, embedding 32, Adam 1e-3, batch 128; about 65 s an epoch on 2 CPU cores) after 1 epoch: 39.0 / 29.2 / 33.6
  (test NLL 2.152 nats/code); 3 epochs: 17.2 / 21.2 / 17.9 (1.974); 8 epochs, the last within its 10 minutes:
  15.6 / 19.0 / 12.6 (1.891). That is training seed 0: 3 epochs from seeds 1 / 2 / 3 / 4 score 30.8 / 39.9 / 24.3 /
  16.0 at the grader's sampling seed (1.973 to 1.980). So the top tier takes 3 epochs (3.5 minutes of the 15 the
  capstone allows) and a good draw, 3 training seeds of 5; 1 epoch, the second one;
- floors: real training images 0.7 / 1.3 / -1.0 (FID 5.6 / 7.0 / 4.5); the reference VQ-VAE's reconstructions of
  them, the limit of any prior over its codes, 7.2 / 6.4 / 3.6; codes drawn independently from their frequencies
  256 / 272 / 274; an untrained prior 207 / 224 / 227 (NLL 4.19, about log 64). `bench/capstone_quality.py`.
Capstone C has the same tiers. Its reference run (`python -m starter.capstone.transformer_reference`: width 64, 4
layers, Adam 1e-3, batch 128; about 53 s an epoch on 2 CPU cores) after 1 epoch: 54.2 / 51.3 / 49.0 (2.195); 3
epochs, the shipped run (training seed 0): 9.9 / 11.0 / 12.2 (2.012), but from training seeds 1 / 2 / 3 / 4 40.6 /
40.2 / 43.2 / 22.2 at the grader's sampling seed (2.011 to 2.026): the same recipe lands either side of the top
tier; 10 epochs, the last within 10 minutes (9 for seeds 1 and 2): 24.1 / 31.9 / 18.6 (1.881), and 27.5 / 23.5 /
21.1, 25.9 / 20.7 / 20.1 (1.895): longer training evens the seeds out, on the edge of the top tier. An untrained
transformer: 202 / 212 / 223 (4.18).
Scoring a file takes about 6 s (B) or 5 s (C) on 2 CPU cores, and about 4 s more for the first of a process
(importing torchmetrics, reading the test set). The classifier's features of the test set, 3 s more, are computed
once per machine and kept in the data folder (`reference_features`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import math
from pathlib import Path
from typing import Callable

import torch
from torch.nn import functional as F

from starter.capstone import BY_GRADE_ID
from starter.capstone.interface import SubmissionError, Tensors, sizes_of
from starter.capstone.prior_interface import load_prior, prior_sizes
from starter.capstone.score import SHIPPED, CapstoneResult, Weights, as_tensors, finite, similar, vqvae_from
from starter.capstone.transformer_interface import load_transformer, transformer_sizes
from starter.checkpoints import load_model
from starter.config import CHECKPOINTS, DATA_ROOT
from starter.data import load_mnist
from starter.files import write_atomically
from starter.metrics import classifier_outputs, frechet_distance, kernel_distance
from starter.models.sampling import sample
from starter.models.vq import VQVAE

N_SAMPLES = 1000
SEED = 0
TIERS = ((3, 25.0), (2, 45.0), (1, 100.0))  # (points, highest KID that earns them), best first
TIER_LINES = tuple(f"{points} {'points' if points > 1 else 'point'}: KID ≤ {kid:g}" for points, kid in TIERS)
CLASSIFIER = "fashion_classifier.pt"


def result(grade_id: str, points: int, **fields) -> CapstoneResult:
    """A result of capstone `grade_id` (B or C): its title and tiers."""
    return CapstoneResult(points, TIERS[0][0], title=BY_GRADE_ID[grade_id].title, tiers=TIER_LINES, **fields)


@functools.lru_cache(maxsize=2)
def test_images(root: Path = DATA_ROOT) -> torch.Tensor:
    """The Fashion-MNIST test images (N, 1, 28, 28) in [0, 1]."""
    return load_mnist(train=False, root=root, dataset="fashion").tensors[0]


@functools.lru_cache(maxsize=2)
def judge(root: Path = DATA_ROOT) -> tuple[torch.nn.Module, torch.Tensor]:
    """The shipped Fashion-MNIST classifier and its features of the test set (the reference of KID and FID)."""
    classifier, _ = load_model(CHECKPOINTS / CLASSIFIER, kind="classifier")
    return classifier, reference_features(classifier, test_images(root), root / "features")


def reference_features(classifier: torch.nn.Module, images: torch.Tensor, folder: Path) -> torch.Tensor:
    """The classifier's features of `images`, kept in `folder` under a hash of both, so that a process after the
    first reads them instead of computing them again. A file that is missing, cannot be read, or is not of their
    dtype and shape or not finite is computed again; where `folder` cannot be written, nothing is kept."""
    digest = hashlib.sha256(images.detach().cpu().contiguous().numpy().tobytes())
    for tensor in classifier.state_dict().values():
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    path = folder / f"{digest.hexdigest()[:40]}.pt"
    one = classifier_outputs(classifier, images[:1])[1]  # what the features of every image look like
    with contextlib.suppress(Exception):  # whatever is wrong with the file, it is computed again
        kept = torch.load(path, weights_only=True)
        if isinstance(kept, torch.Tensor) and kept.dtype == one.dtype and kept.shape == (len(images), one.shape[1]):
            if torch.isfinite(kept).all():
                return kept
    features = classifier_outputs(classifier, images)[1]
    kept = io.BytesIO()
    torch.save(features, kept)
    with contextlib.suppress(OSError):
        write_atomically(path, kept.getvalue())  # never read half written
    return features


def load_vqvae(weights: Weights, needed_by: str = "this capstone") -> VQVAE:
    """Capstone A's file as the course's VQVAE, in eval mode; raises SubmissionError saying what is wrong with it."""
    try:
        tensors = as_tensors(weights)
        sizes = sizes_of(tensors)
        finite(tensors, "schema")
    except SubmissionError as error:
        raise SubmissionError(f"{needed_by} needs your capstone-A file, and it cannot be used: {error}") from None
    return vqvae_from(tensors, sizes)


@torch.no_grad()
def code_nll(prior: torch.nn.Module, codes: torch.Tensor, batch_size: int = 1000) -> float:
    """Mean negative log-likelihood of the code grids under the prior, in nats per code."""
    total = sum(float(F.cross_entropy(prior(chunk), chunk, reduction="sum")) for chunk in codes.split(batch_size))
    return total / codes.numel()


def gated_prior(tensors: Tensors, num_codes: int) -> torch.nn.Module:
    """Capstone B's prior: a GatedCodePrior with these weights; raises SubmissionError."""
    sizes = prior_sizes(tensors, num_codes)
    finite(tensors, "the prior")
    return load_prior(tensors, num_codes, sizes)


def transformer_prior(tensors: Tensors, num_codes: int) -> torch.nn.Module:
    """Capstone C's prior: a TransformerPrior with these weights; raises SubmissionError."""
    sizes = transformer_sizes(tensors, num_codes)
    finite(tensors, "the prior")
    return load_transformer(tensors, num_codes, sizes)


def score_prior(weights: Weights, vqvae: Weights, **options) -> CapstoneResult:
    """Score a capstone-B file (a gated prior) with the capstone-A file `vqvae` it models (`score_code_prior`)."""
    return score_code_prior("capstone-b", gated_prior, weights, vqvae, **options)


def score_transformer(weights: Weights, vqvae: Weights, **options) -> CapstoneResult:
    """Score a capstone-C file (a transformer prior) with the capstone-A file `vqvae` it models (`score_code_prior`)."""
    return score_code_prior("capstone-c", transformer_prior, weights, vqvae, **options)


@torch.no_grad()
def score_code_prior(
    grade_id: str,
    build: Callable[[Tensors, int], torch.nn.Module],
    weights: Weights,
    vqvae: Weights,
    n: int = N_SAMPLES,
    shipped: Path = CHECKPOINTS,
    root: Path = DATA_ROOT,
    seed: int = SEED,
) -> CapstoneResult:
    """Score a prior's file (path, bytes or tensors), which `build` turns into the course's architecture, with the
    capstone-A file `vqvae` it models: 0 points with the reason for a file that cannot be read, the wrong schema or
    codebook size, non-finite weights or a shipped checkpoint's; otherwise the tier of the KID of `n` samples (drawn
    from `seed`: the grader's is SEED), with their FID and the prior's test NLL."""
    try:
        model = load_vqvae(vqvae, BY_GRADE_ID[grade_id].title)
        tensors = as_tensors(weights)
    except SubmissionError as error:
        return result(grade_id, 0, reason=str(error))
    hits = similar(tensors, shipped=shipped)
    try:
        prior = build(tensors, model.quantizer.num_codes)
        copied = [hit for hit in hits if hit.startswith(SHIPPED)]
        if copied:
            raise SubmissionError(f"the weights are those of a {copied[0]}, not your own")
    except SubmissionError as error:
        return result(grade_id, 0, reason=str(error), similar=hits)
    images = test_images(root)
    codes = torch.cat([model.encode(chunk) for chunk in images.split(1000)])
    measured = {"test NLL (nats/code)": code_nll(prior, codes)}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        samples = model.decode(sample(prior, n))
    classifier, reference = judge(root)
    features = classifier_outputs(classifier, samples)[1]
    measured |= {"KID": kernel_distance(features, reference), "FID": frechet_distance(features, reference)}
    if not all(math.isfinite(value) for value in measured.values()):
        return result(grade_id, 0, measured=measured, reason="the measurements are not finite", similar=hits)
    points = next((points for points, highest in TIERS if measured["KID"] <= highest), 0)
    reason = "" if points else f"KID {measured['KID']:.3g} is above {TIERS[-1][1]:g}, the threshold of the lowest tier"
    return result(grade_id, points, measured=measured, reason=reason, similar=hits)
