"""Check cells of notebook 02 (VQ-VAE): codebook, distances, lookup, straight-through, losses."""

from __future__ import annotations

import torch
from torch import nn

from starter.checks import CheckFailed, CheckRun, check, expect, expect_close, expect_integer, expect_shape
from starter.checks.kernel import Handle
from starter.probes import general
from starter.probes.vq import largest_tensor
from starter.report import Report


def _codebook_facts(make_codebook: Handle, k: int, d: int) -> dict:
    codebook = make_codebook(k, d)
    return {
        "type": type(codebook).__name__ if not torch.is_tensor(codebook) else "a plain tensor",
        "parameter": isinstance(codebook, nn.Parameter),
        "values": codebook,
        "requires_grad": bool(getattr(codebook, "requires_grad", False)),
    }


def _codebook(facts: dict, k: int, d: int) -> torch.Tensor:
    expect(facts["parameter"], f"expected an nn.Parameter (so the optimiser sees it), found {facts['type']}")
    codebook = facts["values"]
    expect_shape(
        codebook,
        (k, d),
        f"make_codebook({k}, {d})",
        "one row per code: (num_codes, code_dim)" if tuple(codebook.shape) == (d, k) else "",
    )
    expect(
        facts["requires_grad"],
        "the codebook does not require gradients: keep nn.Parameter's default requires_grad=True",
    )
    return codebook


def _initial_range(codebook: torch.Tensor) -> None:
    k, d = codebook.shape
    values, bound = codebook.detach(), 1 / k
    low, high = values.min().item(), values.max().item()
    found = f"found values in [{low:.3g}, {high:.3g}]"
    expect(
        low < 0,
        f"{found}: nothing is negative (torch.rand gives [0, 1)): draw uniformly in [-1/K, 1/K] with "
        ".uniform_(-1 / num_codes, 1 / num_codes)",
    )
    if -bound * 1.001 > low or high > bound * 1.001:
        if abs(high - 1 / d) < 0.1 / d:
            raise CheckFailed(
                f"{found}: that is [-1/d, 1/d] for d = code_dim = {d}; the range is [-1/K, 1/K] "
                f"with K = num_codes = {k}"
            )
        raise CheckFailed(
            f"{found}, outside [-1/K, 1/K] = [{-bound:.3g}, {bound:.3g}]: draw uniformly in that range "
            "(torch.randn is not bounded)"
        )
    expect(
        low < -0.8 * bound and high > 0.8 * bound and abs(values.mean().item()) < 0.1 * bound,
        f"{found}, mean {values.mean().item():.3g}: the values should fill [-1/K, 1/K] = [{-bound:.3g}, {bound:.3g}] "
        "uniformly",
    )


@check
def check_codebook(make_codebook: Handle, num_codes: int = 128, code_dim: int = 16, hidden: bool = False) -> Report:
    """make_codebook(K, d) returns a learnable (K, d) parameter, uniform in [-1/K, 1/K]."""
    with CheckRun("make_codebook", make_codebook.kernel, seed=int(hidden), hidden=hidden) as run:
        codebook = run.step(
            f"returns a ({num_codes}, {code_dim}) nn.Parameter that requires gradients",
            lambda: _codebook(_codebook_facts(make_codebook, num_codes, code_dim), num_codes, code_dim),
        )
        run.step("shape follows the arguments (8, 3)", lambda: _codebook(_codebook_facts(make_codebook, 8, 3), 8, 3))
        run.step(
            "codes start different from each other",
            lambda: expect(
                torch.unique(codebook.detach(), dim=0).shape[0] == num_codes,
                "some codes are identical: the nearest-code search could never tell them apart (initialise at random)",
            ),
        )
        run.step(f"values uniform in [-1/K, 1/K] (K = {num_codes})", lambda: _initial_range(codebook))
    return run.report


def _distance_causes(z: torch.Tensor, codebook: torch.Tensor) -> dict[str, torch.Tensor]:
    difference = z[:, None, :] - codebook[None, :, :]
    squared, d = (difference**2).sum(-1), z.shape[1]
    causes = {
        "these are the distances, not their squares": squared.sqrt(),
        "averaged over d: sum the squared differences over the last dimension": squared / d,
        "absolute differences: square them": difference.abs().sum(-1),
        "the cross term needs its factor 2: ||z||² - 2 z·e + ||e||²": squared + z @ codebook.T,
        "the cross term has the wrong sign: ||z||² - 2 z·e + ||e||²": squared + 4 * z @ codebook.T,
    }
    if len(z) == len(codebook):  # only then does a forgotten keepdim broadcast without an error
        causes["||z||² is added along the wrong axis: keep it an (M, 1) column with .sum(1, keepdim=True)"] = (
            squared - z.pow(2).sum(1, keepdim=True) + z.pow(2).sum(1)
        )
    return causes


