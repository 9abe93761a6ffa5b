"""Check cells of notebook 01 (autoencoder)."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from starter.checks import CheckRun, check, expect, expect_close, expect_shape
from starter.checks.architecture import behaves_like, expect_same_as, matchings
from starter.checks.kernel import Handle
from starter.models.autoencoder import Decoder as ReferenceDecoder
from starter.models.autoencoder import Encoder as ReferenceEncoder
from starter.probes import general
from starter.probes.autoencoder import absolute_error, batches, sgd, tiny_autoencoder
from starter.report import Report


def _images(n: int = 8) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28)


def _a_module(model: Handle, what: str) -> Handle:
    facts = model.kernel.run(general.describe, model)
    expect(facts["module"], f"{what} should build an nn.Module, found {facts['type']}")
    found = model.kernel.run(general.parameters, model)
    expect(found, f"{what} has no parameters: did you forget to create the layers?")
    return model


def _layers_of_the_table(build: Handle, reference: type, sizes: list[tuple[int, int]], what: str) -> None:
    for latent, width in sizes:
        found = build.kernel.run(general.parameters, build(latent_dim=latent, hidden=width))
        next(matchings(found, reference(latent, width), f"{what}(latent_dim={latent}, hidden={width})"))


def _same_as_the_table(model: Handle, reference: nn.Module, inputs: torch.Tensor, what: str, variants: dict) -> dict:
    """`behaves_like`'s facts, once the student's module computes the table with the reference's weights."""
    facts = behaves_like(model, reference, (inputs,), what)
    expect_same_as(facts, what, variants)
    return facts


def _every_parameter_learns(model: Handle, x: torch.Tensor, facts: dict, what: str) -> None:
    """A cotangent drawn here, backpropagated through the student's module (holding the weights `facts` placed):
    exactly one gradient per parameter, of its shape, nonzero and equal to the reference's with the same weights."""
    reference, placement, names = facts["reference"], facts["placement"], facts["names"]
    expected_output = reference(x)
    cotangent = torch.randn_like(expected_output)
    expected = torch.autograd.grad(expected_output, list(reference.parameters()), cotangent)
    found = model.kernel.run(general.gradients, model, [x], cotangent=cotangent, modules=(model,))
    expect(found.get("requires_grad") is True, f"{what}: the output does not require a gradient (is it detached?)")
    grads = found.get("parameter_grads")
    expect(
        isinstance(grads, list) and len(grads) == len(names),
        f"{what}: expected one gradient for each of its {len(names)} parameters, found "
        + (f"{len(grads)}" if isinstance(grads, list) else type(grads).__name__),
    )
    missing = [names[s] for s in placement if not torch.is_tensor(grads[s]) or not grads[s].abs().sum()]
    expect(not missing, f"{what}: no gradient reaches {missing[:3]}: is every layer used in forward()?")
    for wanted, s in zip(expected, placement):
        expect_shape(grads[s], wanted.shape, f"{what}: the gradient of {names[s]}")
        scale = max(1.0, wanted.abs().max().item())
        expect_close(grads[s], wanted, f"{what}: the gradient of {names[s]}", atol=1e-4 * scale, rtol=1e-3)


def _encoder_variants(x: torch.Tensor) -> dict:
    def layers(ref, first=True, second=True):
        h = ref.features[0](x)
        h = F.relu(h) if first else h
        h = ref.features[2](h)
        h = F.relu(h) if second else h
        return ref.to_latent(h.flatten(1))

    after = "no activation after the last layer, a latent code may be any real vector"
    between = "put a ReLU after each convolution (and nothing else in between)"
    return {
        after: lambda ref: F.relu(layers(ref)),
        f"{after} (tanh)": lambda ref: torch.tanh(layers(ref)),
        f"{after} (sigmoid)": lambda ref: torch.sigmoid(layers(ref)),
        between: lambda ref: layers(ref, first=False),
        f"{between} (second)": lambda ref: layers(ref, second=False),
        f"{between} (none)": lambda ref: layers(ref, False, False),
    }


