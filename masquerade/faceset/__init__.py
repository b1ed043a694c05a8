"""Face sets: aligned crops plus an SQLite index (store), and extraction into them. Torch-free."""

from masquerade.faceset.store import FaceRecord, FaceSet

__all__ = ["FaceRecord", "FaceSet"]
