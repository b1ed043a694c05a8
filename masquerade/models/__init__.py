"""Models: built by name from a registry (`create_model("lite")`), and their folders on disk (io.py:
config, weights, journaled checkpoints, `load_model` for inference)."""

from masquerade.models import original  # noqa: F401  (registers "original" and "lite")
from masquerade.models.registry import create_model, list_models, model_entry, register_model

__all__ = ["create_model", "list_models", "model_entry", "register_model"]