@check
def check_encoder(
    Encoder: Handle, latent_dim: int = 16, width: int = 32, batch: int = 8, hidden: bool = False
) -> Report:
    """Encoder(latent_dim, hidden) maps (N, 1, 28, 28) images to (N, latent_dim) vectors with the table's layers."""
    with CheckRun("Encoder", Encoder.kernel, seed=int(hidden), hidden=hidden) as run:
        model = run.step(
            f"builds Encoder(latent_dim={latent_dim}, hidden={width})",
            lambda: _a_module(Encoder(latent_dim=latent_dim, hidden=width), f"Encoder({latent_dim}, hidden={width})"),
        )
        x = run.step(
            f"maps ({batch}, 1, 28, 28) images to ({batch}, {latent_dim})",
            lambda: _checked(_images(batch), lambda x: expect_shape(model(x), (batch, latent_dim), "encoder(x)")),
            hints={
                RuntimeError: "a shape mismatch: flatten each image with .flatten(1), keeping the batch "
                "dimension, and check the sizes of the table"
            },
        )
        run.step(
            "latent size follows latent_dim (Encoder(2) gives (N, 2))",
            lambda: expect_shape(Encoder(latent_dim=2)(x), (batch, 2), "Encoder(latent_dim=2)(x)"),
        )
        run.step(
            "the layers of the table, for any latent_dim and hidden",
            lambda: _layers_of_the_table(Encoder, ReferenceEncoder, [(latent_dim, width), (2, 8)], "Encoder"),
        )
        facts = run.step(
            "computes the table: conv, ReLU, conv, ReLU, flatten, Linear (no activation after it)",
            lambda: _same_as_the_table(model, ReferenceEncoder(latent_dim, width), x, "Encoder", _encoder_variants(x)),
        )
        run.step("gradients reach every parameter", lambda: _every_parameter_learns(model, x, facts, "Encoder"))
    return run.report


def _decoder_variants(z: torch.Tensor, width: int) -> dict:
    def layers(ref, after_linear=False, between=True, end=torch.sigmoid):
        h = ref.from_latent(z)
        h = F.relu(h) if after_linear else h
        h = ref.upsample[0](h.view(-1, 2 * width, 7, 7))
        h = F.relu(h) if between else h
        return end(ref.upsample[2](h))

    end = "the output is not sigmoid(last transposed convolution): end with nn.Sigmoid() (not a clamp, not ReLU)"
    return {
        end: lambda ref: layers(ref, end=lambda h: h),
        f"{end} (clamp)": lambda ref: layers(ref, end=lambda h: h.clamp(0, 1)),
        f"{end} (ReLU)": lambda ref: layers(ref, end=F.relu),
        "leave out the activation after the Linear layer (it can switch off every unit)": lambda ref: layers(
            ref, after_linear=True
        ),
        "put a ReLU between the transposed convolutions": lambda ref: layers(ref, between=False),
    }


def _in_unit_range(x_hat: torch.Tensor) -> None:
    expect(
        x_hat.min() >= 0 and x_hat.max() <= 1,
        f"found values in [{x_hat.min():.3g}, {x_hat.max():.3g}]: end the decoder with a sigmoid",
    )


