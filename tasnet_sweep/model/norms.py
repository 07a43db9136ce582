"""Normalisations on NCHW [B, C, 1, T] tensors, chosen by name.

gLN and cLN follow the definitions of Luo & Mesgarani (2019) and asteroid (eps=1e-8, a
per-channel gamma and beta).  ``affine`` keeps only the per-channel scale and shift, which the
Hailo parser maps to a depthwise 1x1; ``identity`` removes the norm altogether.  Both exist
because gLN decomposes into many reduce/elementwise layers that failed quantization on Hailo-8.
"""

from __future__ import annotations

import torch
from torch import nn

EPS = 1e-8


class _ChannelAffine(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def affine(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma + self.beta


class GlobalLayerNorm(_ChannelAffine):
    """gLN: statistics over channels and time together.

    Each mean is taken over time first and then over channels: the same value, but a runtime
    that sums a million floats in one float32 loop (onnxruntime's ReduceMean) loses ~1e-4 of
    precision on a 2 s input, and two short reductions do not.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = _mean_ct(x)
        var = _mean_ct((x - mean) ** 2)
        return self.affine((x - mean) / torch.sqrt(var + EPS))


def _mean_ct(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=3, keepdim=True).mean(dim=1, keepdim=True)


class ChannelLayerNorm(_ChannelAffine):
    """cLN: statistics over channels at each time step (needs no look-ahead)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=1, keepdim=True)
        var = ((x - mean) ** 2).mean(dim=1, keepdim=True)
        return self.affine((x - mean) / torch.sqrt(var + EPS))


class AffineNorm(_ChannelAffine):
    """Per-channel scale and shift only: a linear op, so tiling may move it freely."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.affine(x)


class IdentityNorm(nn.Module):
    def __init__(self, channels: int):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


NORMS: dict[str, type[nn.Module]] = {
    "gLN": GlobalLayerNorm,
    "cLN": ChannelLayerNorm,
    "affine": AffineNorm,
    "identity": IdentityNorm,
}


def make_norm(name: str, channels: int) -> nn.Module:
    return NORMS[name](channels)
