"""Code priors, the notebook-03/04 checks on the reference code, the explorers' static fallback, the CLI."""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys

import pytest
import torch
from matplotlib.figure import Figure
from training_runs import TINY_PIXELCNN, TINY_RUN

from starter import widgets
from starter.checkpoints import CheckpointError, load_model
from starter.checks.kernel import LocalKernel
from starter.checks.pixelcnn import check_masked_conv, check_pixelcnn, check_sample
from starter.checks.prior import check_encode_codes, check_prior, first_future_dependency, perturbed_grids
from starter.cli import main as cli
from starter.config import CHECKPOINTS, PROJECT_ROOT, STATIC_ENV
from starter.models.base import PriorMismatch
from starter.models.pixelcnn import MaskedConv2d, PixelCNN, ResidualBlock
from starter.models.prior import CodePrior, GatedCodePrior, encode_dataset
from starter.models.sampling import sample
from starter.models.vq import VQVAE


def test_code_prior_shapes_generation_and_fit_check():
    prior = CodePrior(num_codes=16, channels=8, blocks=1, embed=4)
    assert prior(torch.randint(16, (2, 7, 7))).shape == (2, 16, 7, 7)
    assert sample(prior, 3).shape == (3, 7, 7)
    with pytest.raises(PriorMismatch, match="grids of 16 codes, but the VQ-VAE produces 7x7 grids of 128 codes"):
        prior.check_fits(VQVAE(num_codes=128))
    conditional = CodePrior(num_codes=16, channels=8, blocks=1, embed=4, num_classes=10)
    with pytest.raises(ValueError, match="is conditional: pass its `condition`"):
        sample(conditional, 2)
    assert sample(conditional, 2, condition=torch.tensor([1, 2])).shape == (2, 7, 7)


def test_gated_code_prior_is_causal_and_generates():
    prior = GatedCodePrior(num_codes=16, channels=8, blocks=3, embed=4).eval()
    with torch.no_grad():
        assert first_future_dependency(prior(perturbed_grids(16))) is None
    assert sample(prior, 2).shape == (2, 7, 7)
    with pytest.raises(PriorMismatch, match="grids of 16 codes"):
        prior.check_fits(VQVAE(num_codes=128))


def test_shipped_prior_rejects_a_vqvae_with_another_codebook():
    with pytest.raises(CheckpointError, match="expected num_codes=64, but the checkpoint has num_codes=128"):
        load_model(CHECKPOINTS / "prior.pt", num_codes=64)
    with pytest.raises(CheckpointError, match="holds a 'prior' model, expected a 'vqvae'"):
        load_model(CHECKPOINTS / "prior.pt", "vqvae")


def test_encode_dataset():
    vqvae = VQVAE(num_codes=16, code_dim=4, hidden=8)
    codes = encode_dataset(
        vqvae, torch.utils.data.TensorDataset(torch.rand(5, 1, 28, 28), torch.arange(5)), batch_size=2
    )
    assert codes.tensors[0].shape == (5, 7, 7) and codes.tensors[0].dtype == torch.long


def test_reference_versions_pass_the_checks():
    """The checks agree with starter's reference versions, given to them with nothing withheld (a notebook's check
    refuses them: test_wrong_answers.py)."""
    kernel = LocalKernel()
    assert check_masked_conv(kernel.adopt(MaskedConv2d)).passed
    assert check_pixelcnn(
        kernel.adopt(lambda channels, blocks: PixelCNN(channels=channels, blocks=blocks)), kernel.adopt(ResidualBlock)
    ).passed
    assert check_sample(kernel.adopt(lambda model, n, t=1.0, size=(28, 28): sample(model, n, t, size))).passed
    assert check_prior(
        kernel.adopt(lambda num_codes, channels, blocks: CodePrior(num_codes, channels=channels, blocks=blocks))
    ).passed
    assert check_encode_codes(
        kernel.adopt(lambda v, x, b: encode_dataset(v, torch.utils.data.TensorDataset(x, x), b).tensors[0])
    ).passed


