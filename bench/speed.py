"""CPU speed of the course's models, before and after each speed-up: `python bench/speed.py`."""

from __future__ import annotations

import time

import torch
from torch.nn import functional as F

from starter.checkpoints import load_model
from starter.config import CHECKPOINTS
from starter.models.autoencoder import Autoencoder
from starter.models.base import nll_loss
from starter.models.gated_pixelcnn import GatedPixelCNN
from starter.models.maskgit import decode_in_parallel
from starter.models.pixelcnn import MaskedConv2d, PixelCNN
from starter.models.sampling import sample
from starter.models.vq import VQVAE, vqvae_loss


def seconds(fn, repeat: int = 3) -> float:
    """Best wall time of `repeat` calls after one warm-up."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def full_kernel_forward(layer: MaskedConv2d, x: torch.Tensor) -> torch.Tensor:
    """The textbook masked convolution: the whole k x k kernel, zeros included."""
    return F.conv2d(x, layer.weight * layer.mask, layer.bias, padding=layer.padding, dilation=layer.dilation)


def pixel_nll(model: torch.nn.Module, batch: tuple) -> torch.Tensor:
    """Cross-entropy of a PixelCNN's logits against its own (N, 1, H, W) input pixels."""
    return F.cross_entropy(model(batch[0]), batch[0][:, 0])


def train_step_rate(model: torch.nn.Module, loss, batch: tuple) -> float:
    """Images per second for one optimisation step on `batch`."""
    optimizer = torch.optim.Adam(model.parameters())

    def step():
        optimizer.zero_grad()
        loss(model, batch).backward()
        optimizer.step()

    return len(batch[0]) / seconds(step)


def sampling_rows() -> list[tuple[str, float, str]]:
    """Naive (a forward pass per position, over the rows so far where the condition allows) against cached
    sampling, side by side, for every kind of autoregressive model the course ships."""

    def load(file: str) -> torch.nn.Module:
        return load_model(CHECKPOINTS / file)[0]

    digits = torch.arange(10).repeat(10)
    top_codes = sample(load("top_prior.pt"), 100, condition=digits)
    kinds = [
        ("PixelCNN: 16 digits", load("pixelcnn_plain.pt"), 16, None),
        ("gated PixelCNN: 16 digits", load("pixelcnn_gated.pt"), 16, None),
        ("prior: 100 code grids", load("prior.pt"), 100, None),
        ("gated prior: 100 code grids", load("prior_gated.pt"), 100, None),
        ("conditional gated prior: 100 code grids", load("prior_gated_conditional.pt"), 100, digits),
        ("transformer prior: 100 code grids", load("prior_transformer.pt"), 100, None),
        ("conditional transformer prior: 100 code grids", load("prior_transformer_conditional.pt"), 100, digits),
        ("bottom prior: 100 grids given top codes", load("bottom_prior.pt"), 100, top_codes),
    ]
    rows = []
    maskgit = load("maskgit.pt")
    for steps in (8, 16):
        rows.append(
            (
                f"MaskGIT: 100 code grids in {steps} parallel steps",
                seconds(lambda: decode_in_parallel(maskgit, 100, steps), repeat=3),
                "s",
            )
        )
    for name, model, n, condition in kinds:
        naive = seconds(lambda: sample(model, n, condition=condition, cached=False), repeat=1)
        cached = seconds(lambda: sample(model, n, condition=condition), repeat=3)
        rows += [
            (f"{name}, naive", naive, "s"),
            (f"{name}, cached", cached, "s"),
            (f"{name}, cached speed-up", naive / cached, "x"),
        ]
    return rows


def main() -> None:
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    images = torch.rand(128, 1, 28, 28)
    pixels = torch.randint(256, (64, 1, 28, 28))
    rows = [
        (
            "autoencoder (latent 16) training",
            train_step_rate(Autoencoder(16), lambda m, b: F.mse_loss(m(b[0]), b[0]), (images,)),
            "images/s",
        ),
        (
            "VQ-VAE (K=128, 7x7) training",
            train_step_rate(VQVAE(), lambda m, b: vqvae_loss(m, (b[0], None))["loss"], (images,)),
            "images/s",
        ),
    ]
    for name, model in [
        ("PixelCNN 32 ch, 3 blocks", PixelCNN(channels=32, blocks=3)),
        ("PixelCNN 64 ch, 5 blocks", PixelCNN(channels=64, blocks=5)),
        ("gated PixelCNN 64 ch, 7 blocks", GatedPixelCNN(channels=64, blocks=7)),
    ]:
        after = train_step_rate(model, pixel_nll, (pixels,))
        cropped = MaskedConv2d.forward
        MaskedConv2d.forward = full_kernel_forward
        before = train_step_rate(model, pixel_nll, (pixels,))
        MaskedConv2d.forward = cropped
        rows.append((f"{name} training, full masked kernels", before, "images/s"))
        rows.append((f"{name} training, cropped kernels", after, "images/s"))
    codes = torch.randint(128, (128, 7, 7))
    for name, file in [("gated prior", "prior_gated.pt"), ("transformer prior", "prior_transformer.pt")]:
        model = load_model(CHECKPOINTS / file)[0].train()
        rows.append(
            (
                f"{name} training (one epoch: 60,000 grids)",
                train_step_rate(model, lambda m, b: nll_loss(m, (b[0], None)), (codes,)),
                "grids/s",
            )
        )
    rows += sampling_rows()
    width = max(len(name) for name, _, _ in rows)
    print(f"{'what':<{width}}  {'value':>9}")
    for name, value, unit in rows:
        print(f"{name:<{width}}  {value:>9.1f} {unit}")


if __name__ == "__main__":
    main()
