"""Capstone B, graded on the saved weights alone: a prior over the codes of the student's own capstone-A VQ-VAE,
scored on the samples the grader draws from it. Every kind of file gets its points or a 0 with the reason, the
file's masks cannot change the score, and the course's reference run earns nothing when handed in."""

from __future__ import annotations

import capstone_weights
import pytest
import torch
from safetensors.torch import save, save_file

from starter.capstone import prior_score
from starter.capstone.prior_interface import FILENAME, is_mask, prior_sizes, prior_tensors
from starter.capstone.prior_score import CLASSIFIER, N_SAMPLES, reference_features, score_prior
from starter.checkpoints import load_model
from starter.config import CHECKPOINTS
from starter.metrics import classifier_outputs
from starter.models.prior import GatedCodePrior

N = 200  # samples per score here (a random prior's KID is far from every tier at any n); the grader draws 1000
REFERENCE_A, REFERENCE_B = (
    CHECKPOINTS / "capstone_a_reference.safetensors",
    CHECKPOINTS / "capstone_b_reference.safetensors",
)


pytestmark = pytest.mark.usefixtures("fashion")


def small_prior(num_codes: int = 64, seed: int = 0, **sizes: int) -> GatedCodePrior:
    torch.manual_seed(seed)
    return GatedCodePrior(num_codes, 7, **{"channels": 16, "blocks": 1, "embed": 8, **sizes})


def test_the_reference_run_is_no_one_s_to_hand_in():
    """(Weights a little off the reference run's reach the top tier through the grader: `test_capstone_grading`.)"""
    handed_in = score_prior(REFERENCE_B, REFERENCE_A)
    assert handed_in.points == 0 and "capstone_b_reference.safetensors" in handed_in.reason, handed_in.report()
    assert not handed_in.measured  # refused before anything is drawn


def test_an_untrained_prior_gets_0_with_its_measurements(capstone_a_file):
    result = score_prior(prior_tensors(small_prior()), capstone_a_file, n=N)
    assert result.points == 0 and "KID" in result.reason and "above" in result.reason, result.report()
    assert set(result.measured) == {"test NLL (nats/code)", "KID", "FID"}
    assert result.measured["test NLL (nats/code)"] > 3.5  # about log 64 = 4.16 nats: it has learned nothing


def test_the_masks_in_the_file_are_ignored(capstone_a_file):
    """A mask that lets each position see itself would make the likelihood meaningless: the architecture's count."""
    model = small_prior()
    honest = score_prior(prior_tensors(model), capstone_a_file, n=N)
    state = model.state_dict()
    cheating = {name: torch.ones_like(t) if is_mask(name) else t for name, t in state.items()}
    assert any(not bool(t.all()) for n, t in state.items() if is_mask(n))  # the architecture's masks do hide some
    assert score_prior(cheating, capstone_a_file, n=N).measured == honest.measured
    assert score_prior(state, capstone_a_file, n=N).measured == honest.measured  # the whole state dict, masks and all


WRONG = {  # the words a reason must hold -> (the prior's tensors, or a file's bytes)
    "the prior models 32 codes, but your capstone-A VQ-VAE has 64": lambda: prior_tensors(small_prior(32)),
    "unexpected tensors blocks.0.classes.weight (capstone B's prior is unconditional)": lambda: prior_tensors(
        GatedCodePrior(64, 7, 16, 1, 8, num_classes=10)
    ),
    "blocks = 9 (from the tensor shapes) is outside 1..8": lambda: prior_tensors(small_prior(blocks=9)),
    "channels = 14000 (from the tensor shapes) is outside 16..64": lambda: {  # 4 MB whose model would take 28 GB
        **prior_tensors(small_prior()),
        "first_vertical.weight": torch.zeros(14000, 8, 3, 3),
    },
    "the prior: non-finite values (NaN or inf) in head.1.bias": lambda: {
        **prior_tensors(small_prior()),
        "head.1.bias": torch.full((64,), float("nan")),
    },
    "schema: missing tensors head.1.bias": lambda: {
        k: v for k, v in prior_tensors(small_prior()).items() if k != "head.1.bias"
    },
    "not a safetensors file (it is a torch.save or pickle file)": lambda: b"\x80\x04 a pickle",
}


