"""fit() trains and records a history; plotting helpers return figures; results are reported."""

from __future__ import annotations

import json

import pytest
import torch
from matplotlib.figure import Figure

from starter.config import RESULTS_ENV
from starter.data import make_loader
from starter.models.autoencoder import Autoencoder, autoencoder_loss
from starter.plot import compare_images, image_grid, plot_history, plot_xy, show_images
from starter.summary import report_results
from starter.train import WeightAverage, as_dict, fit


def test_fit_lowers_the_loss_and_records_history():
    torch.manual_seed(0)
    images = torch.rand(64, 1, 28, 28)
    dataset = torch.utils.data.TensorDataset(images, torch.zeros(64))
    model = Autoencoder(latent_dim=4, hidden=4)
    history = fit(
        model,
        make_loader(dataset, 16, shuffle=True),
        make_loader(dataset, 64),
        autoencoder_loss,
        epochs=3,
        lr=3e-3,
        progress=False,
    )
    assert set(history) == {"train_loss", "test_loss", "seconds"} and len(history["test_loss"]) == 3
    assert history.last("test_loss") < history["test_loss"][0]


def test_fit_decays_the_learning_rate_and_stops_after_the_epoch_past_its_time_limit():
    dataset = torch.utils.data.TensorDataset(torch.rand(8, 1, 28, 28), torch.zeros(8))
    model = Autoencoder(latent_dim=4, hidden=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    history = fit(
        model,
        make_loader(dataset, 4),
        None,
        autoencoder_loss,
        epochs=3,
        optimizer=optimizer,
        lr_decay=0.5,
        progress=False,
    )
    assert len(history["seconds"]) == 3 and optimizer.param_groups[0]["lr"] == pytest.approx(1e-2 * 0.5**3)
    history = fit(model, make_loader(dataset, 4), None, autoencoder_loss, epochs=3, time_limit=0, progress=False)
    assert len(history["seconds"]) == 1


def test_the_weight_average_is_the_exponential_moving_average_of_the_steps():
    """After each optimizer step w_avg <- d w_avg + (1 - d) w, from the weights after the first step; copy_to puts it
    in the model and stops following it. Checked the other way: the last step's weights, or their plain mean, are
    not it."""
    torch.manual_seed(0)
    model, decay = torch.nn.Linear(3, 2), 0.9
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    average = WeightAverage(model, optimizer, decay)
    expected, seen = None, []
    for _ in range(5):
        optimizer.zero_grad()
        model(torch.randn(4, 3)).pow(2).sum().backward()
        optimizer.step()
        weights = {name: value.detach().clone() for name, value in model.state_dict().items()}
        seen.append(weights)
        if expected is None:
            expected = weights
        else:
            expected = {name: decay * expected[name] + (1 - decay) * w for name, w in weights.items()}
    averaged = average.module.state_dict()
    for name, value in expected.items():
        torch.testing.assert_close(averaged[name], value)
        assert not torch.allclose(averaged[name], seen[-1][name])  # not the last step's
        assert not torch.allclose(averaged[name], sum(w[name] for w in seen) / len(seen))  # not a plain mean
    average.copy_to(model)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, expected[name])
    optimizer.step()  # no longer followed: the model moves, the average stays as it was
    for name, value in average.module.state_dict().items():
        torch.testing.assert_close(value, expected[name])
        assert not torch.allclose(model.state_dict()[name], value)
    for decay in (0, 1, 1.5):
        with pytest.raises(ValueError, match="between 0 and 1"):
            WeightAverage(model, optimizer, decay)


def test_loss_dicts_need_a_loss_entry():
    assert set(as_dict({"loss": torch.tensor(1.0), "extra": torch.tensor(2.0)})) == {"loss", "extra"}
    with pytest.raises(KeyError, match="'loss' entry"):
        as_dict({"recon": torch.tensor(1.0)})


def test_plots_return_figures():
    images = torch.rand(10, 1, 28, 28)
    assert isinstance(show_images(images, nrow=5, title="t"), Figure)
    assert isinstance(compare_images({"a": images[:4], "b": images[:4]}), Figure)
    assert isinstance(plot_history({"train_loss": [2, 1], "test_loss": [2.5, 1.5]}), Figure)
    assert isinstance(plot_xy([2, 4], [0.1, 0.05], "d", "mse", logx=True, logy=True), Figure)


