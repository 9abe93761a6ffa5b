"""Check cells of notebook 01 (autoencoder)."""
from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from starter.checks import (CheckRun, Report, expect, expect_close, expect_module, expect_same_parameter_count,
                            expect_shape, layer_calls, missing_gradients, module_facts, observe, parameter_count)
from starter.models.autoencoder import Autoencoder, autoencoder_loss
from starter.models.autoencoder import Decoder as ReferenceDecoder
from starter.models.autoencoder import Encoder as ReferenceEncoder
from starter.models.autoencoder import reconstruction_loss as reference_loss


def _images(n: int = 8) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28)


def _same_size_as_reference(counts: list[int], sizes: list[tuple[int, int]], reference: type, what: str) -> None:
    for found, (d, h) in zip(counts, sizes):
        expect_same_parameter_count(found, reference(d, h), f"{what}(latent_dim={d}, hidden={h})")


def _relu_between(calls: list, what: str) -> None:
    """Each layer after the first must receive ReLU of the previous one's output (flattened or reshaped)."""
    for (_, _, before), (layer, after, _) in zip(calls, calls[1:]):
        expect(after.numel() == before.numel() and torch.allclose(after.reshape(-1), F.relu(before).reshape(-1)),
               f"{what}: the input of {layer} is not ReLU of the previous layer's output: "
               "put a ReLU after each convolution (and nothing else in between)")


def _encoder_layers(z: torch.Tensor, calls: list) -> None:
    expect(len(calls) == 3, f"expected 3 layers with weights (conv, conv, linear), found {len(calls)}")
    _relu_between(calls, "Encoder")
    expect(torch.equal(z, calls[-1][2]), "the encoder's output is not the last Linear layer's output: no activation "
                                         "after the last layer, a latent code may be any real vector")


def check_encoder(Encoder: type, latent_dim: int = 16, width: int = 32, batch: int = 8, hidden: bool = False) -> Report:
    """Encoder(latent_dim, hidden) maps (N, 1, 28, 28) images to (N, latent_dim) vectors with the layers of the table."""
    build = lambda: Encoder(latent_dim=latent_dim, hidden=width)  # noqa: E731
    sizes = [(latent_dim, width), (2, 8)]
    with CheckRun("Encoder", seed=int(hidden), hidden=hidden, student=Encoder) as run:
        run.step(f"builds Encoder(latent_dim={latent_dim}, hidden={width})", lambda: expect_module(
            observe(lambda: module_facts(build())), f"Encoder({latent_dim}, hidden={width})"))
        x = run.step(f"maps ({batch}, 1, 28, 28) images to ({batch}, {latent_dim})", lambda: _checked(
            _images(batch), lambda x: expect_shape(observe(lambda: build()(x)), (batch, latent_dim), "encoder(x)")),
            hints={RuntimeError: "a shape mismatch: flatten each image with .flatten(1), keeping the batch "
                                 "dimension, and check the sizes of the table"})
        run.step("latent size follows latent_dim (Encoder(2) gives (N, 2))", lambda: expect_shape(
            observe(lambda: Encoder(latent_dim=2)(x)), (batch, 2), "Encoder(latent_dim=2)(x)"))
        run.step("same number of parameters as the table's layers, for any latent_dim and hidden", lambda: _same_size_as_reference(
            observe(lambda: [parameter_count(Encoder(latent_dim=d, hidden=h)) for d, h in sizes]), sizes, ReferenceEncoder,
            "Encoder"))
        run.step("ReLU after each convolution, no activation after the last layer",
                 lambda: _encoder_layers(*observe(lambda: layer_calls(build(), x))))
        run.step("gradients reach every parameter", lambda: _all_gradients(observe(lambda: missing_gradients(build(), x)),
                                                                           "Encoder"))
    return run.report


def _checked(value, test):
    test(value)
    return value


def _all_gradients(missing: list[str], what: str) -> None:
    expect(not missing, f"{what}: no gradient reaches {missing[:3]}: is every layer used in forward()?")


