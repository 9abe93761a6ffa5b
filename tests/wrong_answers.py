"""The mistakes students make, as edits of the solution's exercise cells, with the word the check must say.

Each wrong answer replaces `old` by `new` in the exercise cell `grade_id` of `solutions/` (so it stays realistic as
the solution changes: `old` must still be found) and must fail the cell's check with `cause` in the message.
`tests/test_wrong_answers.py` runs them all; `bench/wrong_answers.py` prints how many each exercise has.
"""

from __future__ import annotations

from typing import NamedTuple


class WrongAnswer(NamedTuple):
    name: str
    old: str | tuple[str, ...]  # one edit, or several applied in turn
    new: str | tuple[str, ...]
    cause: str  # a word or phrase the failing check's message must contain (case-insensitive)

    def apply(self, source: str) -> str:
        """The solution cell `source` with this mistake made in it."""
        olds, news = ((self.old,), (self.new,)) if isinstance(self.old, str) else (self.old, self.new)
        for old, new in zip(olds, news):
            if old not in source:
                raise ValueError(f"wrong answer {self.name!r}: {old!r} is not in the solution any more")
            source = source.replace(old, new, 1)
        return source


W = WrongAnswer
ENCODER_FORWARD = "return self.to_latent(self.features(x).flatten(1))"
DECODER_LAST = "nn.ConvTranspose2d(hidden, 1, kernel_size=4, stride=2, padding=1), nn.Sigmoid(),"
MSE = "return ((x_hat - x) ** 2).mean()"
WEIGHTED = "total += loss.item() * len(batch[0])"
UNIFORM = "uniform_(-1 / num_codes, 1 / num_codes)"
BROADCAST = "return ((z[:, None, :] - codebook[None, :, :]) ** 2).sum(-1)"
EXPANDED = "return z.pow(2).sum(1, keepdim=True) - 2 * z @ codebook.T + codebook.pow(2).sum(1)"
ARGMIN = "indices = squared_distances(z, codebook).argmin(dim=1)"
STRAIGHT = "return z_e + (z_q - z_e).detach()"
LOSSES = "return F.mse_loss(z_q, z_e.detach()), F.mse_loss(z_e, z_q.detach())"
MASK_ROWS = "mask[:centre] = 1"
MASK_CENTRE = 'mask[centre, : centre + (mask_type == "B")] = 1'
MASKED_FORWARD = "return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)"
PIXEL_DRAW = "logits = model(x[:, :, : i + 1, :])[:, :, i, j] / temperature"
PIXEL_SAMPLE = "x[:, 0, i, j] = torch.multinomial(F.softmax(logits, dim=1), 1).squeeze(1)"
TEMPERATURE_GUARD = (
    '    if temperature <= 0:\n        raise ValueError(f"temperature must be > 0, got {temperature}")\n'
)
CODE_PROBS = "probs = F.softmax(prior(codes)[:, :, i, j] / temperature, dim=1)"
PRIOR_FORWARD = "return self.head(self.blocks(self.first(self.embedding(codes).permute(0, 3, 1, 2))))"
PRIOR_HEAD = "nn.Conv2d(channels, num_codes, 1))"
REPARAMETERIZE = "return mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)"
KL = "return 0.5 * (mean.pow(2) + log_var.exp() - log_var - 1).sum(1)"
RECONSTRUCTION = 'reconstruction = F.binary_cross_entropy(x_hat, x, reduction="sum") / len(x)'
KL_MEAN = "kl = kl_to_standard_normal(mean, log_var).mean()"
MASK = "return torch.ones(queries, keys, dtype=torch.bool).tril(keys - queries)"
SCORES = "scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])"
WEIGHTS = 'return scores.masked_fill(~mask, float("-inf")).softmax(dim=-1) @ v'
HEADS = "q, k, v = (part.view(n, t, self.heads, width // self.heads).transpose(1, 2)"
MERGE = "return self.out(y.transpose(1, 2).reshape(n, t, width))"
STEP_CACHE = "keys, values = cache.extend(k, v)"
STEP_MASK = "y = attention(q, keys, values, causal_mask(t, keys.shape[2]))"

