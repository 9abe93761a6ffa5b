"""Check cells of notebook 05 (VAE): the reparameterisation trick, the KL term, the negative ELBO."""

from __future__ import annotations

import math

import torch
from torch.distributions import Normal, kl_divergence
from torch.nn import functional as F

from starter.checks import CheckFailed, CheckRun, check, expect, expect_close, expect_shape, passes
from starter.checks.kernel import Handle, Kernel
from starter.models import vae as reference
from starter.models.vae import VAE
from starter.probes import general
from starter.probes.vae import course_vae
from starter.report import Report

TAIL = 0.0455  # P(|eps| > 2) for eps ~ N(0, 1)


def _rows_get_their_own_noise(reparameterize: Handle) -> None:
    z = reparameterize(torch.zeros(1000, 3), torch.full((1000, 3), math.log(4.0)))
    expect_shape(z, (1000, 3), "reparameterize(mean (1000, 3), log_var (1000, 3))")
    expect(
        bool((z.std(0) > 0.05).all()),
        "every row got the same noise: draw one eps per element with torch.randn_like(mean)",
    )


def _samples_have_the_right_moments(reparameterize: Handle, n: int) -> None:
    mean = torch.tensor([2.0, -1.0]).expand(n, 2)
    log_var = torch.tensor([0.0, math.log(9.0)]).expand(n, 2)  # standard deviations 1 and 3
    z = reparameterize(mean, log_var)
    expect_shape(z, (n, 2), "reparameterize(mean, log_var)")
    (m0, m1), (s0, s1) = z.mean(0).tolist(), z.std(0).tolist()
    expect(
        abs(m0 - 2) < 0.05 and abs(m1 + 1) < 0.1,
        f"sample means should be (2, -1), found ({m0:.2f}, {m1:.2f})"
        + (": eps must be standard normal (torch.randn_like, not rand_like)" if m1 > -0.5 else ""),
    )
    causes = {
        9.0: "exp(log_var) is the variance, not sigma",
        4.5: "0.5 * exp(log_var) is not sigma",
        math.log(9.0): "log_var is not sigma",
        1.0: "the variance is ignored",
    }
    cause = next((text for value, text in causes.items() if abs(s1 - value) < 0.15), "")
    expect(
        abs(s0 - 1) < 0.05 and abs(s1 - 3) < 0.15,
        f"sample standard deviations should be (1, 3) for log-variances (0, log 9), found ({s0:.2f}, {s1:.2f})"
        + (f": {cause}" if cause else "")
        + ": sigma = exp(0.5 * log_var)",
    )
    eps = (z - mean) / torch.tensor([1.0, 3.0])
    tail = (eps.abs() > 2).double().mean().item()
    expect(
        abs(tail - TAIL) < 0.01,
        f"{tail:.1%} of the noise lies beyond 2 standard deviations, {TAIL:.1%} for a "
        "normal: eps must be standard normal (torch.randn_like)",
    )


def _gradients_flow(reparameterize: Handle) -> None:
    facts = reparameterize.kernel.run(
        general.gradients, reparameterize, [torch.zeros(1000, 3), torch.zeros(1000, 3)], wrt=(0, 1)
    )
    expect(
        facts["requires_grad"],
        "the sample has no gradient: draw eps ~ N(0, I) and return mean + sigma * eps "
        "(Normal(...).sample() is not differentiable)",
    )
    (mean_grad, log_var_grad), z = facts["grads"], facts["output"]
    expect(
        mean_grad is not None and torch.allclose(mean_grad, torch.ones_like(mean_grad)),
        "dz/dmean should be 1: return mean + sigma * eps (torch.normal does not pass gradients on)",
    )
    expect(
        log_var_grad is not None and torch.allclose(log_var_grad, 0.5 * z, atol=1e-5),
        "dz/dlog_var should be 0.5 * sigma * eps: sigma = exp(0.5 * log_var), with eps drawn without gradient",
    )


