"""Swapping: frame -> faces -> model -> colour match -> blend back -> watermark."""
