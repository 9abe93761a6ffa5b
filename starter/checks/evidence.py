"""Evidence: what student code produced, as plain data, so that a process that runs no student code can judge it.

Checks call student code only through `observe(fn)`. Each call runs `fn` with its own random seed (so student code
cannot shift the check's own random inputs) and turns what it returns, or the exception it raises, into evidence:
tensors, numbers, strings, booleans, None and tuples, lists and dicts of these. Three modes:

- in a notebook, `observe` runs `fn` and returns the evidence (the student sees ✓/✗ at once);
- in a grading run, it also appends the evidence of each check run to the grading log (`record`);
- in the grader's judge, it runs nothing and returns the recorded evidence in order (`replay`): the same check code
  then recomputes every reference value and decides, so a grading log can only earn points with the right values.
"""
from __future__ import annotations

import base64
import builtins
import hashlib
import json
import os
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from starter.config import CHECK_CELL_ENV, GRADING_LOG_ENV, GRADING_SEED_ENV

MESSAGE_LIMIT = 300
DTYPES = {"float32", "float64", "float16", "int64", "int32", "int16", "int8", "uint8", "bool"}
ERRORS = {name: getattr(builtins, name) for name in (
    "NotImplementedError", "ValueError", "TypeError", "IndexError", "RuntimeError", "KeyError", "AttributeError",
    "ZeroDivisionError", "AssertionError", "NameError", "StopIteration", "OverflowError", "MemoryError")}


class MissingEvidence(Exception):
    """The grading log has no (or malformed) evidence for this observation: the check did not finish there."""


def encode(value: Any, depth: int = 0) -> Any:
    """A JSON-ready form of `value`; objects that are not data become {"object": type name}."""
    if depth > 8:
        return {"object": "nested too deep"}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value[:MESSAGE_LIMIT * 10] if isinstance(value, str) else value
    if isinstance(value, torch.Tensor):
        array = value.detach().cpu()
        array = array.float() if str(array.dtype).removeprefix("torch.") not in DTYPES else array
        array = array.contiguous().numpy()
        return {"tensor": base64.b64encode(array.tobytes()).decode(), "dtype": str(array.dtype), "shape": list(array.shape)}
    if isinstance(value, (list, tuple)):
        return {"items": [encode(v, depth + 1) for v in value], "tuple": isinstance(value, tuple)}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"dict": {k: encode(v, depth + 1) for k, v in value.items()}}
    return {"object": type(value).__name__}


class Opaque:
    """Stands for a value that was not data (a module, a generator...): only its type name is known."""

    def __init__(self, type_name: str):
        self.type_name = type_name


def decode(data: Any) -> Any:
    """The value that `encode` described (tensors come back on the CPU); raises MissingEvidence if malformed."""
    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    if not isinstance(data, dict):
        raise MissingEvidence("malformed evidence")
    if "tensor" in data:
        if data.get("dtype") not in DTYPES:
            raise MissingEvidence(f"unexpected dtype {data.get('dtype')!r}")
        array = np.frombuffer(base64.b64decode(data["tensor"]), dtype=data["dtype"]).reshape(data["shape"])
        return torch.from_numpy(array.copy())
    if "items" in data:
        items = [decode(v) for v in data["items"]]
        return tuple(items) if data.get("tuple") else items
    if "dict" in data:
        return {k: decode(v) for k, v in data["dict"].items()}
    if "object" in data:
        return Opaque(str(data["object"]))
    raise MissingEvidence("malformed evidence")


def student_line(error: BaseException) -> str:
    """The last line of the student's own code in the traceback of `error` (or where it was recorded)."""
    if hasattr(error, "where"):
        return error.where
    library = (str(Path(__file__).resolve().parent.parent), "site-packages", "dist-packages")
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not any(part in f.filename for part in library)]
    return frames[-1].line if frames and frames[-1].line else ""


def describe_error(error: BaseException) -> dict:
    return {"error": type(error).__name__, "message": str(error)[:MESSAGE_LIMIT], "where": student_line(error)[:MESSAGE_LIMIT]}


def rebuild_error(data: dict) -> BaseException:
    """The recorded exception, as the same built-in type where it is one (so that checks can name its cause)."""
    kind = ERRORS.get(str(data.get("error")), RuntimeError)
    error = kind(str(data.get("message", "")))
    error.recorded_type, error.where = str(data.get("error")), str(data.get("where", ""))
    return error


def derived_seed(*parts: Any) -> int:
    """A seed from the grading seed and `parts`, the same in the kernel and in the judge."""
    text = "/".join(map(str, (os.environ.get(GRADING_SEED_ENV, "0"), *parts)))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


class Session:
    """The evidence of one check run: observed live (and recorded in a grading run), or replayed by the judge."""

    def __init__(self, title: str, replay: Iterator[Any] | None = None):
        self.title, self.replay, self.recorded, self.count = title, replay, [], 0
        self.grading = replay is not None or bool(os.environ.get(GRADING_LOG_ENV))  # recorded for, or replayed by, the grader

    def observe(self, fn: Callable[[], Any]) -> Any:
        self.count += 1
        if self.replay is not None:
            try:
                data = next(self.replay)
            except StopIteration:
                raise MissingEvidence("no evidence for this step: the check did not get this far in the grading run "
                                      "(an error, a time-out or the memory limit)") from None
        else:
            try:
                with torch.random.fork_rng():
                    torch.manual_seed(derived_seed(self.title, self.count))
                    data = {"value": encode(fn())}
            except Exception as error:  # student code may raise anything
                data = describe_error(error)
            self.recorded.append(data)
        if not isinstance(data, dict):
            raise MissingEvidence("malformed evidence")
        if "error" in data:
            raise rebuild_error(data)
        return decode(data.get("value"))

    def save(self) -> None:
        """In a grading run, append this run's evidence to the grading log."""
        path = os.environ.get(GRADING_LOG_ENV)
        if path and self.replay is None:
            with open(path, "a", encoding="utf-8") as log:
                log.write(json.dumps({"cell": os.environ.get(CHECK_CELL_ENV), "title": self.title, "evidence": self.recorded}) + "\n")


_sessions: list[Session] = []
_replays: list[tuple[Iterator[Any], str | None]] = []


def begin(title: str) -> Session:
    """Start the evidence of a check run: replaying the next queued evidence if the judge queued some (none at all
    if it was recorded under another title), else observing live."""
    replay = None
    if _replays:
        records, recorded_title = _replays.pop(0)
        replay = records if recorded_title == title else iter(())
    session = Session(title, replay)
    _sessions.append(session)
    return session


def end(session: Session) -> None:
    session.save()
    _sessions.remove(session)


def queue_replay(records: list[Any], title: str | None) -> None:
    """(The judge) make the next check run replay `records`, recorded for a check run titled `title`."""
    _replays.append((iter(records), title))


def clear_replays() -> None:
    _replays.clear()


def observe(fn: Callable[[], Any]) -> Any:
    """Run `fn` (student code) and return what it produced, as data."""
    if not _sessions:
        return decode(encode(fn()))
    return _sessions[-1].observe(fn)