def _decoder_layers(x_hat: torch.Tensor, calls: list) -> None:
    expect(len(calls) == 3, f"expected 3 layers with weights (linear, transposed conv, transposed conv), found {len(calls)}")
    (_, _, linear_out), (_, first_in, _) = calls[0], calls[1]
    expect(first_in.numel() == linear_out.numel() and torch.equal(first_in.reshape(-1), linear_out.reshape(-1)),
           "the first transposed convolution does not receive the Linear layer's output, reshaped: leave out the "
           "activation after the Linear layer (it can switch off every unit)")
    _relu_between(calls[1:], "Decoder")
    expect(torch.allclose(x_hat, torch.sigmoid(calls[-1][2]), atol=1e-6),
           "the output is not sigmoid(last transposed convolution): end with nn.Sigmoid() (not a clamp, not ReLU)")


def _in_unit_range(x_hat: torch.Tensor) -> None:
    expect(x_hat.min() >= 0 and x_hat.max() <= 1,
           f"found values in [{x_hat.min():.3g}, {x_hat.max():.3g}]: end the decoder with a sigmoid")


def check_decoder(Decoder: type, latent_dim: int = 16, width: int = 32, batch: int = 8, hidden: bool = False) -> Report:
    """Decoder(latent_dim, hidden) maps (N, latent_dim) vectors to (N, 1, 28, 28) images in [0, 1]."""
    build = lambda: Decoder(latent_dim=latent_dim, hidden=width)  # noqa: E731
    sizes = [(latent_dim, width), (2, 8)]
    with CheckRun("Decoder", seed=int(hidden), hidden=hidden, student=Decoder) as run:
        run.step(f"builds Decoder(latent_dim={latent_dim}, hidden={width})", lambda: expect_module(
            observe(lambda: module_facts(build())), f"Decoder({latent_dim}, hidden={width})"))
        z = run.step(f"maps ({batch}, {latent_dim}) vectors to ({batch}, 1, 28, 28) images", lambda: _checked(
            torch.randn(batch, latent_dim) * 3, lambda z: expect_shape(observe(lambda: build()(z)), (batch, 1, 28, 28),
                                                                       "decoder(z)")))
        run.step("pixel values lie in [0, 1]", lambda: _in_unit_range(observe(lambda: build()(z))))
        run.step("image size follows latent_dim (Decoder(2) accepts (N, 2))", lambda: expect_shape(
            observe(lambda: Decoder(latent_dim=2)(z[:, :2])), (batch, 1, 28, 28), "Decoder(2)(z)"),
            hints={RuntimeError: "the first layer should be Linear(latent_dim, ...), not a fixed size"})
        run.step("same number of parameters as the table's layers, for any latent_dim and hidden", lambda: _same_size_as_reference(
            observe(lambda: [parameter_count(Decoder(latent_dim=d, hidden=h)) for d, h in sizes]), sizes, ReferenceDecoder,
            "Decoder"))
        run.step("no activation after the Linear layer, ReLU between the transposed convolutions, sigmoid at the end",
                 lambda: _decoder_layers(*observe(lambda: layer_calls(build(), z))))
        run.step("gradients reach every parameter", lambda: _all_gradients(observe(lambda: missing_gradients(build(), z)),
                                                                           "Decoder"))
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


def _loss_and_gradient(reconstruction_loss: Callable, x_hat: torch.Tensor, x: torch.Tensor) -> tuple:
    """The student's loss, and whether (and which) gradient it sends back to x_hat."""
    x_hat = x_hat.clone().requires_grad_()
    loss = reconstruction_loss(x_hat, x)
    attached = torch.is_tensor(loss) and loss.requires_grad
    gradient = torch.autograd.grad(loss.sum(), x_hat, allow_unused=True)[0] if attached else None
    return loss, gradient


def _gradient_flows(gradient: torch.Tensor | None) -> None:
    expect(gradient is not None, "the loss is detached from x_hat: do not call .item(), .detach() or .numpy() inside")


def check_reconstruction_loss(reconstruction_loss: Callable, shape: tuple = (8, 1, 28, 28), hidden: bool = False) -> Report:
    """reconstruction_loss(x_hat, x) is the mean squared error per pixel, averaged over the batch."""
    with CheckRun("reconstruction_loss", seed=int(hidden), hidden=hidden, student=reconstruction_loss) as run:
        x, x_hat = run.step(f"inputs of shape {shape}", lambda: (torch.rand(shape), torch.rand(shape)))
        loss, gradient = run.step("returns a scalar tensor", lambda: _checked(
            observe(lambda: _loss_and_gradient(reconstruction_loss, x_hat, x)), lambda out: expect_shape(out[0], (), "the loss")))
        run.step("equals the mean squared error per pixel", lambda: expect_close(
            loss, reference_loss(x_hat, x), "the loss", causes=_loss_causes(x_hat, x)))
        run.step("gradient flows back to x_hat", lambda: _gradient_flows(gradient))
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


