"""Training: one readable loop (loop.py), its losses, and atomic safetensors checkpoints."""