def _fresh_noise(reparameterize: Handle) -> None:
    first, second = (reparameterize(torch.zeros(4, 2), torch.zeros(4, 2)) for _ in range(2))
    expect(
        not torch.equal(first, second), "the same sample twice: draw fresh noise with torch.randn_like on every call"
    )


@check
def check_reparameterize(reparameterize: Handle, n: int = 20_000, hidden: bool = False) -> Report:
    """reparameterize(mean, log_var) -> mean + exp(0.5 log_var) * eps, eps ~ N(0, I), differentiable in both."""
    with CheckRun("reparameterize", reparameterize.kernel, seed=int(hidden), hidden=hidden) as run:
        run.step("one independent noise value per element", lambda: _rows_get_their_own_noise(reparameterize))
        run.step(
            "samples have mean `mean`, standard deviation exp(0.5 * log_var), normal noise",
            lambda: _samples_have_the_right_moments(reparameterize, n),
        )
        run.step("two calls give different samples", lambda: _fresh_noise(reparameterize))
        run.step("gradients flow through the sample to mean and log_var", lambda: _gradients_flow(reparameterize))
    return run.report


def _kl_causes(mean: torch.Tensor, log_var: torch.Tensor) -> dict[str, torch.Tensor]:
    terms = mean.pow(2) + log_var.exp() - log_var - 1
    return {
        "averaged over the latent dimensions: sum over them": 0.5 * terms.mean(1),
        "the factor 1/2 is missing": terms.sum(1),
        "the signs are flipped (a KL is never negative)": -0.5 * terms.sum(1),
        "sigma² is exp(log_var), not exp(0.5 * log_var)": 0.5
        * (mean.pow(2) + (0.5 * log_var).exp() - log_var - 1).sum(1),
        "the -1 per dimension is missing": 0.5 * (terms + 1).sum(1),
    }


def _kl_matches(kl: Handle, mean: torch.Tensor, log_var: torch.Tensor, what: str) -> None:
    found, (n, d) = kl(mean, log_var), mean.shape
    hints = {
        (): "one value per example: sum over the latent dimensions only (dim 1)",
        (d,): "summed over the batch (dim 0): sum over the latent dimensions (dim 1)",
    }
    expect_shape(found, (n,), what, hints.get(tuple(getattr(found, "shape", (0,))), ""))
    expected = kl_divergence(Normal(mean, (0.5 * log_var).exp()), Normal(0.0, 1.0)).sum(1)
    expect_close(found, expected, what, causes=_kl_causes(mean, log_var))


@check
def check_kl(kl: Handle, n: int = 6, d: int = 5, hidden: bool = False) -> Report:
    """kl_to_standard_normal(mean, log_var) -> (N,) KL(N(mean, sigma²) || N(0, I)) in nats, summed over dimensions."""
    with CheckRun("kl_to_standard_normal", kl.kernel, seed=int(hidden), hidden=hidden) as run:
        run.step(
            "zero when q(z|x) is N(0, I)",
            lambda: _kl_matches(kl, torch.zeros(3, d), torch.zeros(3, d), "KL of N(0, I) to itself"),
        )
        run.step(
            "equals torch.distributions' closed form for random means and variances",
            lambda: _kl_matches(kl, torch.randn(n, d), torch.randn(n, d), f"kl_to_standard_normal(({n}, {d}) inputs)"),
        )
    return run.report


NOISE_SEED = 1  # the student's loss and the reference draw their noise right after seeding with it
PARTS = {"reparameterize": check_reparameterize, "kl_to_standard_normal": check_kl}  # vae_loss's own parts