@pytest.mark.parametrize("count", [1, 3, 8, 9, 17, 64])
@pytest.mark.parametrize("nrow", [1, 4, 8, 10])
def test_image_grid_is_torchvision_s_make_grid(count, nrow):
    from torchvision.utils import make_grid

    images = torch.rand(count, 1, 28, 28)
    expected = make_grid(images, nrow=nrow, padding=2, pad_value=1.0)
    assert torch.equal(image_grid(images, nrow).expand_as(expected), expected)
    colour = torch.rand(count, 3, 5, 7)
    assert torch.equal(image_grid(colour, nrow, padding=1, pad_value=0.5), make_grid(colour, nrow, 1, pad_value=0.5))


def test_report_results_prints_and_writes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(RESULTS_ENV, str(tmp_path / "r.json"))
    report_results({"test MSE": 0.012345, "seconds": 12})
    assert "test MSE  0.01235" in capsys.readouterr().out
    assert json.loads((tmp_path / "r.json").read_text()) == {"test MSE": 0.012345, "seconds": 12}


def test_sample_quality_metrics():
    from starter.metrics import frechet_distance, inception_score, label_entropy

    confident = torch.eye(10).repeat(5, 1).double()
    assert (
        abs(inception_score(confident) - 10) < 1e-6
        and abs(label_entropy(confident) - torch.log2(torch.tensor(10.0))) < 1e-5
    )
    assert abs(inception_score(torch.full((50, 10), 0.1).double()) - 1) < 1e-9
    torch.manual_seed(0)
    a, b = torch.randn(4000, 3).double(), (torch.randn(4000, 3) + torch.tensor([2.0, 0, 0])).double()
    assert frechet_distance(a, a) < 1e-6
    assert abs(frechet_distance(a, b) - 4.0) < 0.2  # squared mean shift of 2, same covariance


@pytest.mark.parametrize("fast", [False, True])
def test_fit_says_in_fast_mode_that_it_is_a_smoke_run(monkeypatch, capsys, fast):
    from starter import train

    monkeypatch.setattr(train, "FAST", fast)
    model = torch.nn.Linear(2, 1)
    batches = [(torch.randn(4, 2), torch.randn(4, 1))]
    fit(model, batches, None, lambda m, b: ((m(b[0]) - b[1]) ** 2).mean(), epochs=1)
    assert (train.SMOKE_RUN in capsys.readouterr().out) == fast


def test_numbers_over_seeds_carry_their_spread_and_subsets_differ_by_seed():
    from starter.metrics import over_seeds, subset_quality
    from starter.models.classifier import Classifier

    runs = [{"IS": 8.0, "FID-MNIST": 10.0, "KID": 1.0}, {"IS": 9.0, "FID-MNIST": 14.0, "KID": 3.0}]
    runs.append({"IS": 10.0, "FID-MNIST": 12.0, "KID": 5.0})
    assert over_seeds(runs) == {
        "IS": 9.0,
        "FID-MNIST": 12.0,
        "KID": 3.0,
        "IS range": 2.0,
        "IS sd": pytest.approx(1.0),
        "FID-MNIST sd": pytest.approx(2.0),
        "KID sd": pytest.approx(2.0),
    }
    assert over_seeds(runs[:1])["FID-MNIST sd"] == 0.0
    torch.manual_seed(0)
    classifier, images = Classifier().eval(), torch.rand(300, 1, 28, 28)
    reference = torch.randn(300, Classifier().features(images[:1]).shape[1]).double()
    one = subset_quality(classifier, images, reference, 100, seeds=(0,))
    assert one == subset_quality(classifier, images, reference, 100, seeds=(0,))
    assert one != subset_quality(classifier, images, reference, 100, seeds=(1,))
    dark = subset_quality(classifier, images, reference, 100, seeds=(0,), transform=torch.zeros_like)
    assert dark["FID-MNIST"] != one["FID-MNIST"]