def _distances_match(fn: Handle, m: int, k: int, d: int) -> None:
    z, codebook = torch.randn(m, d), torch.randn(k, d)
    found = fn(z, codebook)
    hints = {
        (k, m): "transposed: one row per vector z, one column per code",
        (m, d): "sum the squared differences over the last dimension (d) only",
        (m, k, d): "sum the squared differences over the last dimension (d)",
    }
    expect_shape(
        found,
        (m, k),
        f"distances(z: ({m}, {d}), codebook: ({k}, {d}))",
        hints.get(tuple(getattr(found, "shape", ())), ""),
    )
    expect_close(found, torch.cdist(z, codebook) ** 2, "the distances", atol=1e-3, causes=_distance_causes(z, codebook))


BROADCAST_HINT = (
    "shapes that do not broadcast: keep ||z||² an (M, 1) column (.sum(1, keepdim=True)), ||e||² a (K,) row, "
    "and multiply by codebook.T"
)
BIG = (2048, 512, 128)  # M, K, d for the memory step: an (M, K, d) tensor is 512 MB, the (M, K) answer 4 MB
GROWTH = 32  # times the (M, K) answer that the kernel's memory may grow by, the reply's encoding included


def _small_enough(fn: Handle) -> None:
    """A plain call of the student's function on BIG inputs: its whole output equals the reference, and the
    student's process's peak memory meanwhile (measured from outside it, from before any student code ran if it
    held more since) stays within GROWTH times the (M, K) answer."""
    m, k, d = BIG
    z, codebook = torch.randn(m, d), torch.randn(k, d)
    found, grown = fn.kernel.measured(fn, z, codebook)
    expect_shape(found, (m, k), f"distances(z: ({m}, {d}), codebook: ({k}, {d}))")
    expect_close(found, torch.cdist(z, codebook) ** 2, f"for M={m}, K={k}, d={d} the distances", atol=1e-2)
    answer = 4 * m * k
    if grown is None:  # no /proc (macOS): count the elements of the largest tensor instead
        grown = 4 * fn.kernel.run(largest_tensor, fn, [m, d], [k, d])
    expect(
        grown <= GROWTH * answer,
        f"for M={m} vectors and K={k} codes of d={d}, memory grew by more than {GROWTH * answer / 2**20:.0f} MB "
        f"while computing them (the (M, K) answer is {answer / 2**20:.0f} MB): expand ||z||² - 2 z·e + ||e||² so "
        "nothing bigger than the (M, K) matrix is made",
    )


@check
def check_squared_distances(
    fn: Handle, memory_efficient: bool = False, m: int = 100, k: int = 32, d: int = 16, hidden: bool = False
) -> Report:
    """fn(z (M, d), codebook (K, d)) -> (M, K) squared L2 distances, optionally without an (M, K, d) tensor."""
    title = "squared_distances" if memory_efficient else "squared_distances_broadcast"
    with CheckRun(title, fn.kernel, seed=int(hidden), hidden=hidden) as run:
        run.step(
            f"matches torch.cdist(z, codebook) ** 2 on random inputs (M={m}, K={k}, d={d})",
            lambda: _distances_match(fn, m, k, d),
            hints={RuntimeError: BROADCAST_HINT},
        )
        if memory_efficient:
            run.step(
                f"never builds a tensor much bigger than (M, K) (M={BIG[0]}, K={BIG[1]}, d={BIG[2]})",
                lambda: _small_enough(fn),
            )
    return run.report


def _pair(value):
    expect(
        isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, torch.Tensor) for v in value),
        f"expected a tuple of two tensors (z_q, indices), found {type(value).__name__}",
    )
    expect(
        not (value[0].dtype == torch.long and value[1].is_floating_point()),
        "the tuple is (indices, z_q): return (z_q, indices) in this order",
    )
    return value


INDEX_HINT = (
    "an index beyond the codebook: take the argmin over the codes (dim=1), which gives one index in 0..K-1 per vector"
)


def _indices_match(found: torch.Tensor, z: torch.Tensor, codebook: torch.Tensor) -> None:
    m, k = len(z), len(codebook)
    expect_shape(
        found,
        (m,),
        "indices",
        "one index per code: the argmin must run over the codes, dim=1" if tuple(found.shape) == (k,) else "",
    )
    expect_integer(found, "indices")
    distances = torch.cdist(z, codebook)
    expected = distances.argmin(1)
    expect(not torch.equal(found, distances.argmax(1)), "argmax picks the farthest code: the nearest is the argmin")
    wrong = (found != expected).sum().item()
    expect(wrong == 0, f"{wrong} of {m} vectors got a code that is not the nearest (argmin over codes, dim=1?)")


