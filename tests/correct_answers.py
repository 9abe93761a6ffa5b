"""Student-style answers to every exercise cell of notebooks/NN_*.ipynb, written from the student notebooks' prose.

CORRECT_ANSWERS[grade_id]: answers that are correct according to the prose, each the whole exercise cell as a
student would submit it. UNSEEN_WRONG_ANSWERS[grade_id]: (answer, the mistake in plain words).

Some cells rely on names that the notebook defines elsewhere, exactly as the student notebook does:
notebook 03's `pixelcnn` cell uses the student's `MaskedConv2d` (exercise `masked-conv`), and notebook 05's
`vae-loss` cell uses the student's `reparameterize` and `kl_to_standard_normal` (exercises `reparameterize`, `kl`),
as the prose asks ("and your two functions"). Everything else only needs the notebook's own import cell.
"""

from __future__ import annotations

from typing import NamedTuple


class Answer(NamedTuple):
    name: str  # short description, e.g. "einsum instead of matmul"
    source: str  # the COMPLETE source of the exercise cell as the student would submit it


# ---------------------------------------------------------------------------------------------------------------
# notebook 01: autoencoder
# ---------------------------------------------------------------------------------------------------------------

ENCODER = [
    Answer(
        "nn.Sequential with nn.ReLU and nn.Flatten",
        '''class Encoder(nn.Module):
    """(N, 1, 28, 28) images -> (N, latent_dim) latent codes."""

    def __init__(self, latent_dim: int = 16, hidden: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, hidden, kernel_size=4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, 2 * hidden, kernel_size=4, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(2 * hidden * 7 * 7, latent_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
''',
    ),
    Answer(
        "explicit layers, F.relu imported in the cell, .view(x.size(0), -1), no type hints",
        '''import torch.nn.functional as F


class Encoder(nn.Module):
    """(N, 1, 28, 28) images -> (N, latent_dim) latent codes."""

    def __init__(self, latent_dim=16, hidden=32):
        super().__init__()
        self.conv1 = nn.Conv2d(1, hidden, 4, 2, 1)            # 28 -> 14
        self.conv2 = nn.Conv2d(hidden, hidden * 2, 4, 2, 1)   # 14 -> 7
        self.fc = nn.Linear(hidden * 2 * 7 * 7, latent_dim)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = x.view(x.size(0), -1)
        return self.fc(x)
''',
    ),
    Answer(
        "conv stack and linear head as two Sequentials, inplace ReLU, torch.flatten",
        '''class Encoder(nn.Module):
    """(N, 1, 28, 28) images -> (N, latent_dim) latent codes."""

    def __init__(self, latent_dim: int = 16, hidden: int = 32):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels=1, out_channels=hidden, kernel_size=4, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels=hidden, out_channels=2 * hidden, kernel_size=4, stride=2, padding=1),
            nn.ReLU(inplace=True),
        )
        self.to_latent = nn.Linear(in_features=2 * hidden * 49, out_features=latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        h = torch.flatten(h, start_dim=1)
        z = self.to_latent(h)  # no activation: any real vector
        return z
''',
    ),
    Answer(
        "nn.ModuleList loop with one shared nn.ReLU module, .reshape(len(x), -1)",
        '''class Encoder(nn.Module):
    """(N, 1, 28, 28) images -> (N, latent_dim) latent codes."""

    def __init__(self, latent_dim: int = 16, hidden: int = 32):
        super().__init__()
        channels = [1, hidden, 2 * hidden]
        self.convs = nn.ModuleList(
            [nn.Conv2d(channels[i], channels[i + 1], kernel_size=4, stride=2, padding=1) for i in range(2)]
        )
        self.relu = nn.ReLU()
        self.linear = nn.Linear(channels[-1] * 7 * 7, latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = self.relu(conv(x))
        return self.linear(x.reshape(len(x), -1))
''',
    ),
    Answer(
        "helper function named conv_encoder (like a starter function) defined in the cell",
        '''def conv_encoder(hidden):
    """The two stride-2 convolutions, each followed by a ReLU."""
    return nn.Sequential(
        nn.Conv2d(1, hidden, 4, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(hidden, 2 * hidden, 4, stride=2, padding=1), nn.ReLU(),
    )


class Encoder(nn.Module):
    """(N, 1, 28, 28) images -> (N, latent_dim) latent codes."""

    def __init__(self, latent_dim: int = 16, hidden: int = 32):
        super().__init__()
        self.conv = conv_encoder(hidden)
        self.flat_size = 2 * hidden * 7 * 7
        self.fc = nn.Linear(self.flat_size, latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).flatten(start_dim=1))
''',
    ),
    Answer(
        "torch.relu calls, sizes stored as attributes, reshape to (-1, flat)",
        '''class Encoder(nn.Module):
    """(N, 1, 28, 28) images -> (N, latent_dim) latent codes."""

    def __init__(self, latent_dim: int = 16, hidden: int = 32):
        super().__init__()
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.down1 = nn.Conv2d(1, hidden, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1))
        self.down2 = nn.Conv2d(hidden, 2 * hidden, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1))
        self.out = nn.Linear(2 * hidden * 7 * 7, latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h1 = torch.relu(self.down1(x))     # (N, hidden, 14, 14)
        h2 = torch.relu(self.down2(h1))    # (N, 2 hidden, 7, 7)
        return self.out(h2.reshape(-1, 2 * self.hidden * 7 * 7))
''',
    ),
]

DECODER = [
    Answer(
        "nn.Sequential with nn.Unflatten",
        '''class Decoder(nn.Module):
    """(N, latent_dim) latent codes -> (N, 1, 28, 28) images in [0, 1]."""

    def __init__(self, latent_dim: int = 16, hidden: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 2 * hidden * 7 * 7),
            nn.Unflatten(1, (2 * hidden, 7, 7)),
            nn.ConvTranspose2d(2 * hidden, hidden, kernel_size=4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(hidden, 1, kernel_size=4, stride=2, padding=1),
            nn.Sigmoid(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)
''',
    ),
    Answer(
        "explicit layers, F.relu and torch.sigmoid, .view(-1, C, 7, 7)",
        '''import torch.nn.functional as F


class Decoder(nn.Module):
    """(N, latent_dim) latent codes -> (N, 1, 28, 28) images in [0, 1]."""

    def __init__(self, latent_dim=16, hidden=32):
        super().__init__()
        self.hidden = hidden
        self.fc = nn.Linear(latent_dim, 2 * hidden * 7 * 7)
        self.deconv1 = nn.ConvTranspose2d(2 * hidden, hidden, 4, 2, 1)
        self.deconv2 = nn.ConvTranspose2d(hidden, 1, 4, 2, 1)

    def forward(self, z):
        h = self.fc(z).view(-1, 2 * self.hidden, 7, 7)   # no ReLU here
        h = F.relu(self.deconv1(h))
        return torch.sigmoid(self.deconv2(h))
''',
    ),
    Answer(
        "linear + Sequential of transposed convs, reshape with z.shape[0]",
        '''class Decoder(nn.Module):
    """(N, latent_dim) latent codes -> (N, 1, 28, 28) images in [0, 1]."""

    def __init__(self, latent_dim: int = 16, hidden: int = 32):
        super().__init__()
        self.channels = 2 * hidden
        self.linear = nn.Linear(latent_dim, self.channels * 7 * 7)
        self.up = nn.Sequential(
            nn.ConvTranspose2d(self.channels, hidden, kernel_size=4, stride=2, padding=1),  # 7 -> 14
            nn.ReLU(),
            nn.ConvTranspose2d(hidden, 1, kernel_size=4, stride=2, padding=1),              # 14 -> 28
            nn.Sigmoid(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.linear(z)
        h = h.reshape(z.shape[0], self.channels, 7, 7)
        return self.up(h)
''',
    ),
    Answer(
        "helper named conv_decoder (like a starter function) and nn.ReLU / nn.Sigmoid modules",
        '''def conv_decoder(hidden):
    return nn.Sequential(
        nn.ConvTranspose2d(2 * hidden, hidden, 4, stride=2, padding=1),
        nn.ReLU(),
        nn.ConvTranspose2d(hidden, 1, 4, stride=2, padding=1),
    )


class Decoder(nn.Module):
    """(N, latent_dim) latent codes -> (N, 1, 28, 28) images in [0, 1]."""

    def __init__(self, latent_dim: int = 16, hidden: int = 32):
        super().__init__()
        self.hidden = hidden
        self.project = nn.Linear(latent_dim, 2 * hidden * 7 * 7)
        self.deconv = conv_decoder(hidden)
        self.sigmoid = nn.Sigmoid()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.project(z)
        x = x.unflatten(1, (2 * self.hidden, 7, 7))
        x = self.deconv(x)
        return self.sigmoid(x)
''',
    ),
    Answer(
        "keyword arguments everywhere, torch.relu, view with z.size(0)",
        '''class Decoder(nn.Module):
    """(N, latent_dim) latent codes -> (N, 1, 28, 28) images in [0, 1]."""

    def __init__(self, latent_dim: int = 16, hidden: int = 32):
        super().__init__()
        self.h = hidden
        self.fc = nn.Linear(in_features=latent_dim, out_features=2 * hidden * 7 * 7)
        self.t1 = nn.ConvTranspose2d(in_channels=2 * hidden, out_channels=hidden, kernel_size=4, stride=2,
                                     padding=1)
        self.t2 = nn.ConvTranspose2d(in_channels=hidden, out_channels=1, kernel_size=4, stride=2, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        n = z.size(0)
        x = self.fc(z).view(n, 2 * self.h, 7, 7)
        x = torch.relu(self.t1(x))
        x = self.t2(x)
        return x.sigmoid()
''',
    ),
    Answer(
        "nn.ModuleDict of layers",
        '''class Decoder(nn.Module):
    """(N, latent_dim) latent codes -> (N, 1, 28, 28) images in [0, 1]."""

    def __init__(self, latent_dim: int = 16, hidden: int = 32):
        super().__init__()
        self.shape = (2 * hidden, 7, 7)
        self.layers = nn.ModuleDict({
            "linear": nn.Linear(latent_dim, 2 * hidden * 49),
            "up1": nn.ConvTranspose2d(2 * hidden, hidden, kernel_size=4, stride=2, padding=1),
            "up2": nn.ConvTranspose2d(hidden, 1, kernel_size=4, stride=2, padding=1),
        })

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.layers["linear"](z).reshape(-1, *self.shape)
        x = nn.functional.relu(self.layers["up1"](x))
        return torch.sigmoid(self.layers["up2"](x))
''',
    ),
]

LOSS = [
    Answer(
        "F.mse_loss imported in the cell",
        '''import torch.nn.functional as F


def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared error per pixel, averaged over the batch."""
    return F.mse_loss(x_hat, x)
''',
    ),
    Answer(
        "((x_hat - x) ** 2).mean()",
        '''def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared error per pixel, averaged over the batch."""
    return ((x_hat - x) ** 2).mean()
''',
    ),
    Answer(
        "sum of squares divided by numel, no type hints",
        '''def reconstruction_loss(x_hat, x):
    """Mean squared error per pixel, averaged over the batch."""
    squared = (x_hat - x).pow(2)
    return squared.sum() / x.numel()
''',
    ),
    Answer(
        "per-image mean over pixels, then mean over the batch",
        '''def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared error per pixel, averaged over the batch."""
    per_image = torch.square(x_hat - x).flatten(start_dim=1).mean(dim=1)  # (N,)
    return per_image.mean()
''',
    ),
    Answer(
        "nn.MSELoss module",
        '''def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared error per pixel, averaged over the batch."""
    criterion = nn.MSELoss(reduction="mean")
    return criterion(x_hat, x)
''',
    ),
    Answer(
        "computed in float64, converted back",
        '''def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared error per pixel, averaged over the batch."""
    diff = x_hat.double() - x.double()
    return torch.mean(diff * diff).to(x_hat.dtype)
''',
    ),
]

TRAIN_EPOCH = [
    Answer(
        "loop over batches, weigh by len(batch[0])",
        '''def train_epoch(model: nn.Module, loader, optimizer: torch.optim.Optimizer, loss_fn) -> float:
    """One epoch of gradient steps; returns the mean training loss."""
    model.train()
    total, count = 0.0, 0
    for batch in loader:
        loss = loss_fn(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        size = len(batch[0])
        total += loss.item() * size
        count += size
    return total / count
''',
    ),
    Answer(
        "unpacks (x, y), zero_grad(set_to_none=True) first",
        '''def train_epoch(model: nn.Module, loader, optimizer: torch.optim.Optimizer, loss_fn) -> float:
    """One epoch of gradient steps; returns the mean training loss."""
    model.train()
    running_loss = 0.0
    seen = 0
    for x, y in loader:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model, (x, y))
        loss.backward()
        optimizer.step()
        running_loss += loss.item() * x.shape[0]
        seen += x.shape[0]
    return running_loss / seen
''',
    ),
    Answer(
        "lists of losses and sizes, math.fsum",
        '''import math


def train_epoch(model: nn.Module, loader, optimizer: torch.optim.Optimizer, loss_fn) -> float:
    """One epoch of gradient steps; returns the mean training loss."""
    model.train()
    losses, sizes = [], []
    for batch in loader:
        images = batch[0]
        loss = loss_fn(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        sizes.append(images.size(0))
    return math.fsum(l * s for l, s in zip(losses, sizes)) / sum(sizes)
''',
    ),
    Answer(
        "incremental weighted running mean",
        '''def train_epoch(model: nn.Module, loader, optimizer: torch.optim.Optimizer, loss_fn) -> float:
    """One epoch of gradient steps; returns the mean training loss."""
    model.train()
    mean_loss = 0.0
    n_seen = 0
    for step, batch in enumerate(loader):
        loss = loss_fn(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        batch_size = batch[0].shape[0]
        n_seen += batch_size
        mean_loss += (loss.item() - mean_loss) * batch_size / n_seen
    return float(mean_loss)
''',
    ),
    Answer(
        "float64 tensor accumulator, returns float(...)",
        '''def train_epoch(model: nn.Module, loader, optimizer: torch.optim.Optimizer, loss_fn) -> float:
    """One epoch of gradient steps; returns the mean training loss."""
    model.train()
    total = torch.zeros((), dtype=torch.float64)
    examples = 0
    for images, labels in loader:
        optimizer.zero_grad()
        loss = loss_fn(model, (images, labels))
        loss.backward()
        optimizer.step()
        total += loss.item() * len(images)
        examples += len(images)
    return float(total / examples)
''',
    ),
    Answer(
        "helper function for one step defined in the cell",
        '''def train_step(model, batch, optimizer, loss_fn):
    """One gradient step; returns the batch loss as a float."""
    loss = loss_fn(model, batch)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def train_epoch(model: nn.Module, loader, optimizer: torch.optim.Optimizer, loss_fn) -> float:
    """One epoch of gradient steps; returns the mean training loss."""
    model.train()
    weighted = 0.0
    n = 0
    for batch in loader:
        k = batch[0].size(0)
        weighted += train_step(model, batch, optimizer, loss_fn) * k
        n += k
    return weighted / n
''',
    ),
]

# ---------------------------------------------------------------------------------------------------------------
# notebook 02: VQ-VAE
# ---------------------------------------------------------------------------------------------------------------

CODEBOOK = [
    Answer(
        "torch.empty(...).uniform_",
        '''def make_codebook(num_codes: int, code_dim: int) -> nn.Parameter:
    """A learnable (num_codes, code_dim) matrix, one code vector per row."""
    return nn.Parameter(torch.empty(num_codes, code_dim).uniform_(-1 / num_codes, 1 / num_codes))
''',
    ),
    Answer(
        "rescaled torch.rand",
        '''def make_codebook(num_codes: int, code_dim: int) -> nn.Parameter:
    """A learnable (num_codes, code_dim) matrix, one code vector per row."""
    bound = 1.0 / num_codes
    weights = (torch.rand(num_codes, code_dim) * 2 - 1) * bound
    return nn.Parameter(weights)
''',
    ),
    Answer(
        "nn.init.uniform_ on a Parameter",
        '''def make_codebook(num_codes: int, code_dim: int) -> nn.Parameter:
    """A learnable (num_codes, code_dim) matrix, one code vector per row."""
    codebook = nn.Parameter(torch.empty(num_codes, code_dim))
    nn.init.uniform_(codebook, a=-1.0 / num_codes, b=1.0 / num_codes)
    return codebook
''',
    ),
    Answer(
        "torch.distributions.Uniform, requires_grad=True",
        '''def make_codebook(num_codes: int, code_dim: int) -> nn.Parameter:
    """A learnable (num_codes, code_dim) matrix, one code vector per row."""
    uniform = torch.distributions.Uniform(-1.0 / num_codes, 1.0 / num_codes)
    return nn.Parameter(uniform.sample((num_codes, code_dim)), requires_grad=True)
''',
    ),
    Answer(
        "drawn in float64 then converted to float32",
        '''def make_codebook(num_codes, code_dim):
    """A learnable (num_codes, code_dim) matrix, one code vector per row."""
    values = torch.rand(num_codes, code_dim, dtype=torch.float64)  # [0, 1)
    values = (2 * values - 1) / num_codes                          # [-1/K, 1/K)
    return nn.Parameter(values.float())
''',
    ),
    Answer(
        "nn.Embedding's weight re-initialised (the reference implementation's style)",
        '''def make_codebook(num_codes: int, code_dim: int) -> nn.Parameter:
    """A learnable (num_codes, code_dim) matrix, one code vector per row."""
    embedding = nn.Embedding(num_codes, code_dim)
    embedding.weight.data.uniform_(-1.0 / num_codes, 1.0 / num_codes)
    return embedding.weight
''',
    ),
]

DISTANCES_BROADCAST = [
    Answer(
        "z[:, None, :] - codebook[None, :, :], squared, summed",
        '''def squared_distances_broadcast(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(M, d) vectors and (K, d) codes -> (M, K) squared distances, by broadcasting."""
    diff = z[:, None, :] - codebook[None, :, :]  # (M, K, d)
    return (diff ** 2).sum(dim=-1)
''',
    ),
    Answer(
        "unsqueeze and pow(2).sum(2)",
        '''def squared_distances_broadcast(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(M, d) vectors and (K, d) codes -> (M, K) squared distances, by broadcasting."""
    return (z.unsqueeze(1) - codebook.unsqueeze(0)).pow(2).sum(2)
''',
    ),
    Answer(
        "einsum on the difference",
        '''def squared_distances_broadcast(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(M, d) vectors and (K, d) codes -> (M, K) squared distances, by broadcasting."""
    diff = z[:, None] - codebook  # codebook broadcasts as (1, K, d)
    return torch.einsum("mkd,mkd->mk", diff, diff)
''',
    ),
    Answer(
        "computed in float64 then converted back",
        '''def squared_distances_broadcast(z, codebook):
    """(M, d) vectors and (K, d) codes -> (M, K) squared distances, by broadcasting."""
    d64 = (z.double()[:, None, :] - codebook.double()[None, :, :]).square().sum(-1)
    return d64.to(z.dtype)
''',
    ),
    Answer(
        "torch.sum(diff * diff, axis=-1), local named squared_distances",
        '''def squared_distances_broadcast(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(M, d) vectors and (K, d) codes -> (M, K) squared distances, by broadcasting."""
    M, d = z.shape
    K = codebook.shape[0]
    diff = z.view(M, 1, d) - codebook.view(1, K, d)
    squared_distances = torch.sum(diff * diff, axis=-1)
    return squared_distances
''',
    ),
    Answer(
        "one broadcast per code in a loop, then torch.stack",
        '''def squared_distances_broadcast(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(M, d) vectors and (K, d) codes -> (M, K) squared distances, by broadcasting."""
    columns = []
    for code in codebook:                 # code: (d,), broadcast against (M, d)
        columns.append(((z - code) ** 2).sum(dim=1))
    return torch.stack(columns, dim=1)    # (M, K)
''',
    ),
]

