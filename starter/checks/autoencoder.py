"""Check cells of notebook 01 (autoencoder)."""
from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from starter.checks import (CheckRun, Report, expect, expect_close, expect_same_parameter_count, expect_shape,
                            layer_calls)
from starter.models.autoencoder import Autoencoder, autoencoder_loss
from starter.models.autoencoder import Decoder as ReferenceDecoder
from starter.models.autoencoder import Encoder as ReferenceEncoder
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


def _same_size_as_reference(build: Callable, reference: type, latent_dim: int, width: int, what: str) -> None:
    for sizes in ((latent_dim, width), (2, 8)):
        expect_same_parameter_count(build(*sizes), reference(*sizes), f"{what}(latent_dim={sizes[0]}, hidden={sizes[1]})")


def _relu_between(calls: list, what: str) -> None:
    """Each layer after the first must receive ReLU of the previous one's output (flattened or reshaped)."""
    for (_, _, before), (layer, after, _) in zip(calls, calls[1:]):
        expect(after.numel() == before.numel() and torch.allclose(after.reshape(-1), F.relu(before).reshape(-1)),
               f"{what}: the input of {type(layer).__name__} is not ReLU of the previous layer's output: "
               "put a ReLU after each convolution (and nothing else in between)")


def _encoder_layers(encoder: nn.Module, x: torch.Tensor) -> None:
    z, calls = layer_calls(encoder, x)
    expect(len(calls) == 3, f"expected 3 layers with weights (conv, conv, linear), found {len(calls)}")
    _relu_between(calls, "Encoder")
    expect(torch.equal(z, calls[-1][2]), "the encoder's output is not the last Linear layer's output: no activation "
                                         "after the last layer, a latent code may be any real vector")


def check_encoder(Encoder: type, latent_dim: int = 16, width: int = 32, batch: int = 8, hidden: bool = False) -> Report:
    """Encoder(latent_dim, hidden) maps (N, 1, 28, 28) images to (N, latent_dim) vectors with the layers of the table."""
    with CheckRun("Encoder", seed=int(hidden), hidden=hidden) as run:
        build = lambda d, h: _module(lambda: Encoder(latent_dim=d, hidden=h), f"Encoder({d}, hidden={h})")
        encoder = run.step(f"builds Encoder(latent_dim={latent_dim}, hidden={width})", lambda: build(latent_dim, width))
        run.step(f"maps ({batch}, 1, 28, 28) images to ({batch}, {latent_dim})",
                 lambda: expect_shape(encoder(_images(batch)), (batch, latent_dim), "encoder(x)"),
                 hints={RuntimeError: "a shape mismatch: flatten each image with .flatten(1), keeping the batch "
                                      "dimension, and check the sizes of the table"})
        run.step("latent size follows latent_dim (Encoder(2) gives (N, 2))",
                 lambda: expect_shape(Encoder(latent_dim=2)(_images(batch)), (batch, 2), "Encoder(latent_dim=2)(x)"))
        run.step("same number of parameters as the table's layers, for any latent_dim and hidden",
                 lambda: _same_size_as_reference(build, ReferenceEncoder, latent_dim, width, "Encoder"))
        run.step("ReLU after each convolution, no activation after the last layer",
                 lambda: _encoder_layers(encoder, _images(batch)))
        run.step("gradients reach every parameter", lambda: _gradients_reach_all(encoder, encoder(_images(batch)), "Encoder"))
    return run.report


def _shaped(value: torch.Tensor, shape: tuple, what: str) -> torch.Tensor:
    expect_shape(value, shape, what)
    return value


def _decoder_layers(decoder: nn.Module, z: torch.Tensor) -> None:
    x_hat, calls = layer_calls(decoder, z)
    expect(len(calls) == 3, f"expected 3 layers with weights (linear, transposed conv, transposed conv), found {len(calls)}")
    (_, _, linear_out), (_, first_in, _) = calls[0], calls[1]
    expect(first_in.numel() == linear_out.numel() and torch.equal(first_in.reshape(-1), linear_out.reshape(-1)),
           "the first transposed convolution does not receive the Linear layer's output, reshaped: leave out the "
           "activation after the Linear layer (it can switch off every unit)")
    _relu_between(calls[1:], "Decoder")
    expect(torch.allclose(x_hat, torch.sigmoid(calls[-1][2]), atol=1e-6),
           "the output is not sigmoid(last transposed convolution): end with nn.Sigmoid() (not a clamp, not ReLU)")


