"""Provenance: an invisible face-anchored watermark, metadata labels, and `verify`."""
