"""Evaluation: how good a swap is (identity, expression, pose, realism, stability) and how well a model rebuilds."""
