"""Every kind of model the course saves and loads, registered by the file that defines it: its checkpoint name, what
it models (its family: the command line groups its trainers by it), and its size options with their defaults.

A new kind is a new file in starter/models whose class carries `@register(...)`: `load_model`, the command line's
trainers and the sampler find it from here.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn


@dataclass(frozen=True)
class Kind:
    name: str  # the checkpoint's "kind", e.g. "gated_prior"
    model: type[nn.Module]
    family: str  # what it models: "pixels", "codes", "bottom codes", "images", "labels"
    options: dict[str, Any] = field(default_factory=dict)  # size options (constructor keywords) and their defaults


KINDS: dict[str, Kind] = {}


def register(name: str, family: str, **options: Any) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: make `name` a kind of checkpoint whose model is the class."""

    def add(model: type[nn.Module]) -> type[nn.Module]:
        KINDS[name] = Kind(name, model, family, options)
        return model

    return add


def kinds() -> dict[str, Kind]:
    """Every registered kind (importing each module of starter.models once, which registers its kinds)."""
    import starter.models

    for module in pkgutil.iter_modules(starter.models.__path__):
        importlib.import_module(f"starter.models.{module.name}")
    return KINDS


def of_family(family: str) -> dict[str, Kind]:
    return {name: kind for name, kind in kinds().items() if kind.family == family}


def kind_of(model: nn.Module) -> str:
    """The checkpoint kind of a model: the registry's name for its class."""
    for name, kind in kinds().items():
        if type(model) is kind.model:
            return name
    raise KeyError(f"{type(model).__name__} is not a kind of checkpoint the course knows: {sorted(KINDS)}")