@pytest.mark.parametrize("words", list(WRONG))
def test_a_prior_that_is_not_a_submission_gets_0_with_the_reason(words, capstone_a_file):
    result = score_prior(WRONG[words](), capstone_a_file, n=N)
    assert result.points == 0 and words in result.reason and not result.measured, result.report()


@pytest.mark.parametrize(
    "broken, words",
    [
        (b"", "capstone B needs your capstone-A file, and it cannot be used: not a safetensors file"),
        ("nan", "capstone B needs your capstone-A file, and it cannot be used: schema: non-finite values"),
    ],
)
def test_without_a_usable_capstone_a_file_capstone_b_gets_0_saying_so(broken, words, tmp_path):
    tensors = capstone_weights.own()
    tensors["decoder.0.bias"][0] = float("nan")
    capstone_a_file = save(tensors) if broken == "nan" else broken
    result = score_prior(prior_tensors(small_prior()), capstone_a_file, n=N)
    assert result.points == 0 and result.reason.startswith(words), result.report()


def test_saving_the_prior_either_way_scores_the_same(capstone_a_file, tmp_path):
    model = small_prior(seed=1)
    save_file(prior_tensors(model), str(tmp_path / FILENAME))
    save_file(model.state_dict(), str(tmp_path / "whole.safetensors"))
    first, second = (score_prior(tmp_path / name, capstone_a_file, n=N) for name in (FILENAME, "whole.safetensors"))
    assert first.measured == second.measured and prior_sizes(prior_tensors(model), 64) == {
        "channels": 16,
        "blocks": 1,
        "embed": 8,
    }


def test_the_grader_draws_the_same_samples_for_the_same_file(capstone_a_file):
    tensors = prior_tensors(small_prior(seed=2))
    assert score_prior(tensors, capstone_a_file, n=N).measured == score_prior(tensors, capstone_a_file, n=N).measured
    assert N_SAMPLES == 1000 and (CHECKPOINTS / CLASSIFIER).exists()


def test_the_test_set_s_features_are_computed_once_and_a_kept_file_that_does_not_fit_is_not_used(tmp_path, monkeypatch):
    classifier, _ = load_model(CHECKPOINTS / CLASSIFIER, kind="classifier")
    images = prior_score.test_images()[:40]
    computed = classifier_outputs(classifier, images)[1]
    kept = tmp_path / "features"
    same = lambda features: features.dtype == computed.dtype and torch.equal(features, computed)  # noqa: E731
    assert same(reference_features(classifier, images, kept))
    [path] = kept.iterdir()

    def once_only(model: torch.nn.Module, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        assert len(batch) == 1, "computed again"  # one image tells the width of the features
        return classifier_outputs(model, batch)

    with monkeypatch.context() as patch:
        patch.setattr(prior_score, "classifier_outputs", once_only)
        assert same(reference_features(classifier, images, kept))
    for broken in (computed[:20], computed.float(), computed[:, :3].clone(), torch.full_like(computed, float("nan"))):
        torch.save(broken, path)
        assert same(reference_features(classifier, images, kept))
        assert same(torch.load(path, weights_only=True))  # and the file is mended
    path.write_bytes(b"half a file")
    assert same(reference_features(classifier, images, kept))
    assert torch.equal(reference_features(classifier, images[:20], kept), computed[:20])  # other images: their own file
    retrained, _ = load_model(CHECKPOINTS / CLASSIFIER, kind="classifier")
    with torch.no_grad():
        retrained.body[0].bias.add_(0.1)  # other weights: their own features, not the file of the shipped ones
    assert torch.equal(reference_features(retrained, images, kept), classifier_outputs(retrained, images)[1])
    assert len(list(kept.iterdir())) == 3
    (tmp_path / "a file").write_text("")  # a folder that cannot be made: computed, nothing kept, no error
    assert same(reference_features(classifier, images, tmp_path / "a file" / "features"))