DISTANCES = [
    Answer(
        "expanded form with @ and keepdim",
        '''def squared_distances(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(M, d) vectors and (K, d) codes -> (M, K) squared distances, without an (M, K, d) tensor."""
    z_sq = z.pow(2).sum(1, keepdim=True)          # (M, 1)
    e_sq = codebook.pow(2).sum(1, keepdim=True).T  # (1, K)
    return z_sq - 2 * z @ codebook.T + e_sq
''',
    ),
    Answer(
        "einsum for the dot products",
        '''def squared_distances(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(M, d) vectors and (K, d) codes -> (M, K) squared distances, without an (M, K, d) tensor."""
    dots = torch.einsum("md,kd->mk", z, codebook)
    return (z * z).sum(-1, keepdim=True) - 2 * dots + (codebook * codebook).sum(-1)[None, :]
''',
    ),
    Answer(
        "torch.addmm, norms added first",
        '''def squared_distances(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(M, d) vectors and (K, d) codes -> (M, K) squared distances, without an (M, K, d) tensor."""
    norms = z.pow(2).sum(dim=1, keepdim=True) + codebook.pow(2).sum(dim=1).unsqueeze(0)  # (M, K)
    return torch.addmm(norms, z, codebook.t(), beta=1.0, alpha=-2.0)
''',
    ),
    Answer(
        "float64 computation converted back to the input dtype",
        '''def squared_distances(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(M, d) vectors and (K, d) codes -> (M, K) squared distances, without an (M, K, d) tensor."""
    z64, e64 = z.double(), codebook.double()
    distances = (z64 ** 2).sum(1, keepdim=True) - 2 * torch.matmul(z64, e64.transpose(0, 1)) + (e64 ** 2).sum(1)
    return distances.to(z.dtype)
''',
    ),
    Answer(
        "different order of terms, clamped at zero against rounding",
        '''def squared_distances(z, codebook):
    """(M, d) vectors and (K, d) codes -> (M, K) squared distances, without an (M, K, d) tensor."""
    cross = torch.mm(z, codebook.t())                      # (M, K)
    code_norms = torch.sum(codebook ** 2, dim=1)           # (K,)
    vector_norms = torch.sum(z ** 2, dim=1, keepdim=True)  # (M, 1)
    return (code_norms - 2 * cross + vector_norms).clamp(min=0)
''',
    ),
    Answer(
        "torch.cdist squared",
        '''def squared_distances(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(M, d) vectors and (K, d) codes -> (M, K) squared distances, without an (M, K, d) tensor."""
    return torch.cdist(z, codebook, p=2.0) ** 2
''',
    ),
]

QUANTIZE = [
    Answer(
        "expanded distances, argmin, codebook[indices]",
        '''def quantize(z: torch.Tensor, codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, d) vectors -> ((M, d) nearest code vectors, (M,) their indices)."""
    distances = z.pow(2).sum(1, keepdim=True) - 2 * z @ codebook.T + codebook.pow(2).sum(1)
    indices = distances.argmin(dim=1)
    return codebook[indices], indices
''',
    ),
    Answer(
        "torch.cdist and F.embedding",
        '''def quantize(z: torch.Tensor, codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, d) vectors -> ((M, d) nearest code vectors, (M,) their indices)."""
    indices = torch.cdist(z, codebook).argmin(dim=1)
    z_q = F.embedding(indices, codebook)
    return z_q, indices
''',
    ),
    Answer(
        "broadcast distances under no_grad, index_select outside it",
        '''def quantize(z: torch.Tensor, codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, d) vectors -> ((M, d) nearest code vectors, (M,) their indices)."""
    with torch.no_grad():
        distances = ((z[:, None, :] - codebook[None, :, :]) ** 2).sum(-1)
        indices = torch.min(distances, dim=1).indices
    z_q = codebook.index_select(0, indices)
    return z_q, indices
''',
    ),
    Answer(
        "helper functions named squared_distances and nearest_codes defined in the cell",
        '''def squared_distances(z, codebook):
    return (z ** 2).sum(1, keepdim=True) - 2 * z @ codebook.t() + (codebook ** 2).sum(1)


def nearest_codes(z, codebook):
    return squared_distances(z.detach(), codebook.detach()).argmin(1)


def quantize(z: torch.Tensor, codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, d) vectors -> ((M, d) nearest code vectors, (M,) their indices)."""
    indices = nearest_codes(z, codebook)
    return codebook[indices], indices
''',
    ),
    Answer(
        "float64 distances, one-hot matrix product for the lookup",
        '''def quantize(z: torch.Tensor, codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, d) vectors -> ((M, d) nearest code vectors, (M,) their indices)."""
    z64, e64 = z.detach().double(), codebook.detach().double()
    dist = (z64 * z64).sum(-1, keepdim=True) - 2 * torch.einsum("md,kd->mk", z64, e64) + (e64 * e64).sum(-1)
    indices = dist.argmin(-1)
    one_hot = F.one_hot(indices, num_classes=codebook.shape[0]).to(codebook.dtype)  # (M, K)
    z_q = one_hot @ codebook
    return z_q, indices
''',
    ),
    Answer(
        "torch.argmin, norms added before the cross term, no type hints",
        '''def quantize(z, codebook):
    """(M, d) vectors -> ((M, d) nearest code vectors, (M,) their indices)."""
    z_sq = torch.sum(z ** 2, dim=1, keepdim=True)
    e_sq = torch.sum(codebook ** 2, dim=1)
    dist = z_sq + e_sq - 2 * torch.matmul(z, codebook.t())
    nearest = torch.argmin(dist, dim=1)
    quantized = codebook[nearest]
    return (quantized, nearest)
''',
    ),
]

STRAIGHT_THROUGH = [
    Answer(
        "the one-liner from the prose",
        '''def straight_through(z_e: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """Value z_q; gradient copied to z_e unchanged; no gradient to z_q."""
    return z_e + (z_q - z_e).detach()
''',
    ),
    Answer(
        "detached difference added first",
        '''def straight_through(z_e: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """Value z_q; gradient copied to z_e unchanged; no gradient to z_q."""
    return (z_q - z_e).detach() + z_e
''',
    ),
    Answer(
        "z_q.detach() + z_e - z_e.detach()",
        '''def straight_through(z_e: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """Value z_q; gradient copied to z_e unchanged; no gradient to z_q."""
    return z_q.detach() + (z_e - z_e.detach())
''',
    ),
    Answer(
        "custom autograd.Function helper",
        '''class _StraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z_e, z_q):
        return z_q.clone()

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, None   # copy the gradient to z_e, nothing to z_q


def straight_through(z_e: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """Value z_q; gradient copied to z_e unchanged; no gradient to z_q."""
    return _StraightThrough.apply(z_e, z_q)
''',
    ),
    Answer(
        "difference computed under torch.no_grad()",
        '''def straight_through(z_e: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """Value z_q; gradient copied to z_e unchanged; no gradient to z_q."""
    with torch.no_grad():
        delta = z_q - z_e
    return z_e + delta
''',
    ),
    Answer(
        "both detached before subtracting",
        '''def straight_through(z_e, z_q):
    """Value z_q; gradient copied to z_e unchanged; no gradient to z_q."""
    offset = z_q.detach() - z_e.detach()   # sg[z_q - z_e]
    out = z_e + offset
    return out
''',
    ),
]

VQ_LOSSES = [
    Answer(
        "F.mse_loss with detach",
        '''def vq_losses(z_e: torch.Tensor, z_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(codebook loss ||sg[z_e] - z_q||², commitment loss ||z_e - sg[z_q]||²), averaged."""
    codebook_loss = F.mse_loss(z_q, z_e.detach())
    commitment_loss = F.mse_loss(z_e, z_q.detach())
    return codebook_loss, commitment_loss
''',
    ),
    Answer(
        "explicit squares and .mean()",
        '''def vq_losses(z_e: torch.Tensor, z_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(codebook loss ||sg[z_e] - z_q||², commitment loss ||z_e - sg[z_q]||²), averaged."""
    codebook_loss = ((z_e.detach() - z_q) ** 2).mean()
    commitment_loss = ((z_e - z_q.detach()) ** 2).mean()
    return codebook_loss, commitment_loss
''',
    ),
    Answer(
        "nn.MSELoss module, arguments in the other order",
        '''def vq_losses(z_e: torch.Tensor, z_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(codebook loss ||sg[z_e] - z_q||², commitment loss ||z_e - sg[z_q]||²), averaged."""
    mse = nn.MSELoss()
    return mse(z_e.detach(), z_q), mse(z_q.detach(), z_e)
''',
    ),
    Answer(
        "helper mse function defined in the cell",
        '''def mse(a, b):
    return torch.mean(torch.square(a - b))


def vq_losses(z_e, z_q):
    """(codebook loss ||sg[z_e] - z_q||², commitment loss ||z_e - sg[z_q]||²), averaged."""
    sg_e, sg_q = z_e.detach(), z_q.detach()
    return mse(sg_e, z_q), mse(z_e, sg_q)
''',
    ),
    Answer(
        "computed in float64, converted back",
        '''def vq_losses(z_e: torch.Tensor, z_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(codebook loss ||sg[z_e] - z_q||², commitment loss ||z_e - sg[z_q]||²), averaged."""
    e64, q64 = z_e.double(), z_q.double()
    codebook_loss = (e64.detach() - q64).pow(2).mean().to(z_q.dtype)
    commitment_loss = (e64 - q64.detach()).pow(2).mean().to(z_e.dtype)
    return codebook_loss, commitment_loss
''',
    ),
    Answer(
        "sum divided by numel, tuple built at the end",
        '''def vq_losses(z_e: torch.Tensor, z_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(codebook loss ||sg[z_e] - z_q||², commitment loss ||z_e - sg[z_q]||²), averaged."""
    n = z_e.numel()
    codebook = (z_q - z_e.detach()).pow(2).sum() / n      # moves only the codes
    commitment = (z_e - z_q.detach()).pow(2).sum() / n    # moves only the encoder
    return (codebook, commitment)
''',
    ),
]

# ---------------------------------------------------------------------------------------------------------------
# notebook 03: PixelCNN
# ---------------------------------------------------------------------------------------------------------------

MASKED_CONV = [
    Answer(
        "ones_like(weight), zero the forbidden part, F.conv2d",
        '''class MaskedConv2d(nn.Conv2d):
    """A convolution that only sees pixels above, and to the left on the same row (mask A: not the centre)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask_type: str = "B"):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        mask = torch.ones_like(self.weight)
        c = kernel_size // 2
        mask[:, :, c, c + (mask_type == "B"):] = 0
        mask[:, :, c + 1:, :] = 0
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, self.stride, self.padding, self.dilation, self.groups)
''',
    ),
    Answer(
        "(k, k) mask of zeros filled with ones, stored as (1, 1, k, k)",
        '''class MaskedConv2d(nn.Conv2d):
    """A convolution that only sees pixels above, and to the left on the same row (mask A: not the centre)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask_type: str = "B"):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        assert mask_type in ("A", "B"), mask_type
        k = kernel_size
        c = k // 2
        mask = torch.zeros(k, k)
        mask[:c, :] = 1          # rows above the centre
        mask[c, :c] = 1          # left of the centre
        if mask_type == "B":
            mask[c, c] = 1       # the centre itself
        self.register_buffer("mask", mask[None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, bias=self.bias, padding=self.padding)
''',
    ),
    Answer(
        "mask built with Python loops, forward through _conv_forward",
        '''class MaskedConv2d(nn.Conv2d):
    """A convolution that only sees pixels above, and to the left on the same row (mask A: not the centre)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask_type: str = "B"):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        centre = kernel_size // 2
        mask = torch.zeros(kernel_size, kernel_size)
        for row in range(kernel_size):
            for col in range(kernel_size):
                if row < centre:
                    mask[row, col] = 1.0
                elif row == centre and col < centre:
                    mask[row, col] = 1.0
                elif row == centre and col == centre and mask_type == "B":
                    mask[row, col] = 1.0
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)
''',
    ),
    Answer(
        "vectorised comparisons of row and column indices",
        '''class MaskedConv2d(nn.Conv2d):
    """A convolution that only sees pixels above, and to the left on the same row (mask A: not the centre)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask_type: str = "B"):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        c = kernel_size // 2
        rows = torch.arange(kernel_size).view(-1, 1)
        cols = torch.arange(kernel_size).view(1, -1)
        allowed = (rows < c) | ((rows == c) & (cols < c))
        if mask_type == "B":
            allowed = allowed | ((rows == c) & (cols == c))
        self.register_buffer("mask", allowed.float().expand_as(self.weight).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        masked_weight = self.weight * self.mask
        return F.conv2d(x, masked_weight, self.bias, stride=1, padding=self.padding)
''',
    ),
    Answer(
        "raster-order prefix of the flattened kernel",
        '''class MaskedConv2d(nn.Conv2d):
    """A convolution that only sees pixels above, and to the left on the same row (mask A: not the centre)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask_type: str = "B"):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        c = kernel_size // 2
        # positions before the centre in raster order (plus the centre for mask B)
        visible = c * kernel_size + c + (1 if mask_type == "B" else 0)
        mask = (torch.arange(kernel_size * kernel_size) < visible).float().view(kernel_size, kernel_size)
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)
''',
    ),
    Answer(
        "mask built with numpy, validates mask_type with ValueError",
        '''import numpy as np


class MaskedConv2d(nn.Conv2d):
    """A convolution that only sees pixels above, and to the left on the same row (mask A: not the centre)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask_type: str = "B"):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        if mask_type not in {"A", "B"}:
            raise ValueError(f"mask_type must be 'A' or 'B', not {mask_type!r}")
        k = kernel_size
        mask = np.ones((out_channels, in_channels, k, k), dtype=np.float32)
        mask[:, :, k // 2, k // 2 + (1 if mask_type == "B" else 0):] = 0.0
        mask[:, :, k // 2 + 1:, :] = 0.0
        self.register_buffer("mask", torch.from_numpy(mask))

    def forward(self, x):
        weight = self.weight * self.mask
        return F.conv2d(x, weight, self.bias, self.stride, self.padding)
''',
    ),
]

PIXELCNN = [
    Answer(
        "Sequentials everywhere",
        '''class ResidualBlock(nn.Module):
    """ReLU, 1x1 (c -> c/2), ReLU, masked 3x3 type B, ReLU, 1x1 (c/2 -> c), plus the input."""

    def __init__(self, channels: int):
        super().__init__()
        h = channels // 2
        self.net = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, h, kernel_size=1),
            nn.ReLU(),
            MaskedConv2d(h, h, 3, mask_type="B"),
            nn.ReLU(),
            nn.Conv2d(h, channels, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class PixelCNN(nn.Module):
    """(N, 1, H, W) intensities 0..255 -> (N, 256, H, W) logits of each pixel given the pixels before it."""

    def __init__(self, channels: int = 64, blocks: int = 5):
        super().__init__()
        self.input_conv = MaskedConv2d(1, channels, 7, mask_type="A")
        self.blocks = nn.Sequential(*[ResidualBlock(channels) for _ in range(blocks)])
        self.head = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, channels, kernel_size=1),
            nn.ReLU(),
            nn.Conv2d(channels, 256, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float() / 255
        return self.head(self.blocks(self.input_conv(x)))
''',
    ),
    Answer(
        "explicit layers, F.relu, ModuleList loop",
        '''class ResidualBlock(nn.Module):
    """ReLU, 1x1 (c -> c/2), ReLU, masked 3x3 type B, ReLU, 1x1 (c/2 -> c), plus the input."""

    def __init__(self, channels: int):
        super().__init__()
        self.reduce = nn.Conv2d(channels, channels // 2, 1)
        self.masked = MaskedConv2d(channels // 2, channels // 2, 3, "B")
        self.expand = nn.Conv2d(channels // 2, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.reduce(F.relu(x))
        h = self.masked(F.relu(h))
        h = self.expand(F.relu(h))
        return x + h


class PixelCNN(nn.Module):
    """(N, 1, H, W) intensities 0..255 -> (N, 256, H, W) logits of each pixel given the pixels before it."""

    def __init__(self, channels: int = 64, blocks: int = 5):
        super().__init__()
        self.first = MaskedConv2d(1, channels, 7, "A")
        self.res_blocks = nn.ModuleList([ResidualBlock(channels) for _ in range(blocks)])
        self.out1 = nn.Conv2d(channels, channels, 1)
        self.out2 = nn.Conv2d(channels, 256, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.first(x.float() / 255)
        for block in self.res_blocks:
            h = block(h)
        h = self.out1(F.relu(h))
        return self.out2(F.relu(h))
''',
    ),
    Answer(
        "one Sequential for the whole model, input scaled with .to(float32).div(255.0)",
        '''class ResidualBlock(nn.Module):
    """ReLU, 1x1 (c -> c/2), ReLU, masked 3x3 type B, ReLU, 1x1 (c/2 -> c), plus the input."""

    def __init__(self, channels):
        super().__init__()
        half = channels // 2
        self.layers = nn.Sequential(
            nn.ReLU(), nn.Conv2d(channels, half, 1),
            nn.ReLU(), MaskedConv2d(half, half, kernel_size=3, mask_type="B"),
            nn.ReLU(), nn.Conv2d(half, channels, 1),
        )

    def forward(self, x):
        residual = self.layers(x)
        return residual + x


class PixelCNN(nn.Module):
    """(N, 1, H, W) intensities 0..255 -> (N, 256, H, W) logits of each pixel given the pixels before it."""

    def __init__(self, channels=64, blocks=5):
        super().__init__()
        layers = [MaskedConv2d(1, channels, kernel_size=7, mask_type="A")]
        layers += [ResidualBlock(channels) for _ in range(blocks)]
        layers += [nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, 256, 1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x.to(torch.float32).div(255.0))
''',
    ),
    Answer(
        "helper conv1x1 and a module-level constant for the 256 levels",
        '''LEVELS = 256


def conv1x1(in_channels, out_channels):
    return nn.Conv2d(in_channels, out_channels, kernel_size=1)


class ResidualBlock(nn.Module):
    """ReLU, 1x1 (c -> c/2), ReLU, masked 3x3 type B, ReLU, 1x1 (c/2 -> c), plus the input."""

    def __init__(self, channels: int):
        super().__init__()
        self.h = channels // 2
        self.conv_in = conv1x1(channels, self.h)
        self.conv_mid = MaskedConv2d(self.h, self.h, 3)   # type B is the default
        self.conv_out = conv1x1(self.h, channels)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_out(self.act(self.conv_mid(self.act(self.conv_in(self.act(x))))))
        return out + x


class PixelCNN(nn.Module):
    """(N, 1, H, W) intensities 0..255 -> (N, 256, H, W) logits of each pixel given the pixels before it."""

    def __init__(self, channels: int = 64, blocks: int = 5):
        super().__init__()
        self.conv_a = MaskedConv2d(1, channels, 7, "A")
        self.residuals = nn.Sequential(*(ResidualBlock(channels) for _ in range(blocks)))
        self.hidden = conv1x1(channels, channels)
        self.logits = conv1x1(channels, LEVELS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x / 255.0                     # int64 / float -> float32 in [0, 1]
        x = self.residuals(self.conv_a(x))
        x = self.hidden(torch.relu(x))
        return self.logits(torch.relu(x))
''',
    ),
    Answer(
        "nn.ReLU modules stored per layer, head as explicit attributes",
        '''class ResidualBlock(nn.Module):
    """ReLU, 1x1 (c -> c/2), ReLU, masked 3x3 type B, ReLU, 1x1 (c/2 -> c), plus the input."""

    def __init__(self, channels: int):
        super().__init__()
        assert channels % 2 == 0
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(channels, channels // 2, kernel_size=1)
        self.relu2 = nn.ReLU()
        self.conv2 = MaskedConv2d(channels // 2, channels // 2, kernel_size=3, mask_type="B")
        self.relu3 = nn.ReLU()
        self.conv3 = nn.Conv2d(channels // 2, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x
        x = self.conv1(self.relu1(x))
        x = self.conv2(self.relu2(x))
        x = self.conv3(self.relu3(x))
        return x + skip


class PixelCNN(nn.Module):
    """(N, 1, H, W) intensities 0..255 -> (N, 256, H, W) logits of each pixel given the pixels before it."""

    def __init__(self, channels: int = 64, blocks: int = 5):
        super().__init__()
        self.channels = channels
        self.conv_in = MaskedConv2d(1, channels, kernel_size=7, mask_type="A")
        self.stack = nn.ModuleList()
        for _ in range(blocks):
            self.stack.append(ResidualBlock(channels))
        self.relu_a = nn.ReLU()
        self.conv_a = nn.Conv2d(channels, channels, kernel_size=1)
        self.relu_b = nn.ReLU()
        self.conv_b = nn.Conv2d(channels, 256, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_in(x.float() / 255.0)
        for block in self.stack:
            out = block(out)
        out = self.conv_a(self.relu_a(out))
        out = self.conv_b(self.relu_b(out))
        return out
''',
    ),
    Answer(
        "OrderedDict-named Sequentials, torch.add for the skip",
        '''from collections import OrderedDict


class ResidualBlock(nn.Module):
    """ReLU, 1x1 (c -> c/2), ReLU, masked 3x3 type B, ReLU, 1x1 (c/2 -> c), plus the input."""

    def __init__(self, channels: int):
        super().__init__()
        half = channels // 2
        self.body = nn.Sequential(OrderedDict([
            ("relu1", nn.ReLU()),
            ("reduce", nn.Conv2d(channels, half, kernel_size=1)),
            ("relu2", nn.ReLU()),
            ("masked", MaskedConv2d(half, half, kernel_size=3, mask_type="B")),
            ("relu3", nn.ReLU()),
            ("expand", nn.Conv2d(half, channels, kernel_size=1)),
        ]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.add(x, self.body(x))


class PixelCNN(nn.Module):
    """(N, 1, H, W) intensities 0..255 -> (N, 256, H, W) logits of each pixel given the pixels before it."""

    def __init__(self, channels: int = 64, blocks: int = 5):
        super().__init__()
        self.layers = nn.Sequential(OrderedDict(
            [("conv_a", MaskedConv2d(1, channels, 7, mask_type="A"))]
            + [(f"block{i}", ResidualBlock(channels)) for i in range(blocks)]
            + [("relu1", nn.ReLU()), ("conv1", nn.Conv2d(channels, channels, 1)),
               ("relu2", nn.ReLU()), ("logits", nn.Conv2d(channels, 256, 1))]
        ))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.float().div(255))
''',
    ),
]

