"""The named blocks a ConvTasNet is composed of, all as Conv2d on [B, C, 1, T]."""

from __future__ import annotations

import torch
from torch import nn

from .activations import make_activation
from .norms import make_norm


def conv1x1(cin: int, cout: int, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=(1, 1), bias=bias)


class Encoder(nn.Module):
    """Learned analysis filterbank: Conv(1 -> N, kernel L, stride S), no bias, no padding."""

    def __init__(self, n_filters: int, kernel_size: int, stride: int, relu: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(1, n_filters, (1, kernel_size), stride=(1, stride), bias=False)
        self.relu = relu

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        y = self.conv(wav)
        return torch.relu(y) if self.relu else y


class Conv1DBlock(nn.Module):
    """1x1 expand -> act -> norm -> dilated depthwise -> act -> norm -> 1x1 residual
    (+ 1x1 skip)."""

    def __init__(self, bn: int, hidden: int, skip: int, kernel: int, dilation: int,
                 norm: str, activation: str):
        super().__init__()
        self.in_conv = conv1x1(bn, hidden)
        self.act1 = make_activation(activation)
        self.norm1 = make_norm(norm, hidden)
        pad = (kernel - 1) * dilation // 2
        self.dw_conv = nn.Conv2d(hidden, hidden, (1, kernel), padding=(0, pad),
                                 dilation=(1, dilation), groups=hidden)
        self.act2 = make_activation(activation)
        self.norm2 = make_norm(norm, hidden)
        self.res_conv = conv1x1(hidden, bn)
        self.skip_conv = conv1x1(hidden, skip) if skip > 0 else None
        self.dilation = dilation
        self.kernel = kernel

    def hidden_features(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(self.act1(self.in_conv(x)))
        return self.norm2(self.act2(self.dw_conv(y)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.hidden_features(x)
        skip = self.skip_conv(h) if self.skip_conv is not None else None
        return self.res_conv(h), skip


class MaskHead(nn.Module):
    """act -> 1x1 (Sc -> n_src * N) -> mask activation; output channels are source-major."""

    def __init__(self, skip: int, n_src: int, n_filters: int, activation: str, mask_act: str):
        super().__init__()
        self.act = make_activation(activation)
        self.conv = conv1x1(skip, n_src * n_filters)
        self.mask_act = make_activation(mask_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mask_act(self.conv(self.act(x)))


class TDConvNet(nn.Module):
    """The masker: norm -> bottleneck -> X*R blocks (maybe truncated) -> mask head.

    ``skip_topology='sum'`` is the paper's: every block has a skip conv and the mask head reads
    their sum.  ``'project'`` drops the per-block skip convs and the running sum (the branch that
    blocked compiles on Hailo) and reads a 1x1 projection of the last residual output instead.
    """

    def __init__(self, n_filters: int, n_src: int, bn: int, hidden: int, skip: int,
                 conv_kernel: int, n_blocks: int, n_repeats: int, norm: str, activation: str,
                 mask_act: str, skip_topology: str, n_active_blocks: int | None = None):
        super().__init__()
        total = n_blocks * n_repeats
        n_active = total if n_active_blocks is None else n_active_blocks
        self.skip_topology = skip_topology
        self.norm = make_norm(norm, n_filters)
        self.bottleneck = conv1x1(n_filters, bn)
        block_skip = skip if skip_topology == "sum" else 0
        self.blocks = nn.ModuleList(
            Conv1DBlock(bn, hidden, block_skip, conv_kernel, 2 ** (i % n_blocks), norm, activation)
            for i in range(n_active)
        )
        self.projection = conv1x1(bn, skip) if skip_topology == "project" else None
        self.mask_head = MaskHead(skip, n_src, n_filters, activation, mask_act)

    def bottleneck_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.bottleneck(self.norm(x))

    def tcn(self, x: torch.Tensor, k: int | None = None) -> torch.Tensor:
        """Run the first ``k`` blocks (all by default) and return what the mask head reads."""
        skip_sum = None
        for block in self.blocks[: (len(self.blocks) if k is None else k)]:
            residual, skip = block(x)
            x = x + residual
            if skip is not None:
                skip_sum = skip if skip_sum is None else skip_sum + skip
        if self.projection is not None:
            return self.projection(x)
        return skip_sum if skip_sum is not None else x

    def forward(self, x: torch.Tensor, k: int | None = None) -> torch.Tensor:
        return self.mask_head(self.tcn(self.bottleneck_features(x), k))


class DecoderTransposed(nn.Module):
    """Synthesis filterbank ConvTranspose(N -> 1, kernel L, stride S), one weight for all sources.

    Each source is decoded by its own (ungrouped) transposed conv on its channel slice, because
    the Hailo parser rejects grouped transposed convolution ("Super deconv is not supported
    with groups").
    """

    def __init__(self, n_filters: int, kernel_size: int, stride: int):
        super().__init__()
        self.deconv = nn.ConvTranspose2d(n_filters, 1, (1, kernel_size), stride=(1, stride),
                                         bias=False)
        self.n_filters = n_filters

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        n_src = feats.shape[1] // self.n_filters
        srcs = torch.split(feats, self.n_filters, dim=1)
        return torch.cat([self.deconv(s) for s in srcs[:n_src]], dim=1)


class DecoderConv1x1Head(nn.Module):
    """The same synthesis filterbank as a 1x1 conv (N -> L samples per frame) on the NPU,
    followed by overlap-add on the host.  Mathematically identical to ``DecoderTransposed``
    with the same weights; it only moves the overlap-add off the chip."""

    def __init__(self, n_filters: int, kernel_size: int, stride: int):
        super().__init__()
        self.head = conv1x1(n_filters, kernel_size, bias=False)
        self.n_filters = n_filters
        self.kernel_size = kernel_size
        self.stride = stride

    def frames(self, feats: torch.Tensor) -> torch.Tensor:
        srcs = torch.split(feats, self.n_filters, dim=1)
        return torch.cat([self.head(s) for s in srcs], dim=1)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return overlap_add(self.frames(feats), self.kernel_size, self.stride)


def overlap_add(frames: torch.Tensor, kernel_size: int, stride: int) -> torch.Tensor:
    """[B, n_src*L, 1, F] frames -> [B, n_src, 1, (F-1)*S + L] waveforms (host-side)."""
    b, c, _, n_frames = frames.shape
    n_src = c // kernel_size
    out_len = (n_frames - 1) * stride + kernel_size
    cols = frames.reshape(b * n_src, kernel_size, n_frames)
    wav = torch.nn.functional.fold(cols, output_size=(1, out_len), kernel_size=(1, kernel_size),
                                   stride=(1, stride))
    return wav.reshape(b, n_src, 1, out_len)