def test_explorers_are_static_headless_and_widgets_live(monkeypatch):
    vqvae = VQVAE(num_codes=16, code_dim=4, hidden=8).eval()
    prior = CodePrior(num_codes=16, channels=8, blocks=1, embed=4)
    codes = torch.randint(16, (7, 7))
    monkeypatch.setenv(STATIC_ENV, "1")
    assert isinstance(widgets.code_grid_editor(vqvae, codes), Figure)
    assert isinstance(widgets.temperature_explorer(prior, vqvae, count=2), Figure)
    monkeypatch.setenv(STATIC_ENV, "0")
    monkeypatch.setattr(widgets, "FAST", False)
    import ipywidgets

    editor = widgets.code_grid_editor(vqvae, codes)
    assert isinstance(editor, ipywidgets.VBox)
    row, column, code = editor.children[0].children
    row.value, code.value = 0, 5  # select a position, then change its code
    assert isinstance(widgets.temperature_explorer(prior, vqvae, count=2), ipywidgets.VBox)


EXPLORERS_LIVE = """
import ipywidgets, torch
from starter import widgets
from starter.models.prior import CodePrior
from starter.models.vq import VQVAE
vqvae, prior = VQVAE(num_codes=16, code_dim=4, hidden=8).eval(), CodePrior(num_codes=16, channels=8, blocks=1, embed=4)
editor = widgets.code_grid_editor(vqvae, torch.randint(16, (7, 7)))
row, column, code = editor.children[0].children
row.value, code.value = 0, 5
sampler = widgets.temperature_explorer(prior, vqvae, count=2)
slider, button = sampler.children[0].children
slider.value = 1.5
button.click()
print(ipywidgets.__version__, type(editor).__name__, type(sampler).__name__)
"""


def test_explorers_work_with_colabs_ipywidgets_7():
    """Colab ships ipywidgets 7.7.1: the explorers build, and react to their sliders and button, with it too."""
    folder = PROJECT_ROOT / "build" / "ipywidgets-7.7.1"
    if not (folder / "ipywidgets").is_dir():
        install = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--target",
                str(folder),
                "ipywidgets==7.7.1",
                "ipython_genutils",
            ],
            capture_output=True,
            text=True,
        )
        if install.returncode != 0:
            pytest.skip(f"ipywidgets 7.7.1 could not be installed (no network?): {install.stderr.strip()[-200:]}")
    run = subprocess.run(
        [sys.executable, "-c", EXPLORERS_LIVE],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(folder), STATIC_ENV: "0"},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "7.7.1 VBox VBox"


def test_cli_trains_classifier_and_prior(tmp_path, monkeypatch, local_mnist):
    monkeypatch.setenv("COURSE_MNIST_DIR", str(local_mnist))
    data = ["--data", str(tmp_path / "data")]
    assert (
        cli(
            [
                "train-classifier",
                *data,
                "--out",
                str(tmp_path / "cls"),
                *TINY_RUN,
            ]
        )
        == 0
    )
    assert (
        cli(
            [
                "train-prior",
                *data,
                "--vqvae",
                str(CHECKPOINTS / "vqvae.pt"),
                "--out",
                str(tmp_path / "prior"),
                *TINY_RUN,
                *TINY_PIXELCNN,
                "--conditional",
            ]
        )
        == 0
    )
    prior, metrics = load_model(tmp_path / "prior" / "checkpoint.pt", num_codes=128, num_classes=10)
    assert 0 < metrics["test_nats_per_code"] < math.log(128) + 0.5 and metrics["epochs"] == 1  # no worse than uniform


