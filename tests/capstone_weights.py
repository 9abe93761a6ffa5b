"""Weights for the capstones' tests, made from the shipped Fashion-MNIST VQ-VAE (128 codes, outside the interface) and
the capstones' reference runs."""

from __future__ import annotations

import functools

import torch
from safetensors.torch import load_file

from starter.capstone.interface import IGNORED, Tensors
from starter.checkpoints import read_checkpoint
from starter.config import CHECKPOINTS

NO_FASHION = "Fashion-MNIST is not on this machine (`sudo apt install dataset-fashion-mnist`; .ci/run does)"


@functools.lru_cache(maxsize=1)
def shipped_state() -> Tensors:
    """The shipped Fashion-MNIST VQ-VAE's state dict."""
    return read_checkpoint(CHECKPOINTS / "fashion_vqvae.pt")["state_dict"]


def trimmed() -> Tensors:
    """The shipped VQ-VAE cut to its 64 most used codes: trained weights that fit the interface, and a shipped
    checkpoint's all the same (test MSE 0.0075)."""
    state = shipped_state()
    tensors = {name: tensor.clone() for name, tensor in state.items() if name not in IGNORED}
    keep = state["quantizer.ema_count"].argsort(descending=True)[:64]
    tensors["quantizer.codebook"] = tensors["quantizer.codebook"][keep].contiguous()
    return tensors


def own(seed: int = 0, scale: float = 0.01) -> Tensors:
    """`trimmed` with noise of `scale` times each tensor's root mean square: no shipped checkpoint's weights (relative
    distance 1e-2, ten times the similarity tolerance), and still 2 points."""
    return noisy(trimmed(), seed, scale)


def own_reference(name: str, seed: int = 0, scale: float = 0.01) -> Tensors:
    """A capstone's shipped reference run (`capstone_b_reference.safetensors`, ...) with the same noise: no shipped
    weights, and still its tier."""
    return noisy(load_file(str(CHECKPOINTS / name)), seed, scale)


def noisy(tensors: Tensors, seed: int, scale: float) -> Tensors:
    """Each tensor plus Gaussian noise of `scale` times its root mean square."""
    generator = torch.Generator().manual_seed(seed)
    noisy = {}
    for name, tensor in tensors.items():
        noise = torch.randn(tensor.shape, generator=generator) * tensor.pow(2).mean().sqrt()
        noisy[name] = (tensor + scale * noise).contiguous()
    return noisy