WRONG_ANSWERS: dict[str, list[WrongAnswer]] = {
    "encoder": [
        W(
            "ReLU after the last Linear",
            ENCODER_FORWARD,
            "return torch.relu(self.to_latent(self.features(x).flatten(1)))",
            "no activation after the last layer",
        ),
        W(
            "tanh on the latent code",
            ENCODER_FORWARD,
            "return torch.tanh(self.to_latent(self.features(x).flatten(1)))",
            "no activation after the last layer",
        ),
        W(
            "latent_dim ignored",
            "nn.Linear(2 * hidden * 7 * 7, latent_dim)",
            "nn.Linear(2 * hidden * 7 * 7, 16)",
            "latent_dim",
        ),
        W(
            "3x3 kernels",
            "nn.Conv2d(1, hidden, kernel_size=4, stride=2, padding=1)",
            "nn.Conv2d(1, hidden, kernel_size=3, stride=2, padding=1)",
            "parameters",
        ),
        W(
            "hidden ignored",
            "def __init__(self, latent_dim: int = 16, hidden: int = 32):\n        super().__init__()",
            "def __init__(self, latent_dim: int = 16, hidden: int = 32):\n        super().__init__()\n        "
            "hidden = 32",
            "parameters",
        ),
        W(
            "no ReLU between the convolutions",
            "nn.Conv2d(1, hidden, kernel_size=4, stride=2, padding=1), nn.ReLU(),",
            "nn.Conv2d(1, hidden, kernel_size=4, stride=2, padding=1),",
            "ReLU after each convolution",
        ),
        W("flattens the batch away", ENCODER_FORWARD, "return self.to_latent(self.features(x).flatten())", "shape"),
    ],
    "decoder": [
        W("no sigmoid", DECODER_LAST, "nn.ConvTranspose2d(hidden, 1, kernel_size=4, stride=2, padding=1),", "sigmoid"),
        W(
            "clamp instead of sigmoid",
            (DECODER_LAST, "return self.upsample(self.from_latent(z).view(-1, 2 * self.hidden, 7, 7))"),
            (
                "nn.ConvTranspose2d(hidden, 1, kernel_size=4, stride=2, padding=1),",
                "return self.upsample(self.from_latent(z).view(-1, 2 * self.hidden, 7, 7)).clamp(0, 1)",
            ),
            "sigmoid",
        ),
        W(
            "ReLU instead of sigmoid",
            DECODER_LAST,
            "nn.ConvTranspose2d(hidden, 1, kernel_size=4, stride=2, padding=1), nn.ReLU(),",
            "sigmoid",
        ),
        W(
            "ReLU after the Linear layer",
            "self.from_latent(z).view",
            "torch.relu(self.from_latent(z)).view",
            "activation after the Linear layer",
        ),
        W(
            "no ReLU between the transposed convolutions",
            "nn.ConvTranspose2d(2 * hidden, hidden, kernel_size=4, stride=2, padding=1), nn.ReLU(),",
            "nn.ConvTranspose2d(2 * hidden, hidden, kernel_size=4, stride=2, padding=1),",
            "ReLU",
        ),
        W(
            "latent_dim ignored",
            "nn.Linear(latent_dim, 2 * hidden * 7 * 7)",
            "nn.Linear(16, 2 * hidden * 7 * 7)",
            "Linear(latent_dim",
        ),
        W(
            "3x3 transposed kernels with output padding",
            "nn.ConvTranspose2d(hidden, 1, kernel_size=4, stride=2, padding=1)",
            "nn.ConvTranspose2d(hidden, 1, kernel_size=3, stride=2, padding=1, output_padding=1)",
            "parameters",
        ),
    ],
    "loss": [
        W("sum instead of mean", MSE, "return ((x_hat - x) ** 2).sum()", "a sum"),
        W(".item() inside", MSE, "return torch.tensor(((x_hat - x) ** 2).mean().item())", "detached"),
        W("summed over pixels", MSE, "return ((x_hat - x) ** 2).sum((1, 2, 3)).mean()", "summed over the pixels"),
        W("summed over the batch", MSE, "return ((x_hat - x) ** 2).mean((1, 2, 3)).sum()", "summed over the batch"),
        W("absolute error", MSE, "return (x_hat - x).abs().mean()", "absolute"),
        W("root mean squared error", MSE, "return ((x_hat - x) ** 2).mean().sqrt()", "sqrt"),
        W("squares the mean difference", MSE, "return (x_hat - x).mean() ** 2", "square each difference"),
        W("binary cross-entropy", MSE, "return nn.functional.binary_cross_entropy(x_hat, x)", "cross-entropy"),
        W("one value per image", MSE, "return ((x_hat - x) ** 2).mean((1, 2, 3))", "shape"),
    ],
    "train-epoch": [
        W(
            "unweighted mean of batch losses",
            (WEIGHTED, "count += len(batch[0])"),
            ("total += loss.item()", "count += 1"),
            "weigh each batch",
        ),
        W("sizes left out of the total", WEIGHTED, "total += loss.item()", "weigh each batch"),
        W("no zero_grad", "        optimizer.zero_grad()\n", "", "zero_grad"),
        W(
            "zero_grad between backward and step",
            "optimizer.zero_grad()\n        loss.backward()",
            "loss.backward()\n        optimizer.zero_grad()",
            "step",
        ),
        W("no optimizer.step()", "        optimizer.step()\n", "", "step"),
        W("returns the last batch loss", "return total / count", "return loss.item()", "last batch"),
        W(
            "returns a tensor",
            WEIGHTED + "\n        count += len(batch[0])\n    return total / count",
            "total += loss * len(batch[0])\n        count += len(batch[0])\n    return total / count",
            "float",
        ),
        W("eval mode while training", "total, count = 0.0, 0", "model.eval()\n    total, count = 0.0, 0", "eval mode"),
        W("returns the sum", "return total / count", "return total", "divide by the number of examples"),
    ],
    "codebook": [
        W("uniform in [0, 1)", UNIFORM, "uniform_(0, 1)", "[-1/K, 1/K]"),
        W(
            "standard normal",
            "torch.empty(num_codes, code_dim)." + UNIFORM,
            "torch.randn(num_codes, code_dim)",
            "[-1/K, 1/K]",
        ),
        W("range from code_dim", UNIFORM, "uniform_(-1 / code_dim, 1 / code_dim)", "1/d"),
        W("all zeros", "torch.empty(num_codes, code_dim)." + UNIFORM, "torch.zeros(num_codes, code_dim)", "identical"),
        W(
            "a plain tensor",
            "return nn.Parameter(torch.empty(num_codes, code_dim)." + UNIFORM + ")",
            "return torch.empty(num_codes, code_dim)." + UNIFORM,
            "nn.Parameter",
        ),
        W("transposed", "torch.empty(num_codes, code_dim)", "torch.empty(code_dim, num_codes)", "one row per code"),
        W("frozen", UNIFORM + ")", UNIFORM + ", requires_grad=False)", "requires_grad"),
        W("a quarter of the range", UNIFORM, "uniform_(-0.25 / num_codes, 0.25 / num_codes)", "uniformly"),
    ],
    "distances-broadcast": [
        W(
            "distances, not squared",
            BROADCAST,
            "return ((z[:, None, :] - codebook[None, :, :]) ** 2).sum(-1).sqrt()",
            "not their squares",
        ),
        W(
            "summed over the wrong axis",
            BROADCAST,
            "return ((z[:, None, :] - codebook[None, :, :]) ** 2).sum(1)",
            "last dimension",
        ),
        W("transposed", BROADCAST, "return ((z[None, :, :] - codebook[:, None, :]) ** 2).sum(-1)", "transposed"),
        W("absolute differences", BROADCAST, "return (z[:, None, :] - codebook[None, :, :]).abs().sum(-1)", "absolute"),
        W("mean over d", BROADCAST, "return ((z[:, None, :] - codebook[None, :, :]) ** 2).mean(-1)", "averaged over d"),
        W("not summed", BROADCAST, "return (z[:, None, :] - codebook[None, :, :]) ** 2", "last dimension"),
    ],
    "distances": [
        W(
            "factor 2 missing",
            EXPANDED,
            "return z.pow(2).sum(1, keepdim=True) - z @ codebook.T + codebook.pow(2).sum(1)",
            "factor 2",
        ),
        W(
            "wrong sign",
            EXPANDED,
            "return z.pow(2).sum(1, keepdim=True) + 2 * z @ codebook.T + codebook.pow(2).sum(1)",
            "wrong sign",
        ),
        W(
            "keepdim forgotten",
            EXPANDED,
            "return z.pow(2).sum(1) - 2 * z @ codebook.T + codebook.pow(2).sum(1)",
            "keepdim",
        ),
        W(
            "no transpose",
            EXPANDED,
            "return z.pow(2).sum(1, keepdim=True) - 2 * z @ codebook + codebook.pow(2).sum(1)",
            "codebook.T",
        ),
        W("broadcasting again", EXPANDED, BROADCAST, "expand"),
        W("distances, not squared", EXPANDED, "return torch.cdist(z, codebook)", "not their squares"),
    ],
    "quantize": [
        W("argmin over dim 0", ARGMIN, "indices = squared_distances(z, codebook).argmin(dim=0)", "dim=1"),
        W("argmax", ARGMIN, "indices = squared_distances(z, codebook).argmax(dim=1)", "argmax"),
        W(
            "swapped outputs",
            "return codebook[indices], indices",
            "return indices, codebook[indices]",
            "(z_q, indices)",
        ),
        W("returns the input", "return codebook[indices], indices", "return z, indices", "codebook[indices]"),
        W(
            "float indices",
            "return codebook[indices], indices",
            "return codebook[indices], indices.float()",
            "torch.long",
        ),
        W(
            "min values, not indices",
            ARGMIN,
            "indices = squared_distances(z, codebook).min(dim=1).values.long()",
            "nearest",
        ),
    ],
    "straight-through": [
        W("no detach", STRAIGHT, "return z_e + (z_q - z_e)", "detach"),
        W("returns z_q", STRAIGHT, "return z_q", "not z_q itself"),
        W("detach on the wrong side", STRAIGHT, "return z_q + (z_e - z_q).detach()", "the value is z_e"),
        W("detaches everything", STRAIGHT, "return (z_e + (z_q - z_e)).detach()", "detached as a whole"),
        W("detaches z_e instead", STRAIGHT, "return z_e.detach() + (z_q - z_e)", "wrong term"),
        W("detaches z_q only", STRAIGHT, "return z_e + (z_q.detach() - z_e)", "detach"),
        W("returns z_e", STRAIGHT, "return z_e", "the value is z_e"),
    ],
    "vq-losses": [
        W("swapped", LOSSES, "return F.mse_loss(z_e, z_q.detach()), F.mse_loss(z_q, z_e.detach())", "swapped"),
        W("no stop-gradient", LOSSES, "return F.mse_loss(z_q, z_e), F.mse_loss(z_e, z_q)", "detach"),
        W(
            "beta inside the commitment loss",
            LOSSES,
            "return F.mse_loss(z_q, z_e.detach()), 0.25 * F.mse_loss(z_e, z_q.detach())",
            "β",
        ),
        W(
            "sums",
            LOSSES,
            'return F.mse_loss(z_q, z_e.detach(), reduction="sum"), F.mse_loss(z_e, z_q.detach(), reduction="sum")',
            "a sum",
        ),
        W(
            "detached from both",
            LOSSES,
            "return F.mse_loss(z_q.detach(), z_e.detach()), F.mse_loss(z_e, z_q.detach())",
            "detached from both",
        ),
        W(
            "absolute differences",
            LOSSES,
            "return F.l1_loss(z_q, z_e.detach()), F.l1_loss(z_e, z_q.detach())",
            "absolute",
        ),
        W(
            "one value per vector",
            LOSSES,
            "return ((z_q - z_e.detach()) ** 2).mean(1), ((z_e - z_q.detach()) ** 2).mean(1)",
            "one number",
        ),
        W(
            "detach on the wrong side",
            LOSSES,
            "return F.mse_loss(z_q.detach(), z_e), F.mse_loss(z_e, z_q.detach())",
            "should move the codebook",
        ),
    ],
    "masked-conv": [
        W("A and B swapped", MASK_CENTRE, 'mask[centre, : centre + (mask_type == "A")] = 1', "itself"),
        W("rows below included", MASK_ROWS, "mask[: centre + 1] = 1", "itself"),
        W("mask never applied", MASKED_FORWARD, "return super().forward(x)", "depends on"),
        W(
            "mask as a parameter",
            'self.register_buffer("mask", mask)',
            "self.mask = nn.Parameter(mask)",
            "register_buffer",
        ),
        W(
            "masked once in __init__",
            ('self.register_buffer("mask", mask)', MASKED_FORWARD),
            (
                'self.register_buffer("mask", mask)\n        self.weight.data *= mask',
                "return F.conv2d(x, self.weight, self.bias, padding=self.padding)",
            ),
            "every time",
        ),
        W("no rows above", MASK_ROWS, "mask[:centre] = 0", "above"),
        W("no padding", MASKED_FORWARD, "return F.conv2d(x, self.weight * self.mask, self.bias)", "same"),
        W(
            "columns instead of rows",
            MASK_ROWS + "\n        " + MASK_CENTRE,
            'mask[:, :centre] = 1\n        mask[: centre + (mask_type == "B"), centre] = 1',
            "later in raster order",
        ),
    ],
    "pixelcnn": [
        W("first layer mask B", 'MaskedConv2d(1, channels, 7, "A")', 'MaskedConv2d(1, channels, 7, "B")', "itself"),
        W("no scaling", "return self.net(x.float() / 255)", "return self.net(x.float())", "x.float() / 255"),
        W(
            "binarised input",
            "return self.net(x.float() / 255)",
            "return self.net((x > 127).float())",
            "x.float() / 255",
        ),
        W("no residual connection", "return x + self.net(x)", "return self.net(x)", "residual connection"),
        W(
            "mask A inside the blocks",
            'MaskedConv2d(channels // 2, channels // 2, 3, "B")',
            'MaskedConv2d(channels // 2, channels // 2, 3, "A")',
            "type B",
        ),
        W(
            "softmax output",
            "return self.net(x.float() / 255)",
            "return self.net(x.float() / 255).softmax(1)",
            "probabilities",
        ),
        W(
            "ReLU on the logits",
            "nn.ReLU(), nn.Conv2d(channels, 256, 1),",
            "nn.ReLU(), nn.Conv2d(channels, 256, 1), nn.ReLU(),",
            "logits can be negative",
        ),
        W(
            "blocks ignored",
            "*[ResidualBlock(channels) for _ in range(blocks)],",
            "*[ResidualBlock(channels) for _ in range(2)],",
            "parameters",
        ),
        W(
            "5x5 masks in the blocks",
            'MaskedConv2d(channels // 2, channels // 2, 3, "B")',
            'MaskedConv2d(channels // 2, channels // 2, 5, "B")',
            "parameters",
        ),
    ],
    "sample": [
        W("argmax", PIXEL_SAMPLE, "x[:, 0, i, j] = logits.argmax(dim=1)", "argmax"),
        W("multiplies by T", PIXEL_DRAW, "logits = model(x[:, :, : i + 1, :])[:, :, i, j] * temperature", "multiplied"),
        W("temperature ignored", PIXEL_DRAW, "logits = model(x[:, :, : i + 1, :])[:, :, i, j]", "ignored"),
        W("no ValueError", TEMPERATURE_GUARD, "", "should raise ValueError"),
        W("no crop", PIXEL_DRAW, "logits = model(x)[:, :, i, j] / temperature", "crop"),
        W(
            "softmax over the batch",
            PIXEL_SAMPLE,
            "x[:, 0, i, j] = torch.multinomial(F.softmax(logits, dim=0), 1).squeeze(1)",
            "wrong dimension",
        ),
        W(
            "one call for all pixels",
            "for i in range(height):\n        for j in range(width):\n            "
            + PIXEL_DRAW
            + "\n            "
            + PIXEL_SAMPLE,
            "logits = model(x) / temperature\n    x[:, 0] = torch.multinomial(F.softmax(logits, dim=1).permute(0, "
            "2, 3, 1)"
            ".reshape(-1, logits.shape[1]), 1).view(n, height, width)",
            "raster order",
        ),
    ],
    "encode": [
        W(
            "one call on everything",
            "torch.cat([vqvae.encode(chunk) for chunk in images.split(batch_size)])",
            "vqvae.encode(images)",
            "batch by batch",
        ),
        W(
            "float codes",
            "return torch.cat([vqvae.encode(chunk) for chunk in images.split(batch_size)])",
            "return torch.cat([vqvae.encode(chunk) for chunk in images.split(batch_size)]).float()",
            "torch.long",
        ),
        W("concatenated along dim 1", "images.split(batch_size)])", "images.split(batch_size)], dim=1)", "dim 0"),
        W(
            "drops the last batch",
            "for chunk in images.split(batch_size)",
            "for chunk in images.split(batch_size) if len(chunk) == batch_size",
            "last, smaller batch",
        ),
        W(
            "only the first batch",
            "return torch.cat([vqvae.encode(chunk) for chunk in images.split(batch_size)])",
            "return vqvae.encode(images[:batch_size])",
            "only the first batch",
        ),
        W("encoder outputs, not indices", "vqvae.encode(chunk)", "vqvae.encoder(chunk)", "shape"),
    ],
    "prior": [
        W(
            "softmax probabilities",
            PRIOR_FORWARD,
            PRIOR_FORWARD.replace("return ", "return F.softmax(") + ", dim=1)",
            "probabilities",
        ),
        W("view instead of permute", ".permute(0, 3, 1, 2)", ".view(len(codes), -1, 7, 7)", "permute"),
        W(
            "first layer mask B",
            'MaskedConv2d(embed, channels, 7, "A")',
            'MaskedConv2d(embed, channels, 7, "B")',
            "mask A",
        ),
        W(
            "indices as numbers",
            "self.embedding(codes).permute(0, 3, 1, 2)",
            "codes[:, None].float().expand(-1, self.first.in_channels, -1, -1)",
            "nn.Embedding",
        ),
        W("ReLU on the logits", PRIOR_HEAD, "nn.Conv2d(channels, num_codes, 1), nn.ReLU())", "logits can be negative"),
        W("blocks ignored", "for _ in range(blocks)", "for _ in range(5)", "parameters"),
        W("embedding width ignored", "nn.Embedding(num_codes, embed)", "nn.Embedding(num_codes, 16)", "channel counts"),
    ],
    "sample-codes": [
        W(
            "argmax",
            "codes[:, i, j] = torch.multinomial(probs, 1).squeeze(1)",
            "codes[:, i, j] = probs.argmax(1)",
            "argmax",
        ),
        W("temperature ignored", CODE_PROBS, "probs = F.softmax(prior(codes)[:, :, i, j], dim=1)", "ignored"),
        W(
            "multiplies by T",
            CODE_PROBS,
            "probs = F.softmax(prior(codes)[:, :, i, j] * temperature, dim=1)",
            "multiplied",
        ),
        W("no ValueError", TEMPERATURE_GUARD, "", "should raise ValueError"),
        W(
            "float grid",
            "codes = torch.zeros(n, 7, 7, dtype=torch.long, device=device)",
            "codes = torch.zeros(n, 7, 7, device=device)",
            "torch.long",
        ),
        W(
            "softmax over the batch",
            CODE_PROBS,
            "probs = F.softmax(prior(codes)[:, :, i, j] / temperature, dim=0)",
            "wrong dimension",
        ),
        W(
            "columns first",
            "for i in range(7):\n        for j in range(7):",
            "for j in range(7):\n        for i in range(7):",
            "raster order",
        ),
    ],
    "reparameterize": [
        W(
            "sigma = exp(log_var)",
            REPARAMETERIZE,
            "return mean + torch.exp(log_var) * torch.randn_like(mean)",
            "variance",
        ),
        W("sigma = log_var", REPARAMETERIZE, "return mean + log_var * torch.randn_like(mean)", "log_var is not sigma"),
        W("torch.normal", REPARAMETERIZE, "return torch.normal(mean, torch.exp(0.5 * log_var))", "torch.normal"),
        W(
            "Normal(...).sample()",
            REPARAMETERIZE,
            "return torch.distributions.Normal(mean, torch.exp(0.5 * log_var)).sample()",
            "not differentiable",
        ),
        W("uniform noise", "torch.randn_like(mean)", "torch.rand_like(mean)", "standard normal"),
        W("same noise every call", "torch.randn_like(mean)", "torch.ones_like(mean)", "same"),
        W("one noise vector for the batch", "torch.randn_like(mean)", "torch.randn(mean.shape[1])", "same noise"),
        W(
            "half of exp(log_var)",
            REPARAMETERIZE,
            "return mean + 0.5 * torch.exp(log_var) * torch.randn_like(mean)",
            "0.5 * exp(log_var)",
        ),
    ],
    "kl": [
        W("mean over dimensions", KL, "return 0.5 * (mean.pow(2) + log_var.exp() - log_var - 1).mean(1)", "averaged"),
        W("no factor 1/2", KL, "return (mean.pow(2) + log_var.exp() - log_var - 1).sum(1)", "1/2"),
        W("signs flipped", KL, "return 0.5 * (1 + log_var - mean.pow(2) - log_var.exp()).sum(1)", "signs"),
        W(
            "sigma instead of sigma squared",
            KL,
            "return 0.5 * (mean.pow(2) + (0.5 * log_var).exp() - log_var - 1).sum(1)",
            "sigma²",
        ),
        W("no -1", KL, "return 0.5 * (mean.pow(2) + log_var.exp() - log_var).sum(1)", "-1"),
        W(
            "one number for the batch",
            KL,
            "return 0.5 * (mean.pow(2) + log_var.exp() - log_var - 1).sum()",
            "one value per example",
        ),
        W(
            "summed over the batch",
            KL,
            "return 0.5 * (mean.pow(2) + log_var.exp() - log_var - 1).sum(0)",
            "summed over the batch",
        ),
    ],
    "vae-loss": [
        W("per-pixel mean", RECONSTRUCTION, "reconstruction = F.binary_cross_entropy(x_hat, x)", "784 pixels"),
        W(
            "not divided by the batch",
            RECONSTRUCTION,
            'reconstruction = F.binary_cross_entropy(x_hat, x, reduction="sum")',
            "divide by the batch size",
        ),
        W(
            "squared error",
            RECONSTRUCTION,
            'reconstruction = F.mse_loss(x_hat, x, reduction="sum") / len(x)',
            "Bernoulli",
        ),
        W(
            "decodes the mean",
            "x_hat = model.decoder(reparameterize(mean, log_var))",
            "x_hat = model.decoder(mean)",
            "decoded mean",
        ),
        W("KL summed over the batch", KL_MEAN, "kl = kl_to_standard_normal(mean, log_var).sum()", "average it"),
        W("no KL", KL_MEAN, "kl = torch.zeros(())", "add the KL term"),
    ],
    "causal-mask": [
        W("no offset", MASK, "return torch.ones(queries, keys, dtype=torch.bool).tril()", "the queries are the last"),
        W(
            "strict triangle",
            MASK,
            "return torch.ones(queries, keys, dtype=torch.bool).tril(keys - queries - 1)",
            "see itself",
        ),
        W(
            "upper triangle",
            MASK,
            "return torch.ones(queries, keys, dtype=torch.bool).triu(keys - queries)",
            "later ones and not earlier",
        ),
        W("float mask", MASK, "return torch.ones(queries, keys).tril(keys - queries)", "bool tensor"),
        W(
            "keys by queries",
            MASK,
            "return torch.ones(keys, queries, dtype=torch.bool).tril(keys - queries)",
            "one row per query",
        ),
        W("nothing hidden", MASK, "return torch.ones(queries, keys, dtype=torch.bool)", "nothing is hidden"),
    ],
    "attention": [
        W("no scaling", SCORES, "scores = q @ k.transpose(-2, -1)", "not scaled"),
        W("divided by d", SCORES, "scores = q @ k.transpose(-2, -1) / q.shape[-1]", "divided by d"),
        W("mask inverted", WEIGHTS, 'return scores.masked_fill(mask, float("-inf")).softmax(dim=-1) @ v', "inverted"),
        W("0 instead of -inf", WEIGHTS, "return scores.masked_fill(~mask, 0.0).softmax(dim=-1) @ v", "instead of -inf"),
        W(
            "softmax over the queries",
            WEIGHTS,
            'return scores.masked_fill(~mask, float("-inf")).softmax(dim=-2) @ v',
            "over the queries",
        ),
        W("mask ignored", WEIGHTS, "return scores.softmax(dim=-1) @ v", "ignored"),
    ],
    "self-attention": [
        W(
            "no causal mask",
            "y = attention(q, k, v, causal_mask(t, t))",
            "y = attention(q, k, v, torch.ones(t, t, dtype=torch.bool))",
            "causal mask",
        ),
        W("one head", HEADS, "q, k, v = (part.view(n, t, 1, width).transpose(1, 2)", "one head of full width"),
        W("heads merged in place", MERGE, "return self.out(y.reshape(n, t, width))", "without moving them back"),
        W("no output layer", MERGE, "return y.transpose(1, 2).reshape(n, t, width)", "self.out"),
        W(
            "heads interleaved",
            HEADS,
            "q, k, v = (part.view(n, t, width // self.heads, self.heads).permute(0, 3, 1, 2)",
            "compare your forward() with the text",
        ),
    ],
    "attention-step": [
        W("no cache", STEP_CACHE, "keys, values = k, v", "cache.extend"),
        W("only itself", STEP_CACHE, "cache.extend(k, v)\n    keys, values = k, v", "only to themselves"),
        W("square mask", STEP_MASK, "y = attention(q, keys, values, causal_mask(t, t))", "causal_mask(new positions"),
        W(
            "no mask",
            STEP_MASK,
            "y = attention(q, keys, values, torch.ones(t, keys.shape[2], dtype=torch.bool))",
            "values differ",
        ),
        W(
            "heads merged in place",
            "return layer.out(y.transpose(1, 2).reshape(n, t, width))",
            "return layer.out(y.reshape(n, t, width))",
            "values differ",
        ),
    ],
}

