"""The check framework: verdicts, messages, no crash on bad code; what crosses between a check and student code
(data only), seeding, and the course's versions of the exercises withheld while a check runs and restored after."""

from __future__ import annotations

import json

import pytest
import torch

from starter.checks import CheckFailed, CheckRun, check, expect_close, expect_shape
from starter.checks.kernel import Handle, LocalKernel
from starter.exercises import BY_ID, Withheld, withheld_twins
from starter.models import vq
from starter.probes import general, wire
from starter.probes.serve import Server, withholding


def run_steps(*steps):
    with CheckRun("demo", LocalKernel(), quiet=True) as run:
        for name, fn in steps:
            run.step(name, fn)
    return run.report


def test_pass_fail_and_not_implemented():
    assert run_steps(("ok", lambda: None)).status == "pass"
    report = run_steps(
        ("ok", lambda: None), ("bad", lambda: expect_shape(torch.zeros(2, 3), (2, 4), "z")), ("never", lambda: None)
    )
    assert report.status == "fail" and [s.name for s in report.steps] == ["ok", "bad"]
    assert report.steps[1].message == "z: expected shape (2, 4), found (2, 3)"

    def stub():
        raise NotImplementedError()

    assert run_steps(("todo", stub)).status == "not implemented"


def test_unexpected_exception_is_reported_not_raised(capsys):
    report = run_steps(("boom", lambda: 1 / 0))
    assert report.status == "fail" and "ZeroDivisionError" in report.steps[0].message
    with CheckRun("printed", LocalKernel()) as run:
        run.step("fails", lambda: (_ for _ in ()).throw(CheckFailed("expected 1, found 2")))
    out = capsys.readouterr().out
    assert "✗ fails: expected 1, found 2" in out and "✗ printed: some checks failed" in out


def test_expect_close_names_the_gap():
    report = run_steps(("close", lambda: expect_close(torch.ones(3), torch.zeros(3), "x")))
    assert "largest difference 1" in report.steps[0].message


def test_data_survives_json_and_objects_become_references():
    value = {
        "ints": torch.arange(6).view(2, 3),
        "doubles": torch.rand(2).double(),
        "flags": [torch.ones(2, dtype=torch.bool)],
        "plain": (1, 2.5, "text", None, True),
        "parameter": torch.nn.Parameter(torch.ones(2)),
    }
    back = wire.decode(json.loads(json.dumps(wire.encode(value))))
    assert torch.equal(back["ints"], value["ints"]) and torch.equal(back["doubles"], value["doubles"])
    assert torch.equal(back["flags"][0], value["flags"][0]) and back["plain"] == value["plain"]
    assert isinstance(back["parameter"], torch.nn.Parameter) and back["parameter"].requires_grad
    kept = []
    assert wire.encode(torch.nn.Linear(1, 1), lambda obj: kept.append(obj) or {"object": 0}) == {"object": 0} and kept
    with pytest.raises(wire.WireError):
        wire.decode({"tensor": "AAAA", "dtype": "object", "shape": [1]})


def test_a_student_object_is_only_ever_called_and_answers_with_data():
    kernel = LocalKernel()
    layer = kernel.adopt(torch.nn.Linear)(3, 2)  # a class's instance comes back as a handle, never as the object
    assert isinstance(layer, Handle) and layer.type_name == "Linear"
    assert layer(torch.ones(4, 3)).shape == (4, 2)
    assert [name for name, _ in kernel.run(general.parameters, layer)] == ["weight", "bias"]
    with pytest.raises(TypeError, match="can send data and handles"):
        layer(torch.nn.Linear(1, 1))  # a check never sends one of its own objects


def test_student_exceptions_come_back_as_the_same_type():
    def student(x):
        raise IndexError("index 9 is out of bounds")

    with CheckRun("raises", LocalKernel(), quiet=True) as run:
        handle = run.kernel.adopt(student)
        run.step("calls", lambda: handle(torch.ones(3)))
    assert "raised IndexError: index 9 is out of bounds (at `raise IndexError(" in run.report.steps[0].message


def test_requests_are_seeded_the_same_way_everywhere_and_leave_the_caller_s_random_state_alone():
    def draws():
        kernel = LocalKernel()
        kernel.begin("a check", 0)
        return kernel.adopt(torch.randn)(3)

    torch.manual_seed(5)
    before = torch.get_rng_state()
    assert torch.equal(draws(), draws())
    assert torch.equal(torch.get_rng_state(), before)


def test_the_server_answers_json_and_says_what_is_wrong_with_a_request():
    server = Server({"double": lambda x: 2 * x})
    reply = json.loads(
        server.reply(
            wire.dumps({"op": "call", "target": {"name": "double"}, "args": [wire.encode(torch.ones(2))], "seed": 1})
        )
    )
    assert torch.equal(wire.decode(reply["value"]), torch.full((2,), 2.0))
    assert json.loads(server.reply(wire.dumps({"op": "call", "target": {"name": "missing"}})))["error"] == "NameError"
    assert json.loads(server.reply("not json"))["error"] == "WireError"
    for path in ("no such probe", "starter.probes.general:_select", "starter.probes.general:torch", "os:system"):
        reply = json.loads(server.reply(wire.dumps({"op": "call", "target": {"probe": path}})))
        assert reply["error"] == "KeyError", path  # only public functions and classes of starter.probes


def test_twins_are_withheld_while_a_check_runs_and_restored_after():
    quantize, model = vq.quantize, vq.VQVAE(num_codes=8, code_dim=2)
    with withholding(withheld_twins("02")):
        with pytest.raises(Withheld, match="quantize"):
            vq.quantize(torch.zeros(1, 2), torch.zeros(3, 2))
        with pytest.raises(Withheld):
            quantize(torch.zeros(1, 2), torch.zeros(3, 2))  # the very function object, held since before
    assert vq.quantize is quantize and vq.quantize(torch.zeros(1, 2), torch.zeros(3, 2))[1].tolist() == [0]
    assert model(torch.rand(1, 1, 28, 28))[0].shape == (1, 1, 28, 28)


def test_earlier_notebooks_stay_available():
    """Notebook 04's prior is built from notebook 03's layers, as its prose says."""
    assert "starter.models.pixelcnn:MaskedConv2d" not in withheld_twins("04")
    assert "starter.models.prior:CodePrior" in withheld_twins("04") and "starter.models.vae:vae_loss" in withheld_twins(
        "04"
    )


def test_under_nbgrader_a_failing_check_raises(monkeypatch):
    def wrong(x_hat, x):
        return (x_hat - x).abs().mean()

    loss = BY_ID["loss"].check_function()
    assert not loss(wrong).passed
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(AssertionError, match="reconstruction_loss: fail"):
        loss(wrong)
    assert loss(lambda x_hat, x: ((x_hat - x) ** 2).mean()).passed


def test_a_check_gets_handles_in_a_notebook_and_passes_handles_through():
    seen = []

    @check
    def check_quantize(fn):  # the name of a declared check: its notebook's twins are withheld
        seen.append(fn)
        from starter.report import Report

        return Report("demo")

    check_quantize(vq.quantize)
    kernel = LocalKernel()
    handle = kernel.adopt(vq.quantize)
    check_quantize(handle)
    assert isinstance(seen[0], Handle) and seen[1] is handle