def test_cli_continues_a_gated_prior_from_its_weights(tmp_path, monkeypatch, local_mnist):
    monkeypatch.setenv("COURSE_MNIST_DIR", str(local_mnist))
    common = [
        "train-prior",
        "--data",
        str(tmp_path / "data"),
        "--vqvae",
        str(CHECKPOINTS / "vqvae.pt"),
        "--model",
        "gated_prior",
        "--epochs",
        "1",
        "--limit",
        "128",
        "--test-limit",
        "500",
        "--channels",
        "8",
        "--embed",
        "4",
    ]
    assert cli([*common, "--blocks", "2", "--dropout", "0.2", "--out", str(tmp_path / "first")]) == 0
    first, metrics = load_model(tmp_path / "first" / "checkpoint.pt", dropout=0.2)
    assert metrics["init"] is None
    assert (
        cli(
            [
                *common,
                "--blocks",
                "2",
                "--init",
                str(tmp_path / "first" / "checkpoint.pt"),
                "--lr",
                "0",
                "--out",
                str(tmp_path / "again"),
            ]
        )
        == 0
    )
    again, metrics = load_model(tmp_path / "again" / "checkpoint.pt", dropout=0.0)
    assert metrics["init"].endswith("checkpoint.pt")
    for key, value in first.state_dict().items():  # a learning rate of 0 keeps the weights it started from
        torch.testing.assert_close(again.state_dict()[key], value, rtol=0, atol=0)
    with pytest.raises(SystemExit, match="does not fit this model .* use the settings it was trained with"):
        cli(
            [
                *common,
                "--blocks",
                "3",
                "--init",
                str(tmp_path / "first" / "checkpoint.pt"),
                "--out",
                str(tmp_path / "x"),
            ]
        )
    with pytest.raises(SystemExit, match="--dropout: not an option of prior"):
        cli([*common, "--model", "prior", "--dropout", "0.1", "--out", str(tmp_path / "y")])


@pytest.mark.parametrize(
    "model",
    [TINY_PIXELCNN, ["--model", "transformer_prior", "--width", "16", "--layers", "1", "--heads", "2"]],
    ids=["adam", "own-schedule"],
)
def test_cli_ends_with_the_average_of_the_weights_with_ema(tmp_path, monkeypatch, local_mnist, capsys, model):
    """The same run with and without --ema takes the same steps (with Adam, or a transformer's own schedule): the log
    keeps the last step's test loss, which is the plain run's; the saved weights and their test loss are the
    average's, which differ from the last step's."""
    monkeypatch.setenv("COURSE_MNIST_DIR", str(local_mnist))
    common = ["train-prior", "--data", str(tmp_path / "data"), "--vqvae", str(CHECKPOINTS / "vqvae.pt")]
    common += [*TINY_RUN, *model, "--epochs", "2"]
    assert cli([*common, "--out", str(tmp_path / "plain")]) == 0
    assert cli([*common, "--ema", "0.9", "--out", str(tmp_path / "average")]) == 0
    plain, plain_metrics = load_model(tmp_path / "plain" / "checkpoint.pt")
    averaged, metrics = load_model(tmp_path / "average" / "checkpoint.pt")
    rows = list(csv.DictReader(open(tmp_path / "average" / "log.csv")))
    plain_rows = list(csv.DictReader(open(tmp_path / "plain" / "log.csv")))
    last_steps = [float(r["test_last_step_loss"]) for r in rows]
    assert last_steps == pytest.approx([float(r["test_loss"]) for r in plain_rows], rel=1e-5)  # to float noise
    assert metrics["test_nats_per_code"] == pytest.approx(float(rows[-1]["test_loss"]))
    assert metrics["ema"] == 0.9 and plain_metrics["ema"] is None
    assert metrics["test_nats_per_code"] != pytest.approx(plain_metrics["test_nats_per_code"], rel=1e-3)
    assert any(not torch.equal(averaged.state_dict()[n], w) for n, w in plain.state_dict().items())
    for wrong in ("1", "0", "-0.5"):
        with pytest.raises(SystemExit):
            cli([*common, "--ema", wrong, "--out", str(tmp_path / "x")])
        assert "decay is between 0 and 1" in capsys.readouterr().err


