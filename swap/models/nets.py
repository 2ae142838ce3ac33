"""Autoencoder architectures: one shared encoder, one decoder per identity ("a", "b").

- `original`: the classic faceswap model (64x64 in/out): encoder 4 conv blocks 128/256/512/1024 (5x5, stride 2,
  LeakyReLU 0.1) -> Dense 1024 -> Dense 4*4*1024 -> pixel-shuffle upscale to 8x8x512; per-identity decoder
  upscales 256 -> 128 -> 64 (3x3 conv + pixel shuffle) -> 5x5 conv to RGB, sigmoid.
- `hq`: configurable resolution (64-256, default 128), encoder/decoder widths and latent size, residual decoder
  blocks, and a second decoder head predicting the face mask (used by convert's `--mask learned`).

All models share one interface: `encode(x) -> z`, `decode(z, "a"|"b") -> (face, mask_or_None)`,
`forward(x, decoder="a") -> (face, mask_or_None)`. Inputs/outputs are float RGB in [0, 1], NCHW.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import torch
from torch import nn

IDENTITIES = ("a", "b")


def _act() -> nn.Module:
    return nn.LeakyReLU(0.1, inplace=True)


class Conv(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 5, stride: int = 2):
        super().__init__(nn.Conv2d(cin, cout, k, stride, k // 2), _act())


class Upscale(nn.Sequential):
    """3x3 conv to 4x channels + pixel shuffle (x2 spatial)."""

    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Conv2d(cin, cout * 4, 3, 1, 1), _act(), nn.PixelShuffle(2))


class ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.c1 = nn.Conv2d(ch, ch, 3, 1, 1)
        self.c2 = nn.Conv2d(ch, ch, 3, 1, 1)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.c2(self.act(self.c1(x))))


class SwapModel(nn.Module):
    """Base: subclasses set `encoder`, `decoders` (ModuleDict a/b), `has_mask`, `resolution`."""

    has_mask = False
    resolution = 64

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor, identity: str) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        if identity not in IDENTITIES:
            raise ValueError(f"decoder must be 'a' or 'b', not {identity!r}")
        return self.decoders[identity](z)

    def forward(self, x: torch.Tensor, decoder: str = "a") -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        return self.decode(self.encode(x), decoder)


# ---- original ---------------------------------------------------------------------------------

class _OrigEncoder(nn.Module):
    def __init__(self, res: int, dims: Sequence[int], latent: int, bottleneck_ch: int):
        super().__init__()
        layers, cin = [], 3
        for d in dims:
            layers.append(Conv(cin, d, 5, 2))
            cin = d
        self.convs = nn.Sequential(*layers)
        self.low = res // 2 ** len(dims)
        self.bottleneck_ch = bottleneck_ch
        self.dense1 = nn.Linear(cin * self.low * self.low, latent)
        self.dense2 = nn.Linear(latent, self.low * self.low * bottleneck_ch)
        self.up = Upscale(bottleneck_ch, bottleneck_ch // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.convs(x).flatten(1)
        h = self.dense2(self.dense1(h))
        h = h.view(-1, self.bottleneck_ch, self.low, self.low)
        return self.up(h)


class _OrigDecoder(nn.Module):
    def __init__(self, cin: int, dims: Sequence[int]):
        super().__init__()
        layers = []
        for d in dims:
            layers.append(Upscale(cin, d))
            cin = d
        self.ups = nn.Sequential(*layers)
        self.out = nn.Conv2d(cin, 3, 5, 1, 2)

    def forward(self, z: torch.Tensor):
        return torch.sigmoid(self.out(self.ups(z))), None


class OriginalModel(SwapModel):
    def __init__(self, resolution: int = 64, enc_dims: Sequence[int] = (128, 256, 512, 1024),
                 latent: int = 1024, dec_dims: Sequence[int] = (256, 128, 64)):
        super().__init__()
        if resolution % 2 ** len(enc_dims) or resolution // 2 ** len(enc_dims) * 2 * 2 ** len(dec_dims) != resolution:
            raise ValueError("original: resolution must equal 2**len(enc_dims) * low and be rebuilt by the decoder")
        self.resolution = resolution
        bott = enc_dims[-1]
        self.encoder = _OrigEncoder(resolution, enc_dims, latent, bott)
        self.decoders = nn.ModuleDict({k: _OrigDecoder(bott // 2, dec_dims) for k in IDENTITIES})


# ---- hq ---------------------------------------------------------------------------------------

class _HQEncoder(nn.Module):
    def __init__(self, res: int, e_dims: int, ae_dims: int, low: int):
        super().__init__()
        n_down = int(math.log2(res // low))
        layers, cin = [], 3
        for i in range(n_down):
            cout = e_dims * min(2 ** i, 8)
            layers.append(Conv(cin, cout, 5, 2))
            cin = cout
        self.convs = nn.Sequential(*layers)
        self.low, self.ae_dims = low, ae_dims
        self.dense1 = nn.Linear(cin * low * low, ae_dims)
        self.dense2 = nn.Linear(ae_dims, low * low * ae_dims)
        self.up = Upscale(ae_dims, ae_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dense2(self.dense1(self.convs(x).flatten(1)))
        return self.up(h.view(-1, self.ae_dims, self.low, self.low))


class _HQDecoder(nn.Module):
    def __init__(self, cin: int, d_dims: int, n_up: int, mask_dims: int):
        super().__init__()
        face, mask, c, m = [], [], cin, cin
        for i in range(n_up):
            cout = d_dims * 2 ** (n_up - 1 - i)
            face += [Upscale(c, cout), ResBlock(cout)]
            mcout = max(mask_dims * 2 ** (n_up - 1 - i), 8)
            mask.append(Upscale(m, mcout))
            c, m = cout, mcout
        self.face = nn.Sequential(*face)
        self.face_out = nn.Conv2d(c, 3, 1)
        self.mask = nn.Sequential(*mask)
        self.mask_out = nn.Conv2d(m, 1, 1)

    def forward(self, z: torch.Tensor):
        return torch.sigmoid(self.face_out(self.face(z))), torch.sigmoid(self.mask_out(self.mask(z)))


class HQModel(SwapModel):
    has_mask = True

    def __init__(self, resolution: int = 128, e_dims: int = 64, ae_dims: int = 256, d_dims: int = 64,
                 mask_dims: int = 16):
        super().__init__()
        if resolution not in (64, 96, 128, 160, 192, 224, 256) and not (64 <= resolution <= 256 and resolution % 32 == 0):
            raise ValueError("hq: resolution must be a multiple of 32 between 64 and 256")
        self.resolution = resolution
        low = resolution // 16  # encoder bottom (4 downsamples), decoder input is 2*low after the upscale
        self.encoder = _HQEncoder(resolution, e_dims, ae_dims, low)
        n_up = 3
        self.decoders = nn.ModuleDict({k: _HQDecoder(ae_dims, d_dims, n_up, mask_dims) for k in IDENTITIES})
