"""What crosses between a check and the student's code: plain data, as JSON.

A check never holds a student's object. It holds a reference (a `{"object": id}`, a notebook `{"name": ...}` or a
`{"probe": "starter.probes.module:name"}`) and asks the student's process to call it; what comes back is data:
None, booleans, numbers, strings, tensors, and tuples, lists and dicts of these, or a reference to a new object (a
module the student's class built), or the exception it raised. Tensors keep their dtype and shape, and say whether
they require gradients and are an `nn.Parameter`; nothing else of an object crosses, so nothing an object says about
itself can reach a verdict.
"""

from __future__ import annotations

import base64
import builtins
import json
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

TEXT_LIMIT = 300  # characters kept of an exception's message
STRING_LIMIT = 3000  # characters kept of a returned string
REPLY_LIMIT = 8 * 2**20  # characters of one request or reply (the largest a check sends is under 2 MB)
DTYPES = {"float32", "float64", "float16", "int64", "int32", "int16", "int8", "uint8", "bool"}
ERRORS = {
    name: getattr(builtins, name)
    for name in (
        "NotImplementedError",
        "ValueError",
        "TypeError",
        "IndexError",
        "RuntimeError",
        "KeyError",
        "AttributeError",
        "ZeroDivisionError",
        "AssertionError",
        "NameError",
        "StopIteration",
        "OverflowError",
        "MemoryError",
    )
}


class WireError(Exception):
    """A reply that is not well-formed data: the student's process did not answer as a course kernel does."""


class StudentError(Exception):
    """Stands, in a check, for an exception that the student's code raised (`kind` is its type's name)."""

    def __init__(self, kind: str, message: str, where: str = ""):
        super().__init__(message)
        self.kind, self.where = kind, where


def encode(value: Any, reference: Callable[[Any], dict] | None = None, depth: int = 0) -> Any:
    """A JSON-ready form of `value`; an object that is not data becomes `reference(value)` (or its type name)."""
    if depth > 8:
        raise WireError("data nested too deep")
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return value[:STRING_LIMIT]
    if isinstance(value, torch.Tensor):
        array = value.detach().cpu()
        if str(array.dtype).removeprefix("torch.") not in DTYPES:
            array = array.float()
        array = array.contiguous().numpy()
        return {
            "tensor": base64.b64encode(array.tobytes()).decode(),
            "dtype": str(array.dtype),
            "shape": list(array.shape),
            "requires_grad": bool(value.requires_grad),
            "parameter": isinstance(value, torch.nn.Parameter),
        }
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return {"items": [encode(v, reference, depth + 1) for v in value], "tuple": isinstance(value, tuple)}
    if isinstance(value, tuple):  # a named tuple: its fields, in order
        return {"items": [encode(v, reference, depth + 1) for v in value], "tuple": True}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"dict": {k: encode(v, reference, depth + 1) for k, v in value.items()}}
    if reference is not None:
        return reference(value)
    return {"object": None, "type": type(value).__name__}


def decode(data: Any, resolve: Callable[[dict], Any] | None = None) -> Any:
    """The value that `encode` described (tensors on the CPU); a reference becomes `resolve(reference)`."""
    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    if not isinstance(data, dict):
        raise WireError("malformed data")
    if "tensor" in data:
        if data.get("dtype") not in DTYPES or not isinstance(data.get("shape"), list):
            raise WireError(f"unexpected tensor {data.get('dtype')!r}")
        try:
            array = np.frombuffer(base64.b64decode(data["tensor"]), dtype=data["dtype"]).reshape(data["shape"])
        except (ValueError, TypeError):
            raise WireError("malformed tensor") from None
        tensor = torch.from_numpy(array.copy())
        if data.get("parameter"):
            return torch.nn.Parameter(tensor, requires_grad=bool(data.get("requires_grad")))
        return tensor.requires_grad_() if data.get("requires_grad") and tensor.is_floating_point() else tensor
    if "items" in data and isinstance(data["items"], list):
        items = [decode(v, resolve) for v in data["items"]]
        return tuple(items) if data.get("tuple") else items
    if "dict" in data and isinstance(data["dict"], dict):
        return {str(k): decode(v, resolve) for k, v in data["dict"].items()}
    if ("object" in data or "name" in data or "probe" in data) and resolve is not None:
        return resolve(data)
    raise WireError("malformed data")


def student_line(error: BaseException) -> str:
    """The last line of the student's own code in the traceback of `error`."""
    library = (str(Path(__file__).resolve().parent.parent), "site-packages", "dist-packages")
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not any(part in f.filename for part in library)]
    return frames[-1].line if frames and frames[-1].line else ""


def describe_error(error: BaseException) -> dict:
    """An exception as data."""
    return {
        "error": type(error).__name__,
        "message": str(error)[:TEXT_LIMIT],
        "where": student_line(error)[:TEXT_LIMIT],
    }


def rebuild_error(data: dict) -> BaseException:
    """The recorded exception, as the same built-in type where it is one (so that checks can name its cause)."""
    kind, message = str(data.get("error")), str(data.get("message", ""))[:TEXT_LIMIT]
    error = ERRORS[kind](message) if kind in ERRORS else StudentError(kind, message)
    error.recorded_type, error.where = kind, str(data.get("where", ""))[:TEXT_LIMIT]
    return error


def dumps(message: dict) -> str:
    return json.dumps(message, separators=(",", ":"))


def loads(text: Any) -> dict:
    """A reply or request as a dict; WireError if it is not one."""
    if not isinstance(text, str) or len(text) > REPLY_LIMIT:
        raise WireError("a reply that is not text, or too long")
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        raise WireError("a reply that is not JSON") from None
    if not isinstance(message, dict):
        raise WireError("a reply that is not a JSON object")
    return message
