"""Twins are found by what they answer, not by a hand list: no public function or class of the course's models, its
training loop or its probes (all of them in a grading kernel), taken as it is or called with an exercise's
arguments in the order of the solution's signature, passes the exercise's check while the twins that
`starter.exercises` declares are withheld. One that did would be an answer that a student could import: declare it
a twin of the exercise."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import pkgutil
import signal
from typing import Any, Callable, Iterator

import pytest
from corpus import namespace

from starter.exercises import EXERCISES, Exercise
from starter.models.registry import KINDS, kinds

PACKAGES = ("starter.models", "starter.train", "starter.probes")
SECONDS = 20  # a candidate that takes longer on a check does not answer it


class TooSlow(Exception):
    """A candidate ran past SECONDS on one check."""


def candidates() -> dict[str, Callable]:
    """Every public function and class defined in PACKAGES, by "module:name"."""
    modules = []
    for package in map(importlib.import_module, PACKAGES):
        modules.append(package)
        for info in pkgutil.iter_modules(getattr(package, "__path__", [])):
            modules.append(importlib.import_module(f"{package.__name__}.{info.name}"))
    return {
        f"{module.__name__}:{name}": value
        for module in modules
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ == module.__name__
    }


def set_up(candidate: Callable, solution: Callable) -> list[Callable]:
    """`candidate` as it is, and called with the arguments of `solution` (the notebook's version), in the order of
    the solution's signature, with its defaults."""
    signature = inspect.signature(solution)

    def in_order(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return candidate(*bound.args, **bound.kwargs)

    return [candidate, in_order]


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def stop(*_: Any) -> None:
        raise TooSlow()

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def answers(exercise: Exercise, objects: list[Any]) -> bool:
    """Whether the exercise's visible check passes on `objects` (its twins withheld, as in every check)."""
    try:
        with contextlib.redirect_stdout(io.StringIO()), time_limit(SECONDS):
            return exercise.check_function()(*objects, **exercise.visible).passed
    except Exception:  # noqa: BLE001 (a candidate may fail in any way)
        return False


@pytest.fixture(autouse=True)
def registry_kept():
    """Candidates run with made-up arguments: `register` among them adds kinds, removed after each test."""
    saved = dict(kinds())  # every module of starter.models imported, so every kind registered
    yield
    KINDS.clear()
    KINDS.update(saved)


@pytest.mark.filterwarnings("ignore")  # what candidates say when given what they were not made for
@pytest.mark.parametrize("exercise", EXERCISES, ids=[e.grade_id for e in EXERCISES])
def test_no_course_object_answers_an_exercise_unless_it_is_withheld(exercise):
    names = namespace(exercise.notebook)
    found = []
    for slot, name in enumerate(exercise.names):
        for path, candidate in candidates().items():
            for answer in set_up(candidate, names[name]):
                objects = [answer if i == slot else names[other] for i, other in enumerate(exercise.names)]
                if answers(exercise, objects):
                    found.append(path)
    assert not found, f"these answer {exercise.grade_id!r}: declare them its twins in starter/exercises.py: {found}"