SAMPLE = [
    Answer(
        "double loop, F.softmax and torch.multinomial",
        '''@torch.no_grad()
def sample(model: nn.Module, n: int, temperature: float = 1.0, image_size: tuple[int, int] = (28, 28)) -> torch.Tensor:
    """Draw n images (n, 1, H, W) of intensities 0..255, pixel by pixel."""
    model.eval()
    device = next(model.parameters()).device
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    height, width = image_size
    x = torch.zeros(n, 1, height, width, dtype=torch.long, device=device)
    for i in range(height):
        for j in range(width):
            logits = model(x[:, :, : i + 1, :])[:, :, i, j] / temperature  # (n, 256)
            probs = F.softmax(logits, dim=1)
            x[:, 0, i, j] = torch.multinomial(probs, num_samples=1).squeeze(1)
    return x
''',
    ),
    Answer(
        "local variables named sample and images, torch.softmax over the last dim",
        '''@torch.no_grad()
def sample(model: nn.Module, n: int, temperature: float = 1.0, image_size: tuple[int, int] = (28, 28)) -> torch.Tensor:
    """Draw n images (n, 1, H, W) of intensities 0..255, pixel by pixel."""
    model.eval()
    device = next(model.parameters()).device
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    H, W = image_size
    images = torch.zeros((n, 1, H, W), dtype=torch.int64, device=device)
    for row in range(H):
        for col in range(W):
            out = model(images[:, :, : row + 1, :])
            probs = torch.softmax(out[:, :, row, col] / temperature, dim=-1)
            sample = torch.multinomial(probs, 1)      # (n, 1)
            images[:, :, row, col] = sample
    return images
''',
    ),
    Answer(
        "single loop over raster positions with divmod, `not temperature > 0`",
        '''@torch.no_grad()
def sample(model: nn.Module, n: int, temperature: float = 1.0, image_size: tuple[int, int] = (28, 28)) -> torch.Tensor:
    """Draw n images (n, 1, H, W) of intensities 0..255, pixel by pixel."""
    model.eval()
    device = next(model.parameters()).device
    if not temperature > 0:
        raise ValueError(f"temperature {temperature} is meaningless: it must be positive")
    height, width = image_size
    canvas = torch.zeros(n, 1, height, width, dtype=torch.long, device=device)
    for position in range(height * width):
        i, j = divmod(position, width)
        logits = model(canvas[:, :, : i + 1, :])[:, :, i, j]
        canvas[:, 0, i, j] = torch.multinomial(F.softmax(logits / temperature, dim=1), 1)[:, 0]
    return canvas
''',
    ),
    Answer(
        "probabilities computed in float64",
        '''@torch.no_grad()
def sample(model: nn.Module, n: int, temperature: float = 1.0, image_size: tuple[int, int] = (28, 28)) -> torch.Tensor:
    """Draw n images (n, 1, H, W) of intensities 0..255, pixel by pixel."""
    model.eval()
    device = next(model.parameters()).device
    if temperature <= 0.0:
        raise ValueError("temperature must be strictly positive")
    h, w = image_size
    x = torch.zeros(n, 1, h, w, dtype=torch.long, device=device)
    for i in range(h):
        for j in range(w):
            logits = model(x[:, :, : i + 1, :])[:, :, i, j].double()
            probs = torch.softmax(logits / temperature, dim=1)
            x[:, 0, i, j] = torch.multinomial(probs, 1).view(-1)
    return x
''',
    ),
    Answer(
        "log_softmax then exp, helper function defined in the cell",
        '''def draw_pixel(logits, temperature):
    """One draw per row of `logits` (n, classes) at the given temperature."""
    probs = F.log_softmax(logits / temperature, dim=1).exp()
    return torch.multinomial(probs, num_samples=1)


@torch.no_grad()
def sample(model: nn.Module, n: int, temperature: float = 1.0, image_size: tuple[int, int] = (28, 28)) -> torch.Tensor:
    """Draw n images (n, 1, H, W) of intensities 0..255, pixel by pixel."""
    model.eval()
    device = next(model.parameters()).device
    if temperature <= 0:
        raise ValueError(temperature)
    x = torch.zeros(n, 1, *image_size, dtype=torch.long, device=device)
    for i in range(image_size[0]):
        for j in range(image_size[1]):
            logits = model(x[:, :, : i + 1, :])
            x[:, :, i, j] = draw_pixel(logits[:, :, i, j], temperature)
    return x
''',
    ),
    Answer(
        "torch.distributions.Categorical(logits=...).sample()",
        '''@torch.no_grad()
def sample(model: nn.Module, n: int, temperature: float = 1.0, image_size: tuple[int, int] = (28, 28)) -> torch.Tensor:
    """Draw n images (n, 1, H, W) of intensities 0..255, pixel by pixel."""
    model.eval()
    device = next(model.parameters()).device
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    height, width = image_size
    x = torch.zeros(n, 1, height, width, dtype=torch.long, device=device)
    for i in range(height):
        for j in range(width):
            logits = model(x[:, :, : i + 1, :])[:, :, i, j]
            x[:, 0, i, j] = torch.distributions.Categorical(logits=logits / temperature).sample()
    return x
''',
    ),
    Answer(
        "Gumbel-max trick",
        '''@torch.no_grad()
def sample(model: nn.Module, n: int, temperature: float = 1.0, image_size: tuple[int, int] = (28, 28)) -> torch.Tensor:
    """Draw n images (n, 1, H, W) of intensities 0..255, pixel by pixel."""
    model.eval()
    device = next(model.parameters()).device
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    height, width = image_size
    x = torch.zeros(n, 1, height, width, dtype=torch.long, device=device)
    for i in range(height):
        for j in range(width):
            logits = model(x[:, :, : i + 1, :])[:, :, i, j] / temperature
            uniform = torch.rand_like(logits).clamp_(min=1e-20)
            gumbel = -torch.log(-torch.log(uniform))
            x[:, 0, i, j] = torch.argmax(logits + gumbel, dim=1)
    return x
''',
    ),
]

# ---------------------------------------------------------------------------------------------------------------
# notebook 04: prior over codes
# ---------------------------------------------------------------------------------------------------------------

ENCODE = [
    Answer(
        "list comprehension over range with torch.cat",
        '''@torch.no_grad()
def encode_codes(vqvae: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """(N, 1, 28, 28) images -> (N, 7, 7) int64 code indices."""
    return torch.cat([vqvae.encode(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])
''',
    ),
    Answer(
        "tensor.split",
        '''@torch.no_grad()
def encode_codes(vqvae: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """(N, 1, 28, 28) images -> (N, 7, 7) int64 code indices."""
    grids = [vqvae.encode(chunk) for chunk in images.split(batch_size)]
    return torch.cat(grids, dim=0).long()
''',
    ),
    Answer(
        "explicit loop with append, local named encode_dataset",
        '''@torch.no_grad()
def encode_codes(vqvae: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """(N, 1, 28, 28) images -> (N, 7, 7) int64 code indices."""
    encode_dataset = []
    start = 0
    while start < images.shape[0]:
        batch = images[start : start + batch_size]
        encode_dataset.append(vqvae.encode(batch))
        start += batch_size
    codes = torch.cat(encode_dataset)
    return codes.to(torch.int64)
''',
    ),
    Answer(
        "DataLoader over a TensorDataset",
        '''from torch.utils.data import DataLoader, TensorDataset


@torch.no_grad()
def encode_codes(vqvae: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """(N, 1, 28, 28) images -> (N, 7, 7) int64 code indices."""
    loader = DataLoader(TensorDataset(images), batch_size=batch_size, shuffle=False)
    codes = []
    for (batch,) in loader:
        codes.append(vqvae.encode(batch))
    return torch.cat(codes)
''',
    ),
    Answer(
        "preallocated output filled slice by slice",
        '''@torch.no_grad()
def encode_codes(vqvae: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """(N, 1, 28, 28) images -> (N, 7, 7) int64 code indices."""
    n = len(images)
    out = None
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        grid = vqvae.encode(images[start:stop])
        if out is None:
            out = torch.empty((n, *grid.shape[1:]), dtype=torch.long, device=grid.device)
        out[start:stop] = grid
    return out
''',
    ),
    Answer(
        "eval mode for encoding, previous mode restored, torch.split",
        '''@torch.no_grad()
def encode_codes(vqvae: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """(N, 1, 28, 28) images -> (N, 7, 7) int64 code indices."""
    was_training = vqvae.training
    vqvae.eval()
    try:
        indices = torch.cat([vqvae.encode(part) for part in torch.split(images, batch_size)])
    finally:
        vqvae.train(was_training)
    return indices.long()
''',
    ),
]

PRIOR = [
    Answer(
        "embedding, then one Sequential",
        '''class Prior(nn.Module):
    """(N, 7, 7) code indices -> (N, num_codes, 7, 7) logits of each code given the codes before it."""

    def __init__(self, num_codes: int = 128, channels: int = 64, blocks: int = 5, embed: int = 32):
        super().__init__()
        self.embedding = nn.Embedding(num_codes, embed)
        self.net = nn.Sequential(
            MaskedConv2d(embed, channels, 7, mask_type="A"),
            *[ResidualBlock(channels) for _ in range(blocks)],
            nn.ReLU(),
            nn.Conv2d(channels, channels, 1),
            nn.ReLU(),
            nn.Conv2d(channels, num_codes, 1),
        )

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        x = self.embedding(codes).permute(0, 3, 1, 2)  # (N, E, 7, 7)
        return self.net(x)
''',
    ),
    Answer(
        "the import the prose names, in the cell; explicit layers and F.relu",
        '''from starter.models.pixelcnn import MaskedConv2d, ResidualBlock


class Prior(nn.Module):
    """(N, 7, 7) code indices -> (N, num_codes, 7, 7) logits of each code given the codes before it."""

    def __init__(self, num_codes: int = 128, channels: int = 64, blocks: int = 5, embed: int = 32):
        super().__init__()
        self.embed = nn.Embedding(num_codes, embed)
        self.input_conv = MaskedConv2d(embed, channels, 7, "A")
        self.blocks = nn.ModuleList([ResidualBlock(channels) for _ in range(blocks)])
        self.hidden = nn.Conv2d(channels, channels, kernel_size=1)
        self.out = nn.Conv2d(channels, num_codes, kernel_size=1)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        h = self.embed(codes).permute(0, 3, 1, 2)
        h = self.input_conv(h)
        for block in self.blocks:
            h = block(h)
        h = self.hidden(F.relu(h))
        return self.out(F.relu(h))
''',
    ),
    Answer(
        "contiguous after permute, nn.ReLU modules, head Sequential",
        '''class Prior(nn.Module):
    """(N, 7, 7) code indices -> (N, num_codes, 7, 7) logits of each code given the codes before it."""

    def __init__(self, num_codes=128, channels=64, blocks=5, embed=32):
        super().__init__()
        self.num_codes = num_codes
        self.embedding = nn.Embedding(num_embeddings=num_codes, embedding_dim=embed)
        self.mask_a = MaskedConv2d(embed, channels, kernel_size=7, mask_type="A")
        self.residual = nn.Sequential(*(ResidualBlock(channels) for _ in range(blocks)))
        self.head = nn.Sequential(
            nn.ReLU(), nn.Conv2d(channels, channels, kernel_size=1),
            nn.ReLU(), nn.Conv2d(channels, num_codes, kernel_size=1),
        )

    def forward(self, codes):
        e = self.embedding(codes)              # (N, 7, 7, E)
        e = e.permute(0, 3, 1, 2).contiguous() # (N, E, 7, 7)
        return self.head(self.residual(self.mask_a(e)))   # logits, no softmax
''',
    ),
    Answer(
        "torch.movedim instead of permute, stack built in a loop",
        '''class Prior(nn.Module):
    """(N, 7, 7) code indices -> (N, num_codes, 7, 7) logits of each code given the codes before it."""

    def __init__(self, num_codes: int = 128, channels: int = 64, blocks: int = 5, embed: int = 32):
        super().__init__()
        self.table = nn.Embedding(num_codes, embed)
        layers = [MaskedConv2d(embed, channels, 7, "A")]
        for _ in range(blocks):
            layers.append(ResidualBlock(channels))
        self.body = nn.Sequential(*layers)
        self.conv1 = nn.Conv2d(channels, channels, 1)
        self.conv2 = nn.Conv2d(channels, num_codes, 1)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        x = torch.movedim(self.table(codes), -1, 1)
        x = self.body(x)
        x = self.conv1(torch.relu(x))
        x = self.conv2(torch.relu(x))
        return x
''',
    ),
    Answer(
        "helper that builds the head, local named sample for the embedded grid",
        '''def make_head(channels, num_codes):
    """ReLU -> 1x1 conv (channels -> channels) -> ReLU -> 1x1 conv to num_codes logits."""
    return nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, num_codes, 1))


class Prior(nn.Module):
    """(N, 7, 7) code indices -> (N, num_codes, 7, 7) logits of each code given the codes before it."""

    def __init__(self, num_codes: int = 128, channels: int = 64, blocks: int = 5, embed: int = 32):
        super().__init__()
        self.embedding = nn.Embedding(num_codes, embed)
        self.first = MaskedConv2d(in_channels=embed, out_channels=channels, kernel_size=7, mask_type="A")
        self.blocks = nn.Sequential(*[ResidualBlock(channels) for _ in range(blocks)])
        self.head = make_head(channels, num_codes)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        sample = self.embedding(codes.long())
        sample = sample.permute(0, 3, 1, 2)
        features = self.blocks(self.first(sample))
        return self.head(features)
''',
    ),
    Answer(
        "two transposes instead of permute, OrderedDict head",
        '''from collections import OrderedDict


class Prior(nn.Module):
    """(N, 7, 7) code indices -> (N, num_codes, 7, 7) logits of each code given the codes before it."""

    def __init__(self, num_codes: int = 128, channels: int = 64, blocks: int = 5, embed: int = 32):
        super().__init__()
        self.embedding = nn.Embedding(num_codes, embed)
        self.conv_a = MaskedConv2d(embed, channels, 7, mask_type="A")
        self.blocks = nn.Sequential(*[ResidualBlock(channels) for _ in range(blocks)])
        self.head = nn.Sequential(OrderedDict([
            ("relu1", nn.ReLU()), ("hidden", nn.Conv2d(channels, channels, 1)),
            ("relu2", nn.ReLU()), ("logits", nn.Conv2d(channels, num_codes, 1)),
        ]))

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        x = self.embedding(codes)                 # (N, H, W, E)
        x = x.transpose(1, 3).transpose(2, 3)     # (N, E, W, H) -> (N, E, H, W)
        return self.head(self.blocks(self.conv_a(x)))
''',
    ),
]

