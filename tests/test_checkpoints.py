"""Checkpoints round-trip, and every kind of bad file gives a CheckpointError that says what is wrong."""

from __future__ import annotations

import importlib

import pytest
import torch

from starter.checkpoints import CheckpointError, load_model, read_checkpoint, save_checkpoint, training_log
from starter.config import CHECKPOINTS
from starter.models.autoencoder import Autoencoder
from starter.models.registry import kind_of, kinds


@pytest.fixture
def saved(tmp_path):
    model = Autoencoder(latent_dim=4, hidden=8)
    path = save_checkpoint(tmp_path / "ae.pt", model, "autoencoder", {"latent_dim": 4, "hidden": 8}, {"test_mse": 0.01})
    return path, model


def test_round_trip(saved):
    path, model = saved
    loaded, metrics = load_model(path, latent_dim=4)
    assert isinstance(loaded, Autoencoder) and metrics == {"test_mse": 0.01}
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(loaded(x), model.eval()(x))


def test_a_half_precision_checkpoint_is_half_the_file_and_loads_as_the_float32_model_rounded(tmp_path):
    model, config = Autoencoder(latent_dim=4, hidden=8), {"latent_dim": 4, "hidden": 8}
    full = save_checkpoint(tmp_path / "full.pt", model, "autoencoder", config)
    half = save_checkpoint(tmp_path / "half.pt", model, "autoencoder", config, half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded, _ = load_model(half)
    for (name, weight), (_, stored) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert stored.dtype == weight.dtype and torch.equal(stored, weight.half().float()), name
    x = torch.rand(2, 1, 28, 28)
    assert torch.allclose(loaded(x), model.eval()(x), atol=1e-2)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        read_checkpoint(tmp_path / "nothing.pt")


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_file(saved, damage):
    path, _ = saved
    data = path.read_bytes()
    path.write_bytes(
        {"garbage": b"\x00not a checkpoint" * 10, "truncated": data[: len(data) // 2], "empty": b""}[damage]
    )
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        read_checkpoint(path)


def test_foreign_file(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not written by"):
        read_checkpoint(tmp_path / "other.pt")


def test_wrong_kind(saved):
    with pytest.raises(CheckpointError, match="holds a 'autoencoder' model, expected a 'vqvae'"):
        read_checkpoint(saved[0], kind="vqvae")


def test_config_mismatch(saved):
    with pytest.raises(CheckpointError, match="expected latent_dim=16, but the checkpoint has latent_dim=4"):
        load_model(saved[0], latent_dim=16)


def test_weights_that_do_not_fit(tmp_path):
    path = save_checkpoint(
        tmp_path / "ae.pt", Autoencoder(latent_dim=4, hidden=8), "autoencoder", {"latent_dim": 4, "hidden": 16}
    )
    with pytest.raises(CheckpointError, match="does not fit"):
        load_model(path)


def test_unknown_kind(tmp_path):
    path = save_checkpoint(tmp_path / "ae.pt", Autoencoder(latent_dim=4, hidden=8), "transformer", {})
    with pytest.raises(CheckpointError, match="holds a 'transformer' model, which is none of"):
        load_model(path)


def test_every_kind_round_trips_through_the_registry():
    for name, kind in kinds().items():
        assert kind_of(kind.model.__new__(kind.model)) == name


SHIPPED = {  # file: (class, kind, the metric stored with it)
    "vqvae.pt": ("starter.models.vq.VQVAE", "vqvae", "test_mse"),
    "pixelcnn_plain.pt": ("starter.models.pixelcnn.PixelCNN", "pixelcnn", "test_bits_per_dim"),
    "pixelcnn_gated.pt": ("starter.models.gated_pixelcnn.GatedPixelCNN", "gated_pixelcnn", "test_bits_per_dim"),
    "prior.pt": ("starter.models.prior.CodePrior", "prior", "test_nats_per_code"),
    "prior_conditional.pt": ("starter.models.prior.CodePrior", "prior", "test_nats_per_code"),
    "prior_gated.pt": ("starter.models.prior.GatedCodePrior", "gated_prior", "test_nats_per_code"),
    "prior_gated_conditional.pt": ("starter.models.prior.GatedCodePrior", "gated_prior", "test_nats_per_code"),
    "prior_gated_clusters.pt": ("starter.models.prior.GatedCodePrior", "gated_prior", "test_nats_per_code"),
    "classifier.pt": ("starter.models.classifier.Classifier", "classifier", "test_accuracy"),
    "two_level_vqvae.pt": ("starter.models.two_level.TwoLevelVQVAE", "two_level_vqvae", "test_mse"),
    "top_prior.pt": ("starter.models.prior.CodePrior", "prior", "test_nats_per_code"),
    "bottom_prior.pt": ("starter.models.two_level.BottomPrior", "bottom_prior", "test_nats_per_code"),
    "fashion_vqvae.pt": ("starter.models.vq.VQVAE", "vqvae", "test_mse"),
    "fashion_prior.pt": ("starter.models.prior.CodePrior", "prior", "test_nats_per_code"),
    "prior_transformer.pt": ("starter.models.transformer.TransformerPrior", "transformer_prior", "test_nats_per_code"),
    "prior_transformer_conditional.pt": (
        "starter.models.transformer.TransformerPrior",
        "transformer_prior",
        "test_nats_per_code",
    ),
    "maskgit.pt": ("starter.models.maskgit.MaskGITPrior", "maskgit_prior", "test_hidden_code_nats"),
    "fashion_classifier.pt": ("starter.models.classifier.Classifier", "classifier", "test_accuracy"),
}
CAPSTONE_REFERENCES = [f"capstone_{part}_reference.safetensors" for part in "abc"]  # weights only


def test_every_shipped_checkpoint_is_listed_here_with_its_training_log():
    assert sorted(path.name for path in CHECKPOINTS.glob("*.pt")) == sorted(SHIPPED)
    assert sorted(path.name for path in CHECKPOINTS.glob("*.safetensors")) == CAPSTONE_REFERENCES
    for file in [*SHIPPED, *CAPSTONE_REFERENCES]:
        stem = file.removesuffix(".pt").removesuffix(".safetensors")
        assert (CHECKPOINTS / f"{stem}_log.csv").exists() or (CHECKPOINTS / f"{stem}_log.txt").exists(), file


@pytest.mark.parametrize("file", sorted(SHIPPED))
def test_every_shipped_checkpoint_loads_with_its_metric(file):
    dotted, kind, metric = SHIPPED[file]
    module, name = dotted.rsplit(".", 1)
    model, metrics = load_model(CHECKPOINTS / file, kind)
    assert type(model) is getattr(importlib.import_module(module), name)
    assert metric in metrics and sum(p.numel() for p in model.parameters()) > 0
    assert (CHECKPOINTS / file).stat().st_size < 4_000_000, "shipped checkpoints stay small"


def test_training_log_reads_the_shipped_log_column_by_column(tmp_path):
    log = training_log(CHECKPOINTS / "prior_gated.pt")
    assert log["epoch"] == list(range(1, 31)) and len(log["seconds"]) == 30 and min(log["test_loss"]) > 0
    with pytest.raises(CheckpointError, match="no training log"):
        training_log(tmp_path / "model.pt")
