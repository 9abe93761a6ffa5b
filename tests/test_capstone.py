"""Capstone A, graded on the saved weights alone: every kind of file gets its points or a 0 with the reason, and
nothing raises; weights equal to a shipped checkpoint's or to another submission's are listed."""

from __future__ import annotations

import random
from pathlib import Path

import capstone_weights
import pytest
import torch
from safetensors.torch import save_file, save_model

from starter.capstone import reference
from starter.capstone.interface import FILENAME, MAX_BYTES, read_submission, sizes_of, submission_tensors
from starter.capstone.score import TIERS, score_vqvae, similar
from starter.dataset_files import available_offline
from starter.models.vq import VQVAE
from starter.trainers import Session

LIMIT = 500  # test images per measurement here; the grader uses all 10,000


@pytest.fixture(scope="module")
def fashion() -> None:
    """Fashion-MNIST on this machine (Debian's dataset-fashion-mnist, which .ci/run installs, or its variable)."""
    if not available_offline("fashion"):
        pytest.skip(capstone_weights.NO_FASHION)


@pytest.fixture(scope="module")
def shipped_state() -> dict[str, torch.Tensor]:
    """The shipped Fashion-MNIST VQ-VAE's state dict (128 codes: outside the interface's 16..64)."""
    return capstone_weights.shipped_state()


@pytest.fixture(scope="module")
def trimmed(tmp_path_factory) -> Path:
    """The shipped Fashion-MNIST VQ-VAE cut to its 64 most used codes: trained weights that fit the interface."""
    return write(tmp_path_factory.mktemp("trimmed") / FILENAME, capstone_weights.trimmed())


def write(path: Path, tensors: dict[str, torch.Tensor]) -> Path:
    """Save `tensors` as a safetensors file at `path`."""
    save_file(tensors, str(path))
    return path


def random_model(seed: int = 0, **sizes: int) -> VQVAE:
    """An untrained VQVAE with an EMA quantizer (so its state dict holds the training-only buffers)."""
    torch.manual_seed(seed)
    return VQVAE(**{"num_codes": 64, "code_dim": 16, "hidden": 32, **sizes}, update="ema")


def test_trained_weights_earn_their_tier_when_no_checkpoint_is_shipped(trimmed, tmp_path, fashion):
    result = score_vqvae(trimmed, shipped=tmp_path, limit=LIMIT)  # MSE 0.0073: 10 epochs, but half the codes cut
    assert result.points == 2 and result.max_points == 3, result.report()
    assert TIERS[0][1] < result.test_mse <= TIERS[1][1] and not result.reason and not result.similar


def test_a_shipped_checkpoint_passed_off_gets_0_and_is_listed(trimmed, shipped_state, tmp_path):
    result = score_vqvae(trimmed)
    assert result.points == 0 and "fashion_vqvae.pt" in result.reason and result.test_mse is None
    assert [hit.split(" (")[0] for hit in result.similar] == ["shipped checkpoint fashion_vqvae.pt"]
    whole = score_vqvae(write(tmp_path / FILENAME, {k: v.contiguous() for k, v in shipped_state.items()}))
    assert whole.points == 0 and "num_codes = 128" in whole.reason and "outside 16..64" in whole.reason
    assert whole.similar and "fashion_vqvae.pt" in whole.similar[0]


def test_random_weights_get_0_with_their_mse(tmp_path, fashion):
    path = write(tmp_path / FILENAME, random_model().state_dict())  # the EMA buffers are accepted and ignored
    result = score_vqvae(path, limit=LIMIT)
    assert result.points == 0 and result.test_mse > 0.1 and "above" in result.reason and not result.similar


def test_two_equal_submissions_are_listed_and_a_different_one_is_not(tmp_path):
    mine = submission_tensors(random_model(seed=1))
    twin = write(tmp_path / "twin.safetensors", {k: v.clone() for k, v in mine.items()})
    other = write(tmp_path / "other.safetensors", submission_tensors(random_model(seed=2)))
    others = {"twin": twin, "other": other, "missing": tmp_path / "missing.safetensors"}
    hits = similar(mine, others, shipped=tmp_path / "no checkpoints")
    assert [hit.split(" (")[0] for hit in hits] == ["twin"]


WRONG_SCHEMA = {  # the words a reason must hold -> how to break a valid submission's tensors
    "decoder.0.weight has shape (64, 8, 3, 3), expected (64, 16, 3, 3)": lambda tensors: {
        **tensors,
        "decoder.0.weight": tensors["decoder.0.weight"][:, :8].contiguous(),
    },
    "missing tensors decoder.2.2.bias": lambda tensors: {k: v for k, v in tensors.items() if k != "decoder.2.2.bias"},
    "unexpected tensors head.weight": lambda tensors: {**tensors, "head.weight": torch.zeros(3)},
    "encoder.1.bias is torch.float64": lambda tensors: {
        **tensors,
        "encoder.1.bias": tensors["encoder.1.bias"].double(),
    },
    "hidden = 8 (from the tensor shapes) is outside 16..64": lambda _: submission_tensors(random_model(hidden=8)),
    "no tensor named 'quantizer.codebook'": lambda tensors: {k: v for k, v in tensors.items() if "codebook" not in k},
}


