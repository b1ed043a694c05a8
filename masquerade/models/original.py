"""The seed's shared-encoder / two-decoder autoencoder, and a cheaper `lite` with the same structure.

encoder: down(c1..c4) -> flatten -> Dense(dim) -> Dense(4*4*c4) -> reshape -> up(u)   (64 px in -> 8x8xu)
decoder: up(d1) up(d2) up(d3) -> 5x5 conv to 3 (+1 mask) channels, sigmoid
`double` (DeepFaceLab's "-d"): one more encoder downscaling, and the decoder's last conv emits 4x the
channels and pixel-shuffles them, so the model renders twice the resolution for about the same cost.
The dense bottleneck and PixelShuffle upscaling are what make the shared encoder learn a face code
that either decoder can render; without them the net only learns to copy its input.
"""

from __future__ import annotations

import torch
from torch import nn

from masquerade.models.blocks import down, up
from masquerade.models.registry import register_model


class Encoder(nn.Module):
    def __init__(self, size: int, channels: tuple[int, ...], dim: int, up_channels: int):
        super().__init__()
        layers, cin = [], 3
        for c in channels:
            layers.append(down(cin, c))
            cin = c
        self.convs = nn.Sequential(*layers)
        self.grid = size // 2 ** len(channels)
        self.fc1 = nn.Linear(cin * self.grid**2, dim)
        self.fc2 = nn.Linear(dim, cin * self.grid**2)
        self.c_last = cin
        self.up = up(cin, up_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.convs(x).flatten(1)
        x = self.fc2(self.fc1(x))
        x = x.view(-1, self.c_last, self.grid, self.grid)
        return self.up(x)


class Decoder(nn.Module):
    def __init__(self, cin: int, channels: tuple[int, ...], mask: bool, double: bool = False):
        super().__init__()
        layers = []
        for c in channels:
            layers.append(up(cin, c))
            cin = c
        self.ups = nn.Sequential(*layers)
        cout = 4 if mask else 3
        if double:  # 4 sub-pixels per position: 2x the resolution from the same features
            self.out = nn.Sequential(nn.Conv2d(cin, 4 * cout, 3, padding=1), nn.PixelShuffle(2))
        else:
            self.out = nn.Conv2d(cin, cout, 5, padding=2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.out(self.ups(z)))


class AutoEncoder(nn.Module):
    """One encoder, one decoder per side. `forward(x, side)` renders the faces in x as identity `side`."""

    def __init__(
        self,
        size: int,
        enc: tuple[int, ...],
        dim: int,
        up_ch: int,
        dec: tuple[int, ...],
        mask: bool,
        double: bool = False,
    ):
        super().__init__()
        if size % 2 ** len(enc) or len(enc) != len(dec) + 1 + double:  # output side == input side
            raise ValueError(f"size {size} does not fit this network (a multiple of {2 ** len(enc)})")
        self.size = size
        self.mask = mask
        self.encoder = Encoder(size, enc, dim, up_ch)
        self.decoder_a = Decoder(up_ch, dec, mask, double)
        self.decoder_b = Decoder(up_ch, dec, mask, double)

    def decoder(self, side: str) -> Decoder:
        return {"a": self.decoder_a, "b": self.decoder_b}[side]

    def forward(self, x: torch.Tensor, side: str) -> torch.Tensor:
        """x: (N, 3, S, S) RGB in [0, 1]. Returns (N, 3 or 4, S, S): RGB, then the mask when the model has one."""
        return self.decoder(side)(self.encoder(x))


@register_model("original", lr=5e-5, batch_size=16)
def original(size: int = 64, mask: bool = False) -> AutoEncoder:
    """Exactly the seed's network (about 82 M parameters with two decoders), with the seed's learning rate."""
    return AutoEncoder(size, (128, 256, 512, 1024), 1024, 512, (256, 128, 64), mask)


@register_model("lite", lr=5e-4, batch_size=8)
def lite(size: int = 64, mask: bool = False) -> AutoEncoder:
    """Same structure, about a fifth of the channels: 4.4 M parameters, >10x faster to train on a CPU.
    Its learning rate and batch size are the best of a sweep by swap quality after 5 and 10 CPU-minutes
    (bench/results.md): small batches at a high rate make the most of a CPU's minutes."""
    return AutoEncoder(size, (24, 48, 96, 192), 384, 96, (64, 48, 32), mask)


@register_model("lite-d", lr=5e-4, batch_size=8, size=128, multiple=32)
def lite_d(size: int = 128, mask: bool = False) -> AutoEncoder:
    """`lite` rendering 128 px: one more (cheap, 12-channel) encoder layer takes the 128 px input down to
    the same 4x4 grid, and the decoder's pixel-shuffled output doubles its 64 px features to 128 px."""
    return AutoEncoder(size, (12, 24, 48, 96, 192), 384, 96, (64, 48, 32), mask, double=True)
