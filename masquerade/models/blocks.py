"""The seed's building blocks: strided 5x5 convolutions down, conv + PixelShuffle up."""

from __future__ import annotations

from torch import nn


def down(cin: int, cout: int) -> nn.Sequential:
    """5x5 convolution, stride 2, LeakyReLU 0.1: halves the resolution."""
    return nn.Sequential(nn.Conv2d(cin, cout, 5, stride=2, padding=2), nn.LeakyReLU(0.1, inplace=True))


def up(cin: int, cout: int) -> nn.Sequential:
    """3x3 convolution to 4*cout channels, LeakyReLU 0.1, PixelShuffle(2): doubles the resolution."""
    return nn.Sequential(nn.Conv2d(cin, 4 * cout, 3, padding=1), nn.LeakyReLU(0.1, inplace=True), nn.PixelShuffle(2))