@pytest.mark.parametrize("reason, breaking", WRONG_SCHEMA.items(), ids=list(WRONG_SCHEMA))
def test_a_wrong_schema_gets_0_with_the_reason(reason, breaking, tmp_path):
    result = score_vqvae(write(tmp_path / FILENAME, breaking(submission_tensors(random_model()))))
    assert result.points == 0 and result.reason.startswith("schema: ") and reason in result.reason, result.reason


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_get_0(value, tmp_path):
    tensors = submission_tensors(random_model())
    tensors["decoder.0.bias"][3] = value
    result = score_vqvae(write(tmp_path / FILENAME, tensors))
    assert result.points == 0 and result.reason == "non-finite values (NaN or inf) in decoder.0.bias"


def broken_file(kind: str, path: Path) -> Path:
    """A file at `path` that no safetensors reader accepts, or none at all, or one over the size limit."""
    tensors = submission_tensors(random_model())
    if kind == "pickle renamed":
        torch.save(tensors, path)
    elif kind == "random bytes":
        path.write_bytes(random.Random(0).randbytes(5000))
    elif kind == "truncated":
        path.write_bytes(write(path, tensors).read_bytes()[:3000])
    elif kind == "too large":
        write(path, dict(tensors, padding=torch.zeros(MAX_BYTES // 4)))
    elif kind == "a folder":
        path.mkdir()
    return path


@pytest.mark.parametrize(
    "kind, words",
    [
        ("pickle renamed", "not a safetensors file (it is a torch.save or pickle file)"),
        ("random bytes", "not a safetensors file: "),
        ("truncated", "not a safetensors file: "),
        ("too large", "too large: "),
        ("missing", "missing: no file at "),
        ("a folder", "missing: no file at "),
    ],
)
def test_a_file_that_is_not_a_submission_gets_0_with_the_reason(kind, words, tmp_path):
    result = score_vqvae(broken_file(kind, tmp_path / FILENAME))
    assert result.points == 0 and result.reason.startswith(words) and result.test_mse is None, result.reason
    assert "\n" not in result.reason and not result.similar


def test_the_reference_run_writes_a_submission_and_its_log(tmp_path, fashion):
    args = reference.parser().parse_args(["--out", str(tmp_path), "--epochs", "1", "--hidden", "16"])
    args.limit, args.test_limit = 256, 256  # one epoch on 256 images: the run's code, not its result
    path = reference.train_reference(args, Session(args))
    assert path == tmp_path / FILENAME and sizes_of(read_submission(path)) == {
        "num_codes": 64,
        "code_dim": 16,
        "hidden": 16,
    }
    assert (tmp_path / "log.csv").read_text().splitlines()[0].startswith("epoch,train_loss,")


def trained_model() -> VQVAE:
    """A VQVAE holding trained weights (no shipped checkpoint's), as a student's notebook has it after training."""
    model = VQVAE(num_codes=64, code_dim=16, hidden=32, update="ema", restart=True)
    state = model.state_dict()
    model.load_state_dict({**state, **capstone_weights.own()})
    return model.eval()


SAVED_RIGHT = {  # ways to save the trained model that the capstone's prose allows: all score the same
    "submission_tensors": lambda model, path: save_file(submission_tensors(model), str(path)),
    "the state dict, EMA buffers and all": lambda model, path: save_file(model.state_dict(), str(path)),
    "safetensors' save_model": lambda model, path: save_model(model, str(path)),
    "copies": lambda model, path: save_file({k: v.clone() for k, v in model.state_dict().items()}, str(path)),
}
SAVED_WRONG = {  # ways students get it wrong -> the words of the reason
    "torch.save of the state dict": (
        lambda model, path: torch.save(model.state_dict(), path),
        "not a safetensors file (it is a torch.save or pickle file)",
    ),
    "torch.save of the model": (lambda model, path: torch.save(model, path), "(it is a torch.save or pickle file)"),
    "a wrapper's state dict": (
        lambda model, path: save_file(torch.nn.Sequential(model).state_dict(), str(path)),
        "there is '0.encoder.0.0.weight': save the VQVAE's own state dict, not a wrapper's",
    ),
    "half precision": (
        lambda model, path: save_file(submission_tensors(model.half()), str(path)),
        "is torch.float16, expected torch.float32",
    ),
    "the encoder alone": (
        lambda model, path: save_file(model.encoder.state_dict(), str(path)),
        "schema: no tensor named 'encoder.0.0.weight'",
    ),
}


def test_every_way_to_save_that_the_prose_allows_scores_the_same(tmp_path, fashion):
    results = {}
    for label, saving in SAVED_RIGHT.items():
        path = tmp_path / label.replace(" ", "_") / FILENAME
        path.parent.mkdir()
        saving(trained_model(), path)
        results[label] = score_vqvae(path, limit=LIMIT)
    assert {(r.points, r.test_mse, r.reason) for r in results.values()} == {
        (results["submission_tensors"].points, results["submission_tensors"].test_mse, "")
    }, {k: r.report() for k, r in results.items()}
    assert results["submission_tensors"].points == 2


@pytest.mark.parametrize("label", list(SAVED_WRONG))
def test_each_wrong_way_to_save_gets_0_naming_its_cause(label, tmp_path):
    saving, words = SAVED_WRONG[label]
    saving(trained_model(), tmp_path / FILENAME)
    result = score_vqvae(tmp_path / FILENAME)
    assert result.points == 0 and words in result.reason, result.reason
