"""Training: its data (data.py, augment.py), losses, and one readable loop around `train_step` (loop.py)."""