def check_decoder(Decoder: type, latent_dim: int = 16, width: int = 32, batch: int = 8, hidden: bool = False) -> Report:
    """Decoder(latent_dim, hidden) maps (N, latent_dim) vectors to (N, 1, 28, 28) images in [0, 1]."""
    with CheckRun("Decoder", seed=int(hidden), hidden=hidden) as run:
        build = lambda d, h: _module(lambda: Decoder(latent_dim=d, hidden=h), f"Decoder({d}, hidden={h})")
        decoder = run.step(f"builds Decoder(latent_dim={latent_dim}, hidden={width})", lambda: build(latent_dim, width))
        x_hat = run.step(f"maps ({batch}, {latent_dim}) vectors to ({batch}, 1, 28, 28) images",
                         lambda: _shaped(decoder(torch.randn(batch, latent_dim) * 3), (batch, 1, 28, 28), "decoder(z)"))
        run.step("pixel values lie in [0, 1]", lambda: expect(
            x_hat.min() >= 0 and x_hat.max() <= 1,
            f"found values in [{x_hat.min():.3g}, {x_hat.max():.3g}]: end the decoder with a sigmoid"))
        run.step("image size follows latent_dim (Decoder(2) accepts (N, 2))",
                 lambda: expect_shape(Decoder(latent_dim=2)(torch.randn(batch, 2)), (batch, 1, 28, 28), "Decoder(2)(z)"),
                 hints={RuntimeError: "the first layer should be Linear(latent_dim, ...), not a fixed size"})
        run.step("same number of parameters as the table's layers, for any latent_dim and hidden",
                 lambda: _same_size_as_reference(build, ReferenceDecoder, latent_dim, width, "Decoder"))
        run.step("no activation after the Linear layer, ReLU between the transposed convolutions, sigmoid at the end",
                 lambda: _decoder_layers(decoder, torch.randn(batch, latent_dim) * 3))
        run.step("gradients reach every parameter",
                 lambda: _gradients_reach_all(decoder, decoder(torch.randn(batch, latent_dim)), "Decoder"))
    return run.report


