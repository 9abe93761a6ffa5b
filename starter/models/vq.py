"""Vector quantisation (notebook 02): nearest-code lookup, straight-through gradients, the VQ-VAE losses,
and two cures for dead codes, restarts and the EMA codebook update of the VQ-VAE paper's appendix."""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from starter.models.autoencoder import Decoder, Encoder, conv_decoder, conv_encoder
from starter.models.registry import register


def make_codebook(num_codes: int, code_dim: int) -> nn.Parameter:
    """A learnable (K, d) codebook, uniform in [-1/K, 1/K] as in the VQ-VAE reference implementation."""
    return nn.Parameter(torch.empty(num_codes, code_dim).uniform_(-1 / num_codes, 1 / num_codes))


def squared_distances(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(M, d) vectors and (K, d) codes -> (M, K) squared L2 distances, as ||z||² - 2 z·e + ||e||²
    (no (M, K, d) tensor)."""
    return z.pow(2).sum(1, keepdim=True) - 2 * z @ codebook.t() + codebook.pow(2).sum(1)


def nearest_codes(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(M, d) vectors -> (M,) index of the closest code."""
    return squared_distances(z, codebook).argmin(1)


def quantize(z: torch.Tensor, codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, d) vectors -> ((M, d) nearest code vectors, (M,) their indices)."""
    indices = nearest_codes(z, codebook)
    return codebook[indices], indices


def straight_through(z_e: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """Forward: z_q. Backward: the gradient passes to z_e unchanged (and none to z_q)."""
    return z_e + (z_q - z_e).detach()


def vq_losses(z_e: torch.Tensor, z_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(codebook loss ||sg[z_e] - e||², commitment loss ||z_e - sg[e]||²), both mean squared errors."""
    return F.mse_loss(z_q, z_e.detach()), F.mse_loss(z_e, z_q.detach())


class VQParts(NamedTuple):
    """The functions a VectorQuantizer is made of: notebook 02's exercises, the reference versions by default."""

    make_codebook: Callable[[int, int], torch.Tensor] = make_codebook
    quantize: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] = quantize
    straight_through: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = straight_through
    vq_losses: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] = vq_losses


def working_parts(**functions: Callable) -> VQParts:
    """VQParts made of the given functions (e.g. a student's), each one that is still a stub (raises
    NotImplementedError) replaced by the reference version, with a line saying so. The random state is unchanged."""
    z, codebook = torch.linspace(-1, 1, 8).view(4, 2), torch.linspace(1, -1, 6).view(3, 2)
    trials = {"make_codebook": (3, 2), "quantize": (z, codebook), "straight_through": (z, z), "vq_losses": (z, z)}
    chosen = {}
    for name, function in functions.items():
        try:
            with torch.random.fork_rng():
                function(*trials[name])
            chosen[name] = function
        except NotImplementedError:
            print(f"{name} is not implemented yet: using the reference version from starter.models.vq")
    return VQParts(**chosen)


class Quantized(NamedTuple):
    z_q: torch.Tensor  # (N, d, H, W) quantised vectors, with straight-through gradients
    indices: torch.Tensor  # (N, H, W) code index at each position
    codebook_loss: torch.Tensor
    commitment_loss: torch.Tensor


