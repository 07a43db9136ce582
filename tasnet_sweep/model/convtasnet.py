"""ConvTasNet (Luo & Mesgarani 2019) as encoder -> masker -> mask multiply -> decoder.

The composition mirrors asteroid's so that its checkpoints map onto it and the paper
configuration has the same 5,050,545 parameters; the knobs that differ from the paper
(``skip_topology``, ``mask_mul``, ``decoder``, norms, activations) are the changes a Hailo
bring-up needed.  ``forward`` always returns waveforms; ``npu_forward`` is the part that is
exported and compiled (for the conv1x1 head it stops before the host-side overlap-add).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .blocks import DecoderConv1x1Head, DecoderTransposed, Encoder, TDConvNet


@dataclass(frozen=True)
class Dims:
    """Tensor widths implied by a model config."""

    time_len: int
    latent_width: int  # encoder frames T'
    decoded_len: int  # samples the decoder produces before padding back to time_len


def dims_for(kernel_size: int, stride: int, time_len: int) -> Dims:
    frames = (time_len - kernel_size) // stride + 1
    return Dims(time_len, frames, (frames - 1) * stride + kernel_size)


class ConvTasNet(nn.Module):
    def __init__(self, *, n_src: int, n_filters: int, kernel_size: int, stride: int, bn: int,
                 hidden: int, skip: int, conv_kernel: int, n_blocks: int, n_repeats: int,
                 norm: str, activation: str, mask_act: str, skip_topology: str, mask_mul: str,
                 decoder: str, truncate_k_blocks: int | None = None, time_len: int = 16000,
                 encoder_activation: str = "relu", **_ignored):
        super().__init__()
        self.n_src, self.n_filters = n_src, n_filters
        self.kernel_size, self.stride = kernel_size, stride
        self.mask_mul, self.decoder_kind = mask_mul, decoder
        self.time_len = time_len
        self.encoder = Encoder(n_filters, kernel_size, stride,
                               relu=encoder_activation == "relu")
        self.masker = TDConvNet(n_filters, n_src, bn, hidden, skip, conv_kernel, n_blocks,
                                n_repeats, norm, activation, mask_act, skip_topology,
                                n_active_blocks=truncate_k_blocks)
        if decoder == "convtranspose":
            self.decoder = DecoderTransposed(n_filters, kernel_size, stride)
        else:
            self.decoder = DecoderConv1x1Head(n_filters, kernel_size, stride)

    def apply_masks(self, enc: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """[B,N,1,T'] x [B,n_src*N,1,T'] -> masked source features, source-major channels."""
        if self.mask_mul == "bypass":
            return masks
        return torch.cat([enc] * self.n_src, dim=1) * masks

    def npu_forward(self, wav: torch.Tensor) -> torch.Tensor:
        """The graph that goes to the NPU: waveform [B,1,1,T] -> decoder output (or frames)."""
        enc = self.encoder(wav)
        feats = self.apply_masks(enc, self.masker(enc))
        if isinstance(self.decoder, DecoderConv1x1Head):
            return self.decoder.frames(feats)
        return self.decoder(feats)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """Waveform [B,1,1,T] -> separated sources [B,n_src,1,T] (host steps included)."""
        enc = self.encoder(wav)
        out = self.decoder(self.apply_masks(enc, self.masker(enc)))
        return pad_to(out, wav.shape[-1])


def pad_to(wav: torch.Tensor, length: int) -> torch.Tensor:
    """Zero-pad (or cut) the last axis to ``length``, as asteroid's pad_x_to_y does."""
    missing = length - wav.shape[-1]
    if missing > 0:
        return nn.functional.pad(wav, (0, missing))
    return wav[..., :length]


def build_model(model_cfg) -> ConvTasNet:
    """Build from a (validated) ``model`` config node or mapping."""
    kwargs = dict(model_cfg.items()) if hasattr(model_cfg, "items") else dict(model_cfg)
    kwargs.pop("name", None)
    return ConvTasNet(**kwargs).eval()