SAMPLE_CODES = [
    Answer(
        "double loop, softmax and torch.multinomial",
        '''@torch.no_grad()
def sample_codes(prior: nn.Module, n: int, temperature: float = 1.0) -> torch.Tensor:
    """Draw n code grids (n, 7, 7) from the prior."""
    prior.eval()
    device = next(prior.parameters()).device
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    codes = torch.zeros(n, 7, 7, dtype=torch.long, device=device)
    for i in range(7):
        for j in range(7):
            logits = prior(codes)[:, :, i, j] / temperature
            probs = F.softmax(logits, dim=1)
            codes[:, i, j] = torch.multinomial(probs, 1).squeeze(1)
    return codes
''',
    ),
    Answer(
        "local variable named sample (shadowing the imported starter sample)",
        '''@torch.no_grad()
def sample_codes(prior: nn.Module, n: int, temperature: float = 1.0) -> torch.Tensor:
    """Draw n code grids (n, 7, 7) from the prior."""
    prior.eval()
    device = next(prior.parameters()).device
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    grid = torch.zeros((n, 7, 7), dtype=torch.long, device=device)
    for row in range(7):
        for col in range(7):
            probs = torch.softmax(prior(grid)[:, :, row, col] / temperature, dim=-1)
            sample = torch.multinomial(probs, num_samples=1)
            grid[:, row, col] = sample[:, 0]
    return grid
''',
    ),
    Answer(
        "Categorical(logits=...).sample(), flat loop over the 49 positions",
        '''@torch.no_grad()
def sample_codes(prior: nn.Module, n: int, temperature: float = 1.0) -> torch.Tensor:
    """Draw n code grids (n, 7, 7) from the prior."""
    prior.eval()
    device = next(prior.parameters()).device
    if not temperature > 0:
        raise ValueError(f"invalid temperature {temperature}")
    codes = torch.zeros(n, 7, 7, dtype=torch.long, device=device)
    for position in range(49):
        i, j = divmod(position, 7)
        logits = prior(codes)[:, :, i, j]
        codes[:, i, j] = torch.distributions.Categorical(logits=logits / temperature).sample()
    return codes
''',
    ),
    Answer(
        "Gumbel-max with exponential noise",
        '''@torch.no_grad()
def sample_codes(prior: nn.Module, n: int, temperature: float = 1.0) -> torch.Tensor:
    """Draw n code grids (n, 7, 7) from the prior."""
    prior.eval()
    device = next(prior.parameters()).device
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    codes = torch.zeros(n, 7, 7, dtype=torch.long, device=device)
    for i in range(7):
        for j in range(7):
            logits = prior(codes)[:, :, i, j] / temperature
            # argmax(logits + Gumbel) == argmax(logits - log E), E ~ Exp(1)
            noise = torch.empty_like(logits).exponential_()
            codes[:, i, j] = (logits - noise.log()).argmax(dim=1)
    return codes
''',
    ),
    Answer(
        "float64 probabilities, helper defined in the cell, grid size as a constant",
        '''GRID = 7


def next_code(logits, temperature):
    probs = torch.softmax(logits.double() / temperature, dim=1)
    return torch.multinomial(probs, 1).view(-1)


@torch.no_grad()
def sample_codes(prior: nn.Module, n: int, temperature: float = 1.0) -> torch.Tensor:
    """Draw n code grids (n, 7, 7) from the prior."""
    prior.eval()
    device = next(prior.parameters()).device
    if temperature <= 0:
        raise ValueError("temperature <= 0 is meaningless")
    codes = torch.zeros(n, GRID, GRID, dtype=torch.long, device=device)
    for i in range(GRID):
        for j in range(GRID):
            codes[:, i, j] = next_code(prior(codes)[:, :, i, j], temperature)
    return codes
''',
    ),
    Answer(
        "crops the rows anyway, like notebook 03",
        '''@torch.no_grad()
def sample_codes(prior: nn.Module, n: int, temperature: float = 1.0) -> torch.Tensor:
    """Draw n code grids (n, 7, 7) from the prior."""
    prior.eval()
    device = next(prior.parameters()).device
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    codes = torch.zeros(n, 7, 7, dtype=torch.long, device=device)
    for i in range(7):
        for j in range(7):
            logits = prior(codes[:, : i + 1, :])[:, :, i, j]
            probs = (logits / temperature).softmax(dim=1)
            codes[:, i, j] = probs.multinomial(num_samples=1).flatten()
    return codes
''',
    ),
]

# ---------------------------------------------------------------------------------------------------------------
# notebook 05: VAE
# ---------------------------------------------------------------------------------------------------------------

REPARAMETERIZE = [
    Answer(
        "exp(0.5 * log_var) and randn_like",
        '''def reparameterize(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """A differentiable sample z = mean + sigma * eps of N(mean, exp(log_var)), eps ~ N(0, I)."""
    std = torch.exp(0.5 * log_var)
    eps = torch.randn_like(std)
    return mean + eps * std
''',
    ),
    Answer(
        "torch.randn with shape, dtype and device",
        '''def reparameterize(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """A differentiable sample z = mean + sigma * eps of N(mean, exp(log_var)), eps ~ N(0, I)."""
    eps = torch.randn(mean.shape, dtype=mean.dtype, device=mean.device)
    sigma = (log_var / 2).exp()
    return mean + sigma * eps
''',
    ),
    Answer(
        "torch.distributions.Normal(...).rsample() (validate_args=False: sigma may underflow to 0)",
        '''def reparameterize(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """A differentiable sample z = mean + sigma * eps of N(mean, exp(log_var)), eps ~ N(0, I)."""
    q = torch.distributions.Normal(mean, torch.exp(0.5 * log_var), validate_args=False)
    return q.rsample()  # rsample = mean + sigma * eps, differentiable
''',
    ),
    Answer(
        "torch.addcmul, eps drawn first, no type hints",
        '''def reparameterize(mean, log_var):
    """A differentiable sample z = mean + sigma * eps of N(mean, exp(log_var)), eps ~ N(0, I)."""
    eps = torch.randn_like(mean)
    sigma = (0.5 * log_var).exp()
    return torch.addcmul(mean, eps, sigma)
''',
    ),
    Answer(
        "computed in float64, converted back",
        '''def reparameterize(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """A differentiable sample z = mean + sigma * eps of N(mean, exp(log_var)), eps ~ N(0, I)."""
    mean64, log_var64 = mean.double(), log_var.double()
    eps = torch.randn_like(mean64)
    z = mean64 + torch.exp(0.5 * log_var64) * eps
    return z.to(mean.dtype)
''',
    ),
    Answer(
        "torch.normal for eps",
        '''def reparameterize(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """A differentiable sample z = mean + sigma * eps of N(mean, exp(log_var)), eps ~ N(0, I)."""
    eps = torch.normal(torch.zeros_like(mean), torch.ones_like(mean))  # N(0, I), no gradient needed
    return eps * torch.exp(log_var * 0.5) + mean
''',
    ),
]

KL = [
    Answer(
        "the closed form, summed over dim 1",
        '''def kl_to_standard_normal(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """(N, d) means and log-variances -> (N,) KL(N(mean, sigma²) || N(0, I)) in nats."""
    return 0.5 * torch.sum(mean ** 2 + log_var.exp() - log_var - 1, dim=1)
''',
    ),
    Answer(
        "the -0.5 * (1 + log_var - mean² - exp) form",
        '''def kl_to_standard_normal(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """(N, d) means and log-variances -> (N,) KL(N(mean, sigma²) || N(0, I)) in nats."""
    return -0.5 * (1 + log_var - mean.pow(2) - log_var.exp()).sum(dim=-1)
''',
    ),
    Answer(
        "helper for the per-dimension KL, summed over the last dim",
        '''def kl_per_dimension(mu, lv):
    """KL of one Gaussian coordinate to N(0, 1)."""
    return 0.5 * (mu * mu + torch.exp(lv) - lv - 1.0)


def kl_to_standard_normal(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """(N, d) means and log-variances -> (N,) KL(N(mean, sigma²) || N(0, I)) in nats."""
    return kl_per_dimension(mean, log_var).sum(dim=-1)
''',
    ),
    Answer(
        "einsum for the squared means",
        '''def kl_to_standard_normal(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """(N, d) means and log-variances -> (N,) KL(N(mean, sigma²) || N(0, I)) in nats."""
    squared_means = torch.einsum("nd,nd->n", mean, mean)
    variance_terms = (torch.exp(log_var) - log_var - 1).sum(1)
    return 0.5 * (squared_means + variance_terms)
''',
    ),
    Answer(
        "computed in float64, converted back",
        '''def kl_to_standard_normal(mean, log_var):
    """(N, d) means and log-variances -> (N,) KL(N(mean, sigma²) || N(0, I)) in nats."""
    m, lv = mean.double(), log_var.double()
    kl = 0.5 * (m * m + torch.exp(lv) - lv - 1.0).sum(axis=1)
    return kl.to(mean.dtype)
''',
    ),
    Answer(
        "loop over the latent dimensions",
        '''def kl_to_standard_normal(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """(N, d) means and log-variances -> (N,) KL(N(mean, sigma²) || N(0, I)) in nats."""
    total = torch.zeros_like(mean[:, 0])
    for j in range(mean.shape[1]):
        mu, lv = mean[:, j], log_var[:, j]
        total = total + 0.5 * (mu ** 2 + torch.exp(lv) - lv - 1)
    return total
''',
    ),
]

VAE_LOSS = [
    Answer(
        "your two functions, BCE summed / batch size",
        '''def vae_loss(model: VAE, batch: tuple) -> dict[str, torch.Tensor]:
    """Negative ELBO per image in nats, with its two terms: {"loss", "reconstruction", "kl"}."""
    x, _ = batch
    mean, log_var = model.encoder(x)
    z = reparameterize(mean, log_var)
    x_hat = model.decoder(z)
    reconstruction = F.binary_cross_entropy(x_hat, x, reduction="sum") / x.shape[0]
    kl = kl_to_standard_normal(mean, log_var).mean()
    return {"loss": reconstruction + kl, "reconstruction": reconstruction, "kl": kl}
''',
    ),
    Answer(
        "len(x), KL summed then divided",
        '''def vae_loss(model: VAE, batch: tuple) -> dict[str, torch.Tensor]:
    """Negative ELBO per image in nats, with its two terms: {"loss", "reconstruction", "kl"}."""
    x, _ = batch
    n = len(x)
    mean, log_var = model.encoder(x)
    x_hat = model.decoder(reparameterize(mean, log_var))
    reconstruction = F.binary_cross_entropy(x_hat, x, reduction="sum") / n
    kl = kl_to_standard_normal(mean, log_var).sum() / n
    return {"loss": reconstruction + kl, "reconstruction": reconstruction, "kl": kl}
''',
    ),
    Answer(
        "reduction='none', summed per image then averaged",
        '''def vae_loss(model: VAE, batch: tuple) -> dict[str, torch.Tensor]:
    """Negative ELBO per image in nats, with its two terms: {"loss", "reconstruction", "kl"}."""
    x, _ = batch
    mean, log_var = model.encoder(x)
    z = reparameterize(mean, log_var)
    probs = model.decoder(z)
    per_pixel = F.binary_cross_entropy(probs, x, reduction="none")
    reconstruction = per_pixel.flatten(1).sum(dim=1).mean()
    kl = torch.mean(kl_to_standard_normal(mean, log_var))
    return {"loss": reconstruction + kl, "reconstruction": reconstruction, "kl": kl}
''',
    ),
    Answer(
        "reparameterisation and KL written inline",
        '''def vae_loss(model: VAE, batch: tuple) -> dict[str, torch.Tensor]:
    """Negative ELBO per image in nats, with its two terms: {"loss", "reconstruction", "kl"}."""
    x, _ = batch
    batch_size = x.size(0)
    mu, logvar = model.encoder(x)
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    recon = model.decoder(z)
    reconstruction = F.binary_cross_entropy(recon, x, reduction="sum") / batch_size
    kl = (0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(dim=1)).mean()
    return {"loss": reconstruction + kl, "reconstruction": reconstruction, "kl": kl}
''',
    ),
    Answer(
        "flattened views, own return dict instead of the stub's",
        '''def vae_loss(model: VAE, batch: tuple) -> dict[str, torch.Tensor]:
    """Negative ELBO per image in nats, with its two terms: {"loss", "reconstruction", "kl"}."""
    x, _ = batch
    N = x.shape[0]
    mean, log_var = model.encoder(x)
    z = reparameterize(mean, log_var)
    x_hat = model.decoder(z)
    reconstruction = F.binary_cross_entropy(x_hat.reshape(N, -1), x.reshape(N, -1), reduction="sum") / N
    kl = kl_to_standard_normal(mean, log_var).mean()
    loss = reconstruction + kl
    return {"loss": loss, "reconstruction": reconstruction, "kl": kl}
''',
    ),
    Answer(
        "tuple unpacking of the encoder output kept as one variable, KL per image kept",
        '''def vae_loss(model: VAE, batch: tuple) -> dict[str, torch.Tensor]:
    """Negative ELBO per image in nats, with its two terms: {"loss", "reconstruction", "kl"}."""
    x, _ = batch
    q = model.encoder(x)                      # (mean, log_var)
    z = reparameterize(*q)                    # one sample per image
    kl_per_image = kl_to_standard_normal(*q)  # (N,)
    reconstruction = F.binary_cross_entropy(model.decoder(z), x, reduction="sum") / x.shape[0]
    kl = kl_per_image.mean()
    return {"loss": reconstruction + kl, "reconstruction": reconstruction, "kl": kl}
''',
    ),
]


CORRECT_ANSWERS: dict[str, list[Answer]] = {
    "encoder": ENCODER,
    "decoder": DECODER,
    "loss": LOSS,
    "train-epoch": TRAIN_EPOCH,
    "codebook": CODEBOOK,
    "distances-broadcast": DISTANCES_BROADCAST,
    "distances": DISTANCES,
    "quantize": QUANTIZE,
    "straight-through": STRAIGHT_THROUGH,
    "vq-losses": VQ_LOSSES,
    "masked-conv": MASKED_CONV,
    "pixelcnn": PIXELCNN,
    "sample": SAMPLE,
    "encode": ENCODE,
    "prior": PRIOR,
    "sample-codes": SAMPLE_CODES,
    "reparameterize": REPARAMETERIZE,
    "kl": KL,
    "vae-loss": VAE_LOSS,
}


# ---------------------------------------------------------------------------------------------------------------
# mistakes
# ---------------------------------------------------------------------------------------------------------------