class VectorQuantizer(nn.Module):
    """A K x d codebook. `update="grad"` learns it by the codebook loss, `update="ema"` by moving averages;
    `restart=True` re-initialises codes unused for a while from recent encoder outputs. `parts` are the functions
    it is made of (notebook 02 passes the student's)."""

    def __init__(
        self,
        num_codes: int = 128,
        code_dim: int = 16,
        update: str = "grad",
        restart: bool = False,
        decay: float = 0.99,
        restart_after: int = 100,
        parts: VQParts = VQParts(),
    ):
        super().__init__()
        if update not in {"grad", "ema"}:
            raise ValueError(f"update must be 'grad' or 'ema', got {update!r}")
        self.num_codes, self.code_dim, self.update, self.restart = num_codes, code_dim, update, restart
        self.decay, self.restart_after, self.parts = decay, restart_after, parts
        initial = parts.make_codebook(num_codes, code_dim).detach().clone()
        if update == "grad":
            self.codebook = nn.Parameter(initial)
        else:
            self.register_buffer("codebook", initial)
            self.register_buffer("ema_count", torch.ones(num_codes))
            self.register_buffer("ema_sum", initial.clone())
        self.register_buffer("steps_unused", torch.zeros(num_codes, dtype=torch.long))

    def forward(self, z_e: torch.Tensor) -> Quantized:
        """(N, d, H, W) encoder outputs -> quantised vectors, code indices and the two VQ losses."""
        n, d, h, w = z_e.shape
        if d != self.code_dim:
            raise ValueError(f"expected encoder outputs with {self.code_dim} channels, got shape {tuple(z_e.shape)}")
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, d)
        z_q, indices = self.parts.quantize(flat.detach(), self.codebook)
        if self.training:
            self._after_lookup(flat.detach(), indices)
        z_q = z_q.view(n, h, w, d).permute(0, 3, 1, 2)
        codebook_loss, commitment_loss = self.parts.vq_losses(z_e, z_q)
        if self.update == "ema":  # the codebook is not learnt by gradient: that term has nothing to move
            codebook_loss = codebook_loss.detach() * 0
        return Quantized(self.parts.straight_through(z_e, z_q), indices.view(n, h, w), codebook_loss, commitment_loss)

    @torch.no_grad()
    def _after_lookup(self, flat: torch.Tensor, indices: torch.Tensor) -> None:
        counts = torch.bincount(indices, minlength=self.num_codes).to(flat.dtype)
        if self.update == "ema":
            sums = torch.zeros_like(self.ema_sum).index_add_(0, indices, flat)
            self.ema_count.mul_(self.decay).add_(counts, alpha=1 - self.decay)
            self.ema_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
            total = self.ema_count.sum()  # Laplace smoothing keeps rarely used codes from dividing by ~0
            smoothed = (self.ema_count + 1e-5) / (total + self.num_codes * 1e-5) * total
            self.codebook.copy_(self.ema_sum / smoothed.unsqueeze(1))
        self.steps_unused.add_(1).masked_fill_(counts > 0, 0)
        if self.restart:
            dead = (self.steps_unused >= self.restart_after).nonzero().squeeze(1)
            if len(dead):
                fresh = flat[torch.randint(len(flat), (len(dead),), device=flat.device)]
                self.codebook.data[dead] = fresh
                if self.update == "ema":
                    self.ema_sum[dead], self.ema_count[dead] = fresh, 1.0
                self.steps_unused[dead] = 0

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """(N, H, W) code indices -> (N, d, H, W) code vectors."""
        return F.embedding(indices, self.codebook).permute(0, 3, 1, 2)


@register("vqvae", "images")
class VQVAE(nn.Module):
    """Conv encoder -> d-dimensional vectors on a 7x7 grid -> nearest of K codes -> conv decoder."""

    def __init__(
        self,
        num_codes: int = 128,
        code_dim: int = 16,
        hidden: int = 32,
        update: str = "grad",
        restart: bool = False,
        parts: VQParts = VQParts(),
    ):
        super().__init__()
        self.encoder = nn.Sequential(conv_encoder(hidden), nn.Conv2d(2 * hidden, code_dim, 1))
        self.quantizer = VectorQuantizer(num_codes, code_dim, update=update, restart=restart, parts=parts)
        self.decoder = nn.Sequential(nn.Conv2d(code_dim, 2 * hidden, 3, padding=1), nn.ReLU(), conv_decoder(hidden))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Quantized]:
        quantized = self.quantizer(self.encoder(x))
        return self.decoder(quantized.z_q), quantized

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 28, 28) images -> (N, 7, 7) code indices."""
        return self.quantizer(self.encoder(x)).indices

    @torch.no_grad()
    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """(N, 7, 7) code indices -> (N, 1, 28, 28) images."""
        return self.decoder(self.quantizer.lookup(indices))


def vqvae_loss(model: VQVAE, batch: tuple, beta: float = 0.25) -> dict[str, torch.Tensor]:
    """Reconstruction + codebook + beta * commitment, with each term returned for logging."""
    x, _ = batch
    x_hat, q = model(x)
    recon = F.mse_loss(x_hat, x)
    return {
        "loss": recon + q.codebook_loss + beta * q.commitment_loss,
        "recon": recon,
        "codebook": q.codebook_loss,
        "commitment": q.commitment_loss,
    }


class SingleCodeAutoencoder(nn.Module):
    """The notebook-01 autoencoder with its whole latent vector quantised to one of K codes: K possible outputs."""

    def __init__(self, num_codes: int = 128, code_dim: int = 16, hidden: int = 32, parts: VQParts = VQParts()):
        super().__init__()
        self.encoder, self.decoder = Encoder(code_dim, hidden), Decoder(code_dim, hidden)
        self.quantizer = VectorQuantizer(num_codes, code_dim, restart=True, parts=parts)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Quantized]:
        quantized = self.quantizer(self.encoder(x)[:, :, None, None])  # a 1x1 "grid"
        return self.decoder(quantized.z_q.flatten(1)), quantized

    @torch.no_grad()
    def every_output(self) -> torch.Tensor:
        """The K images this model can ever produce, one per code."""
        return self.decoder(self.quantizer.codebook)
