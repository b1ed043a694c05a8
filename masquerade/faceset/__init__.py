"""Face sets: aligned crops plus an SQLite index (store), extraction into them, and training batches."""

from masquerade.faceset.store import FaceRecord, FaceSet

__all__ = ["FaceRecord", "FaceSet"]
