"""Every exercise of the course, declared once: its notebook, the check that grades it, its points, the arguments of
its visible check and of its hidden tests, and its twins: every object of `starter` that answers it, set up with its
arguments (`tests/test_twins.py` tries them all against every check and fails on one not declared here).

The notebooks' check cells are written from this table (`python -m starter.build`), the grader reads nothing else,
and a twin is withheld while its exercise is checked: in a student's notebook the check turns it into a stub for
the duration of each call to student code, and in a grading kernel (or a release for graded use) the `starter`
package has the stub instead of the code. Either way, student code that calls a twin gets `Withheld` with the same
message, so a notebook, `make check` and the grader give the same verdict.

This module imports nothing heavy: the grading kernel imports it for `Withheld`.
"""

from __future__ import annotations

import ast
import importlib
import os
from dataclasses import dataclass, field
from typing import Any, Callable


class Withheld(RuntimeError):
    """Raised by a twin of an exercise while it is withheld: the exercise asks for the student's own code."""


@dataclass(frozen=True)
class Exercise:
    grade_id: str  # the exercise cell's nbgrader grade_id; its check cell is check-<grade_id>
    notebook: str  # "01"
    check: str  # the check function, "module:name" under starter.checks
    names: tuple[str, ...]  # the notebook's names that the check is given, e.g. ("Encoder",)
    points: int
    visible: dict[str, Any] = field(default_factory=dict)  # keyword arguments of the visible check call
    hidden: tuple[dict[str, Any], ...] = ()  # keyword arguments of each hidden test
    twins: tuple[str, ...] = ()  # "starter.module:name" of the course's own versions, withheld while checked

    @property
    def check_id(self) -> str:
        """The nbgrader grade_id of the exercise's check cell: "check-<grade_id>"."""
        return f"check-{self.grade_id}"

    def check_function(self) -> Callable:
        module, name = self.check.split(":")
        return getattr(importlib.import_module(f"starter.checks.{module}"), name)

    def calls(self, hidden: bool = True) -> list[dict[str, Any]]:
        """The keyword arguments of each check call of the check cell: the visible one, then the hidden tests."""
        return [dict(self.visible)] + (
            [{**self.visible, **extra, "hidden": True} for extra in self.hidden] if hidden else []
        )

    def check_source(self) -> str:
        """The source of the check cell, as the notebooks hold it (hidden tests between their markers)."""
        name = self.check.split(":")[1]

        def call(arguments: dict[str, Any]) -> str:
            keywords = "".join(f", {key}={value!r}" for key, value in arguments.items())
            return f"{name}({', '.join(self.names)}{keywords})"

        lines = ["# NBVAL_CHECK_OUTPUT", call(self.visible)]
        if self.hidden:
            lines += [
                "### BEGIN HIDDEN TESTS",
                *[call(arguments) for arguments in self.calls()[1:]],
                "### END HIDDEN TESTS",
            ]
        return "\n".join(lines)


# fmt: off
E = Exercise
AE, VQ, PIXELCNN, PRIOR, VAE, TRANSFORMER = (f"starter.models.{name}" for name in (
    "autoencoder", "vq", "pixelcnn", "prior", "vae", "transformer"))