UNSEEN_WRONG_ANSWERS: dict[str, list[tuple[Answer, str]]] = {
    "encoder": [
        (
            Answer(
                "ReLU after the linear layer",
                '''class Encoder(nn.Module):
    """(N, 1, 28, 28) images -> (N, latent_dim) latent codes."""

    def __init__(self, latent_dim: int = 16, hidden: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, hidden, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(hidden, 2 * hidden, 4, 2, 1), nn.ReLU(),
            nn.Flatten(), nn.Linear(2 * hidden * 7 * 7, latent_dim), nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
''',
            ),
            "puts a ReLU after the last layer, so the latent code can never be negative",
        ),
        (
            Answer(
                "3x3 kernels",
                '''class Encoder(nn.Module):
    """(N, 1, 28, 28) images -> (N, latent_dim) latent codes."""

    def __init__(self, latent_dim: int = 16, hidden: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, hidden, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(hidden, 2 * hidden, 3, 2, 1), nn.ReLU(),
            nn.Flatten(), nn.Linear(2 * hidden * 7 * 7, latent_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
''',
            ),
            "uses 3x3 kernels instead of 4x4 (the shapes still work out, the architecture is not the one asked for)",
        ),
        (
            Answer(
                "hidden hard-coded",
                '''class Encoder(nn.Module):
    """(N, 1, 28, 28) images -> (N, latent_dim) latent codes."""

    def __init__(self, latent_dim: int = 16, hidden: int = 32):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 4, 2, 1)
        self.conv2 = nn.Conv2d(32, 64, 4, 2, 1)
        self.fc = nn.Linear(64 * 7 * 7, latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        return self.fc(x.flatten(1))
''',
            ),
            "hard-codes 32 and 64 channels and ignores the `hidden` argument",
        ),
        (
            Answer(
                "no ReLU between the convolutions",
                '''class Encoder(nn.Module):
    """(N, 1, 28, 28) images -> (N, latent_dim) latent codes."""

    def __init__(self, latent_dim: int = 16, hidden: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, hidden, 4, 2, 1),
            nn.Conv2d(hidden, 2 * hidden, 4, 2, 1), nn.ReLU(),
            nn.Flatten(), nn.Linear(2 * hidden * 7 * 7, latent_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
''',
            ),
            "forgets the ReLU after the first convolution (two linear maps in a row)",
        ),
        (
            Answer(
                "second conv keeps hidden channels",
                '''class Encoder(nn.Module):
    """(N, 1, 28, 28) images -> (N, latent_dim) latent codes."""

    def __init__(self, latent_dim: int = 16, hidden: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, hidden, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 4, 2, 1), nn.ReLU(),
            nn.Flatten(), nn.Linear(hidden * 7 * 7, latent_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
''',
            ),
            "the second convolution does not double the channels (hidden instead of 2*hidden)",
        ),
    ],
    "decoder": [
        (
            Answer(
                "ReLU after the linear layer",
                '''class Decoder(nn.Module):
    """(N, latent_dim) latent codes -> (N, 1, 28, 28) images in [0, 1]."""

    def __init__(self, latent_dim: int = 16, hidden: int = 32):
        super().__init__()
        self.hidden = hidden
        self.fc = nn.Linear(latent_dim, 2 * hidden * 7 * 7)
        self.up = nn.Sequential(
            nn.ConvTranspose2d(2 * hidden, hidden, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(hidden, 1, 4, 2, 1), nn.Sigmoid(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc(z)).view(-1, 2 * self.hidden, 7, 7)
        return self.up(h)
''',
            ),
            "adds the ReLU after the linear layer that the prose says to leave out",
        ),
        (
            Answer(
                "no sigmoid",
                '''class Decoder(nn.Module):
    """(N, latent_dim) latent codes -> (N, 1, 28, 28) images in [0, 1]."""

    def __init__(self, latent_dim: int = 16, hidden: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 2 * hidden * 7 * 7), nn.Unflatten(1, (2 * hidden, 7, 7)),
            nn.ConvTranspose2d(2 * hidden, hidden, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(hidden, 1, 4, 2, 1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)
''',
            ),
            "forgets the final sigmoid: outputs are not in [0, 1]",
        ),
        (
            Answer(
                "clamp instead of sigmoid",
                '''class Decoder(nn.Module):
    """(N, latent_dim) latent codes -> (N, 1, 28, 28) images in [0, 1]."""

    def __init__(self, latent_dim: int = 16, hidden: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 2 * hidden * 7 * 7), nn.Unflatten(1, (2 * hidden, 7, 7)),
            nn.ConvTranspose2d(2 * hidden, hidden, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(hidden, 1, 4, 2, 1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).clamp(0, 1)
''',
            ),
            "clamps to [0, 1] instead of applying a sigmoid (no gradient outside the range)",
        ),
        (
            Answer(
                "hard-coded 64 channels",
                '''class Decoder(nn.Module):
    """(N, latent_dim) latent codes -> (N, 1, 28, 28) images in [0, 1]."""

    def __init__(self, latent_dim: int = 16, hidden: int = 32):
        super().__init__()
        self.fc = nn.Linear(latent_dim, 64 * 7 * 7)
        self.t1 = nn.ConvTranspose2d(64, 32, 4, 2, 1)
        self.t2 = nn.ConvTranspose2d(32, 1, 4, 2, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.fc(z).view(-1, 64, 7, 7)
        return torch.sigmoid(self.t2(torch.relu(self.t1(x))))
''',
            ),
            "hard-codes 64 and 32 channels and ignores the `hidden` argument",
        ),
        (
            Answer(
                "ReLU after the last transposed conv instead of between them",
                '''class Decoder(nn.Module):
    """(N, latent_dim) latent codes -> (N, 1, 28, 28) images in [0, 1]."""

    def __init__(self, latent_dim: int = 16, hidden: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 2 * hidden * 7 * 7), nn.Unflatten(1, (2 * hidden, 7, 7)),
            nn.ConvTranspose2d(2 * hidden, hidden, 4, 2, 1),
            nn.ConvTranspose2d(hidden, 1, 4, 2, 1), nn.ReLU(), nn.Sigmoid(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)
''',
            ),
            "puts the ReLU before the sigmoid instead of between the transposed convolutions (outputs never below 0.5)",
        ),
    ],
    "loss": [
        (
            Answer(
                "sum instead of mean",
                '''def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared error per pixel, averaged over the batch."""
    return ((x_hat - x) ** 2).sum()
''',
            ),
            "sums the squared errors instead of averaging them",
        ),
        (
            Answer(
                "per-image sum averaged over the batch",
                '''def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared error per pixel, averaged over the batch."""
    return ((x_hat - x) ** 2).flatten(1).sum(1).mean()
''',
            ),
            "sums over pixels and averages only over the batch (784 times too large)",
        ),
        (
            Answer(
                ".item()",
                '''def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared error per pixel, averaged over the batch."""
    return torch.tensor(((x_hat - x) ** 2).mean().item())
''',
            ),
            "detaches the loss from the graph (via .item()), so nothing can be backpropagated",
        ),
        (
            Answer(
                "absolute error",
                '''def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared error per pixel, averaged over the batch."""
    return (x_hat - x).abs().mean()
''',
            ),
            "computes the mean absolute error, not the mean squared error",
        ),
        (
            Answer(
                "root mean squared error",
                '''def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared error per pixel, averaged over the batch."""
    return torch.sqrt(((x_hat - x) ** 2).mean())
''',
            ),
            "takes the square root (RMSE)",
        ),
    ],
    "train-epoch": [
        (
            Answer(
                "unweighted mean of batch losses",
                '''def train_epoch(model: nn.Module, loader, optimizer: torch.optim.Optimizer, loss_fn) -> float:
    """One epoch of gradient steps; returns the mean training loss."""
    model.train()
    losses = []
    for batch in loader:
        loss = loss_fn(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)
''',
            ),
            "averages the batch losses without weighing them by batch size (wrong when the last batch is smaller)",
        ),
        (
            Answer(
                "no zero_grad",
                '''def train_epoch(model: nn.Module, loader, optimizer: torch.optim.Optimizer, loss_fn) -> float:
    """One epoch of gradient steps; returns the mean training loss."""
    model.train()
    total, count = 0.0, 0
    for batch in loader:
        loss = loss_fn(model, batch)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(batch[0])
        count += len(batch[0])
    return total / count
''',
            ),
            "never clears the gradients, so they accumulate over the batches",
        ),
        (
            Answer(
                "zero_grad between backward and step",
                '''def train_epoch(model: nn.Module, loader, optimizer: torch.optim.Optimizer, loss_fn) -> float:
    """One epoch of gradient steps; returns the mean training loss."""
    model.train()
    total, count = 0.0, 0
    for batch in loader:
        loss = loss_fn(model, batch)
        loss.backward()
        optimizer.zero_grad()
        optimizer.step()
        total += loss.item() * len(batch[0])
        count += len(batch[0])
    return total / count
''',
            ),
            "clears the gradients after backward and before step, so the optimiser steps on zero gradients",
        ),
        (
            Answer(
                "returns a tensor",
                '''def train_epoch(model: nn.Module, loader, optimizer: torch.optim.Optimizer, loss_fn) -> float:
    """One epoch of gradient steps; returns the mean training loss."""
    model.train()
    total, count = 0.0, 0
    for batch in loader:
        loss = loss_fn(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total = total + loss * len(batch[0])
        count += len(batch[0])
    return total / count
''',
            ),
            "accumulates loss tensors instead of loss.item(): returns a tensor (holding every batch's graph), not "
            "a float",
        ),
        (
            Answer(
                "stale gradients: zero_grad after step",
                '''def train_epoch(model: nn.Module, loader, optimizer: torch.optim.Optimizer, loss_fn) -> float:
    """One epoch of gradient steps; returns the mean training loss."""
    model.train()
    total, count = 0.0, 0
    for batch in loader:
        loss = loss_fn(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        total += loss.item() * len(batch[0])
        count += len(batch[0])
    return total / count
''',
            ),
            "clears gradients only after the step: the first step also uses whatever gradients were left in the model",
        ),
        (
            Answer(
                "forgets optimizer.step()",
                '''def train_epoch(model: nn.Module, loader, optimizer: torch.optim.Optimizer, loss_fn) -> float:
    """One epoch of gradient steps; returns the mean training loss."""
    model.train()
    total, count = 0.0, 0
    for batch in loader:
        loss = loss_fn(model, batch)
        optimizer.zero_grad()
        loss.backward()
        total += loss.item() * len(batch[0])
        count += len(batch[0])
    return total / count
''',
            ),
            "never calls optimizer.step(): the parameters do not change",
        ),
    ],
    "codebook": [
        (
            Answer(
                "normal initialisation",
                '''def make_codebook(num_codes: int, code_dim: int) -> nn.Parameter:
    """A learnable (num_codes, code_dim) matrix, one code vector per row."""
    return nn.Parameter(torch.randn(num_codes, code_dim) / num_codes)
''',
            ),
            "draws from a normal distribution scaled by 1/K, not uniform in [-1/K, 1/K]",
        ),
        (
            Answer(
                "uniform in [0, 1/K]",
                '''def make_codebook(num_codes: int, code_dim: int) -> nn.Parameter:
    """A learnable (num_codes, code_dim) matrix, one code vector per row."""
    return nn.Parameter(torch.rand(num_codes, code_dim) / num_codes)
''',
            ),
            "uniform in [0, 1/K] instead of [-1/K, 1/K]",
        ),
        (
            Answer(
                "bound 1/code_dim",
                '''def make_codebook(num_codes: int, code_dim: int) -> nn.Parameter:
    """A learnable (num_codes, code_dim) matrix, one code vector per row."""
    return nn.Parameter(torch.empty(num_codes, code_dim).uniform_(-1 / code_dim, 1 / code_dim))
''',
            ),
            "uses 1/d instead of 1/K as the bound",
        ),
        (
            Answer(
                "plain tensor",
                '''def make_codebook(num_codes: int, code_dim: int) -> nn.Parameter:
    """A learnable (num_codes, code_dim) matrix, one code vector per row."""
    return torch.empty(num_codes, code_dim).uniform_(-1 / num_codes, 1 / num_codes).requires_grad_()
''',
            ),
            "returns a plain tensor with requires_grad instead of an nn.Parameter (a module would not register it)",
        ),
        (
            Answer(
                "transposed shape",
                '''def make_codebook(num_codes: int, code_dim: int) -> nn.Parameter:
    """A learnable (num_codes, code_dim) matrix, one code vector per row."""
    return nn.Parameter(torch.empty(code_dim, num_codes).uniform_(-1 / num_codes, 1 / num_codes))
''',
            ),
            "shape (d, K) instead of (K, d)",
        ),
    ],
    "distances-broadcast": [
        (
            Answer(
                "Euclidean, not squared",
                '''def squared_distances_broadcast(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(M, d) vectors and (K, d) codes -> (M, K) squared distances, by broadcasting."""
    return ((z[:, None, :] - codebook[None, :, :]) ** 2).sum(-1).sqrt()
''',
            ),
            "takes the square root: Euclidean distances instead of squared ones",
        ),
        (
            Answer(
                "transposed broadcast",
                '''def squared_distances_broadcast(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(M, d) vectors and (K, d) codes -> (M, K) squared distances, by broadcasting."""
    return ((z[None, :, :] - codebook[:, None, :]) ** 2).sum(-1)
''',
            ),
            "puts the codes on the first axis: returns (K, M) instead of (M, K)",
        ),
        (
            Answer(
                "mean over d",
                '''def squared_distances_broadcast(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(M, d) vectors and (K, d) codes -> (M, K) squared distances, by broadcasting."""
    return ((z[:, None, :] - codebook[None, :, :]) ** 2).mean(-1)
''',
            ),
            "averages over the d coordinates instead of summing them",
        ),
        (
            Answer(
                "absolute differences",
                '''def squared_distances_broadcast(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(M, d) vectors and (K, d) codes -> (M, K) squared distances, by broadcasting."""
    return (z[:, None, :] - codebook[None, :, :]).abs().sum(-1)
''',
            ),
            "sums absolute differences (L1 distance) instead of squares",
        ),
    ],
    "distances": [
        (
            Answer(
                "broadcasting again",
                '''def squared_distances(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(M, d) vectors and (K, d) codes -> (M, K) squared distances, without an (M, K, d) tensor."""
    return ((z[:, None, :] - codebook[None, :, :]) ** 2).sum(-1)
''',
            ),
            "builds the (M, K, d) tensor the exercise is about avoiding",
        ),
        (
            Answer(
                "no keepdim",
                '''def squared_distances(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(M, d) vectors and (K, d) codes -> (M, K) squared distances, without an (M, K, d) tensor."""
    return z.pow(2).sum(1) - 2 * z @ codebook.T + codebook.pow(2).sum(1)
''',
            ),
            "forgets keepdim=True on ||z||², so it broadcasts along the wrong axis",
        ),
        (
            Answer(
                "missing factor 2",
                '''def squared_distances(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(M, d) vectors and (K, d) codes -> (M, K) squared distances, without an (M, K, d) tensor."""
    return z.pow(2).sum(1, keepdim=True) - z @ codebook.T + codebook.pow(2).sum(1)
''',
            ),
            "forgets the factor 2 on the cross term",
        ),
        (
            Answer(
                "sign of the cross term",
                '''def squared_distances(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(M, d) vectors and (K, d) codes -> (M, K) squared distances, without an (M, K, d) tensor."""
    return z.pow(2).sum(1, keepdim=True) + 2 * z @ codebook.T + codebook.pow(2).sum(1)
''',
            ),
            "adds the cross term instead of subtracting it",
        ),
        (
            Answer(
                "code norms summed over the wrong axis",
                '''def squared_distances(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(M, d) vectors and (K, d) codes -> (M, K) squared distances, without an (M, K, d) tensor."""
    return z.pow(2).sum(1, keepdim=True) - 2 * z @ codebook.T + codebook.pow(2).sum(0)
''',
            ),
            "sums the codebook's squares over the codes (axis 0) instead of over the coordinates",
        ),
    ],
    "quantize": [
        (
            Answer(
                "argmax",
                '''def quantize(z: torch.Tensor, codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, d) vectors -> ((M, d) nearest code vectors, (M,) their indices)."""
    distances = torch.cdist(z, codebook) ** 2
    indices = distances.argmax(dim=1)
    return codebook[indices], indices
''',
            ),
            "takes the farthest code (argmax) instead of the nearest",
        ),
        (
            Answer(
                "detached z_q",
                '''def quantize(z: torch.Tensor, codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, d) vectors -> ((M, d) nearest code vectors, (M,) their indices)."""
    with torch.no_grad():
        distances = torch.cdist(z, codebook) ** 2
        indices = distances.argmin(dim=1)
        z_q = codebook[indices]
    return z_q, indices
''',
            ),
            "looks the codes up under no_grad: z_q is cut from the codebook, so the codebook loss can never move "
            "the codes",
        ),
        (
            Answer(
                "argmin over the wrong axis",
                '''def quantize(z: torch.Tensor, codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, d) vectors -> ((M, d) nearest code vectors, (M,) their indices)."""
    distances = torch.cdist(z, codebook) ** 2
    indices = distances.argmin(dim=0)
    return codebook[indices], indices
''',
            ),
            "argmin over the vectors (dim 0) instead of over the codes",
        ),
        (
            Answer(
                "outputs swapped",
                '''def quantize(z: torch.Tensor, codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, d) vectors -> ((M, d) nearest code vectors, (M,) their indices)."""
    indices = (torch.cdist(z, codebook) ** 2).argmin(dim=1)
    return indices, codebook[indices]
''',
            ),
            "returns (indices, z_q) instead of (z_q, indices)",
        ),
        (
            Answer(
                "straight-through inside quantize",
                '''def quantize(z: torch.Tensor, codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, d) vectors -> ((M, d) nearest code vectors, (M,) their indices)."""
    indices = (torch.cdist(z, codebook) ** 2).argmin(dim=1)
    z_q = codebook[indices]
    return z + (z_q - z).detach(), indices
''',
            ),
            "applies the straight-through trick inside quantize: z_q then sends gradient to z and none to the codebook",
        ),
    ],
    "straight-through": [
        (
            Answer(
                "returns z_q",
                '''def straight_through(z_e: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """Value z_q; gradient copied to z_e unchanged; no gradient to z_q."""
    return z_q
''',
            ),
            "returns z_q itself: no gradient reaches z_e, and the gradient goes to z_q",
        ),
        (
            Answer(
                "roles swapped",
                '''def straight_through(z_e: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """Value z_q; gradient copied to z_e unchanged; no gradient to z_q."""
    return z_q + (z_e - z_q).detach()
''',
            ),
            "swaps the roles: the value is z_e and the gradient goes to z_q",
        ),
        (
            Answer(
                "no detach",
                '''def straight_through(z_e: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """Value z_q; gradient copied to z_e unchanged; no gradient to z_q."""
    return z_e + (z_q - z_e)
''',
            ),
            "forgets .detach(): the gradient to z_e cancels and all of it goes to z_q",
        ),
        (
            Answer(
                "detaches everything",
                '''def straight_through(z_e: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """Value z_q; gradient copied to z_e unchanged; no gradient to z_q."""
    return (z_e + (z_q - z_e)).detach()
''',
            ),
            "detaches the whole result: no gradient reaches z_e",
        ),
        (
            Answer(
                "detaches the wrong term",
                '''def straight_through(z_e: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """Value z_q; gradient copied to z_e unchanged; no gradient to z_q."""
    return z_e.detach() + (z_q - z_e)
''',
            ),
            "detaches z_e instead of the difference: the gradient reaches z_q and cancels on z_e",
        ),
    ],
    "vq-losses": [
        (
            Answer(
                "stop-gradients swapped",
                '''def vq_losses(z_e: torch.Tensor, z_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(codebook loss ||sg[z_e] - z_q||², commitment loss ||z_e - sg[z_q]||²), averaged."""
    codebook_loss = F.mse_loss(z_e, z_q.detach())
    commitment_loss = F.mse_loss(z_e.detach(), z_q)
    return codebook_loss, commitment_loss
''',
            ),
            "puts the stop-gradients on the wrong side: the codebook loss moves the encoder and vice versa",
        ),
        (
            Answer(
                "no stop-gradients",
                '''def vq_losses(z_e: torch.Tensor, z_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(codebook loss ||sg[z_e] - z_q||², commitment loss ||z_e - sg[z_q]||²), averaged."""
    loss = F.mse_loss(z_e, z_q)
    return loss, loss
''',
            ),
            "forgets the stop-gradients: both terms move both sides",
        ),
        (
            Answer(
                "beta inside the commitment loss",
                '''def vq_losses(z_e: torch.Tensor, z_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(codebook loss ||sg[z_e] - z_q||², commitment loss ||z_e - sg[z_q]||²), averaged."""
    return F.mse_loss(z_q, z_e.detach()), 0.25 * F.mse_loss(z_e, z_q.detach())
''',
            ),
            "multiplies the commitment loss by beta = 0.25, which the training loss applies again",
        ),
        (
            Answer(
                "sum instead of mean",
                '''def vq_losses(z_e: torch.Tensor, z_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(codebook loss ||sg[z_e] - z_q||², commitment loss ||z_e - sg[z_q]||²), averaged."""
    return ((z_e.detach() - z_q) ** 2).sum(), ((z_e - z_q.detach()) ** 2).sum()
''',
            ),
            "sums the squared errors instead of averaging them",
        ),
        (
            Answer(
                "losses returned in the other order",
                '''def vq_losses(z_e: torch.Tensor, z_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(codebook loss ||sg[z_e] - z_q||², commitment loss ||z_e - sg[z_q]||²), averaged."""
    codebook_loss = F.mse_loss(z_q, z_e.detach())
    commitment_loss = F.mse_loss(z_e, z_q.detach())
    return commitment_loss, codebook_loss
''',
            ),
            "returns (commitment, codebook): equal values, but each gradient goes to the wrong side",
        ),
    ],
    "masked-conv": [
        (
            Answer(
                "right half of the centre row kept",
                '''class MaskedConv2d(nn.Conv2d):
    """A convolution that only sees pixels above, and to the left on the same row (mask A: not the centre)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask_type: str = "B"):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        c = kernel_size // 2
        mask = torch.ones(kernel_size, kernel_size)
        mask[c + 1:, :] = 0
        if mask_type == "A":
            mask[c, c] = 0
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)
''',
            ),
            "only zeroes the rows below: the pixels right of the centre on the same row stay visible (not causal)",
        ),
        (
            Answer(
                "masks A and B swapped",
                '''class MaskedConv2d(nn.Conv2d):
    """A convolution that only sees pixels above, and to the left on the same row (mask A: not the centre)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask_type: str = "B"):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        c = kernel_size // 2
        mask = torch.zeros(kernel_size, kernel_size)
        mask[:c, :] = 1
        mask[c, :c] = 1
        if mask_type == "A":
            mask[c, c] = 1
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)
''',
            ),
            "keeps the centre in mask A and drops it in mask B (the two types swapped)",
        ),
        (
            Answer(
                "mask applied once in __init__",
                '''class MaskedConv2d(nn.Conv2d):
    """A convolution that only sees pixels above, and to the left on the same row (mask A: not the centre)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask_type: str = "B"):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        c = kernel_size // 2
        mask = torch.zeros(kernel_size, kernel_size)
        mask[:c, :] = 1
        mask[c, :c] = 1
        if mask_type == "B":
            mask[c, c] = 1
        self.register_buffer("mask", mask)
        with torch.no_grad():
            self.weight *= self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)
''',
            ),
            "masks the weights once at construction: after a training step the masked weights are non-zero again",
        ),
        (
            Answer(
                "mask as a plain attribute",
                '''class MaskedConv2d(nn.Conv2d):
    """A convolution that only sees pixels above, and to the left on the same row (mask A: not the centre)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask_type: str = "B"):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        c = kernel_size // 2
        mask = torch.zeros(kernel_size, kernel_size)
        mask[:c, :] = 1
        mask[c, :c] = 1
        if mask_type == "B":
            mask[c, c] = 1
        self.mask = mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)
''',
            ),
            "stores the mask as a plain attribute, not a buffer: it does not move with .to(device) or .double()",
        ),
        (
            Answer(
                "columns instead of rows",
                '''class MaskedConv2d(nn.Conv2d):
    """A convolution that only sees pixels above, and to the left on the same row (mask A: not the centre)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask_type: str = "B"):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        c = kernel_size // 2
        mask = torch.zeros(kernel_size, kernel_size)
        mask[:, :c] = 1
        mask[:c, c] = 1
        if mask_type == "B":
            mask[c, c] = 1
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)
''',
            ),
            "builds the mask column-wise (left columns, top of the centre column): it sees pixels below-left",
        ),
        (
            Answer(
                "mask as a trainable parameter",
                '''class MaskedConv2d(nn.Conv2d):
    """A convolution that only sees pixels above, and to the left on the same row (mask A: not the centre)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask_type: str = "B"):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        c = kernel_size // 2
        mask = torch.zeros(kernel_size, kernel_size)
        mask[:c, :] = 1
        mask[c, :c] = 1
        if mask_type == "B":
            mask[c, c] = 1
        self.mask = nn.Parameter(mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)
''',
            ),
            "makes the mask an nn.Parameter: the optimiser would train it",
        ),
    ],
    "pixelcnn": [
        (
            Answer(
                "mask B in the first layer",
                '''class ResidualBlock(nn.Module):
    """ReLU, 1x1 (c -> c/2), ReLU, masked 3x3 type B, ReLU, 1x1 (c/2 -> c), plus the input."""

    def __init__(self, channels: int):
        super().__init__()
        h = channels // 2
        self.net = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, h, 1), nn.ReLU(), MaskedConv2d(h, h, 3, "B"),
                                 nn.ReLU(), nn.Conv2d(h, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class PixelCNN(nn.Module):
    """(N, 1, H, W) intensities 0..255 -> (N, 256, H, W) logits of each pixel given the pixels before it."""

    def __init__(self, channels: int = 64, blocks: int = 5):
        super().__init__()
        self.first = MaskedConv2d(1, channels, 7, "B")
        self.blocks = nn.Sequential(*[ResidualBlock(channels) for _ in range(blocks)])
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, 256, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.first(x.float() / 255)))
''',
            ),
            "uses mask B in the first layer: each pixel's logits see the pixel itself",
        ),
        (
            Answer(
                "inplace ReLU destroys the skip",
                '''class ResidualBlock(nn.Module):
    """ReLU, 1x1 (c -> c/2), ReLU, masked 3x3 type B, ReLU, 1x1 (c/2 -> c), plus the input."""

    def __init__(self, channels: int):
        super().__init__()
        h = channels // 2
        self.net = nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(channels, h, 1), nn.ReLU(),
                                 MaskedConv2d(h, h, 3, "B"), nn.ReLU(), nn.Conv2d(h, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class PixelCNN(nn.Module):
    """(N, 1, H, W) intensities 0..255 -> (N, 256, H, W) logits of each pixel given the pixels before it."""

    def __init__(self, channels: int = 64, blocks: int = 5):
        super().__init__()
        self.first = MaskedConv2d(1, channels, 7, "A")
        self.blocks = nn.Sequential(*[ResidualBlock(channels) for _ in range(blocks)])
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, 256, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.first(x.float() / 255)))
''',
            ),
            "the block's first ReLU is in-place, so the skip connection adds relu(x) instead of x",
        ),
        (
            Answer(
                "input not scaled to [0, 1]",
                '''class ResidualBlock(nn.Module):
    """ReLU, 1x1 (c -> c/2), ReLU, masked 3x3 type B, ReLU, 1x1 (c/2 -> c), plus the input."""

    def __init__(self, channels: int):
        super().__init__()
        h = channels // 2
        self.net = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, h, 1), nn.ReLU(), MaskedConv2d(h, h, 3, "B"),
                                 nn.ReLU(), nn.Conv2d(h, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class PixelCNN(nn.Module):
    """(N, 1, H, W) intensities 0..255 -> (N, 256, H, W) logits of each pixel given the pixels before it."""

    def __init__(self, channels: int = 64, blocks: int = 5):
        super().__init__()
        self.first = MaskedConv2d(1, channels, 7, "A")
        self.blocks = nn.Sequential(*[ResidualBlock(channels) for _ in range(blocks)])
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, 256, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.first(x.float())))
''',
            ),
            "feeds x.float() without dividing by 255",
        ),
        (
            Answer(
                "no residual addition",
                '''class ResidualBlock(nn.Module):
    """ReLU, 1x1 (c -> c/2), ReLU, masked 3x3 type B, ReLU, 1x1 (c/2 -> c), plus the input."""

    def __init__(self, channels: int):
        super().__init__()
        h = channels // 2
        self.net = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, h, 1), nn.ReLU(), MaskedConv2d(h, h, 3, "B"),
                                 nn.ReLU(), nn.Conv2d(h, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PixelCNN(nn.Module):
    """(N, 1, H, W) intensities 0..255 -> (N, 256, H, W) logits of each pixel given the pixels before it."""

    def __init__(self, channels: int = 64, blocks: int = 5):
        super().__init__()
        self.first = MaskedConv2d(1, channels, 7, "A")
        self.blocks = nn.Sequential(*[ResidualBlock(channels) for _ in range(blocks)])
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, 256, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.first(x.float() / 255)))
''',
            ),
            "the block forgets to add its input (no residual connection)",
        ),
        (
            Answer(
                "softmax at the end",
                '''class ResidualBlock(nn.Module):
    """ReLU, 1x1 (c -> c/2), ReLU, masked 3x3 type B, ReLU, 1x1 (c/2 -> c), plus the input."""

    def __init__(self, channels: int):
        super().__init__()
        h = channels // 2
        self.net = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, h, 1), nn.ReLU(), MaskedConv2d(h, h, 3, "B"),
                                 nn.ReLU(), nn.Conv2d(h, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class PixelCNN(nn.Module):
    """(N, 1, H, W) intensities 0..255 -> (N, 256, H, W) logits of each pixel given the pixels before it."""

    def __init__(self, channels: int = 64, blocks: int = 5):
        super().__init__()
        self.first = MaskedConv2d(1, channels, 7, "A")
        self.blocks = nn.Sequential(*[ResidualBlock(channels) for _ in range(blocks)])
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, 256, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.softmax(self.head(self.blocks(self.first(x.float() / 255))), dim=1)
''',
            ),
            "applies a softmax: returns probabilities, not logits (cross_entropy would apply a second softmax)",
        ),
        (
            Answer(
                "no halving inside the block",
                '''class ResidualBlock(nn.Module):
    """ReLU, 1x1 (c -> c/2), ReLU, masked 3x3 type B, ReLU, 1x1 (c/2 -> c), plus the input."""

    def __init__(self, channels: int):
        super().__init__()
        self.net = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(),
                                 MaskedConv2d(channels, channels, 3, "B"), nn.ReLU(), nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class PixelCNN(nn.Module):
    """(N, 1, H, W) intensities 0..255 -> (N, 256, H, W) logits of each pixel given the pixels before it."""

    def __init__(self, channels: int = 64, blocks: int = 5):
        super().__init__()
        self.first = MaskedConv2d(1, channels, 7, "A")
        self.blocks = nn.Sequential(*[ResidualBlock(channels) for _ in range(blocks)])
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, 256, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.first(x.float() / 255)))
''',
            ),
            "the block keeps c channels throughout instead of going down to c/2 and back",
        ),
    ],
    "sample": [
        (
            Answer(
                "no crop",
                '''@torch.no_grad()
def sample(model: nn.Module, n: int, temperature: float = 1.0, image_size: tuple[int, int] = (28, 28)) -> torch.Tensor:
    """Draw n images (n, 1, H, W) of intensities 0..255, pixel by pixel."""
    model.eval()
    device = next(model.parameters()).device
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    height, width = image_size
    x = torch.zeros(n, 1, height, width, dtype=torch.long, device=device)
    for i in range(height):
        for j in range(width):
            probs = F.softmax(model(x)[:, :, i, j] / temperature, dim=1)
            x[:, 0, i, j] = torch.multinomial(probs, 1).squeeze(1)
    return x
''',
            ),
            "feeds the whole image at every step instead of cropping to the rows drawn so far",
        ),
        (
            Answer(
                "temperature multiplies",
                '''@torch.no_grad()
def sample(model: nn.Module, n: int, temperature: float = 1.0, image_size: tuple[int, int] = (28, 28)) -> torch.Tensor:
    """Draw n images (n, 1, H, W) of intensities 0..255, pixel by pixel."""
    model.eval()
    device = next(model.parameters()).device
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    height, width = image_size
    x = torch.zeros(n, 1, height, width, dtype=torch.long, device=device)
    for i in range(height):
        for j in range(width):
            probs = F.softmax(model(x[:, :, : i + 1, :])[:, :, i, j] * temperature, dim=1)
            x[:, 0, i, j] = torch.multinomial(probs, 1).squeeze(1)
    return x
''',
            ),
            "multiplies the logits by the temperature instead of dividing",
        ),
        (
            Answer(
                "argmax",
                '''@torch.no_grad()
def sample(model: nn.Module, n: int, temperature: float = 1.0, image_size: tuple[int, int] = (28, 28)) -> torch.Tensor:
    """Draw n images (n, 1, H, W) of intensities 0..255, pixel by pixel."""
    model.eval()
    device = next(model.parameters()).device
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    height, width = image_size
    x = torch.zeros(n, 1, height, width, dtype=torch.long, device=device)
    for i in range(height):
        for j in range(width):
            logits = model(x[:, :, : i + 1, :])[:, :, i, j] / temperature
            x[:, 0, i, j] = logits.argmax(dim=1)
    return x
''',
            ),
            "takes the most likely value (argmax) instead of drawing from the softmax",
        ),
        (
            Answer(
                "temperature applied to the probabilities",
                '''@torch.no_grad()
def sample(model: nn.Module, n: int, temperature: float = 1.0, image_size: tuple[int, int] = (28, 28)) -> torch.Tensor:
    """Draw n images (n, 1, H, W) of intensities 0..255, pixel by pixel."""
    model.eval()
    device = next(model.parameters()).device
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    height, width = image_size
    x = torch.zeros(n, 1, height, width, dtype=torch.long, device=device)
    for i in range(height):
        for j in range(width):
            probs = F.softmax(model(x[:, :, : i + 1, :])[:, :, i, j], dim=1) / temperature
            x[:, 0, i, j] = torch.multinomial(probs, 1).squeeze(1)
    return x
''',
            ),
            "divides the probabilities (after the softmax) by T, which multinomial renormalises away: no "
            "temperature effect",
        ),
        (
            Answer(
                "only negative temperatures rejected",
                '''@torch.no_grad()
def sample(model: nn.Module, n: int, temperature: float = 1.0, image_size: tuple[int, int] = (28, 28)) -> torch.Tensor:
    """Draw n images (n, 1, H, W) of intensities 0..255, pixel by pixel."""
    model.eval()
    device = next(model.parameters()).device
    if temperature < 0:
        raise ValueError("temperature must not be negative")
    height, width = image_size
    x = torch.zeros(n, 1, height, width, dtype=torch.long, device=device)
    for i in range(height):
        for j in range(width):
            probs = F.softmax(model(x[:, :, : i + 1, :])[:, :, i, j] / temperature, dim=1)
            x[:, 0, i, j] = torch.multinomial(probs, 1).squeeze(1)
    return x
''',
            ),
            "accepts T = 0 (only T < 0 raises ValueError)",
        ),
        (
            Answer(
                "one forward pass per row",
                '''@torch.no_grad()
def sample(model: nn.Module, n: int, temperature: float = 1.0, image_size: tuple[int, int] = (28, 28)) -> torch.Tensor:
    """Draw n images (n, 1, H, W) of intensities 0..255, pixel by pixel."""
    model.eval()
    device = next(model.parameters()).device
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    height, width = image_size
    x = torch.zeros(n, 1, height, width, dtype=torch.long, device=device)
    for i in range(height):
        logits = model(x[:, :, : i + 1, :])[:, :, i, :] / temperature          # (n, 256, W)
        probs = F.softmax(logits, dim=1).permute(0, 2, 1).reshape(-1, logits.shape[1])
        x[:, 0, i, :] = torch.multinomial(probs, 1).view(n, width)
    return x
''',
            ),
            "draws a whole row from one forward pass: pixels of a row do not see the ones drawn just before them",
        ),
    ],
    "encode": [
        (
            Answer(
                "all at once",
                '''@torch.no_grad()
def encode_codes(vqvae: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """(N, 1, 28, 28) images -> (N, 7, 7) int64 code indices."""
    return vqvae.encode(images)
''',
            ),
            "ignores batch_size and encodes everything in one pass",
        ),
        (
            Answer(
                "drops the last partial batch",
                '''@torch.no_grad()
def encode_codes(vqvae: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """(N, 1, 28, 28) images -> (N, 7, 7) int64 code indices."""
    codes = []
    for b in range(len(images) // batch_size):
        codes.append(vqvae.encode(images[b * batch_size : (b + 1) * batch_size]))
    return torch.cat(codes)
''',
            ),
            "loops over len // batch_size batches, dropping the last partial batch",
        ),
        (
            Answer(
                "torch.stack",
                '''@torch.no_grad()
def encode_codes(vqvae: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """(N, 1, 28, 28) images -> (N, 7, 7) int64 code indices."""
    return torch.stack([vqvae.encode(chunk) for chunk in images.split(batch_size)])
''',
            ),
            "stacks the batches into a new axis instead of concatenating them",
        ),
        (
            Answer(
                "off-by-one slices",
                '''@torch.no_grad()
def encode_codes(vqvae: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """(N, 1, 28, 28) images -> (N, 7, 7) int64 code indices."""
    codes = []
    for start in range(0, len(images), batch_size):
        codes.append(vqvae.encode(images[start : start + batch_size - 1]))
    return torch.cat(codes)
''',
            ),
            "slices start : start + batch_size - 1, losing one image per batch",
        ),
        (
            Answer(
                "returns the list",
                '''@torch.no_grad()
def encode_codes(vqvae: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """(N, 1, 28, 28) images -> (N, 7, 7) int64 code indices."""
    return [vqvae.encode(chunk) for chunk in images.split(batch_size)]
''',
            ),
            "returns the list of per-batch grids instead of one concatenated tensor",
        ),
    ],
    "prior": [
        (
            Answer(
                "mask B in the first layer",
                '''class Prior(nn.Module):
    """(N, 7, 7) code indices -> (N, num_codes, 7, 7) logits of each code given the codes before it."""

    def __init__(self, num_codes: int = 128, channels: int = 64, blocks: int = 5, embed: int = 32):
        super().__init__()
        self.embedding = nn.Embedding(num_codes, embed)
        self.net = nn.Sequential(
            MaskedConv2d(embed, channels, 7, mask_type="B"),
            *[ResidualBlock(channels) for _ in range(blocks)],
            nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, num_codes, 1),
        )

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.net(self.embedding(codes).permute(0, 3, 1, 2))
''',
            ),
            "uses mask B in the first layer: each position's logits see the code they predict",
        ),
        (
            Answer(
                "view instead of permute",
                '''class Prior(nn.Module):
    """(N, 7, 7) code indices -> (N, num_codes, 7, 7) logits of each code given the codes before it."""

    def __init__(self, num_codes: int = 128, channels: int = 64, blocks: int = 5, embed: int = 32):
        super().__init__()
        self.embed_dim = embed
        self.embedding = nn.Embedding(num_codes, embed)
        self.net = nn.Sequential(
            MaskedConv2d(embed, channels, 7, mask_type="A"),
            *[ResidualBlock(channels) for _ in range(blocks)],
            nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, num_codes, 1),
        )

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        n, h, w = codes.shape
        return self.net(self.embedding(codes).view(n, self.embed_dim, h, w))
''',
            ),
            "reshapes (N, 7, 7, E) to (N, E, 7, 7) with view instead of permute: scrambles positions and channels "
            "(and breaks causality)",
        ),
        (
            Answer(
                "softmax output",
                '''class Prior(nn.Module):
    """(N, 7, 7) code indices -> (N, num_codes, 7, 7) logits of each code given the codes before it."""

    def __init__(self, num_codes: int = 128, channels: int = 64, blocks: int = 5, embed: int = 32):
        super().__init__()
        self.embedding = nn.Embedding(num_codes, embed)
        self.net = nn.Sequential(
            MaskedConv2d(embed, channels, 7, mask_type="A"),
            *[ResidualBlock(channels) for _ in range(blocks)],
            nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, num_codes, 1),
            nn.Softmax(dim=1),
        )

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.net(self.embedding(codes).permute(0, 3, 1, 2))
''',
            ),
            "applies a softmax at the end, which the prose says the model must not do",
        ),
        (
            Answer(
                "256 outputs",
                '''class Prior(nn.Module):
    """(N, 7, 7) code indices -> (N, num_codes, 7, 7) logits of each code given the codes before it."""

    def __init__(self, num_codes: int = 128, channels: int = 64, blocks: int = 5, embed: int = 32):
        super().__init__()
        self.embedding = nn.Embedding(num_codes, embed)
        self.net = nn.Sequential(
            MaskedConv2d(embed, channels, 7, mask_type="A"),
            *[ResidualBlock(channels) for _ in range(blocks)],
            nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, 256, 1),
        )

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.net(self.embedding(codes).permute(0, 3, 1, 2))
''',
            ),
            "copies notebook 03's 256 output classes instead of num_codes",
        ),
        (
            Answer(
                "codes fed as numbers",
                '''class Prior(nn.Module):
    """(N, 7, 7) code indices -> (N, num_codes, 7, 7) logits of each code given the codes before it."""

    def __init__(self, num_codes: int = 128, channels: int = 64, blocks: int = 5, embed: int = 32):
        super().__init__()
        self.num_codes = num_codes
        self.net = nn.Sequential(
            MaskedConv2d(1, channels, 7, mask_type="A"),
            *[ResidualBlock(channels) for _ in range(blocks)],
            nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, num_codes, 1),
        )

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.net(codes[:, None].float() / (self.num_codes - 1))
''',
            ),
            "feeds the indices as intensities (like notebook 03) instead of embedding them: codes are names, not "
            "numbers",
        ),
        (
            Answer(
                "head without the first ReLU",
                '''class Prior(nn.Module):
    """(N, 7, 7) code indices -> (N, num_codes, 7, 7) logits of each code given the codes before it."""

    def __init__(self, num_codes: int = 128, channels: int = 64, blocks: int = 5, embed: int = 32):
        super().__init__()
        self.embedding = nn.Embedding(num_codes, embed)
        self.net = nn.Sequential(
            MaskedConv2d(embed, channels, 7, mask_type="A"),
            *[ResidualBlock(channels) for _ in range(blocks)],
            nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, num_codes, 1),
        )

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.net(self.embedding(codes).permute(0, 3, 1, 2))
''',
            ),
            "leaves out the ReLU before the first 1x1 convolution of the head",
        ),
    ],
    "sample-codes": [
        (
            Answer(
                "temperature multiplies",
                '''@torch.no_grad()
def sample_codes(prior: nn.Module, n: int, temperature: float = 1.0) -> torch.Tensor:
    """Draw n code grids (n, 7, 7) from the prior."""
    prior.eval()
    device = next(prior.parameters()).device
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    codes = torch.zeros(n, 7, 7, dtype=torch.long, device=device)
    for i in range(7):
        for j in range(7):
            probs = F.softmax(prior(codes)[:, :, i, j] * temperature, dim=1)
            codes[:, i, j] = torch.multinomial(probs, 1).squeeze(1)
    return codes
''',
            ),
            "multiplies the logits by the temperature instead of dividing",
        ),
        (
            Answer(
                "all positions in one pass",
                '''@torch.no_grad()
def sample_codes(prior: nn.Module, n: int, temperature: float = 1.0) -> torch.Tensor:
    """Draw n code grids (n, 7, 7) from the prior."""
    prior.eval()
    device = next(prior.parameters()).device
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    codes = torch.zeros(n, 7, 7, dtype=torch.long, device=device)
    logits = prior(codes) / temperature                                   # (n, K, 7, 7)
    probs = F.softmax(logits, dim=1).permute(0, 2, 3, 1).reshape(-1, logits.shape[1])
    return torch.multinomial(probs, 1).view(n, 7, 7)
''',
            ),
            "draws all 49 codes from a single forward pass on the zero grid: no code sees the ones drawn before it",
        ),
        (
            Answer(
                "column-major order",
                '''@torch.no_grad()
def sample_codes(prior: nn.Module, n: int, temperature: float = 1.0) -> torch.Tensor:
    """Draw n code grids (n, 7, 7) from the prior."""
    prior.eval()
    device = next(prior.parameters()).device
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    codes = torch.zeros(n, 7, 7, dtype=torch.long, device=device)
    for j in range(7):
        for i in range(7):
            probs = F.softmax(prior(codes)[:, :, i, j] / temperature, dim=1)
            codes[:, i, j] = torch.multinomial(probs, 1).squeeze(1)
    return codes
''',
            ),
            "fills the grid column by column instead of in raster (row by row) order",
        ),
        (
            Answer(
                "softmax over the batch",
                '''@torch.no_grad()
def sample_codes(prior: nn.Module, n: int, temperature: float = 1.0) -> torch.Tensor:
    """Draw n code grids (n, 7, 7) from the prior."""
    prior.eval()
    device = next(prior.parameters()).device
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    codes = torch.zeros(n, 7, 7, dtype=torch.long, device=device)
    for i in range(7):
        for j in range(7):
            probs = F.softmax(prior(codes)[:, :, i, j] / temperature, dim=0)
            codes[:, i, j] = torch.multinomial(probs, 1).squeeze(1)
    return codes
''',
            ),
            "takes the softmax over the batch axis (dim 0) instead of over the codes",
        ),
        (
            Answer(
                "no ValueError",
                '''@torch.no_grad()
def sample_codes(prior: nn.Module, n: int, temperature: float = 1.0) -> torch.Tensor:
    """Draw n code grids (n, 7, 7) from the prior."""
    prior.eval()
    device = next(prior.parameters()).device
    codes = torch.zeros(n, 7, 7, dtype=torch.long, device=device)
    for i in range(7):
        for j in range(7):
            probs = F.softmax(prior(codes)[:, :, i, j] / max(temperature, 1e-6), dim=1)
            codes[:, i, j] = torch.multinomial(probs, 1).squeeze(1)
    return codes
''',
            ),
            "silently clamps the temperature instead of raising ValueError for T <= 0",
        ),
        (
            Answer(
                "argmax",
                '''@torch.no_grad()
def sample_codes(prior: nn.Module, n: int, temperature: float = 1.0) -> torch.Tensor:
    """Draw n code grids (n, 7, 7) from the prior."""
    prior.eval()
    device = next(prior.parameters()).device
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    codes = torch.zeros(n, 7, 7, dtype=torch.long, device=device)
    for i in range(7):
        for j in range(7):
            codes[:, i, j] = (prior(codes)[:, :, i, j] / temperature).argmax(1)
    return codes
''',
            ),
            "greedy argmax instead of a random draw: every grid is the same",
        ),
    ],
    "reparameterize": [
        (
            Answer(
                "variance instead of std",
                '''def reparameterize(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """A differentiable sample z = mean + sigma * eps of N(mean, exp(log_var)), eps ~ N(0, I)."""
    return mean + torch.exp(log_var) * torch.randn_like(mean)
''',
            ),
            "scales eps by exp(log_var), the variance, instead of the standard deviation exp(log_var / 2)",
        ),
        (
            Answer(
                "log_var as std",
                '''def reparameterize(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """A differentiable sample z = mean + sigma * eps of N(mean, exp(log_var)), eps ~ N(0, I)."""
    return mean + log_var * torch.randn_like(mean)
''',
            ),
            "uses log_var directly as the standard deviation",
        ),
        (
            Answer(
                "uniform noise",
                '''def reparameterize(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """A differentiable sample z = mean + sigma * eps of N(mean, exp(log_var)), eps ~ N(0, I)."""
    return mean + torch.exp(0.5 * log_var) * torch.rand_like(mean)
''',
            ),
            "draws eps with torch.rand_like (uniform in [0, 1)) instead of a standard normal",
        ),
        (
            Answer(
                "Normal(...).sample()",
                '''def reparameterize(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """A differentiable sample z = mean + sigma * eps of N(mean, exp(log_var)), eps ~ N(0, I)."""
    return torch.distributions.Normal(mean, torch.exp(0.5 * log_var)).sample()
''',
            ),
            "uses .sample() instead of .rsample(): the sample carries no gradient",
        ),
        (
            Answer(
                "one eps shared by the batch",
                '''def reparameterize(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """A differentiable sample z = mean + sigma * eps of N(mean, exp(log_var)), eps ~ N(0, I)."""
    eps = torch.randn(mean.shape[-1], device=mean.device, dtype=mean.dtype)
    return mean + torch.exp(0.5 * log_var) * eps
''',
            ),
            "draws one eps vector and shares it across the whole batch",
        ),
    ],
    "kl": [
        (
            Answer(
                "mean over dimensions",
                '''def kl_to_standard_normal(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """(N, d) means and log-variances -> (N,) KL(N(mean, sigma²) || N(0, I)) in nats."""
    return 0.5 * (mean ** 2 + log_var.exp() - log_var - 1).mean(dim=1)
''',
            ),
            "averages over the latent dimensions instead of summing them",
        ),
        (
            Answer(
                "sum over everything",
                '''def kl_to_standard_normal(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """(N, d) means and log-variances -> (N,) KL(N(mean, sigma²) || N(0, I)) in nats."""
    return 0.5 * (mean ** 2 + log_var.exp() - log_var - 1).sum()
''',
            ),
            "sums over the batch too: one scalar instead of one value per example",
        ),
        (
            Answer(
                "no one half",
                '''def kl_to_standard_normal(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """(N, d) means and log-variances -> (N,) KL(N(mean, sigma²) || N(0, I)) in nats."""
    return (mean ** 2 + log_var.exp() - log_var - 1).sum(dim=1)
''',
            ),
            "forgets the factor 1/2",
        ),
        (
            Answer(
                "sign of log_var",
                '''def kl_to_standard_normal(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """(N, d) means and log-variances -> (N,) KL(N(mean, sigma²) || N(0, I)) in nats."""
    return 0.5 * (mean ** 2 + log_var.exp() + log_var - 1).sum(dim=1)
''',
            ),
            "adds log sigma² instead of subtracting it",
        ),
        (
            Answer(
                "summed over the batch axis",
                '''def kl_to_standard_normal(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """(N, d) means and log-variances -> (N,) KL(N(mean, sigma²) || N(0, I)) in nats."""
    return 0.5 * (mean ** 2 + log_var.exp() - log_var - 1).sum(dim=0)
''',
            ),
            "sums over the batch (dim 0): one value per latent dimension instead of per example",
        ),
        (
            Answer(
                "log_var squared as the variance",
                '''def kl_to_standard_normal(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """(N, d) means and log-variances -> (N,) KL(N(mean, sigma²) || N(0, I)) in nats."""
    return 0.5 * (mean ** 2 + log_var ** 2 - torch.log(log_var ** 2) - 1).sum(dim=1)
''',
            ),
            "treats log_var as sigma: uses log_var² as the variance",
        ),
    ],
    "vae-loss": [
        (
            Answer(
                "BCE averaged over pixels",
                '''def vae_loss(model: VAE, batch: tuple) -> dict[str, torch.Tensor]:
    """Negative ELBO per image in nats, with its two terms: {"loss", "reconstruction", "kl"}."""
    x, _ = batch
    mean, log_var = model.encoder(x)
    x_hat = model.decoder(reparameterize(mean, log_var))
    reconstruction = F.binary_cross_entropy(x_hat, x)
    kl = kl_to_standard_normal(mean, log_var).mean()
    return {"loss": reconstruction + kl, "reconstruction": reconstruction, "kl": kl}
''',
            ),
            "uses the default mean reduction: reconstruction per pixel, not summed over the 784 pixels",
        ),
        (
            Answer(
                "KL summed over the batch",
                '''def vae_loss(model: VAE, batch: tuple) -> dict[str, torch.Tensor]:
    """Negative ELBO per image in nats, with its two terms: {"loss", "reconstruction", "kl"}."""
    x, _ = batch
    mean, log_var = model.encoder(x)
    x_hat = model.decoder(reparameterize(mean, log_var))
    reconstruction = F.binary_cross_entropy(x_hat, x, reduction="sum") / x.shape[0]
    kl = kl_to_standard_normal(mean, log_var).sum()
    return {"loss": reconstruction + kl, "reconstruction": reconstruction, "kl": kl}
''',
            ),
            "sums the KL over the batch instead of averaging it",
        ),
        (
            Answer(
                "decodes the mean",
                '''def vae_loss(model: VAE, batch: tuple) -> dict[str, torch.Tensor]:
    """Negative ELBO per image in nats, with its two terms: {"loss", "reconstruction", "kl"}."""
    x, _ = batch
    mean, log_var = model.encoder(x)
    x_hat = model.decoder(mean)
    reconstruction = F.binary_cross_entropy(x_hat, x, reduction="sum") / x.shape[0]
    kl = kl_to_standard_normal(mean, log_var).mean()
    return {"loss": reconstruction + kl, "reconstruction": reconstruction, "kl": kl}
''',
            ),
            "decodes the mean instead of a sample z: the reconstruction term gives log_var no gradient",
        ),
        (
            Answer(
                "MSE instead of BCE",
                '''def vae_loss(model: VAE, batch: tuple) -> dict[str, torch.Tensor]:
    """Negative ELBO per image in nats, with its two terms: {"loss", "reconstruction", "kl"}."""
    x, _ = batch
    mean, log_var = model.encoder(x)
    x_hat = model.decoder(reparameterize(mean, log_var))
    reconstruction = F.mse_loss(x_hat, x, reduction="sum") / x.shape[0]
    kl = kl_to_standard_normal(mean, log_var).mean()
    return {"loss": reconstruction + kl, "reconstruction": reconstruction, "kl": kl}
''',
            ),
            "uses the squared error instead of the Bernoulli (binary cross-entropy) likelihood",
        ),
        (
            Answer(
                "BCE arguments swapped",
                '''def vae_loss(model: VAE, batch: tuple) -> dict[str, torch.Tensor]:
    """Negative ELBO per image in nats, with its two terms: {"loss", "reconstruction", "kl"}."""
    x, _ = batch
    mean, log_var = model.encoder(x)
    x_hat = model.decoder(reparameterize(mean, log_var))
    reconstruction = F.binary_cross_entropy(x, x_hat, reduction="sum") / x.shape[0]
    kl = kl_to_standard_normal(mean, log_var).mean()
    return {"loss": reconstruction + kl, "reconstruction": reconstruction, "kl": kl}
''',
            ),
            "passes (x, x_hat) to binary_cross_entropy: the image becomes the prediction and x_hat the target",
        ),
        (
            Answer(
                "ELBO instead of its negative",
                '''def vae_loss(model: VAE, batch: tuple) -> dict[str, torch.Tensor]:
    """Negative ELBO per image in nats, with its two terms: {"loss", "reconstruction", "kl"}."""
    x, _ = batch
    mean, log_var = model.encoder(x)
    x_hat = model.decoder(reparameterize(mean, log_var))
    reconstruction = F.binary_cross_entropy(x_hat, x, reduction="sum") / x.shape[0]
    kl = -kl_to_standard_normal(mean, log_var).mean()
    return {"loss": reconstruction + kl, "reconstruction": reconstruction, "kl": kl}
''',
            ),
            "negates the KL term (a sign error from the ELBO), so the loss rewards a large KL",
        ),
    ],
}


