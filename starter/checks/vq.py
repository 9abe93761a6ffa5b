"""Check cells of notebook 02 (VQ-VAE): codebook, distances, lookup, straight-through, losses."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from starter.checks import CheckRun, Report, expect, expect_close, expect_shape
from starter.models import vq as reference


class _LargestTensor(TorchDispatchMode):
    """Records the number of elements of the largest tensor any operation produces."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(tensor, torch.Tensor):
                self.largest = max(self.largest, tensor.numel())
        return out


def largest_tensor(fn: Callable, *shapes: tuple[int, ...]) -> int:
    """Elements in the largest tensor `fn` creates on inputs of these shapes, measured without allocating memory."""
    inputs = [torch.empty(shape, device="meta") for shape in shapes]
    with _LargestTensor() as mode:
        fn(*inputs)
    return mode.largest


def _codebook(make_codebook: Callable, k: int, d: int) -> nn.Parameter:
    codebook = make_codebook(k, d)
    expect(isinstance(codebook, nn.Parameter), f"expected an nn.Parameter (so the optimiser sees it), found {type(codebook).__name__}")
    expect_shape(codebook, (k, d), f"make_codebook({k}, {d})")
    return codebook


def check_codebook(make_codebook: Callable) -> Report:
    """make_codebook(K, d) returns a learnable (K, d) parameter with distinct rows."""
    with CheckRun("make_codebook") as run:
        codebook = run.step("returns a (128, 16) nn.Parameter", lambda: _codebook(make_codebook, 128, 16))
        run.step("shape follows the arguments (8, 3)", lambda: _codebook(make_codebook, 8, 3))
        run.step("codes start different from each other", lambda: expect(
            torch.unique(codebook.detach(), dim=0).shape[0] == 128,
            "some codes are identical: the nearest-code search could never tell them apart (initialise at random)"))
    return run.report


def _distances_match(fn: Callable) -> None:
    z, codebook = torch.randn(100, 16), torch.randn(32, 16)
    expect_close(fn(z, codebook), torch.cdist(z, codebook) ** 2, "distances(z: (100, 16), codebook: (32, 16))", atol=1e-3)


def check_squared_distances(fn: Callable, memory_efficient: bool = False) -> Report:
    """fn(z (M, d), codebook (K, d)) -> (M, K) squared L2 distances, optionally without an (M, K, d) tensor."""
    with CheckRun(fn.__name__) as run:
        run.step("matches torch.cdist(z, codebook) ** 2 on random inputs", lambda: _distances_match(fn))
        if memory_efficient:
            m, k, d = 65_536, 512, 64
            def small_enough():
                largest = largest_tensor(fn, (m, d), (k, d))
                expect(largest <= 2 * m * k, f"for M={m} vectors and K={k} codes of d={d}, the largest tensor built has "
                       f"{largest:.3g} elements ({4 * largest / 2**30:.1f} GiB): expand ||z||² - 2 z·e + ||e||² so "
                       f"nothing bigger than the (M, K) matrix is made")
            run.step("never builds a tensor bigger than (M, K) (M=65536, K=512, d=64)", small_enough)
    return run.report


def check_quantize(quantize: Callable) -> Report:
    """quantize(z (M, d), codebook (K, d)) -> (z_q (M, d), indices (M,)) with the nearest code."""
    z, codebook = torch.randn(50, 8), torch.randn(20, 8)
    expected = reference.nearest_codes(z, codebook)
    with CheckRun("quantize") as run:
        out = run.step("returns (z_q, indices)", lambda: _pair(quantize(z, codebook)))
        run.step("indices: shape (50,), the closest code of each vector", lambda: _indices_match(out[1], expected))
        run.step("z_q: shape (50, 8), the chosen code vectors", lambda: expect_close(out[0], codebook[expected], "z_q"))
    return run.report