@check
def check_quantize(quantize: Handle, m: int = 50, k: int = 20, d: int = 8, hidden: bool = False) -> Report:
    """quantize(z (M, d), codebook (K, d)) -> (z_q (M, d), indices (M,)) with the nearest code."""
    with CheckRun("quantize", quantize.kernel, seed=int(hidden), hidden=hidden) as run:
        z, codebook = run.step(f"on {m} vectors and {k} codes of d={d}", lambda: (torch.randn(m, d), torch.randn(k, d)))
        out = run.step("returns (z_q, indices)", lambda: _pair(quantize(z, codebook)), hints={IndexError: INDEX_HINT})
        run.step(
            f"indices: shape ({m},), integers, the closest code of each vector",
            lambda: _indices_match(out[1], z, codebook),
        )
        run.step(
            f"z_q: shape ({m}, {d}), the chosen code vectors",
            lambda: expect_close(
                out[0],
                codebook[out[1]],
                "z_q",
                causes={"z_q is the input z: return the chosen rows codebook[indices]": z},
            ),
        )
        run.step(
            "z_q passes gradients to the chosen codes (and none to z)",
            lambda: _gradient_to_codes(quantize, z, codebook),
        )
    return run.report


def _gradient_to_codes(quantize: Handle, z: torch.Tensor, codebook: torch.Tensor) -> None:
    """The codebook loss trains the codes through z_q: d(sum(z_q * u))/d codebook puts u's rows on the chosen codes."""
    upstream = torch.randn(len(z), z.shape[1])
    facts = quantize.kernel.run(general.gradients, quantize, [z, codebook], wrt=(0, 1), select=(0,), cotangent=upstream)
    to_z, to_codebook = facts.get("grads", (None, None))
    expect(
        facts["requires_grad"] and to_codebook is not None and bool(to_codebook.abs().sum() > 0),
        "z_q carries no gradient to the codebook: return the rows codebook[indices] themselves, not a detached "
        "copy (the codebook learns through z_q)",
    )
    expected = torch.zeros_like(codebook).index_add_(0, torch.cdist(z, codebook).argmin(1), upstream)
    expect(
        to_z is None or not bool(to_z.abs().sum() > 0),
        "z_q passes gradient to z: return codebook[indices] (the straight-through step comes later, in "
        "straight_through)",
    )
    expect_close(to_codebook, expected, "the codebook's gradient through z_q", atol=1e-4)


def _straight_through_gradients(straight_through: Handle, n: int, d: int) -> None:
    encoder, codebook = torch.nn.Linear(4, d), torch.randn(10, d)
    with torch.no_grad():
        z_e = encoder(torch.randn(n, 4))
    z_q = codebook[torch.cdist(z_e, codebook).argmin(1)]
    upstream = torch.randn(n, d)  # the gradient the decoder sends back to its input
    expect_close(
        straight_through(z_e, z_q),
        z_q,
        "forward value (should equal z_q)",
        causes={"the value is z_e: the decoder must see z_q; the .detach() goes on (z_q - z_e), added to z_e": z_e},
    )
    facts = straight_through.kernel.run(general.gradients, straight_through, [z_e, z_q], wrt=(0, 1), cotangent=upstream)
    expect(
        facts["requires_grad"],
        "the output is detached as a whole: no gradient can reach the encoder; detach only (z_q - z_e)",
    )
    to_encoder, to_codebook = facts["grads"]
    expect(
        to_encoder is not None,
        "no gradient reaches the encoder: the output must be z_e + (z_q - z_e).detach(), not z_q itself",
    )
    expect(
        not torch.allclose(to_encoder, torch.zeros_like(to_encoder)),
        "the encoder's gradient is zero: without .detach() on (z_q - z_e) as a whole, the two z_e terms cancel",
    )
    expect(
        not torch.allclose(to_encoder, -upstream),
        "the encoder gets the negated gradient: the .detach() is on the wrong term; write z_e + (z_q - z_e).detach()",
    )
    expect_close(to_encoder, upstream, "gradient at the encoder output (should equal the decoder input's)")
    expect(
        to_codebook is None or to_codebook.abs().max() == 0,
        "the codebook receives gradient from the reconstruction: wrap (z_q - z_e) in .detach()",
    )


