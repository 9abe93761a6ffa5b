"""The check framework: verdicts, messages, no crash on bad code; the notebook-01 checks on the reference code
(wrong answers for every check are in test_wrong_answers.py)."""
from __future__ import annotations

import json

import pytest
import torch

from starter.checks import CheckFailed, CheckRun, Report, evidence, expect_close, expect_shape, observe
from starter.config import GRADING_LOG_ENV
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


def test_evidence_survives_json_and_objects_stay_opaque():
    value = {"ints": torch.arange(6).view(2, 3), "doubles": torch.rand(2).double(), "flags": [torch.ones(2, dtype=torch.bool)],
             "plain": (1, 2.5, "text", None, True)}
    back = evidence.decode(json.loads(json.dumps(evidence.encode(value))))
    assert torch.equal(back["ints"], value["ints"]) and torch.equal(back["doubles"], value["doubles"])
    assert torch.equal(back["flags"][0], value["flags"][0]) and back["plain"] == value["plain"]
    assert isinstance(evidence.decode(evidence.encode(torch.nn.Linear(1, 1))), evidence.Opaque)
    with pytest.raises(evidence.MissingEvidence):
        evidence.decode({"tensor": "AAAA", "dtype": "object", "shape": [1]})


def _doubling_check(student) -> Report:
    with CheckRun("doubles", quiet=True) as run:
        run.step("doubles its input", lambda: expect_close(observe(lambda: student(torch.ones(3))), torch.full((3,), 2.0), "out"))
    return run.report


def test_the_judge_replays_evidence_without_running_student_code(tmp_path, monkeypatch):
    calls = []

    def student(x):
        calls.append(x)
        return x * 2

    monkeypatch.setenv(GRADING_LOG_ENV, str(tmp_path / "log"))
    live = _doubling_check(student)
    monkeypatch.delenv(GRADING_LOG_ENV)
    record = json.loads((tmp_path / "log").read_text())
    evidence.queue_replay(record["evidence"], record["title"])
    assert _doubling_check(student).steps == live.steps and live.passed and len(calls) == 1
    evidence.queue_replay([{"value": evidence.encode(torch.zeros(3))}], "doubles")  # evidence with the wrong values
    assert not _doubling_check(student).passed
    evidence.queue_replay([], "doubles")
    assert "no evidence" in _doubling_check(student).steps[0].message
    evidence.queue_replay(record["evidence"], "another check")  # evidence recorded for another check
    assert not _doubling_check(student).passed and len(calls) == 1


def test_student_exceptions_come_back_as_the_same_type(tmp_path, monkeypatch):
    def student(x):
        raise IndexError("index 9 is out of bounds")

    monkeypatch.setenv(GRADING_LOG_ENV, str(tmp_path / "log"))
    live = _doubling_check(student)
    monkeypatch.delenv(GRADING_LOG_ENV)
    record = json.loads((tmp_path / "log").read_text())
    evidence.queue_replay(record["evidence"], record["title"])
    replayed = _doubling_check(student)
    assert replayed.steps == live.steps and "raised IndexError: index 9 is out of bounds" in live.steps[0].message


def test_reference_solutions_pass_their_checks():
    assert check_encoder(Encoder).passed
    assert check_decoder(Decoder).passed
    assert check_reconstruction_loss(reconstruction_loss).passed
    assert check_train_epoch(lambda *args: train_epoch(*args)["loss"]).passed
