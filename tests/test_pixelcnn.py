"""Causality of every masked model, verified by autograd and by perturbation; the blind spot; sampling."""

from __future__ import annotations

import pytest
import torch
from training_runs import TINY_PIXELCNN

from starter.models.gated_pixelcnn import GatedPixelCNN
from starter.models.pixelcnn import MaskedConv2d, PixelCNN, causal_mask, receptive_field
from starter.models.sampling import sample

SIZE = 9
MODELS = {
    "pixelcnn": lambda: PixelCNN(levels=4, channels=8, blocks=3),
    "gated": lambda: GatedPixelCNN(levels=4, channels=8, blocks=3),
}


def test_masks():
    assert causal_mask(3, "A").tolist() == [[1, 1, 1], [1, 0, 0], [0, 0, 0]]
    assert causal_mask(3, "B").tolist() == [[1, 1, 1], [1, 1, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match="mask_type"):
        causal_mask(3, "C")
    layer = MaskedConv2d(1, 1, 5, "A")
    assert layer(torch.rand(1, 1, 8, 8)).shape == (1, 1, 8, 8)


@pytest.mark.parametrize("name", MODELS)
def test_no_output_sees_the_present_or_the_future(name):
    torch.manual_seed(0)
    model = MODELS[name]()
    order = torch.arange(SIZE * SIZE).view(SIZE, SIZE)
    for i in range(SIZE):
        for j in range(SIZE):
            seen = receptive_field(model, SIZE, SIZE, (i, j))
            assert not (seen & (order >= i * SIZE + j)).any(), f"{name}: output {(i, j)} sees the present or the future"
    assert receptive_field(model, SIZE, SIZE, (4, 4))[4, 3], "the pixel just left must be visible"


def test_plain_pixelcnn_has_a_blind_spot_and_gated_does_not():
    torch.manual_seed(0)
    plain = PixelCNN(levels=4, channels=8, blocks=6)
    gated = GatedPixelCNN(levels=4, channels=8, blocks=6)
    size, position = 20, (12, 8)
    order = torch.arange(size * size).view(size, size)
    before = order < position[0] * size + position[1]
    window = torch.zeros(size, size, dtype=torch.bool)
    window[position[0] - 4 : position[0] + 1, position[1] - 4 : position[1] + 5] = True  # a nearby neighbourhood
    plain_missing = (before & window & ~receptive_field(plain, size, size, position)).sum()
    gated_missing = (before & window & ~receptive_field(gated, size, size, position)).sum()
    assert plain_missing > 0 and gated_missing == 0


def test_embedded_conditional_prior_is_causal_by_perturbation():
    torch.manual_seed(0)
    model = PixelCNN(levels=16, channels=8, blocks=2, embed=4, num_classes=10).eval()
    grid = torch.randint(16, (1, 5, 5))
    label = torch.tensor([3])
    base = model(grid, label)
    for i in range(5):
        for j in range(5):
            changed = grid.clone().view(-1)
            changed[i * 5 + j :] = torch.randint(16, (25 - i * 5 - j,))
            assert torch.allclose(model(changed.view(1, 5, 5), label)[..., i, j], base[..., i, j], atol=1e-6)
    assert not torch.allclose(model(grid, torch.tensor([4])), base)


def test_sampling_shapes_range_and_bad_temperature():
    torch.manual_seed(0)
    pixels = sample(PixelCNN(levels=4, channels=8, blocks=1), 2, 0.8, (6, 6))
    assert pixels.shape == (2, 1, 6, 6) and 0 <= pixels.min() and pixels.max() < 4
    codes = sample(PixelCNN(levels=16, channels=8, blocks=1, embed=4), 3, image_size=(5, 5))
    assert codes.shape == (3, 5, 5) and codes.max() < 16
    start = torch.full((1, 1, 6, 6), 3)
    completed = sample(PixelCNN(levels=4, channels=8, blocks=1), 1, image_size=(6, 6), start=start, first_row=3)
    assert torch.equal(completed[..., :3, :], start[..., :3, :])
    with pytest.raises(ValueError, match="temperature must be > 0"):
        sample(PixelCNN(levels=4, channels=8, blocks=1), 1, 0)


@pytest.mark.parametrize("mask_type", ["A", "B"])
@pytest.mark.parametrize("dilation", [1, 2])
def test_cropped_kernel_equals_full_masked_convolution(mask_type, dilation):
    torch.manual_seed(0)
    layer = MaskedConv2d(3, 5, 5, mask_type, dilation=dilation)
    x = torch.randn(2, 3, 11, 11)
    full = torch.nn.functional.conv2d(
        x, layer.weight * layer.mask, layer.bias, padding=layer.padding, dilation=dilation
    )
    assert torch.allclose(layer(x), full, atol=1e-5)


def test_cli_trains_a_pixelcnn_within_its_time_limit(tmp_path, monkeypatch, local_mnist):
    from starter.checkpoints import load_model
    from starter.cli import main as cli

    monkeypatch.setenv("COURSE_MNIST_DIR", str(local_mnist))
    out = tmp_path / "pixels"
    assert (
        cli(
            [
                "train-pixelcnn",
                "--data",
                str(tmp_path / "data"),
                "--out",
                str(out),
                "--model",
                "pixelcnn",
                *TINY_PIXELCNN,
                "--limit",
                "64",
                "--test-limit",
                "500",
                "--epochs",
                "5",
                "--time-limit",
                "0",
            ]
        )
        == 0
    )
    model, metrics = load_model(out / "checkpoint.pt", "pixelcnn")
    assert metrics["epochs"] == 1 and 0 < metrics["test_bits_per_dim"] < 8  # the time limit stopped it after one epoch
    assert metrics["test_limit"] == 500  # measured on the first 500 test images, as asked
    assert "test_bits_per_dim" in (out / "log.csv").read_text().splitlines()[0]