# ---------------------------------------------------------------------------------------------------------------
# notebook 06: transformer prior
# ---------------------------------------------------------------------------------------------------------------
# The `self-attention` answers call the student's `attention` and `causal_mask` (exercises `attention`,
# `causal-mask`), as the prose asks ("with your two functions"), unless they use F.scaled_dot_product_attention;
# the `attention-step` answers likewise use them where they call them ("as in Exercise 3").

CORRECT_ANSWERS["causal-mask"] = [
    Answer(
        "torch.tril of a bool ones matrix with the offset keys - queries",
        '''def causal_mask(queries: int, keys: int) -> torch.Tensor:
    """(queries, keys) bool: True where query i, the position keys - queries + i, may attend to key j."""
    return torch.tril(torch.ones(queries, keys, dtype=torch.bool), diagonal=keys - queries)
''',
    ),
    Answer(
        "comparison of arange indices (positions of the queries against keys)",
        '''def causal_mask(queries: int, keys: int) -> torch.Tensor:
    """(queries, keys) bool: True where query i, the position keys - queries + i, may attend to key j."""
    positions = torch.arange(queries) + (keys - queries)  # the position each query stands for
    j = torch.arange(keys)
    return j[None, :] <= positions[:, None]
''',
    ),
    Answer(
        "complement of the strict upper triangle (triu with offset + 1)",
        '''def causal_mask(queries: int, keys: int) -> torch.Tensor:
    """(queries, keys) bool: True where query i, the position keys - queries + i, may attend to key j."""
    future = torch.triu(torch.ones(queries, keys, dtype=torch.bool), diagonal=keys - queries + 1)
    return ~future
''',
    ),
    Answer(
        "double loop filling a zeros matrix, local named mask",
        '''def causal_mask(queries: int, keys: int) -> torch.Tensor:
    """(queries, keys) bool: True where query i, the position keys - queries + i, may attend to key j."""
    mask = torch.zeros(queries, keys, dtype=torch.bool)
    offset = keys - queries
    for i in range(queries):
        for j in range(keys):
            if j <= offset + i:
                mask[i, j] = True
    return mask
''',
    ),
    Answer(
        "last rows of the full (keys, keys) lower triangle, float tril then .bool()",
        '''def causal_mask(queries: int, keys: int) -> torch.Tensor:
    """(queries, keys) bool: True where query i, the position keys - queries + i, may attend to key j."""
    full = torch.ones(keys, keys).tril().bool()  # a whole sequence of `keys` positions
    return full[keys - queries:]  # the queries are the last positions
''',
    ),
    Answer(
        "row slices in a loop, tril method on a float matrix compared with 1",
        '''def causal_mask(queries: int, keys: int) -> torch.Tensor:
    """(queries, keys) bool: True where query i, the position keys - queries + i, may attend to key j."""
    m = torch.ones(queries, keys).tril(keys - queries)
    return m == 1
''',
    ),
    Answer(
        "torch.ge on broadcast index grids from torch.meshgrid",
        '''def causal_mask(queries: int, keys: int) -> torch.Tensor:
    """(queries, keys) bool: True where query i, the position keys - queries + i, may attend to key j."""
    i, j = torch.meshgrid(torch.arange(queries), torch.arange(keys), indexing="ij")
    return torch.ge(i + keys - queries, j)
''',
    ),
]

