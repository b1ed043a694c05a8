"""Models, built by name from a registry: `create_model("lite")`."""

from masquerade.models import original  # noqa: F401  (registers "original" and "lite")
from masquerade.models.registry import create_model, default_lr, list_models, register_model

__all__ = ["create_model", "default_lr", "list_models", "register_model"]