EXERCISES: tuple[Exercise, ...] = (
    E("encoder", "01", "autoencoder:check_encoder", ("Encoder",), 2,
      hidden=({"latent_dim": 5, "width": 8, "batch": 3},), twins=(f"{AE}:Encoder", f"{AE}:conv_encoder")),
    E("decoder", "01", "autoencoder:check_decoder", ("Decoder",), 2,
      hidden=({"latent_dim": 3, "width": 8, "batch": 5},), twins=(f"{AE}:Decoder", f"{AE}:conv_decoder")),
    E("loss", "01", "autoencoder:check_reconstruction_loss", ("reconstruction_loss",), 1,
      hidden=({"shape": (3, 1, 5, 7)},), twins=(f"{AE}:reconstruction_loss",)),
    E("train-epoch", "01", "autoencoder:check_train_epoch", ("train_epoch",), 2,
      hidden=({"sizes": (10, 3, 10, 1)},), twins=("starter.train:train_epoch",)),
    E("codebook", "02", "vq:check_codebook", ("make_codebook",), 1,
      hidden=({"num_codes": 64, "code_dim": 5},), twins=(f"{VQ}:make_codebook",)),
    E("distances-broadcast", "02", "vq:check_squared_distances", ("squared_distances_broadcast",), 1,
      hidden=({"m": 40, "k": 40, "d": 3},), twins=(f"{VQ}:squared_distances",)),
    E("distances", "02", "vq:check_squared_distances", ("squared_distances",), 2, visible={"memory_efficient": True},
      hidden=({"m": 40, "k": 40, "d": 3},), twins=(f"{VQ}:squared_distances",)),
    E("quantize", "02", "vq:check_quantize", ("quantize",), 1,
      hidden=({"m": 33, "k": 7, "d": 3},), twins=(f"{VQ}:quantize", f"{VQ}:nearest_codes")),
    E("straight-through", "02", "vq:check_straight_through", ("straight_through",), 2,
      hidden=({"n": 3, "d": 5},), twins=(f"{VQ}:straight_through",)),
    E("vq-losses", "02", "vq:check_vq_losses", ("vq_losses",), 2,
      hidden=({"n": 7, "d": 3},), twins=(f"{VQ}:vq_losses",)),
    E("masked-conv", "03", "pixelcnn:check_masked_conv", ("MaskedConv2d",), 3,
      hidden=({},), twins=(f"{PIXELCNN}:MaskedConv2d", f"{PIXELCNN}:causal_mask")),
    E("pixelcnn", "03", "pixelcnn:check_pixelcnn", ("PixelCNN", "ResidualBlock"), 3,
      hidden=({"channels": 8, "blocks": 3},), twins=(f"{PIXELCNN}:ResidualBlock", f"{PIXELCNN}:PixelCNN")),
    E("sample", "03", "pixelcnn:check_sample", ("sample",), 2,
      hidden=({"image_size": (4, 5)},), twins=("starter.models.sampling:sample",)),
    E("encode", "04", "prior:check_encode_codes", ("encode_codes",), 1,
      hidden=({"n": 25, "batch_size": 6},), twins=(f"{PRIOR}:encode_dataset",)),
    E("prior", "04", "prior:check_prior", ("Prior",), 3,
      hidden=({"num_codes": 32, "channels": 8, "blocks": 1},),
      twins=(f"{PRIOR}:CodePrior", f"{PIXELCNN}:PixelCNN")),  # PixelCNN(num_codes, channels, blocks, 32) is one too
    E("sample-codes", "04", "prior:check_sample_codes", ("sample_codes",), 2,
      hidden=({"n": 5},), twins=("starter.models.sampling:sample",)),
    E("reparameterize", "05", "vae:check_reparameterize", ("reparameterize",), 2,
      hidden=({"n": 30_000},), twins=(f"{VAE}:reparameterize",)),
    E("kl", "05", "vae:check_kl", ("kl_to_standard_normal",), 2,
      hidden=({"n": 9, "d": 3},), twins=(f"{VAE}:kl_to_standard_normal",)),
    E("vae-loss", "05", "vae:check_vae_loss", ("vae_loss",), 2,
      hidden=({"n": 7, "latent_dim": 3},), twins=(f"{VAE}:vae_loss",)),
    E("causal-mask", "06", "transformer:check_causal_mask", ("causal_mask",), 1,
      hidden=({},), twins=(f"{TRANSFORMER}:causal_mask",)),
    E("attention", "06", "transformer:check_attention", ("attention",), 2,
      hidden=({},), twins=(f"{TRANSFORMER}:attention",)),
    E("self-attention", "06", "transformer:check_self_attention", ("CausalSelfAttention",), 3,
      hidden=({"width": 12, "heads": 3},), twins=(f"{TRANSFORMER}:SelfAttention",)),
    E("attention-step", "06", "transformer:check_attention_step", ("attention_step",), 2,
      hidden=({"width": 12, "heads": 2},), twins=(f"{TRANSFORMER}:attention_step",)),
)
# fmt: on
BY_ID: dict[str, Exercise] = {exercise.grade_id: exercise for exercise in EXERCISES}
BY_CHECK_ID: dict[str, Exercise] = {exercise.check_id: exercise for exercise in EXERCISES}


def of_notebook(notebook: str) -> list[Exercise]:
    """The exercises of notebook "NN" (or "NN_name"), in order."""
    return [exercise for exercise in EXERCISES if exercise.notebook == notebook[:2]]


def withheld_twins(notebook: str) -> dict[str, Exercise]:
    """Every twin withheld while notebook "NN" is checked: those of its exercises and of every later notebook's,
    each with the exercise it answers (the first, where two exercises share a twin)."""
    found: dict[str, Exercise] = {}
    for exercise in EXERCISES:
        if exercise.notebook >= notebook[:2]:
            for twin in exercise.twins:
                found.setdefault(twin, exercise)
    return found


def withheld_message(twin: str, exercise: Exercise) -> str:
    """What student code that calls a withheld twin is told."""
    return (
        f"{twin.replace(':', '.')} is the course's own answer to exercise `{exercise.grade_id}` (notebook "
        f"{exercise.notebook}) and is withheld while it is checked: use your own code"
    )


def stub_source(name: str, message: str, is_class: bool) -> str:
    """Python source of a stub that stands for a withheld function or class and raises Withheld when used."""
    body = f"raise __import__('starter.exercises', fromlist=['Withheld']).Withheld({message!r})"
    if is_class:
        return (
            f'class {name}(__import__(\'torch\').nn.Module):\n    """Withheld."""\n\n'
            f"    def __init__(self, *args, **kwargs):\n        {body}\n"
        )
    return f'def {name}(*args, **kwargs):\n    """Withheld."""\n    {body}\n'


def defined_names(source: str) -> dict[str, bool]:
    """The top-level functions and classes of a module's source: {name: is a class}."""
    return {
        node.name: isinstance(node, ast.ClassDef)
        for node in ast.parse(source).body
        if isinstance(node, (ast.FunctionDef, ast.ClassDef))
    }


def checked_elsewhere(name: str) -> None:
    """What a check cell does where the checks are withheld (a release for graded use): say so, and under nbgrader
    fail, so that nothing is awarded without the checks."""
    message = (
        f"{name}: the checks of this notebook are not in this release (they hold the answers); they run when "
        "your notebook is graded"
    )
    if os.environ.get("NBGRADER_EXECUTION"):
        raise AssertionError(message)
    print(message)
