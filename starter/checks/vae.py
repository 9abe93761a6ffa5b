"""Check cells of notebook 05 (VAE): the reparameterisation trick, the KL term, the negative ELBO."""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch.distributions import Normal, kl_divergence

from starter.checks import CheckRun, Report, expect, expect_close, expect_shape
from starter.models.vae import VAE, vae_loss


def _samples_have_the_right_moments(reparameterize: Callable) -> None:
    mean = torch.tensor([2.0, -1.0]).expand(20_000, 2)
    log_var = torch.tensor([0.0, math.log(9.0)]).expand(20_000, 2)  # standard deviations 1 and 3
    z = reparameterize(mean, log_var)
    expect_shape(z, (20_000, 2), "reparameterize(mean, log_var)")
    found_mean, found_std = z.mean(0).tolist(), z.std(0).tolist()
    expect(abs(found_mean[0] - 2) < 0.05 and abs(found_mean[1] + 1) < 0.1,
           f"sample means should be (2, -1), found ({found_mean[0]:.2f}, {found_mean[1]:.2f})")
    expect(abs(found_std[0] - 1) < 0.05 and abs(found_std[1] - 3) < 0.15,
           f"sample standard deviations should be (1, 3) for log-variances (0, log 9), found "
           f"({found_std[0]:.2f}, {found_std[1]:.2f}): sigma = exp(0.5 * log_var)")


def _gradients_flow(reparameterize: Callable) -> None:
    mean, log_var = torch.zeros(1000, 3, requires_grad=True), torch.zeros(1000, 3, requires_grad=True)
    z = reparameterize(mean, log_var)
    expect(z.requires_grad, "the sample has no gradient: draw eps ~ N(0, I) and return mean + sigma * eps "
                            "(Normal(...).sample() is not differentiable)")
    z.sum().backward()
    expect(mean.grad is not None and torch.allclose(mean.grad, torch.ones_like(mean)), "dz/dmean should be 1: return mean + sigma * eps (torch.normal does not pass gradients on)")
    expect(log_var.grad is not None and torch.allclose(log_var.grad, 0.5 * z.detach(), atol=1e-5),
           "dz/dlog_var should be 0.5 * sigma * eps")


def check_reparameterize(reparameterize: Callable) -> Report:
    """reparameterize(mean, log_var) -> mean + exp(0.5 log_var) * eps, differentiable in both."""
    with CheckRun("reparameterize") as run:
        run.step("samples have mean `mean` and standard deviation exp(0.5 * log_var)",
                 lambda: _samples_have_the_right_moments(reparameterize))
        run.step("two calls give different samples", lambda: expect(not torch.equal(
            reparameterize(torch.zeros(4, 2), torch.zeros(4, 2)), reparameterize(torch.zeros(4, 2), torch.zeros(4, 2))),
            "the same sample twice: draw fresh noise with torch.randn_like on every call"))
        run.step("gradients flow through the sample to mean and log_var", lambda: _gradients_flow(reparameterize))
    return run.report


def _kl_matches_reference(kl: Callable) -> None:
    mean, log_var = torch.randn(6, 5), torch.randn(6, 5)
    reference = kl_divergence(Normal(mean, (0.5 * log_var).exp()), Normal(0.0, 1.0)).sum(1)
    expect_close(kl(mean, log_var), reference, "kl_to_standard_normal(mean, log_var) (one value per example)")


def check_kl(kl: Callable) -> Report:
    """kl_to_standard_normal(mean, log_var) -> (N,) KL(N(mean, sigma²) || N(0, I)) in nats, summed over dimensions."""
    with CheckRun("kl_to_standard_normal") as run:
        run.step("zero when q(z|x) is N(0, I)", lambda: expect_close(kl(torch.zeros(3, 4), torch.zeros(3, 4)),
                                                                     torch.zeros(3), "KL of N(0, I) to itself"))
        run.step("equals torch.distributions' closed form for random means and variances",
                 lambda: _kl_matches_reference(kl))
    return run.report


def _loss_matches_reference(loss_fn: Callable) -> None:
    model, x = VAE(latent_dim=4, hidden=8), torch.rand(5, 1, 28, 28)
    with torch.random.fork_rng():
        torch.manual_seed(1)
        found = loss_fn(model, (x, None))
    expect(isinstance(found, dict) and {"loss", "reconstruction", "kl"} <= set(found),
           "return a dict with the keys 'loss', 'reconstruction' and 'kl'")
    torch.manual_seed(1)
    expected = vae_loss(model, (x, None))
    for key in ("reconstruction", "kl", "loss"):
        expect_close(found[key], expected[key], f"{key} (nats per image, summed over pixels, averaged over the batch)",
                     atol=1e-3)


def _reconstruction_trains_the_encoder(loss_fn: Callable) -> None:
    model = VAE(latent_dim=4, hidden=8)
    loss_fn(model, (torch.rand(5, 1, 28, 28), None))["reconstruction"].backward()
    grad = model.encoder.to_stats.weight.grad
    expect(grad is not None and bool(grad[:4].abs().sum() > 0),
           "the reconstruction term gives the encoder's mean no gradient: decode the reparameterised sample")


def check_vae_loss(loss_fn: Callable) -> Report:
    """vae_loss(model, batch) -> {"loss", "reconstruction", "kl"}: the negative ELBO per image, in nats."""
    with CheckRun("vae_loss") as run:
        run.step("reconstruction (Bernoulli), KL and their sum equal the reference", lambda: _loss_matches_reference(loss_fn))
        run.step("the reconstruction term trains the encoder through the sample",
                 lambda: _reconstruction_trains_the_encoder(loss_fn))
    return run.report