def _pair(value):
    expect(isinstance(value, tuple) and len(value) == 2, f"expected a tuple (z_q, indices), found {type(value).__name__}")
    return value


def _indices_match(found: torch.Tensor, expected: torch.Tensor) -> None:
    expect_shape(found, expected.shape, "indices")
    wrong = (found.long() != expected).sum().item()
    expect(wrong == 0, f"{wrong} of {len(expected)} vectors got a code that is not the nearest (argmin over codes, dim=1?)")


def _straight_through_gradients(straight_through: Callable) -> None:
    encoder, codebook = nn.Linear(4, 8), nn.Parameter(torch.randn(10, 8))
    z_e = encoder(torch.randn(6, 4))
    z_q = codebook[reference.nearest_codes(z_e.detach(), codebook)]
    decoder_input = straight_through(z_e, z_q)
    expect_close(decoder_input, z_q, "forward value (should equal z_q)")
    upstream = torch.randn(6, 8)  # the gradient the decoder sends back to its input
    to_encoder, to_codebook = torch.autograd.grad((decoder_input * upstream).sum(), [z_e, codebook], allow_unused=True)
    expect(to_encoder is not None, "no gradient reaches the encoder: do not detach z_e itself")
    expect_close(to_encoder, upstream, "gradient at the encoder output (should equal the decoder input's)")
    expect(to_codebook is None or to_codebook.abs().max() == 0,
           "the codebook receives gradient from the reconstruction: wrap (z_q - z_e) in .detach()")


def check_straight_through(straight_through: Callable) -> Report:
    """Forward gives z_q; backward copies the decoder-input gradient to z_e and gives the codebook none."""
    with CheckRun("straight_through") as run:
        run.step("forward = z_q; encoder gets exactly the decoder-input gradient; codebook gets none",
                 lambda: _straight_through_gradients(straight_through))
    return run.report


def _losses(vq_losses: Callable):
    torch.manual_seed(1)
    z_e, z_q = torch.randn(4, 8, requires_grad=True), torch.randn(4, 8, requires_grad=True)
    out = vq_losses(z_e, z_q)
    expect(isinstance(out, tuple) and len(out) == 2, "expected a tuple (codebook_loss, commitment_loss)")
    return z_e, z_q, out


def _moves_only(loss: torch.Tensor, target: torch.Tensor, other: torch.Tensor, name: str, target_name: str) -> None:
    expect(loss.requires_grad, f"{name} is detached from both inputs")
    g_target, g_other = torch.autograd.grad(loss, [target, other], allow_unused=True, retain_graph=True)
    expect(g_target is not None and g_target.abs().sum() > 0, f"{name} should move the {target_name}, but gives it no gradient")
    other_name = "encoder output" if target_name == "codebook" else "codebook"
    expect(g_other is None or g_other.abs().sum() == 0,
           f"{name} also moves the {other_name}: apply .detach() (the stop-gradient sg[.]) to it")


def check_vq_losses(vq_losses: Callable) -> Report:
    """vq_losses(z_e, z_q) -> (||sg[z_e] - z_q||², ||z_e - sg[z_q]||²) as means; each moves only its side."""
    with CheckRun("vq_losses") as run:
        z_e, z_q, (codebook_loss, commitment_loss) = run.step("returns (codebook_loss, commitment_loss)", lambda: _losses(vq_losses))
        expected = ((z_e - z_q) ** 2).mean()
        run.step("values: mean squared distance between z_e and z_q", lambda: (
            expect_close(codebook_loss, expected, "codebook_loss"), expect_close(commitment_loss, expected, "commitment_loss")))
        run.step("the codebook loss moves only the codebook",
                 lambda: _moves_only(codebook_loss, z_q, z_e, "the codebook loss", "codebook"))
        run.step("the commitment loss moves only the encoder",
                 lambda: _moves_only(commitment_loss, z_e, z_q, "the commitment loss", "encoder output"))
    return run.report