UNSEEN_WRONG_ANSWERS["causal-mask"] = [
    (
        Answer(
            "tril without the offset",
            '''def causal_mask(queries: int, keys: int) -> torch.Tensor:
    """(queries, keys) bool: True where query i, the position keys - queries + i, may attend to key j."""
    return torch.tril(torch.ones(queries, keys, dtype=torch.bool))
''',
        ),
        "no offset: query i is treated as position i, not keys - queries + i (wrong when queries < keys)",
    ),
    (
        Answer(
            "strict lower triangle",
            '''def causal_mask(queries: int, keys: int) -> torch.Tensor:
    """(queries, keys) bool: True where query i, the position keys - queries + i, may attend to key j."""
    return torch.tril(torch.ones(queries, keys, dtype=torch.bool), diagonal=keys - queries - 1)
''',
        ),
        "leaves out the diagonal: a position may not attend to itself",
    ),
    (
        Answer(
            "upper triangle",
            '''def causal_mask(queries: int, keys: int) -> torch.Tensor:
    """(queries, keys) bool: True where query i, the position keys - queries + i, may attend to key j."""
    return torch.triu(torch.ones(queries, keys, dtype=torch.bool), diagonal=keys - queries)
''',
        ),
        "uses triu: True for the later keys (the future) instead of the earlier ones",
    ),
    (
        Answer(
            "first rows of the full triangle",
            '''def causal_mask(queries: int, keys: int) -> torch.Tensor:
    """(queries, keys) bool: True where query i, the position keys - queries + i, may attend to key j."""
    return torch.ones(keys, keys, dtype=torch.bool).tril()[:queries]
''',
        ),
        "takes the first `queries` rows of the full mask instead of the last ones",
    ),
    (
        Answer(
            "float mask",
            '''def causal_mask(queries: int, keys: int) -> torch.Tensor:
    """(queries, keys) bool: True where query i, the position keys - queries + i, may attend to key j."""
    return torch.tril(torch.ones(queries, keys), diagonal=keys - queries)
''',
        ),
        "returns a float tensor of ones and zeros instead of a bool one",
    ),
    (
        Answer(
            "offset with the wrong sign",
            '''def causal_mask(queries: int, keys: int) -> torch.Tensor:
    """(queries, keys) bool: True where query i, the position keys - queries + i, may attend to key j."""
    return torch.tril(torch.ones(queries, keys, dtype=torch.bool), diagonal=queries - keys)
''',
        ),
        "offset queries - keys instead of keys - queries",
    ),
]

CORRECT_ANSWERS["attention"] = [
    Answer(
        "d read from the values (the prose gives q, k and v the same last size d), torch.bmm on flattened heads",
        '''def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d), -inf where mask is False) v, for (N, heads, T, d) q and (N, heads, S, d) k, v."""
    *batch, t, d = q.shape
    d = v.size(-1)
    scores = torch.bmm(q.reshape(-1, t, d), k.reshape(-1, k.shape[-2], d).transpose(1, 2)) / d**0.5
    scores = scores.view(*batch, t, -1).masked_fill(mask.logical_not(), float("-inf"))
    return scores.softmax(-1) @ v
''',
    ),
    Answer(
        "as the prose: @, masked_fill with float('-inf'), F.softmax",
        '''def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d), -inf where mask is False) v, for (N, heads, T, d) q and (N, heads, S, d) k, v."""
    d = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)
    scores = scores.masked_fill(~mask, float("-inf"))
    weights = F.softmax(scores, dim=-1)
    return weights @ v
''',
    ),
    Answer(
        "torch.einsum, -torch.inf, .softmax method, d ** -0.5",
        '''def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d), -inf where mask is False) v, for (N, heads, T, d) q and (N, heads, S, d) k, v."""
    scores = torch.einsum("nhtd,nhsd->nhts", q, k) * q.size(-1) ** -0.5
    scores = scores.masked_fill(mask.logical_not(), -torch.inf)
    attention = scores.softmax(dim=-1)
    return torch.einsum("nhts,nhsd->nhtd", attention, v)
''',
    ),
    Answer(
        "torch.matmul, torch.where with a -inf tensor, queries scaled first",
        '''def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d), -inf where mask is False) v, for (N, heads, T, d) q and (N, heads, S, d) k, v."""
    q = q / q.shape[-1] ** 0.5
    scores = torch.matmul(q, k.transpose(-1, -2))
    scores = torch.where(mask, scores, torch.tensor(float("-inf"), dtype=scores.dtype, device=scores.device))
    return torch.matmul(torch.softmax(scores, dim=-1), v)
''',
    ),
    Answer(
        "computed in float64, converted back to the input dtype",
        '''def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d), -inf where mask is False) v, for (N, heads, T, d) q and (N, heads, S, d) k, v."""
    q64, k64, v64 = q.double(), k.double(), v.double()
    scores = q64 @ k64.transpose(-2, -1) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~mask, float("-inf"))
    out = scores.softmax(-1) @ v64
    return out.to(q.dtype)
''',
    ),
    Answer(
        "PyTorch's F.scaled_dot_product_attention with the bool mask",
        '''def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d), -inf where mask is False) v, for (N, heads, T, d) q and (N, heads, S, d) k, v."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
''',
    ),
    Answer(
        "a very negative finite number (-1e9) instead of -inf, mask moved to the scores' device",
        '''def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d), -inf where mask is False) v, for (N, heads, T, d) q and (N, heads, S, d) k, v."""
    d_k = k.size(-1)
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(d_k)
    scores = scores.masked_fill(mask.to(scores.device) == 0, -1e9)  # exp(-1e9) is exactly 0 in float32
    p = F.softmax(scores, dim=-1)
    return p @ v
''',
    ),
    Answer(
        "torch.finfo(dtype).min instead of -inf, weights named attn",
        '''def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d), -inf where mask is False) v, for (N, heads, T, d) q and (N, heads, S, d) k, v."""
    scale = 1 / math.sqrt(q.size(-1))
    scores = torch.matmul(q, k.mT) * scale
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    attn = F.softmax(scores, dim=-1)
    return torch.matmul(attn, v)
''',
    ),
    Answer(
        "softmax written out: subtract the row max, exp, divide by the sum",
        '''def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d), -inf where mask is False) v, for (N, heads, T, d) q and (N, heads, S, d) k, v."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~mask, float("-inf"))
    scores = scores - scores.amax(dim=-1, keepdim=True)
    e = scores.exp()
    weights = e / e.sum(dim=-1, keepdim=True)
    return weights @ v
''',
    ),
]