def test_generated_quality_reseeds_each_run_and_scores_the_digits_a_conditional_model_was_asked_for():
    from starter.metrics import generated_quality
    from starter.models.classifier import Classifier

    torch.manual_seed(0)
    classifier = Classifier().eval()
    images = torch.rand(40, 1, 28, 28)
    reference = classifier.features(images).double()
    predicted = classifier(images).argmax(1)
    noise = generated_quality(classifier, lambda n: torch.rand(n, 1, 28, 28), reference, 40, seeds=(0, 1))
    assert noise == {
        **generated_quality(classifier, lambda n: torch.rand(n, 1, 28, 28), reference, 40, seeds=(0, 1)),
        "seconds": noise["seconds"],
    }
    assert noise["FID-MNIST sd"] > 0 and "accuracy" not in noise
    asked = generated_quality(classifier, lambda n: (images[:n], predicted[:n]), reference, 40)
    wrong = generated_quality(classifier, lambda n: (images[:n], (predicted[:n] + 1) % 10), reference, 40)
    assert asked["accuracy"] == 1.0 and wrong["accuracy"] == 0.0


def test_a_conditional_prior_is_asked_for_each_digit_in_turn_and_scored_on_them():
    from starter.metrics import asked_digits, prior_sample_quality
    from starter.models.classifier import Classifier
    from starter.models.transformer import TransformerPrior
    from starter.models.vq import VQVAE

    torch.manual_seed(0)
    classifier, vqvae = Classifier().eval(), VQVAE(num_codes=16, code_dim=4, hidden=8).eval()
    reference = classifier.features(torch.rand(40, 1, 28, 28)).double()
    asked = []

    def sampler(prior, count, condition=None, guidance=1.0):
        asked.append((condition, guidance))
        return torch.randint(16, (count, 7, 7))

    for num_classes in (0, 10):
        prior = TransformerPrior(num_codes=16, grid=7, width=8, layers=1, heads=2, num_classes=num_classes)
        quality = prior_sample_quality(prior, vqvae, classifier, reference, 30, sampler=sampler, guidance=2.0)
        assert ("accuracy" in quality) == bool(num_classes)
    assert asked[0] == (None, 2.0) and torch.equal(asked[1][0], asked_digits(30)) and asked[1][1] == 2.0


def test_asked_digits_cycles_through_every_digit_for_any_count():
    from starter.metrics import asked_digits

    assert asked_digits(12).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert torch.bincount(asked_digits(5000), minlength=10).tolist() == [500] * 10


def test_frechet_distance_matches_torchmetrics_and_kid_has_no_small_sample_bias():
    from torchmetrics.image.fid import FrechetInceptionDistance

    from starter.metrics import frechet_distance, kernel_distance

    generator = torch.Generator().manual_seed(0)
    same = [torch.randn(200, 8, generator=generator, dtype=torch.float64) for _ in range(2)]
    shifted = torch.randn(200, 8, generator=generator, dtype=torch.float64) * 1.5 + 0.5
    identity = torch.nn.Identity()
    identity.num_features = 8  # torchmetrics' FID on given features
    fid = FrechetInceptionDistance(feature=identity)
    fid.update(same[0], real=True)
    fid.update(shifted, real=False)
    assert frechet_distance(same[0], shifted) == pytest.approx(float(fid.compute()), rel=1e-6)

    def unbiased_mmd(x: torch.Tensor, y: torch.Tensor) -> float:  # KID's definition, written out: cubic kernel
        k = lambda a, b: (a @ b.T / a.shape[1] + 1) ** 3  # noqa: E731
        kxx, kyy, m = k(x, x), k(y, y), len(x)
        within = (kxx.sum() - kxx.diag().sum() + kyy.sum() - kyy.diag().sum()) / (m * (m - 1))
        return float(within - 2 * k(x, y).mean())

    assert kernel_distance(same[0], shifted, subsets=1, size=200) == pytest.approx(unbiased_mmd(same[0], shifted))
    assert kernel_distance(*same) == pytest.approx(unbiased_mmd(*same))
    pairs = [[torch.randn(50, 8, generator=generator, dtype=torch.float64) for _ in range(2)] for _ in range(40)]
    kid = torch.tensor([kernel_distance(*pair, subsets=1) for pair in pairs])
    fid = torch.tensor([frechet_distance(*pair) for pair in pairs])
    error = lambda values: float(values.std() / len(values) ** 0.5)  # noqa: E731
    assert abs(float(kid.mean())) < 2 * error(kid)  # two samples of one distribution: KID is 0 on average,
    assert float(fid.mean()) > 20 * error(fid)  # FID far above 0 at n = 50
    assert kernel_distance(same[0], shifted) > 0.5
    before = torch.get_rng_state()
    kernel_distance(same[0], shifted)
    assert torch.equal(torch.get_rng_state(), before)  # its subsets leave the global generator as it was
