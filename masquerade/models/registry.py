"""A registry of model builders keyed by name (as in timm): `@register_model("name")` then `create_model`."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from masquerade.core.errors import InputError

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable:
    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[name] = fn
        return fn

    return wrap


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def create_model(name: str, **kwargs) -> nn.Module:
    if name not in _REGISTRY:
        raise InputError("--model", f"unknown model {name!r} (choose from {', '.join(list_models())})")
    return _REGISTRY[name](**kwargs)