def test_cli_trains_a_transformer_prior_and_samples_from_any_prior_or_pixelcnn(tmp_path, monkeypatch, local_mnist):
    """The registry's kinds are the CLI's choices: a transformer prior trains with its own optimizer; `sample`
    draws from it, from a conditional prior (one class per row) and from a PixelCNN into PNG grids."""
    monkeypatch.setenv("COURSE_MNIST_DIR", str(local_mnist))
    data = ["--data", str(tmp_path / "data")]
    assert (
        cli(
            [
                "train-prior",
                *data,
                "--vqvae",
                str(CHECKPOINTS / "vqvae.pt"),
                "--model",
                "transformer_prior",
                "--width",
                "16",
                "--layers",
                "1",
                "--heads",
                "2",
                "--epochs",
                "1",
                "--limit",
                "128",
                "--test-limit",
                "500",
                "--out",
                str(tmp_path / "transformer"),
            ]
        )
        == 0
    )
    transformer, metrics = load_model(tmp_path / "transformer" / "checkpoint.pt", "transformer_prior", width=16)
    assert 0 < metrics["test_nats_per_code"] < math.log(128) + 0.5
    for checkpoint in (
        tmp_path / "transformer" / "checkpoint.pt",
        CHECKPOINTS / "prior_conditional.pt",
        CHECKPOINTS / "pixelcnn_plain.pt",
    ):
        out = tmp_path / f"{checkpoint.parent.name}_{checkpoint.stem}.png"
        assert (
            cli(["sample", *data, "--checkpoint", str(checkpoint), "--n", "10", "--top-k", "8", "--out", str(out)]) == 0
        )
        assert out.stat().st_size > 0
    with pytest.raises(SystemExit, match="draws from a PixelCNN or a prior"):
        cli(["sample", *data, "--checkpoint", str(CHECKPOINTS / "vqvae.pt"), "--out", str(tmp_path / "x.png")])
    conditional = ["sample", *data, "--checkpoint", str(CHECKPOINTS / "prior_conditional.pt"), "--guidance", "2"]
    with pytest.raises(SystemExit, match="--guidance needs a prior trained with class dropout"):
        cli([*conditional, "--out", str(tmp_path / "y.png")])
    masked = ["train-prior", *data, "--vqvae", str(CHECKPOINTS / "vqvae.pt"), "--model", "maskgit_prior"]
    sizes = ["--width", "16", "--layers", "1", "--heads", "2", "--epochs", "1", "--limit", "128", "--test-limit", "500"]
    start = ["--init", str(tmp_path / "transformer" / "checkpoint.pt"), "--lr", "0"]
    assert cli([*masked, *sizes, *start, "--out", str(tmp_path / "maskgit")]) == 0
    maskgit, metrics = load_model(tmp_path / "maskgit" / "checkpoint.pt", "maskgit_prior")
    assert metrics["init"].endswith("checkpoint.pt")  # a learning rate of 0 keeps the transformer's weights
    assert torch.equal(maskgit.tokens.weight[:-1], transformer.embedding.weight)
    assert torch.equal(maskgit.blocks[0].attention.qkv.weight, transformer.blocks[0].attention.qkv.weight)
    with pytest.raises(SystemExit, match="does not fit this model"):
        cli([*masked, "--width", "32", *sizes[2:], *start, "--out", str(tmp_path / "z")])
    grow = ["--init", str(tmp_path / "maskgit" / "checkpoint.pt"), "--lr", "0", "--out", str(tmp_path / "deeper")]
    assert cli([*masked, *sizes[:3], "2", *sizes[4:], *grow]) == 0  # --layers 2 from a 1-layer MaskGIT
    deeper, metrics = load_model(tmp_path / "deeper" / "checkpoint.pt", "maskgit_prior", layers=2)
    assert metrics["init"].endswith("checkpoint.pt")
    grids = torch.randint(0, 129, (4, 7, 7))
    assert torch.equal(deeper(grids), maskgit(grids))  # its block first, then one that starts as the identity