def _loss_causes(model: VAE, x: torch.Tensor, expected: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    n, pixels = len(x), x[0].numel()
    torch.manual_seed(NOISE_SEED)
    mean, log_var = model.encoder(x)
    from_mean = F.binary_cross_entropy(model.decoder(mean), x, reduction="sum") / n
    x_hat = model.decoder(reference.reparameterize(mean, log_var))
    reconstruction, kl = expected["reconstruction"], expected["kl"]
    return {
        "reconstruction": {
            "averaged over the pixels: sum the binary cross-entropy over the 784 pixels "
            "(reduction='sum')": reconstruction / pixels,
            "summed over the batch: divide by the batch size": reconstruction * n,
            "the squared error: the Bernoulli likelihood gives the binary cross-entropy": F.mse_loss(
                x_hat, x, reduction="sum"
            )
            / n,
            "the decoded mean: decode a reparameterised sample z = mean + sigma * eps": from_mean,
        },
        "kl": {"summed over the batch: average it with .mean()": kl * n, "missing: add the KL term": torch.zeros(())},
        "loss": {
            "the KL is subtracted: the negative ELBO is reconstruction + KL": reconstruction - kl,
            "the KL is missing from the loss": reconstruction,
        },
    }


def _checked_parts(loss_fn: Handle) -> tuple[dict[str, Handle] | None, str]:
    """The notebook's own reparameterize and kl_to_standard_normal, as vae_loss finds them, if both pass their own
    checks (else None), and the names of those that are there but fail."""
    parts = {name: loss_fn.kernel.run(general.global_of, loss_fn, name) for name in PARTS}
    present = {name: part for name, part in parts.items() if isinstance(part, Handle)}
    failing = [name for name, part in present.items() if not passes(PARTS[name], part)]
    return (parts if len(present) == len(PARTS) and not failing else None), " and ".join(failing)


def _is_fresh_noise(z: torch.Tensor, again: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> bool:
    """Two samples of reparameterize for the same inputs and two seeds differ, and each one's noise
    (z - mean) / sigma has a standard deviation near 1 (over 20 values, outside [0.4, 2.5] less than once in 10^4)."""
    if not (torch.is_tensor(z) and torch.is_tensor(again) and z.shape == again.shape == mean.shape):
        return False
    sigma = torch.exp(0.5 * log_var)
    spreads = [((sample.double() - mean.double()) / sigma.double()).std() for sample in (z, again)]
    return not torch.allclose(z, again) and all(0.4 < float(spread) < 2.5 for spread in spreads)


def _with_student_parts(parts: dict[str, Handle], model: VAE, x: torch.Tensor) -> dict[str, torch.Tensor] | None:
    """What the negative ELBO is when computed with the notebook's own (checked) reparameterize and
    kl_to_standard_normal, called plainly (None if they fail here, or if reparameterize's sample is not fresh noise
    here): a vae_loss that calls them is judged on its own."""
    kernel = parts["reparameterize"].kernel
    with torch.no_grad():
        mean, log_var = model.encoder(x)
    try:
        z = kernel.call_seeded(NOISE_SEED, parts["reparameterize"], mean, log_var)
        again = kernel.call_seeded(NOISE_SEED + 1, parts["reparameterize"], mean, log_var)
        if not _is_fresh_noise(z, again, mean, log_var):
            return None
        kl_values = parts["kl_to_standard_normal"](mean, log_var)
        with torch.no_grad():
            reconstruction = F.binary_cross_entropy(model.decoder(z), x, reduction="sum") / len(x)
        terms = {"reconstruction": reconstruction, "kl": kl_values.mean()}
    except Exception:  # noqa: BLE001 (parts that fail on these inputs)
        return None
    return {**terms, "loss": terms["reconstruction"] + terms["kl"]}


def _test_vae(latent_dim: int) -> VAE:
    """A small VAE whose posterior standard deviations are near 2 (log-variance biased by log 4): there, sigma, the
    variance and the log-variance give clearly different samples, for any weights the check draws."""
    model = VAE(latent_dim=latent_dim, hidden=8)
    with torch.no_grad():
        model.encoder.to_stats.bias[latent_dim:] += math.log(4)
    return model


def _course_vae(kernel: Kernel, model: VAE) -> Handle:
    """A course VAE in the student's process, holding `model`'s weights."""
    theirs = kernel.run(course_vae, model.latent_dim, 8)
    kernel.run(general.load_parameters, theirs, [p.detach() for p in model.parameters()])
    return theirs


def _loss_matches_reference(loss_fn: Handle, n: int, latent_dim: int) -> None:
    kernel = loss_fn.kernel
    model, x = _test_vae(latent_dim), torch.rand(n, 1, 28, 28)
    found = kernel.call_seeded(NOISE_SEED, loss_fn, _course_vae(kernel, model), (x, None))
    expect(
        isinstance(found, dict) and {"loss", "reconstruction", "kl"} <= set(found),
        "return a dict with the keys 'loss', 'reconstruction' and 'kl'",
    )
    torch.manual_seed(NOISE_SEED)
    with torch.no_grad():
        expected = reference.vae_loss(model, (x, None))
        causes = _loss_causes(model, x, expected)
    parts, failing = _checked_parts(loss_fn)
    own = _with_student_parts(parts, model, x) if parts else None
    if own is not None and all(
        torch.is_tensor(found[k])
        and found[k].shape == own[k].shape
        and torch.allclose(found[k].double(), own[k].double(), atol=1e-3)
        for k in own
    ):
        return  # computed with the notebook's own parts, which pass their checks: vae_loss itself is right
    labels = {
        "reconstruction": "reconstruction (binary cross-entropy summed over pixels, averaged over the batch)",
        "kl": "kl (summed over the latent dimensions, averaged over the batch)",
        "loss": "loss (reconstruction + kl)",
    }
    try:
        for key, label in labels.items():
            expect_close(found[key], expected[key], label, atol=1e-3, causes=causes[key])
    except CheckFailed as failure:
        note = f" (your {failing} does not pass its own check yet, so it is not used here)" if failing else ""
        raise CheckFailed(f"{failure}{note}") from None


def _reconstruction_trains_the_encoder(loss_fn: Handle, latent_dim: int) -> None:
    kernel = loss_fn.kernel
    model, x = _test_vae(latent_dim), torch.rand(5, 1, 28, 28)
    theirs = _course_vae(kernel, model)
    facts = kernel.run(general.gradients, loss_fn, [theirs, (x, None)], select=("reconstruction",), modules=(theirs,))
    expect(facts["requires_grad"], "the reconstruction term has no gradient: decode the reparameterised sample")
    names = [name for name, _ in model.named_parameters()]
    grad = facts["parameter_grads"][names.index("encoder.to_stats.weight")]
    expect(
        grad is not None and bool(grad[:latent_dim].abs().sum() > 0),
        "the reconstruction term gives the encoder's mean no gradient: decode the reparameterised sample",
    )
    expect(
        bool(grad[latent_dim:].abs().sum() > 0),
        "the reconstruction term gives the log-variance no gradient: decode the reparameterised sample, not the mean",
    )


@check
def check_vae_loss(loss_fn: Handle, n: int = 5, latent_dim: int = 4, hidden: bool = False) -> Report:
    """vae_loss(model, batch) -> {"loss", "reconstruction", "kl"}: the negative ELBO per image, in nats.

    It equals the reference, or what the notebook's own reparameterize and kl_to_standard_normal give (their noise
    may be drawn differently) once both pass their own checks: a vae_loss is never judged against parts that the
    check has not checked."""
    with CheckRun("vae_loss", loss_fn.kernel, seed=int(hidden), hidden=hidden) as run:
        run.step(
            "reconstruction (Bernoulli), KL and their sum equal the reference",
            lambda: _loss_matches_reference(loss_fn, n, latent_dim),
        )
        run.step(
            "the reconstruction term trains the encoder through the sample",
            lambda: _reconstruction_trains_the_encoder(loss_fn, latent_dim),
        )
    return run.report
