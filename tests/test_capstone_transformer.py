"""Capstone C, graded on the saved weights alone: a transformer prior over the codes of the student's own capstone-A
VQ-VAE, scored on the samples the grader draws from it, as capstone B is. Every kind of file gets its points or a 0
with the reason, the largest model the interface allows fits the file limit, and the course's reference run earns
nothing when handed in (the reference a little off reaches the top tier through the grader: `test_capstone_grading`).
The reference runs of both priors (B's and C's, one shared loop) write a file of the sizes asked for, and a log."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save, save_file

from starter.capstone import MAX_BYTES, prior_reference, transformer_reference
from starter.capstone.interface import read_submission
from starter.capstone.prior_interface import prior_sizes, prior_tensors
from starter.capstone.prior_score import score_transformer
from starter.capstone.transformer_interface import BOUNDS, FILENAME, HEADS, transformer_sizes
from starter.config import CHECKPOINTS
from starter.models.prior import GatedCodePrior
from starter.models.transformer import TransformerPrior
from starter.trainers import Session

N = 200  # samples per score here (a random prior's KID is far from every tier at any n); the grader draws 1000
REFERENCE_A, REFERENCE_C = (
    CHECKPOINTS / "capstone_a_reference.safetensors",
    CHECKPOINTS / "capstone_c_reference.safetensors",
)


pytestmark = pytest.mark.usefixtures("fashion")


def small_transformer(num_codes: int = 64, seed: int = 0, **sizes) -> TransformerPrior:
    torch.manual_seed(seed)
    return TransformerPrior(num_codes, 7, **{"width": 32, "layers": 1, "heads": HEADS, **sizes})


def test_the_reference_run_is_no_one_s_to_hand_in():
    handed_in = score_transformer(REFERENCE_C, REFERENCE_A)
    assert handed_in.points == 0 and "capstone_c_reference.safetensors" in handed_in.reason, handed_in.report()
    assert not handed_in.measured  # refused before anything is drawn


def test_an_untrained_prior_gets_0_with_its_measurements_however_it_is_saved(capstone_a_file, tmp_path):
    model = small_transformer()
    save_file(prior_tensors(model), str(tmp_path / FILENAME))
    save_file(model.state_dict(), str(tmp_path / "whole.safetensors"))
    result, again = (
        score_transformer(tmp_path / name, capstone_a_file, n=N) for name in (FILENAME, "whole.safetensors")
    )
    assert result.points == 0 and "KID" in result.reason and "above" in result.reason, result.report()
    assert set(result.measured) == {"test NLL (nats/code)", "KID", "FID"} and again.measured == result.measured
    assert result.measured["test NLL (nats/code)"] > 3.5  # about log 64 = 4.16 nats: it has learned nothing
    assert result.title == "capstone C" and transformer_sizes(prior_tensors(model), 64) == {"width": 32, "layers": 1}


def test_the_largest_prior_the_interface_allows_fits_the_file_limit():
    largest = TransformerPrior(64, 7, BOUNDS["width"][1], BOUNDS["layers"][1], HEADS)
    assert len(save(prior_tensors(largest))) <= MAX_BYTES
    assert transformer_sizes(prior_tensors(largest), 64) == {"width": 128, "layers": 6}


WRONG = {  # the words a reason must hold -> (the prior's tensors, or a file's bytes)
    "the prior models 32 codes, but your capstone-A VQ-VAE has 64": lambda: prior_tensors(small_transformer(32)),
    "the file holds a class embedding, but capstone C's prior is unconditional": lambda: prior_tensors(
        small_transformer(num_classes=10)
    ),
    "this is a gated PixelCNN prior (capstone B's), not a TransformerPrior": lambda: prior_tensors(
        GatedCodePrior(64, 7, 16, 1, 8)
    ),
    "width = 34 is not a multiple of the 4 heads the interface fixes": lambda: prior_tensors(
        small_transformer(width=34, heads=2)
    ),
    "layers = 7 (from the tensor shapes) is outside 1..6": lambda: prior_tensors(small_transformer(layers=7)),
    "width = 16 (from the tensor shapes) is outside 32..128": lambda: prior_tensors(small_transformer(width=16)),
    "the prior: non-finite values (NaN or inf) in head.bias": lambda: {
        **prior_tensors(small_transformer()),
        "head.bias": torch.full((64,), float("nan")),
    },
    "schema: missing tensors position": lambda: {
        k: v for k, v in prior_tensors(small_transformer()).items() if k != "position"
    },
    "schema: blocks.0.mlp.0.weight has shape (64, 32), expected (128, 32)": lambda: {
        **prior_tensors(small_transformer()),
        "blocks.0.mlp.0.weight": torch.zeros(64, 32),
    },
    "not a safetensors file (it is a torch.save or pickle file)": lambda: b"\x80\x04 a pickle",
}


@pytest.mark.parametrize("words", list(WRONG))
def test_a_prior_that_is_not_a_submission_gets_0_with_the_reason(words, capstone_a_file):
    result = score_transformer(WRONG[words](), capstone_a_file, n=N)
    assert result.points == 0 and words in result.reason and not result.measured, result.report()


def test_without_a_capstone_a_file_capstone_c_gets_0_saying_so(tmp_path):
    result = score_transformer(prior_tensors(small_transformer()), tmp_path / "capstone_vqvae.safetensors", n=N)
    assert result.points == 0 and result.reason.startswith("capstone C needs your capstone-A file"), result.report()


REFERENCE_RUNS = {  # capstone -> (its reference run's parser and training, the sizes its file implies, options, sizes)
    "capstone B": (
        prior_reference.parser,
        prior_reference.train_prior_reference,
        prior_sizes,
        ["--channels", "16", "--blocks", "1", "--embed", "8"],
        {"channels": 16, "blocks": 1, "embed": 8},
    ),
    "capstone C": (
        transformer_reference.parser,
        transformer_reference.train_transformer_reference,
        transformer_sizes,
        ["--width", "32", "--layers", "1"],
        {"width": 32, "layers": 1},
    ),
}


@pytest.mark.parametrize("capstone", list(REFERENCE_RUNS))
def test_the_prior_reference_runs_write_a_submission_and_its_log(capstone, tmp_path):
    parser, train, read_sizes, options, sizes = REFERENCE_RUNS[capstone]
    args = parser().parse_args(["--out", str(tmp_path), "--vqvae", str(REFERENCE_A), "--epochs", "1", *options])
    args.limit, args.test_limit = 256, 256  # one epoch on 256 images: the run's code, not its result
    path = train(args, Session(args))
    assert path.parent == tmp_path and read_sizes(read_submission(path), 64) == sizes
    assert (tmp_path / "log.csv").read_text().splitlines()[0].startswith("epoch,train_loss,")
