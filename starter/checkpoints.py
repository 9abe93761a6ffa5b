"""Save and load models with their config and metrics; every way a file can be wrong gets a clear error."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import torch
from torch import nn

from starter.models.registry import kinds

FORMAT = "discrete-latents/1"


class CheckpointError(RuntimeError):
    """The checkpoint is missing, unreadable, or does not fit the model asked for."""


def save_checkpoint(
    path: Path | str,
    model: nn.Module,
    kind: str,
    config: dict[str, Any],
    metrics: dict[str, Any] | None = None,
    half: bool = False,
) -> Path:
    """Write `model`'s weights with the `config` that rebuilds it and the `metrics` it reached; `half`: its
    floating-point tensors as float16, half the file (`load_model` reads them back into the float32 model)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "kind": kind,
        "config": dict(config),
        "metrics": dict(metrics or {}),
        "state_dict": {k: v.half() if half and v.is_floating_point() else v for k, v in state.items()},
    }
    temporary = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, temporary)
    temporary.replace(path)  # never leave a half-written checkpoint behind
    return path


def read_checkpoint(path: Path | str, kind: str | None = None) -> dict[str, Any]:
    """Load the raw checkpoint dict (weights only, no code execution) and validate its layout."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for damaged files: RuntimeError, OSError, EOFError, ...
        raise CheckpointError(f"{path} is not a readable checkpoint (corrupt or truncated?): {error}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} was not written by starter.checkpoints.save_checkpoint")
    if kind is not None and payload["kind"] != kind:
        raise CheckpointError(f"{path} holds a {payload['kind']!r} model, expected a {kind!r} model")
    return payload


def load_model(
    path: Path | str, kind: str | None = None, device: torch.device | str = "cpu", **expected: Any
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model a checkpoint holds (its class comes from its kind) and load its weights; returns
    (model, metrics), the model in eval mode on `device`.

    `kind`, if given, is the kind the caller needs; keyword arguments name config values the caller relies on,
    e.g. `num_codes=128`. A mismatch is an error.
    """
    payload = read_checkpoint(path, kind)
    config = payload["config"]
    for key, value in expected.items():
        if config.get(key) != value:
            raise CheckpointError(f"{path}: expected {key}={value!r}, but the checkpoint has {key}={config.get(key)!r}")
    known = kinds()
    if payload["kind"] not in known:
        raise CheckpointError(f"{path} holds a {payload['kind']!r} model, which is none of {sorted(known)}")
    model = known[payload["kind"]].model(**config)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        raise CheckpointError(f"{path} does not fit {type(model).__name__}({config}): {error}") from None
    return model.to(device).eval(), payload["metrics"]


def training_log(path: Path | str) -> dict[str, list[float]]:
    """The per-epoch log shipped next to a checkpoint (`name_log.csv`: epoch, losses, seconds), column by column."""
    log = Path(path).with_name(f"{Path(path).stem}_log.csv")
    if not log.exists():
        raise CheckpointError(f"no training log at {log}")
    with open(log, newline="") as file:
        rows = list(csv.DictReader(file))
    return {column: [float(row[column]) for row in rows] for column in rows[0]} if rows else {}