UNSEEN_WRONG_ANSWERS["attention"] = [
    (
        Answer(
            "divides by d",
            '''def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d), -inf where mask is False) v, for (N, heads, T, d) q and (N, heads, S, d) k, v."""
    d = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / d
    scores = scores.masked_fill(~mask, float("-inf"))
    return F.softmax(scores, dim=-1) @ v
''',
        ),
        "scales the scores by 1/d instead of 1/sqrt(d)",
    ),
    (
        Answer(
            "no scaling",
            '''def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d), -inf where mask is False) v, for (N, heads, T, d) q and (N, heads, S, d) k, v."""
    scores = q @ k.transpose(-2, -1)
    scores = scores.masked_fill(~mask, float("-inf"))
    return F.softmax(scores, dim=-1) @ v
''',
        ),
        "forgets to divide the scores by sqrt(d)",
    ),
    (
        Answer(
            "softmax over the queries",
            '''def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d), -inf where mask is False) v, for (N, heads, T, d) q and (N, heads, S, d) k, v."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~mask, float("-inf"))
    return F.softmax(scores, dim=-2) @ v
''',
        ),
        "takes the softmax over dim -2 (the queries) instead of the keys",
    ),
    (
        Answer(
            "masked scores set to zero",
            '''def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d), -inf where mask is False) v, for (N, heads, T, d) q and (N, heads, S, d) k, v."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    scores = scores * mask
    return F.softmax(scores, dim=-1) @ v
''',
        ),
        "multiplies the scores by the mask: masked keys get score 0, i.e. weight e^0, not 0",
    ),
    (
        Answer(
            "mask not inverted",
            '''def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d), -inf where mask is False) v, for (N, heads, T, d) q and (N, heads, S, d) k, v."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(mask, float("-inf"))
    return F.softmax(scores, dim=-1) @ v
''',
        ),
        "masked_fill(mask, ...) instead of masked_fill(~mask, ...): hides the keys the query may see",
    ),
    (
        Answer(
            "mask applied after the softmax",
            '''def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d), -inf where mask is False) v, for (N, heads, T, d) q and (N, heads, S, d) k, v."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    weights = F.softmax(scores, dim=-1) * mask
    return weights @ v
''',
        ),
        "zeroes the masked weights after the softmax without renormalising: the rows no longer sum to 1",
    ),
    (
        Answer(
            "sqrt of the number of keys",
            '''def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d), -inf where mask is False) v, for (N, heads, T, d) q and (N, heads, S, d) k, v."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(k.shape[-2])
    scores = scores.masked_fill(~mask, float("-inf"))
    return F.softmax(scores, dim=-1) @ v
''',
        ),
        "divides by the square root of the number of keys S instead of the width d",
    ),
]

CORRECT_ANSWERS["self-attention"] = [
    Answer(
        "the four steps of the prose, width from x.shape",
        '''class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which each position attends to itself and the positions before it."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)  # queries, keys and values, each the heads side by side
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, T, width = x.shape
        q, k, v = self.qkv(x).split(width, dim=2)
        q = q.view(N, T, self.heads, width // self.heads).transpose(1, 2)
        k = k.view(N, T, self.heads, width // self.heads).transpose(1, 2)
        v = v.view(N, T, self.heads, width // self.heads).transpose(1, 2)
        y = attention(q, k, v, causal_mask(T, T))
        y = y.transpose(1, 2).reshape(N, T, width)
        return self.out(y)
''',
    ),
    Answer(
        "chunk, a helper for the heads, .contiguous().view to merge, local named mask",
        '''class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which each position attends to itself and the positions before it."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)  # queries, keys and values, each the heads side by side
        self.out = nn.Linear(width, width)

    def split_heads(self, t):
        B, T, C = t.shape
        return t.reshape(B, T, self.heads, C // self.heads).permute(0, 2, 1, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.size()
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q, k, v = self.split_heads(q), self.split_heads(k), self.split_heads(v)
        mask = causal_mask(T, T).to(x.device)
        y = attention(q, k, v, mask)
        y = y.permute(0, 2, 1, 3).contiguous().view(B, T, C)
        return self.out(y)
''',
    ),
    Answer(
        "one reshape to (N, T, 3, heads, d), permute and unbind",
        '''class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which each position attends to itself and the positions before it."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)  # queries, keys and values, each the heads side by side
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, c = x.shape
        h = self.heads
        qkv = self.qkv(x).reshape(n, t, 3, h, c // h).permute(2, 0, 3, 1, 4)  # (3, n, h, t, d)
        q, k, v = qkv.unbind(0)
        out = attention(q, k, v, causal_mask(t, t))
        out = out.transpose(1, 2).flatten(2)
        return self.out(out)
''',
    ),
    Answer(
        "F.scaled_dot_product_attention with is_causal=True, width from self.out.in_features",
        '''class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which each position attends to itself and the positions before it."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)  # queries, keys and values, each the heads side by side
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        width = self.out.in_features
        N, T, _ = x.shape
        d = width // self.heads
        q, k, v = self.qkv(x).split(width, dim=2)
        q, k, v = (t.view(N, T, self.heads, d).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(y.transpose(1, 2).reshape(N, T, width))
''',
    ),
    Answer(
        "a loop over the heads with slices, torch.cat of the heads",
        '''class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which each position attends to itself and the positions before it."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)  # queries, keys and values, each the heads side by side
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, width = x.shape[1], x.shape[2]
        d = width // self.heads
        qkv = self.qkv(x)
        q_all, k_all, v_all = qkv[..., :width], qkv[..., width:2 * width], qkv[..., 2 * width:]
        mask = causal_mask(T, T)
        outputs = []
        for h in range(self.heads):
            q = q_all[..., h * d:(h + 1) * d].unsqueeze(1)  # (N, 1, T, d)
            k = k_all[..., h * d:(h + 1) * d].unsqueeze(1)
            v = v_all[..., h * d:(h + 1) * d].unsqueeze(1)
            outputs.append(attention(q, k, v, mask).squeeze(1))
        return self.out(torch.cat(outputs, dim=-1))
''',
    ),
    Answer(
        "torch.stack of the three parts, unflatten and movedim to rearrange",
        '''class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which each position attends to itself and the positions before it."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)  # queries, keys and values, each the heads side by side
        self.out = nn.Linear(width, width)

    def forward(self, x):
        N, T, W = x.shape
        parts = torch.stack(self.qkv(x).split(W, dim=-1))  # (3, N, T, W)
        parts = parts.unflatten(-1, (self.heads, -1)).movedim(-2, -3)  # (3, N, heads, T, d)
        q, k, v = parts[0], parts[1], parts[2]
        attended = attention(q, k, v, causal_mask(T, T))
        merged = attended.movedim(1, 2).reshape(N, T, W)
        return self.out(merged)
''',
    ),
]

UNSEEN_WRONG_ANSWERS["self-attention"] = [
    (
        Answer(
            "heads not transposed back before merging",
            '''class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which each position attends to itself and the positions before it."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)  # queries, keys and values, each the heads side by side
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, T, width = x.shape
        q, k, v = self.qkv(x).split(width, dim=2)
        q = q.view(N, T, self.heads, width // self.heads).transpose(1, 2)
        k = k.view(N, T, self.heads, width // self.heads).transpose(1, 2)
        v = v.view(N, T, self.heads, width // self.heads).transpose(1, 2)
        y = attention(q, k, v, causal_mask(T, T))
        y = y.reshape(N, T, width)
        return self.out(y)
''',
        ),
        "merges the heads with a plain reshape of (N, heads, T, d): positions and heads get mixed up",
    ),
    (
        Answer(
            "view straight to (N, heads, T, d)",
            '''class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which each position attends to itself and the positions before it."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)  # queries, keys and values, each the heads side by side
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, T, width = x.shape
        q, k, v = self.qkv(x).split(width, dim=2)
        q = q.reshape(N, self.heads, T, width // self.heads)
        k = k.reshape(N, self.heads, T, width // self.heads)
        v = v.reshape(N, self.heads, T, width // self.heads)
        y = attention(q, k, v, causal_mask(T, T))
        y = y.transpose(1, 2).reshape(N, T, width)
        return self.out(y)
''',
        ),
        "reshapes (N, T, width) directly to (N, heads, T, d): each 'position' mixes several positions (not causal)",
    ),
    (
        Answer(
            "no mask",
            '''class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which each position attends to itself and the positions before it."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)  # queries, keys and values, each the heads side by side
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, T, width = x.shape
        q, k, v = self.qkv(x).split(width, dim=2)
        q, k, v = (t.view(N, T, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out(y.transpose(1, 2).reshape(N, T, width))
''',
        ),
        "calls scaled_dot_product_attention without a mask or is_causal: every position sees the future",
    ),
    (
        Answer(
            "output layer forgotten",
            '''class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which each position attends to itself and the positions before it."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)  # queries, keys and values, each the heads side by side
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, T, width = x.shape
        q, k, v = self.qkv(x).split(width, dim=2)
        q = q.view(N, T, self.heads, width // self.heads).transpose(1, 2)
        k = k.view(N, T, self.heads, width // self.heads).transpose(1, 2)
        v = v.view(N, T, self.heads, width // self.heads).transpose(1, 2)
        y = attention(q, k, v, causal_mask(T, T))
        return y.transpose(1, 2).reshape(N, T, width)
''',
        ),
        "returns the merged heads without applying self.out",
    ),
    (
        Answer(
            "keys and queries swapped",
            '''class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which each position attends to itself and the positions before it."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)  # queries, keys and values, each the heads side by side
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, T, width = x.shape
        k, q, v = self.qkv(x).split(width, dim=2)
        q = q.view(N, T, self.heads, width // self.heads).transpose(1, 2)
        k = k.view(N, T, self.heads, width // self.heads).transpose(1, 2)
        v = v.view(N, T, self.heads, width // self.heads).transpose(1, 2)
        y = attention(q, k, v, causal_mask(T, T))
        return self.out(y.transpose(1, 2).reshape(N, T, width))
''',
        ),
        "unpacks the qkv outputs as keys, queries, values: the first width outputs are the queries",
    ),
    (
        Answer(
            "head width as the split",
            '''class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which each position attends to itself and the positions before it."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)  # queries, keys and values, each the heads side by side
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, T, width = x.shape
        d = width // self.heads
        q, k, v = self.qkv(x).split(width, dim=2)
        q = q.view(N, T, d, self.heads).permute(0, 3, 1, 2)
        k = k.view(N, T, d, self.heads).permute(0, 3, 1, 2)
        v = v.view(N, T, d, self.heads).permute(0, 3, 1, 2)
        y = attention(q, k, v, causal_mask(T, T))
        return self.out(y.permute(0, 2, 3, 1).reshape(N, T, width))
''',
        ),
        "splits each vector as (d, heads) instead of (heads, d): a head takes every heads-th feature, not its own "
        "block",
    ),
]

CORRECT_ANSWERS["attention-step"] = [
    Answer(
        "as the prose, with the student's attention and causal_mask",
        '''def attention_step(layer: nn.Module, x: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """Causal self-attention of the new positions x (N, T, width) over the cached positions and themselves."""
    N, T, width = x.shape
    d = width // layer.heads
    q, k, v = layer.qkv(x).split(width, dim=2)
    q = q.view(N, T, layer.heads, d).transpose(1, 2)
    k = k.view(N, T, layer.heads, d).transpose(1, 2)
    v = v.view(N, T, layer.heads, d).transpose(1, 2)
    keys, values = cache.extend(k, v)
    y = attention(q, keys, values, causal_mask(T, keys.shape[2]))
    y = y.transpose(1, 2).reshape(N, T, width)
    return layer.out(y)
''',
    ),
    Answer(
        "F.scaled_dot_product_attention with attn_mask=causal_mask(T, S)",
        '''def attention_step(layer: nn.Module, x: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """Causal self-attention of the new positions x (N, T, width) over the cached positions and themselves."""
    B, T, C = x.shape
    q, k, v = layer.qkv(x).chunk(3, dim=-1)
    q, k, v = [t.reshape(B, T, layer.heads, -1).transpose(1, 2) for t in (q, k, v)]
    k, v = cache.extend(k, v)
    S = k.size(-2)
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=causal_mask(T, S).to(x.device))
    return layer.out(y.transpose(1, 2).contiguous().view(B, T, C))
''',
    ),
    Answer(
        "everything inline: einsum, tril with offset, -inf, softmax",
        '''def attention_step(layer: nn.Module, x: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """Causal self-attention of the new positions x (N, T, width) over the cached positions and themselves."""
    n, t, w = x.shape
    h = layer.heads
    qkv = layer.qkv(x).reshape(n, t, 3, h, w // h).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    keys, values = cache.extend(k, v)
    s = keys.shape[-2]
    scores = torch.einsum("nhtd,nhsd->nhts", q, keys) / math.sqrt(w // h)
    allowed = torch.ones(t, s, dtype=torch.bool, device=x.device).tril(s - t)
    scores = scores.masked_fill(~allowed, float("-inf"))
    y = torch.einsum("nhts,nhsd->nhtd", scores.softmax(-1), values)
    return layer.out(y.permute(0, 2, 1, 3).reshape(n, t, w))
''',
    ),
    Answer(
        "width from layer.out.in_features, slices, local named mask",
        '''def attention_step(layer: nn.Module, x: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """Causal self-attention of the new positions x (N, T, width) over the cached positions and themselves."""
    width = layer.out.in_features
    heads = layer.heads
    N, T = x.shape[0], x.shape[1]
    qkv = layer.qkv(x)
    q = qkv[:, :, :width]
    k = qkv[:, :, width:2 * width]
    v = qkv[:, :, 2 * width:]

    def heads_first(t):
        return t.reshape(N, T, heads, width // heads).transpose(1, 2)

    all_k, all_v = cache.extend(heads_first(k), heads_first(v))
    mask = causal_mask(T, all_k.shape[2])
    out = attention(heads_first(q), all_k, all_v, mask)
    out = out.transpose(1, 2).reshape(N, T, width)
    return layer.out(out)
''',
    ),
    Answer(
        "a loop over the heads, torch.cat of their outputs",
        '''def attention_step(layer: nn.Module, x: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """Causal self-attention of the new positions x (N, T, width) over the cached positions and themselves."""
    N, T, width = x.shape
    heads = layer.heads
    d = width // heads
    q, k, v = layer.qkv(x).split(width, dim=-1)
    q = q.view(N, T, heads, d).transpose(1, 2)
    k = k.view(N, T, heads, d).transpose(1, 2)
    v = v.view(N, T, heads, d).transpose(1, 2)
    keys, values = cache.extend(k, v)
    mask = causal_mask(T, keys.size(2))
    per_head = []
    for i in range(heads):
        per_head.append(attention(q[:, i:i + 1], keys[:, i:i + 1], values[:, i:i + 1], mask)[:, 0])  # (N, T, d)
    return layer.out(torch.cat(per_head, dim=-1))
''',
    ),
    Answer(
        "scores in float64 with torch.matmul, converted back",
        '''def attention_step(layer: nn.Module, x: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """Causal self-attention of the new positions x (N, T, width) over the cached positions and themselves."""
    N, T, width = x.shape
    q, k, v = layer.qkv(x).split(width, dim=2)
    q, k, v = (z.view(N, T, layer.heads, -1).transpose(1, 2) for z in (q, k, v))
    keys, values = cache.extend(k, v)
    total = keys.shape[2]
    scores = torch.matmul(q.double(), keys.double().transpose(-2, -1)) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~causal_mask(T, total), -torch.inf)
    y = torch.matmul(torch.softmax(scores, dim=-1), values.double()).to(x.dtype)
    return layer.out(y.transpose(1, 2).reshape(N, T, width))
''',
    ),
]

UNSEEN_WRONG_ANSWERS["attention-step"] = [
    (
        Answer(
            "no mask (only right for one new position)",
            '''def attention_step(layer: nn.Module, x: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """Causal self-attention of the new positions x (N, T, width) over the cached positions and themselves."""
    N, T, width = x.shape
    q, k, v = layer.qkv(x).split(width, dim=2)
    q, k, v = (t.view(N, T, layer.heads, -1).transpose(1, 2) for t in (q, k, v))
    keys, values = cache.extend(k, v)
    y = F.scaled_dot_product_attention(q, keys, values)
    return layer.out(y.transpose(1, 2).reshape(N, T, width))
''',
        ),
        "no mask at all: fine for T = 1, but with several new positions the earlier ones see the later ones",
    ),
    (
        Answer(
            "is_causal=True with fewer queries than keys",
            '''def attention_step(layer: nn.Module, x: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """Causal self-attention of the new positions x (N, T, width) over the cached positions and themselves."""
    N, T, width = x.shape
    q, k, v = layer.qkv(x).split(width, dim=2)
    q, k, v = (t.view(N, T, layer.heads, -1).transpose(1, 2) for t in (q, k, v))
    keys, values = cache.extend(k, v)
    y = F.scaled_dot_product_attention(q, keys, values, is_causal=True)
    return layer.out(y.transpose(1, 2).reshape(N, T, width))
''',
        ),
        "is_causal=True aligns the mask to the top left: with a non-empty cache the new query sees only the first keys",
    ),
    (
        Answer(
            "attends to the new keys only",
            '''def attention_step(layer: nn.Module, x: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """Causal self-attention of the new positions x (N, T, width) over the cached positions and themselves."""
    N, T, width = x.shape
    q, k, v = layer.qkv(x).split(width, dim=2)
    q, k, v = (t.view(N, T, layer.heads, -1).transpose(1, 2) for t in (q, k, v))
    cache.extend(k, v)
    y = attention(q, k, v, causal_mask(T, T))
    return layer.out(y.transpose(1, 2).reshape(N, T, width))
''',
        ),
        "adds k, v to the cache but ignores what extend returns: attends only to the new positions",
    ),
    (
        Answer(
            "first rows of the mask",
            '''def attention_step(layer: nn.Module, x: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """Causal self-attention of the new positions x (N, T, width) over the cached positions and themselves."""
    N, T, width = x.shape
    q, k, v = layer.qkv(x).split(width, dim=2)
    q, k, v = (t.view(N, T, layer.heads, -1).transpose(1, 2) for t in (q, k, v))
    keys, values = cache.extend(k, v)
    S = keys.shape[2]
    y = attention(q, keys, values, causal_mask(S, S)[:T])
    return layer.out(y.transpose(1, 2).reshape(N, T, width))
''',
        ),
        "takes the first T rows of the full mask: the new positions are treated as the first ones",
    ),
    (
        Answer(
            "output layer forgotten",
            '''def attention_step(layer: nn.Module, x: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """Causal self-attention of the new positions x (N, T, width) over the cached positions and themselves."""
    N, T, width = x.shape
    q, k, v = layer.qkv(x).split(width, dim=2)
    q, k, v = (t.view(N, T, layer.heads, -1).transpose(1, 2) for t in (q, k, v))
    keys, values = cache.extend(k, v)
    y = attention(q, keys, values, causal_mask(T, keys.shape[2]))
    return y.transpose(1, 2).reshape(N, T, width)
''',
        ),
        "returns the merged heads without applying layer.out",
    ),
    (
        Answer(
            "caches the queries instead of the keys",
            '''def attention_step(layer: nn.Module, x: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """Causal self-attention of the new positions x (N, T, width) over the cached positions and themselves."""
    N, T, width = x.shape
    q, k, v = layer.qkv(x).split(width, dim=2)
    q, k, v = (t.view(N, T, layer.heads, -1).transpose(1, 2) for t in (q, k, v))
    keys, values = cache.extend(q, v)
    y = attention(k, keys, values, causal_mask(T, keys.shape[2]))
    return layer.out(y.transpose(1, 2).reshape(N, T, width))
''',
        ),
        "mixes up queries and keys: caches q and attends with the new k as the query",
    ),
]

# Reported after the corpus was written: the loader fit passes has a .dataset, and dividing by its length is right.
CORRECT_ANSWERS["train-epoch"].append(
    Answer(
        "the total divided by len(loader.dataset)",
        '''def train_epoch(model: nn.Module, loader, optimizer: torch.optim.Optimizer, loss_fn) -> float:
    """One epoch of gradient steps; returns the mean training loss."""
    model.train()
    total = 0.0
    for batch in loader:
        loss = loss_fn(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(batch[0])
    return total / len(loader.dataset)
''',
    )
)