@check
def check_decoder(
    Decoder: Handle, latent_dim: int = 16, width: int = 32, batch: int = 8, hidden: bool = False
) -> Report:
    """Decoder(latent_dim, hidden) maps (N, latent_dim) vectors to (N, 1, 28, 28) images in [0, 1]."""
    with CheckRun("Decoder", Decoder.kernel, seed=int(hidden), hidden=hidden) as run:
        model = run.step(
            f"builds Decoder(latent_dim={latent_dim}, hidden={width})",
            lambda: _a_module(Decoder(latent_dim=latent_dim, hidden=width), f"Decoder({latent_dim}, hidden={width})"),
        )
        z = run.step(
            f"maps ({batch}, {latent_dim}) vectors to ({batch}, 1, 28, 28) images",
            lambda: _checked(
                torch.randn(batch, latent_dim) * 3, lambda z: expect_shape(model(z), (batch, 1, 28, 28), "decoder(z)")
            ),
        )
        run.step("pixel values lie in [0, 1]", lambda: _in_unit_range(model(z)))
        run.step(
            "image size follows latent_dim (Decoder(2) accepts (N, 2))",
            lambda: expect_shape(Decoder(latent_dim=2)(z[:, :2]), (batch, 1, 28, 28), "Decoder(2)(z)"),
            hints={RuntimeError: "the first layer should be Linear(latent_dim, ...), not a fixed size"},
        )
        run.step(
            "the layers of the table, for any latent_dim and hidden",
            lambda: _layers_of_the_table(Decoder, ReferenceDecoder, [(latent_dim, width), (2, 8)], "Decoder"),
        )
        facts = run.step(
            "computes the table: Linear, reshape, transposed conv, ReLU, transposed conv, sigmoid",
            lambda: _same_as_the_table(
                model, ReferenceDecoder(latent_dim, width), z, "Decoder", _decoder_variants(z, width)
            ),
        )
        run.step("gradients reach every parameter", lambda: _every_parameter_learns(model, z, facts, "Decoder"))
    return run.report


def _checked(value, test):
    test(value)
    return value


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


def _gradient_flows(facts: dict) -> None:
    expect(
        facts["requires_grad"] and facts["grads"][0] is not None,
        "the loss is detached from x_hat: do not call .item(), .detach() or .numpy() inside",
    )


@check
def check_reconstruction_loss(
    reconstruction_loss: Handle, shape: tuple = (8, 1, 28, 28), hidden: bool = False
) -> Report:
    """reconstruction_loss(x_hat, x) is the mean squared error per pixel, averaged over the batch."""
    kernel = reconstruction_loss.kernel
    with CheckRun("reconstruction_loss", kernel, seed=int(hidden), hidden=hidden) as run:
        x, x_hat = run.step(f"inputs of shape {shape}", lambda: (torch.rand(shape), torch.rand(shape)))
        loss = run.step(
            "returns a scalar tensor",
            lambda: _checked(reconstruction_loss(x_hat, x), lambda out: expect_shape(out, (), "the loss")),
        )
        run.step(
            "equals the mean squared error per pixel",
            lambda: expect_close(loss, ((x_hat - x) ** 2).mean(), "the loss", causes=_loss_causes(x_hat, x)),
        )
        run.step(
            "gradient flows back to x_hat",
            lambda: _gradient_flows(kernel.run(general.gradients, reconstruction_loss, [x_hat, x], wrt=(0,))),
        )
    return run.report