def _loss_causes(x_hat: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """What the usual mistakes compute, by the message that names them."""
    squared, n, pixels = (x_hat - x) ** 2, len(x), x[0].numel()
    return {
        "a sum over the batch and the pixels, not a mean": squared.sum(),
        "summed over the pixels: average over them too": squared.sum() / n,
        "summed over the batch: average over it too": squared.sum() / pixels,
        "the mean absolute error: square the differences": (x_hat - x).abs().mean(),
        "the square root of the MSE: leave out the sqrt": squared.mean().sqrt(),
        "the square of the mean difference: square each difference, then average": (x_hat - x).mean() ** 2,
        "binary cross-entropy: this notebook's loss is the squared error": F.binary_cross_entropy(x_hat, x),
    }


def check_reconstruction_loss(reconstruction_loss: Callable, shape: tuple = (8, 1, 28, 28), hidden: bool = False) -> Report:
    """reconstruction_loss(x_hat, x) is the mean squared error per pixel, averaged over the batch."""
    with CheckRun("reconstruction_loss", seed=int(hidden), hidden=hidden) as run:
        x, x_hat = run.step(f"inputs of shape {shape}", lambda: (torch.rand(shape), torch.rand(shape).requires_grad_()))
        loss = run.step("returns a scalar tensor", lambda: _shaped(reconstruction_loss(x_hat, x), (), "the loss"))
        run.step("equals the mean squared error per pixel", lambda: expect_close(
            loss, reference_loss(x_hat, x), "the loss", causes=_loss_causes(x_hat, x)))
        run.step("gradient flows back to x_hat", lambda: expect(
            loss.requires_grad and torch.autograd.grad(loss, x_hat, allow_unused=True)[0] is not None,
            "the loss is detached from x_hat: do not call .item(), .detach() or .numpy() inside"))
    return run.report


class _Recorder:
    """The autoencoder loss, recording each batch's loss and size and whether the model was in training mode."""

    def __init__(self):
        self.losses, self.sizes, self.modes = [], [], []

    def __call__(self, model: nn.Module, batch: tuple) -> torch.Tensor:
        loss = autoencoder_loss(model, batch)
        self.losses.append(loss.item())
        self.sizes.append(len(batch[0]))
        self.modes.append(model.training)
        return loss


def _reference_train_epoch(model, loader, optimizer, loss_fn, zero_grad: bool = True) -> float:
    total, count = 0.0, 0
    model.train()
    for batch in loader:
        loss = loss_fn(model, batch)
        if zero_grad:
            optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total, count = total + loss.item() * len(batch[0]), count + len(batch[0])
    return total / count


def _epoch(train_epoch: Callable, sizes: tuple[int, ...]) -> None:
    data = torch.rand(sum(sizes), 1, 28, 28)
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    loader = [(data[s:s + n], torch.zeros(n)) for s, n in zip(starts, sizes)]
    ours = Autoencoder(latent_dim=4, hidden=4)
    theirs, no_zero_grad = copy.deepcopy(ours), copy.deepcopy(ours)
    expected = _reference_train_epoch(ours, loader, torch.optim.SGD(ours.parameters(), lr=0.5), autoencoder_loss)
    _reference_train_epoch(no_zero_grad, loader, torch.optim.SGD(no_zero_grad.parameters(), lr=0.5), autoencoder_loss,
                           zero_grad=False)
    initial = [p.detach().clone() for p in theirs.parameters()]
    recorder = _Recorder()
    found = train_epoch(theirs, loader, torch.optim.SGD(theirs.parameters(), lr=0.5), recorder)
    expect(len(recorder.losses) == len(loader), f"loss_fn was called {len(recorder.losses)} times for "
                                                f"{len(loader)} batches: one call per batch")
    expect(all(recorder.modes), "the model was in eval mode while training: keep model.train() (eval() is for testing)")
    after = list(theirs.parameters())
    expect(any(not torch.equal(p, q) for p, q in zip(after, initial)),
           "the parameters did not change: call optimizer.step() after loss.backward(), and zero_grad() before "
           "backward, not between backward and step")
    if all(torch.allclose(p, q, atol=1e-6) for p, q in zip(after, no_zero_grad.parameters())):
        expect(False, "gradients accumulate over the batches: call optimizer.zero_grad() before each loss.backward()")
    for (name, p), q in zip(ours.named_parameters(), after):
        expect(torch.allclose(p, q, atol=1e-6),
               f"after one epoch, parameter {name} differs from the reference: one optimizer.step() per batch, "
               "after optimizer.zero_grad() and loss.backward()?")
    expect(isinstance(found, float), f"train_epoch should return the mean loss as a Python float (loss.item()), found "
                                     f"{type(found).__name__}: adding up loss tensors keeps every batch's graph alive")
    losses, counts = torch.tensor(recorder.losses), torch.tensor(recorder.sizes, dtype=torch.float)
    causes = {f"the plain mean of the batch losses: weigh each batch by its size (the last batch has {sizes[-1]} "
              "images)": losses.mean(),
              "the batch losses added up without their sizes: weigh each batch's loss by its size, "
              "loss.item() * len(batch[0])": losses.sum() / counts.sum(),
              "the last batch's loss: return the mean over the whole epoch": losses[-1],
              "the sum of the batch losses: divide by the number of examples": losses.sum(),
              "the total over examples: divide by the number of examples": (losses * counts).sum()}
    expect_close(torch.tensor(found), torch.tensor(expected), "the returned mean training loss", causes=causes)


def check_train_epoch(train_epoch: Callable, sizes: tuple[int, ...] = (16, 16, 16, 7), hidden: bool = False) -> Report:
    """train_epoch(model, loader, optimizer, loss_fn) takes one step per batch and returns the mean loss per example."""
    with CheckRun("train_epoch", seed=int(hidden), hidden=hidden) as run:
        run.step(f"on batches of {', '.join(map(str, sizes))} images: updates the parameters exactly like one epoch of "
                 "SGD and returns the mean loss per example", lambda: _epoch(train_epoch, sizes))
    return run.report
