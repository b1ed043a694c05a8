"""Small types shared by every stage: Face, errors, device selection."""

from masquerade.core.errors import InputError, MasqueradeError
from masquerade.core.types import Face

__all__ = ["Face", "InputError", "MasqueradeError"]