def _loader(sizes: tuple[int, ...]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    data = torch.rand(sum(sizes), 1, 28, 28)
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    return [(data[s:s + n], torch.zeros(n)) for s, n in zip(starts, sizes)]


def _student_epoch(train_epoch: Callable, model: nn.Module, loader: list) -> dict:
    """Run the student's train_epoch on a copy of `model`; what it returned, the parameters after, and what it did."""
    theirs, recorder = copy.deepcopy(model), _Recorder()
    found = train_epoch(theirs, loader, torch.optim.SGD(theirs.parameters(), lr=0.5), recorder)
    return {"returned": found, "returned_type": type(found).__name__, "parameters": [p.detach() for p in theirs.parameters()],
            "losses": recorder.losses, "sizes": recorder.sizes, "train_mode": recorder.modes}


def _epoch(train_epoch: Callable, sizes: tuple[int, ...]) -> None:
    loader = _loader(sizes)
    ours = Autoencoder(latent_dim=4, hidden=4)
    start, no_zero_grad = copy.deepcopy(ours), copy.deepcopy(ours)
    seen = observe(lambda: _student_epoch(train_epoch, start, loader))
    expected = _reference_train_epoch(ours, loader, torch.optim.SGD(ours.parameters(), lr=0.5), autoencoder_loss)
    _reference_train_epoch(no_zero_grad, loader, torch.optim.SGD(no_zero_grad.parameters(), lr=0.5), autoencoder_loss,
                           zero_grad=False)
    expect(len(seen["losses"]) == len(loader), f"loss_fn was called {len(seen['losses'])} times for "
                                               f"{len(loader)} batches: one call per batch")
    expect(all(seen["train_mode"]), "the model was in eval mode while training: keep model.train() (eval() is for testing)")
    after = seen["parameters"]
    expect(len(after) == len(list(ours.parameters())), "train_epoch changed the model's parameters themselves")
    expect(any(not torch.equal(p, q) for p, q in zip(after, start.parameters())),
           "the parameters did not change: call optimizer.step() after loss.backward(), and zero_grad() before "
           "backward, not between backward and step")
    if all(torch.allclose(p, q, atol=1e-6) for p, q in zip(after, no_zero_grad.parameters())):
        expect(False, "gradients accumulate over the batches: call optimizer.zero_grad() before each loss.backward()")
    for (name, p), q in zip(ours.named_parameters(), after):
        expect(torch.allclose(p, q, atol=1e-6),
               f"after one epoch, parameter {name} differs from the reference: one optimizer.step() per batch, "
               "after optimizer.zero_grad() and loss.backward()?")
    expect(seen["returned_type"] == "float", f"train_epoch should return the mean loss as a Python float (loss.item()), "
           f"found {seen['returned_type']}: adding up loss tensors keeps every batch's graph alive")
    losses, counts = torch.tensor(seen["losses"]), torch.tensor(seen["sizes"], dtype=torch.float)
    causes = {f"the plain mean of the batch losses: weigh each batch by its size (the last batch has {sizes[-1]} "
              "images)": losses.mean(),
              "the batch losses added up without their sizes: weigh each batch's loss by its size, "
              "loss.item() * len(batch[0])": losses.sum() / counts.sum(),
              "the last batch's loss: return the mean over the whole epoch": losses[-1],
              "the sum of the batch losses: divide by the number of examples": losses.sum(),
              "the total over examples: divide by the number of examples": (losses * counts).sum()}
    expect_close(torch.tensor(seen["returned"]), torch.tensor(expected), "the returned mean training loss", causes=causes)


def check_train_epoch(train_epoch: Callable, sizes: tuple[int, ...] = (16, 16, 16, 7), hidden: bool = False) -> Report:
    """train_epoch(model, loader, optimizer, loss_fn) takes one step per batch and returns the mean loss per example."""
    with CheckRun("train_epoch", seed=int(hidden), hidden=hidden, student=train_epoch) as run:
        run.step(f"on batches of {', '.join(map(str, sizes))} images: updates the parameters exactly like one epoch of "
                 "SGD and returns the mean loss per example", lambda: _epoch(train_epoch, sizes))
    return run.report
