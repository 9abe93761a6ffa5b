"""The student's side of a check: answers requests with data, and decides nothing.

A check (in the notebook itself, or in the grader's process) sends requests: call a student's object, or one of the
probes of this package (`starter.probes`) on them. `Server.handle` runs each under the seed the request names and
replies with what came back, as data (see `starter.probes.wire`); an object that is not data stays here and is
referred to by number. In a grading kernel the grader talks to `Server.reply` (JSON in, JSON out); in a notebook the
check calls `Server.handle` directly, with the same code in between.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import random
from typing import Any, Callable, Iterator

import numpy as np
import torch

from starter.exercises import Exercise, stub_source, withheld_message
from starter.probes import wire

PACKAGE = "starter.probes"


@contextlib.contextmanager
def torch_seeded(seed: int) -> Iterator[None]:
    """Run with torch's generators seeded by `seed` and restored afterwards: the CPU's, and CUDA's once CUDA is in
    use (torch.manual_seed before that queues a call, with its stack, for each device kind at every request)."""
    cuda = torch.cuda.is_initialized()
    with torch.random.fork_rng(devices=range(torch.cuda.device_count()) if cuda else []):
        torch.random.default_generator.manual_seed(seed)
        if cuda:
            torch.cuda.manual_seed_all(seed)
        yield


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run with torch, NumPy and Python's random all seeded by `seed`; their states are restored afterwards."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch_seeded(seed):
        random.seed(seed)
        np.random.seed(seed % 2**32)
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


def probe_path(probe: Callable) -> str:
    """How a request names a probe: "starter.probes.module:name"."""
    return f"{probe.__module__}:{probe.__qualname__}"


def find_probe(path: str) -> Callable:
    """The probe a request names: a public function or class defined in a module of this package; else KeyError."""
    module, _, name = str(path).partition(":")
    try:
        found = getattr(importlib.import_module(module), name) if module.startswith(f"{PACKAGE}.") else None
    except (ImportError, AttributeError, ValueError):
        found = None
    if name.startswith("_") or not callable(found) or getattr(found, "__module__", None) != module:
        raise KeyError(f"no probe {str(path)[:100]!r}")
    return found


class Server:
    """Answers a check's requests in the process that holds the student's objects (`namespace`: the notebook's
    globals, for requests that name them). `withheld`: twins to turn into stubs while each request runs (a
    notebook's own check; in a grading kernel the `starter` package has the stubs already)."""

    def __init__(self, namespace: dict | None = None, withheld: dict[str, Exercise] | None = None):
        self.namespace = namespace if namespace is not None else {}
        self.objects: dict[int, Any] = {}
        self.withheld = withheld or {}

    def reply(self, request: str) -> str:
        """JSON request in, JSON reply out: what a grading kernel runs for each request of the grader."""
        try:
            message = wire.loads(request)
        except wire.WireError as error:
            return wire.dumps(wire.describe_error(error))
        return wire.dumps(self.handle(message))

    def handle(self, request: dict) -> dict:
        """{"op": "call", "target": reference, "args": [...], "kwargs": {...}, "seed": n} calls a student's object or
        a probe; {"op": "release"} forgets every object kept so far. Returns {"value": data} or the exception as
        data."""
        if request.get("op") == "release":
            self.objects.clear()
            return {"value": None}
        try:
            with seeded(int(request.get("seed", 0))), withholding(self.withheld):
                if request.get("op") != "call":
                    raise wire.WireError(f"unknown request {request.get('op')!r}")
                args = wire.decode({"items": request.get("args", []), "tuple": False}, self.resolve)
                kwargs = wire.decode({"dict": request.get("kwargs", {})}, self.resolve)
                return {"value": wire.encode(self.resolve(request.get("target"))(*args, **kwargs), self.keep)}
        except Exception as error:  # student code may raise anything
            return wire.describe_error(error)

    def keep(self, value: Any) -> dict:
        """A reference to an object that is not data, kept here until released."""
        number = len(self.objects)
        self.objects[number] = value
        return {"object": number, "type": type(value).__name__}

    def resolve(self, reference: Any) -> Any:
        """The object a reference names: one kept here, a probe, or a name of the notebook."""
        if isinstance(reference, dict) and reference.get("object") in self.objects:
            return self.objects[reference["object"]]
        if isinstance(reference, dict) and "probe" in reference:
            return find_probe(reference["probe"])
        if isinstance(reference, dict) and isinstance(reference.get("name"), str):
            if reference["name"] not in self.namespace:
                raise NameError(f"name {reference['name']!r} is not defined: run its cell first")
            return self.namespace[reference["name"]]
        raise wire.WireError(f"no such object {reference!r}")


@functools.lru_cache(maxsize=None)
def stub(name: str, message: str, is_class: bool) -> Callable:
    """The stub that stands for a withheld twin (`stub_source`), made once per process: every request withholds."""
    space: dict = {}
    exec(stub_source(name, message, is_class), space)
    return space[name]


@contextlib.contextmanager
def withholding(twins: dict[str, Exercise]) -> Iterator[None]:
    """While inside, each twin raises Withheld when used: a function gets a stub's code, a class a stub __init__."""
    undo = []
    try:
        for twin, exercise in twins.items():
            module, name = twin.split(":")
            target = getattr(importlib.import_module(module), name)
            replacement = stub(name, withheld_message(twin, exercise), inspect.isclass(target))
            if inspect.isclass(target):
                saved = target.__dict__.get("__init__")
                target.__init__ = replacement.__init__
                undo.append(
                    lambda target=target, saved=saved: (
                        setattr(target, "__init__", saved) if saved is not None else delattr(target, "__init__")
                    )
                )
            else:
                function = inspect.unwrap(target)
                saved = function.__code__
                function.__code__ = replacement.__code__
                undo.append(lambda function=function, saved=saved: setattr(function, "__code__", saved))
        yield
    finally:
        for restore in reversed(undo):
            restore()