def _loader(sizes: tuple[int, ...]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    data = torch.rand(sum(sizes), 1, 28, 28)
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    return [(data[s : s + n], torch.zeros(n)) for s, n in zip(starts, sizes)]


def _sgd_epoch(
    model: nn.Module, loader: list, stale: list[torch.Tensor], zero_grad: str = "before", training: bool = True
) -> list[float]:
    """One epoch of SGD (lr 0.5) on the fixture's loss (`absolute_error`), from a model holding `stale` gradients,
    in training mode (or not), with optimizer.zero_grad() "before" each backward (right), "after" each step, or
    "never"; the batch losses."""
    optimizer, losses = torch.optim.SGD(model.parameters(), lr=0.5), []
    for parameter, gradient in zip(model.parameters(), stale):
        parameter.grad = gradient.clone()
    model.train(training)
    for batch in loader:
        loss = absolute_error(model, batch)
        if zero_grad == "before":
            optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if zero_grad == "after":
            optimizer.zero_grad()
        losses.append(loss.item())
    return losses


def _student_epoch(train_epoch: Handle, start: list[torch.Tensor], stale: list[torch.Tensor], loader: list) -> dict:
    """Run the student's train_epoch on the fixture model holding `start` (and gradients left over from earlier
    work): what it returned, and the parameters after."""
    kernel = train_epoch.kernel
    model = kernel.run(tiny_autoencoder)
    kernel.run(general.load_parameters, model, start)
    kernel.run(general.set_gradients, model, stale)
    data = torch.cat([x for x, _ in loader])
    loaded = kernel.run(batches, data, torch.zeros(len(data)), [len(x) for x, _ in loader])
    returned = train_epoch(model, loaded, kernel.run(sgd, model, 0.5), kernel.probe(absolute_error))
    return {"returned": returned, "parameters": [p for _, p in kernel.run(general.parameters, model)]}


def _same_parameters(found: list[torch.Tensor], model: nn.Module) -> bool:
    return len(found) == len(list(model.parameters())) and all(
        p.shape == q.shape and torch.allclose(p, q, atol=1e-6) for p, q in zip(model.parameters(), found)
    )


def _epoch(train_epoch: Handle, sizes: tuple[int, ...]) -> None:
    """What the student's epoch did is read from the parameters it left (the fixture model's batch norm makes them
    depend on the training mode too), and its returned mean from the batch losses that those parameters imply."""
    loader = _loader(sizes)
    ours = tiny_autoencoder()
    start = [p.detach().clone() for p in ours.parameters()]
    stale = [torch.randn_like(p) for p in start]
    variants = {order: copy.deepcopy(ours) for order in ("never", "after", "eval")}
    seen = _student_epoch(train_epoch, start, stale, loader)
    losses = _sgd_epoch(ours, loader, stale)
    for order, model in variants.items():
        _sgd_epoch(model, loader, stale, "before" if order == "eval" else order, training=order != "eval")
    after = seen["parameters"]
    expect(
        not _same_parameters(after, variants["eval"]),
        "the model was in eval mode while training: keep model.train() (eval() is for testing)",
    )
    expect(
        any(not torch.equal(p, q) for p, q in zip(after, start)),
        "the parameters did not change: call optimizer.step() after loss.backward(), and zero_grad() before "
        "backward, not between backward and step",
    )
    expect(
        not _same_parameters(after, variants["never"]),
        "gradients accumulate over the batches: call optimizer.zero_grad() before each loss.backward()",
    )
    expect(
        not _same_parameters(after, variants["after"]),
        "the first step used gradients left over from before the "
        "epoch: call optimizer.zero_grad() before each loss.backward(), not after optimizer.step()",
    )
    for (name, p), q in zip(ours.named_parameters(), after):
        expect(
            p.shape == q.shape and torch.allclose(p, q, atol=1e-6),
            f"after one epoch, parameter {name} differs from the reference: one optimizer.step() per batch, "
            "after optimizer.zero_grad() and loss.backward()?",
        )
    returned = seen["returned"]
    expect(
        isinstance(returned, float),
        f"train_epoch should return the mean loss as a Python float (loss.item()), "
        f"found {type(returned).__name__ if not torch.is_tensor(returned) else 'a tensor'}: adding up loss tensors "
        "keeps every batch's graph alive",
    )
    batch_losses, counts = torch.tensor(losses), torch.tensor(sizes, dtype=torch.float)
    expected = (batch_losses * counts).sum() / counts.sum()
    causes = {
        f"the plain mean of the batch losses: weigh each batch by its size (the last batch has {sizes[-1]} "
        "images)": batch_losses.mean(),
        "the batch losses added up without their sizes: weigh each batch's loss by its size, "
        "loss.item() * len(batch[0])": batch_losses.sum() / counts.sum(),
        "the last batch's loss: return the mean over the whole epoch": batch_losses[-1],
        "the sum of the batch losses: divide by the number of examples": batch_losses.sum(),
        "the total over examples: divide by the number of examples": (batch_losses * counts).sum(),
    }
    expect_close(torch.tensor(returned), expected, "the returned mean training loss", causes=causes)


@check
def check_train_epoch(train_epoch: Handle, sizes: tuple[int, ...] = (16, 16, 16, 7), hidden: bool = False) -> Report:
    """train_epoch(model, loader, optimizer, loss_fn) takes one step per batch and returns the mean loss per example."""
    with CheckRun("train_epoch", train_epoch.kernel, seed=int(hidden), hidden=hidden) as run:
        run.step(
            f"on batches of {', '.join(map(str, sizes))} images: updates the parameters exactly like one epoch of "
            "SGD and returns the mean loss per example",
            lambda: _epoch(train_epoch, sizes),
        )
    return run.report
