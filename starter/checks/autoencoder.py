"""Check cells of notebook 01 (autoencoder)."""
from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import nn

from starter.checks import CheckRun, Report, expect, expect_shape
from starter.models.autoencoder import Autoencoder, autoencoder_loss
from starter.models.autoencoder import reconstruction_loss as reference_loss


def _images(n: int = 8) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28)


def _module(build: Callable[[], nn.Module], what: str) -> nn.Module:
    module = build()
    expect(isinstance(module, nn.Module), f"{what} should be an nn.Module, found {type(module).__name__}")
    expect(any(True for _ in module.parameters()), f"{what} has no parameters: did you forget to create the layers?")
    return module


def _gradients_reach_all(module: nn.Module, output: torch.Tensor, what: str) -> None:
    output.square().mean().backward()
    missing = [name for name, p in module.named_parameters() if p.grad is None]
    expect(not missing, f"{what}: no gradient reaches {missing[:3]}: is every layer used in forward()?")


def check_encoder(Encoder: type) -> Report:
    """Encoder(latent_dim) maps (N, 1, 28, 28) images to (N, latent_dim) vectors."""
    with CheckRun("Encoder") as run:
        encoder = run.step("builds Encoder(latent_dim=16)", lambda: _module(lambda: Encoder(latent_dim=16), "Encoder(16)"))
        run.step("maps (8, 1, 28, 28) images to (8, 16)", lambda: expect_shape(encoder(_images()), (8, 16), "encoder(x)"))
        run.step("latent size follows latent_dim (Encoder(2) gives (8, 2))",
                 lambda: expect_shape(Encoder(latent_dim=2)(_images()), (8, 2), "Encoder(latent_dim=2)(x)"))
        run.step("gradients reach every parameter", lambda: _gradients_reach_all(encoder, encoder(_images()), "Encoder"))
    return run.report


def _shaped(value: torch.Tensor, shape: tuple, what: str) -> torch.Tensor:
    expect_shape(value, shape, what)
    return value


def check_decoder(Decoder: type) -> Report:
    """Decoder(latent_dim) maps (N, latent_dim) vectors to (N, 1, 28, 28) images in [0, 1]."""
    with CheckRun("Decoder") as run:
        decoder = run.step("builds Decoder(latent_dim=16)", lambda: _module(lambda: Decoder(latent_dim=16), "Decoder(16)"))
        x_hat = run.step("maps (8, 16) vectors to (8, 1, 28, 28) images",
                         lambda: _shaped(decoder(torch.randn(8, 16) * 3), (8, 1, 28, 28), "decoder(z)"))
        run.step("pixel values lie in [0, 1]", lambda: expect(
            x_hat.min() >= 0 and x_hat.max() <= 1,
            f"found values in [{x_hat.min():.3g}, {x_hat.max():.3g}]: end the decoder with a sigmoid"))
        run.step("image size follows latent_dim (Decoder(2) accepts (8, 2))",
                 lambda: expect_shape(Decoder(latent_dim=2)(torch.randn(8, 2)), (8, 1, 28, 28), "Decoder(2)(z)"))
        run.step("gradients reach every parameter",
                 lambda: _gradients_reach_all(decoder, decoder(torch.randn(8, 16)), "Decoder"))
    return run.report


def check_reconstruction_loss(reconstruction_loss: Callable) -> Report:
    """reconstruction_loss(x_hat, x) is the mean squared error per pixel."""
    x, x_hat = _images(), _images().requires_grad_()
    with CheckRun("reconstruction_loss") as run:
        loss = run.step("returns a scalar tensor", lambda: _shaped(reconstruction_loss(x_hat, x), (), "the loss"))
        expected = reference_loss(x_hat, x)
        run.step("equals the mean squared error per pixel", lambda: expect(
            torch.allclose(loss, expected, rtol=1e-4),
            f"expected {expected.item():.5f}, found {loss.item():.5f}"
            + (" (a sum, not a mean?)" if loss.item() > 10 * expected.item() else "")))
        run.step("gradient flows back to x_hat", lambda: expect(
            loss.requires_grad and torch.autograd.grad(loss, x_hat, allow_unused=True)[0] is not None,
            "the loss is detached from x_hat: do not call .item(), .detach() or .numpy() inside"))
    return run.report


def _reference_train_epoch(model, loader, optimizer, loss_fn) -> float:
    total, count = 0.0, 0
    model.train()
    for batch in loader:
        loss = loss_fn(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total, count = total + loss.item() * len(batch[0]), count + len(batch[0])
    return total / count


def _compare_epochs(train_epoch: Callable) -> None:
    torch.manual_seed(0)
    data = torch.rand(64, 1, 28, 28)
    loader = [(data[i:i + 16], torch.zeros(16)) for i in range(0, 64, 16)]
    ours = Autoencoder(latent_dim=4, hidden=4)
    theirs = copy.deepcopy(ours)
    expected = _reference_train_epoch(ours, loader, torch.optim.SGD(ours.parameters(), lr=0.5), autoencoder_loss)
    found = train_epoch(theirs, loader, torch.optim.SGD(theirs.parameters(), lr=0.5), autoencoder_loss)
    expect(isinstance(found, (float, int)) or (torch.is_tensor(found) and found.numel() == 1),
           f"train_epoch should return the mean loss as a float, found {type(found).__name__}")
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        expect(torch.allclose(p, q, atol=1e-6),
               f"after one epoch, parameter {name} differs from the reference: one optimizer.step() per batch, "
               "after optimizer.zero_grad() and loss.backward()?")
    expect(abs(float(found) - expected) < 1e-5 * max(1.0, expected),
           f"returned {float(found):.5f}, expected the mean training loss of the epoch, {expected:.5f}")


def check_train_epoch(train_epoch: Callable) -> Report:
    """train_epoch(model, loader, optimizer, loss_fn) takes one step per batch and returns the mean loss."""
    with CheckRun("train_epoch") as run:
        run.step("updates the parameters exactly like one epoch of SGD and returns the mean loss",
                 lambda: _compare_epochs(train_epoch))
    return run.report

