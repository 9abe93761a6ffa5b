"""The check framework: verdicts, messages, no crash on bad code; the notebook-01 checks on the reference code
(wrong answers for every check are in test_wrong_answers.py)."""
from __future__ import annotations

import json

import torch

from starter.checks import GRADING_LOG_ENV, CheckFailed, CheckRun, expect_close, expect_shape
from starter.checks.autoencoder import check_decoder, check_encoder, check_reconstruction_loss, check_train_epoch
from starter.models.autoencoder import Decoder, Encoder, reconstruction_loss
from starter.train import train_epoch


def run_steps(*steps):
    with CheckRun("demo", quiet=True) as run:
        for name, fn in steps:
            run.step(name, fn)
    return run.report


def test_pass_fail_and_not_implemented():
    assert run_steps(("ok", lambda: None)).status == "pass"
    report = run_steps(("ok", lambda: None), ("bad", lambda: expect_shape(torch.zeros(2, 3), (2, 4), "z")), ("never", lambda: None))
    assert report.status == "fail" and [s.name for s in report.steps] == ["ok", "bad"]
    assert report.steps[1].message == "z: expected shape (2, 4), found (2, 3)"

    def stub():
        raise NotImplementedError()
    assert run_steps(("todo", stub)).status == "not implemented"


def test_unexpected_exception_is_reported_not_raised(capsys):
    report = run_steps(("boom", lambda: 1 / 0))
    assert report.status == "fail" and "ZeroDivisionError" in report.steps[0].message
    with CheckRun("printed") as run:
        run.step("fails", lambda: (_ for _ in ()).throw(CheckFailed("expected 1, found 2")))
    out = capsys.readouterr().out
    assert "✗ fails: expected 1, found 2" in out and "✗ printed: some checks failed" in out


def test_expect_close_names_the_gap():
    report = run_steps(("close", lambda: expect_close(torch.ones(3), torch.zeros(3), "x")))
    assert "largest difference 1" in report.steps[0].message


def test_grading_log(tmp_path, monkeypatch):
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv(GRADING_LOG_ENV, str(log))
    run_steps(("ok", lambda: None))
    entry = json.loads(log.read_text())
    assert entry["title"] == "demo" and entry["status"] == "pass"


def test_reference_solutions_pass_their_checks():
    assert check_encoder(Encoder).passed
    assert check_decoder(Decoder).passed
    assert check_reconstruction_loss(reconstruction_loss).passed
    assert check_train_epoch(lambda *args: train_epoch(*args)["loss"]).passed
