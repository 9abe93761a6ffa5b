"""The student's process as a check sees it: a `Kernel` that runs requests, and `Handle`s of the student's objects.

A check holds handles, never the objects: calling a handle sends a request and returns data (or a handle of a new
object). `LocalKernel` is the student's own notebook process (the check runs there, beside the student's code);
in a grading run the grader holds a `starter.grading.kernel.RemoteKernel`, a sandboxed Jupyter kernel, and the
same check code runs in the grader's process. Both send every request through `starter.probes.serve.Server`,
seeded the same way, so the verdicts are the same. A check runs a probe (`starter.probes`) by the object itself:
`kernel.run(general.parameters, module)`.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Callable

from starter.exercises import Exercise
from starter.probes import wire
from starter.probes.serve import Server, probe_path

PROC = Path("/proc")


def derived_seed(*parts: Any) -> int:
    """A seed made from `parts` (the grading run's seed first), the same in every process."""
    text = "/".join(map(str, parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


class Handle:
    """A student's object (function, class, module, or a probe's fixture) living in the student's process."""

    def __init__(self, kernel: "Kernel", reference: dict):
        self.kernel, self.reference = kernel, reference

    @property
    def type_name(self) -> str:
        return str(self.reference.get("type") or self.reference.get("name") or self.reference.get("probe"))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.kernel.call(self, *args, **kwargs)

    def __repr__(self) -> str:
        return f"<student's {self.type_name}>"


class Kernel:
    """What a check needs of the student's process: call an object, run a probe. `seed` is the grading
    run's seed (0 in a notebook): with it, every request's seed is derived from the check, its run and a count."""

    def __init__(self, seed: int = 0):
        self.seed, self.context, self.count = seed, ("",), 0

    def begin(self, *context: Any) -> None:
        """A new check run: requests from here on are seeded from `context` and their count."""
        self.context, self.count = context, 0

    def transport(self, message: dict, measure: bool) -> tuple[dict, int | None]:
        """Send one request; returns the reply and, with `measure`, the growth of peak memory while it ran."""
        raise NotImplementedError

    def request(self, message: dict, measure: bool = False, seed: int | None = None) -> Any:
        """Send one request, seeded by `seed` or else by the check run and the count of its requests."""
        self.count += 1
        message["seed"] = derived_seed(self.seed, *self.context, self.count) if seed is None else seed
        reply, peak = self.transport(message, measure)
        if "error" in reply:
            raise wire.rebuild_error(reply)
        value = wire.decode(reply.get("value"), lambda reference: Handle(self, reference))
        return (value, peak) if measure else value

    def _call(self, target: dict, args: tuple, kwargs: dict) -> dict:
        """The request that calls `target` (a reference) with data and handles of this kernel."""

        def reference(value: Any) -> dict:
            if not isinstance(value, Handle) or value.kernel is not self:
                raise TypeError(f"a check can send data and handles of this kernel, not {type(value).__name__}")
            return value.reference

        args_data, kwargs_data = wire.encode(list(args), reference)["items"], wire.encode(kwargs, reference)["dict"]
        return {"op": "call", "target": target, "args": args_data, "kwargs": kwargs_data}

    def call(self, target: Handle, *args: Any, **kwargs: Any) -> Any:
        """Call a student's object with data and handles; returns data, or a handle of the object it returned."""
        return self.request(self._call(target.reference, args, kwargs))

    def call_seeded(self, seed: int, target: Handle, *args: Any, **kwargs: Any) -> Any:
        """`call`, with torch (and NumPy, Python's random) seeded by `seed` just before: a plain call, no probe in
        between, whose noise a check can draw again."""
        return self.request(self._call(target.reference, args, kwargs), seed=seed)

    def probe(self, function: Callable) -> Handle:
        """A handle of a probe (a function or class of `starter.probes`) in the student's process."""
        return Handle(self, {"probe": probe_path(function)})

    def run(self, function: Callable, *args: Any, **kwargs: Any) -> Any:
        """Run the probe `function` (of `starter.probes`) in the student's process."""
        return self.call(self.probe(function), *args, **kwargs)

    def measured(self, target: Handle | Callable, *args: Any, **kwargs: Any) -> tuple[Any, int | None]:
        """Call a student's object (a handle: a plain call) or run a probe; and, measured from outside it, how much
        the student's process's peak memory grew meanwhile (None where it cannot be measured; see `transport`)."""
        reference = target.reference if isinstance(target, Handle) else self.probe(target).reference
        return self.request(self._call(reference, args, kwargs), measure=True)

    def named(self, name: str) -> Handle:
        """A handle of the notebook's global `name` (looked up when it is used)."""
        return Handle(self, {"name": name})

    def release(self) -> None:
        """Let the student's process forget every object a check made."""
        self.transport({"op": "release"}, False)


def peak_memory(pid: int | str = "self") -> int | None:
    """The peak resident memory (bytes) of a process since it was last reset, or None without /proc."""
    try:
        return int(re.search(r"VmHWM:\s+(\d+)", (PROC / str(pid) / "status").read_text())[1]) * 1024
    except (OSError, TypeError):
        return None


def reset_peak_memory(pid: int | str = "self") -> bool:
    """Start a process's peak-memory count afresh (Linux); False where that is not possible."""
    try:
        (PROC / str(pid) / "clear_refs").write_text("5")
        return True
    except OSError:
        return False


class LocalKernel(Kernel):
    """The notebook's own process: requests go to a `Server` here, as JSON (exactly what a grading kernel gets),
    with the twins in `withheld` turned into stubs while each one runs."""

    def __init__(self, withheld: dict[str, Exercise] | None = None):
        super().__init__(seed=0)
        self.server = Server(withheld=withheld)

    def adopt(self, value: Any) -> Handle:
        """A handle of one of the notebook's objects."""
        return Handle(self, self.server.keep(value))

    def transport(self, message: dict, measure: bool) -> tuple[dict, int | None]:
        message = wire.loads(wire.dumps(message))
        if measure and reset_peak_memory():
            before = peak_memory()
            reply = self.server.handle(message)
            after = peak_memory()
            peak = after - before if before is not None and after is not None else None
        else:
            reply, peak = self.server.handle(message), None
        return wire.loads(wire.dumps(reply)), peak