# Coded to the visible check only: these pass it and must fail the hidden test of the same cell.
VISIBLE_ONLY: dict[str, list[WrongAnswer]] = {
    "encoder": [
        W(
            "hard-coded batch of 8",
            ENCODER_FORWARD,
            "return self.to_latent(self.features(x).view(8, -1))",
            "hidden test",
        )
    ],
    "loss": [W("hard-coded 28x28 images", MSE, "return ((x_hat - x) ** 2).sum() / (len(x) * 784)", "hidden test")],
    "codebook": [W("hard-coded K = 128", UNIFORM, "uniform_(-1 / 128, 1 / 128)", "hidden test")],
    "prior": [W("hard-coded 16 codes", PRIOR_HEAD, "nn.Conv2d(channels, 16, 1))", "hidden test")],
}

# The course's own version of each exercise, reached for from the exercise cell: refused with the withheld message.
REFERENCE_ANSWERS: dict[str, str] = {
    "encoder": "from starter.models.autoencoder import Encoder",
    "decoder": "from starter.models import autoencoder\nDecoder = autoencoder.Decoder",
    "loss": "import starter.models.autoencoder as reference\nreconstruction_loss = reference.reconstruction_loss",
    "train-epoch": "from starter.train import train_epoch as reference_epoch\n\n\n"
    "def train_epoch(*args):\n    return reference_epoch(*args)['loss']",
    "codebook": "from starter.models.vq import make_codebook",
    "distances-broadcast": "from starter.models.vq import squared_distances as squared_distances_broadcast",
    "distances": "from starter.models.vq import squared_distances",
    "quantize": "from starter.models.vq import quantize",
    "straight-through": "from starter.models import vq\n\n\n"
    "def straight_through(z_e, z_q):\n    return vq.straight_through(z_e, z_q)",
    "vq-losses": "from starter.models.vq import vq_losses",
    "masked-conv": "from starter.models.pixelcnn import MaskedConv2d",
    "pixelcnn": "from starter.models.pixelcnn import PixelCNN as _Reference, ResidualBlock\n\n\n"
    "def PixelCNN(channels=64, blocks=5):\n    return _Reference(channels=channels, blocks=blocks)",
    "sample": "from starter.models.sampling import sample",
    "encode": "from starter.models.prior import encode_dataset\n\n\ndef encode_codes(vqvae, images, batch_size=1000):\n"
    "    return encode_dataset(vqvae, torch.utils.data.TensorDataset(images, images), batch_size).tensors[0]",
    "prior": "from starter.models.prior import CodePrior\n\n\nclass Prior(CodePrior):\n"
    "    def __init__(self, num_codes=128, channels=64, blocks=5, embed=32):\n"
    "        super().__init__(num_codes, channels=channels, blocks=blocks, embed=embed)",
    "sample-codes": "from starter.models.sampling import sample\n\n\ndef sample_codes(prior, n, temperature=1.0):\n"
    "    return sample(prior, n, temperature, image_size=(7, 7))",
    "reparameterize": "from starter.models.vae import reparameterize",
    "kl": "from starter.models.vae import kl_to_standard_normal",
    "vae-loss": "from starter.models.vae import vae_loss",
    "causal-mask": "from starter.models.transformer import causal_mask",
    "attention": "from starter.models.transformer import attention",
    "self-attention": "from starter.models.transformer import SelfAttention\n\n\n"
    "class CausalSelfAttention(SelfAttention):\n"
    "    pass",
    "attention-step": "from starter.models.transformer import attention_step",
}
