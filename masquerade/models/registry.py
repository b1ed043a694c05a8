"""A registry of model builders keyed by name (as in timm): `@register_model("name", ...)` then `create_model`.

Each entry also carries the training defaults that depend on the network (learning rate, batch size, size), so
`train` uses settings measured for that network rather than one setting for a 4 M and an 82 M model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from masquerade.core.errors import InputError


@dataclass(frozen=True)
class ModelEntry:
    build: Callable[..., nn.Module]
    lr: float  # default Adam learning rate for this network
    batch_size: int  # default faces per side per step
    size: int  # default input/output side in pixels
    multiple: int  # the side must be a multiple of this (2 ** the encoder's downscalings)


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, lr: float, batch_size: int, size: int = 64, multiple: int = 16) -> Callable:
    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[name] = ModelEntry(fn, lr, batch_size, size, multiple)
        return fn

    return wrap


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def model_entry(name: str) -> ModelEntry:
    if name not in _REGISTRY:
        raise InputError("--model", f"unknown model {name!r} (choose from {', '.join(list_models())})")
    return _REGISTRY[name]


def create_model(name: str, **kwargs) -> nn.Module:
    return model_entry(name).build(**kwargs)