@check
def check_straight_through(straight_through: Handle, n: int = 6, d: int = 8, hidden: bool = False) -> Report:
    """Forward gives z_q; backward copies the decoder-input gradient to z_e and gives the codebook none."""
    with CheckRun("straight_through", straight_through.kernel, seed=int(hidden), hidden=hidden) as run:
        run.step(
            "forward = z_q; encoder gets exactly the decoder-input gradient; codebook gets none",
            lambda: _straight_through_gradients(straight_through, n, d),
        )
    return run.report


def _losses_run(vq_losses: Handle, z_e: torch.Tensor, z_q: torch.Tensor) -> tuple:
    """The student's two losses, and for each whether it moves (the encoder output z_e, the codebook side z_q)."""
    out = vq_losses(z_e, z_q)
    if not (isinstance(out, tuple) and len(out) == 2 and all(torch.is_tensor(loss) for loss in out)):
        return out, None
    return out, tuple(_gradients(vq_losses, z_e, z_q, index) for index in range(2))


def _losses(facts: tuple):
    out, moves = facts
    expect(isinstance(out, tuple) and len(out) == 2, "expected a tuple (codebook_loss, commitment_loss)")
    for loss, name in zip(out, ("codebook_loss", "commitment_loss")):
        expect_shape(loss, (), name, "average over every element (F.mse_loss), giving one number")
    return out, moves


def _loss_causes(z_e: torch.Tensor, z_q: torch.Tensor) -> dict[str, torch.Tensor]:
    squared = (z_e - z_q) ** 2
    return {
        "β = 0.25 belongs in the total loss, not inside vq_losses": 0.25 * squared.mean(),
        "a sum: average the squared differences (mean squared error)": squared.sum(),
        "summed over the vector, averaged over the batch: average over every element": squared.sum(1).mean(),
        "absolute differences: square them": (z_e - z_q).abs().mean(),
        "the square root of the MSE: leave out the sqrt": squared.mean().sqrt(),
    }


def _gradients(vq_losses: Handle, z_e: torch.Tensor, z_q: torch.Tensor, index: int) -> tuple[bool, bool]:
    """Whether the loss at `index` moves (the encoder output z_e, the codebook side z_q)."""
    facts = vq_losses.kernel.run(general.gradients, vq_losses, [z_e, z_q], wrt=(0, 1), select=(index,))
    if not facts["requires_grad"]:
        return False, False
    return tuple(g is not None and bool(g.abs().sum() > 0) for g in facts["grads"])


def _each_moves_one_side(codebook_moves: tuple, commitment_moves: tuple) -> None:
    expect(
        not (codebook_moves == (True, False) and commitment_moves == (False, True)),
        "the two losses are swapped: the codebook loss ||sg[z_e] - z_q||² comes first, the commitment loss second",
    )
    for moves, name, side, other in (
        (codebook_moves, "the codebook loss", 1, "encoder output"),
        (commitment_moves, "the commitment loss", 0, "codebook"),
    ):
        expect(any(moves), f"{name} is detached from both inputs: detach only the side it must not move")
        target = "codebook" if side == 1 else "encoder output"
        expect(moves[side], f"{name} should move the {target}, but gives it no gradient: detach the {other} instead")
        expect(not moves[1 - side], f"{name} also moves the {other}: apply .detach() (the stop-gradient sg[.]) to it")


@check
def check_vq_losses(vq_losses: Handle, n: int = 4, d: int = 8, hidden: bool = False) -> Report:
    """vq_losses(z_e, z_q) -> (||sg[z_e] - z_q||², ||z_e - sg[z_q]||²) as means; each moves only its side."""
    with CheckRun("vq_losses", vq_losses.kernel, seed=1 + int(hidden), hidden=hidden) as run:
        z_e, z_q = run.step(f"on ({n}, {d}) inputs", lambda: (torch.randn(n, d), torch.randn(n, d)))
        (codebook_loss, commitment_loss), moves = run.step(
            "returns two scalars (codebook_loss, commitment_loss)", lambda: _losses(_losses_run(vq_losses, z_e, z_q))
        )
        expected, causes = ((z_e - z_q) ** 2).mean(), _loss_causes(z_e, z_q)
        run.step(
            "values: mean squared distance between z_e and z_q",
            lambda: (
                expect_close(codebook_loss, expected, "codebook_loss", causes=causes),
                expect_close(commitment_loss, expected, "commitment_loss", causes=causes),
            ),
        )
        run.step(
            "the codebook loss moves only the codebook, the commitment loss only the encoder",
            lambda: _each_moves_one_side(*moves),
        )
    return run.report
