"""Named parts of the model, each with its own input shapes, so any part can be exported and
compiled alone (``unit=<name>``).  Names follow the public Hailo-8 bring-up where they exist.

A unit is built from a model config and a unit config; the module is a slice of one
``ConvTasNet`` built from the model config, so weights are shared with the full model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .activations import make_activation
from .blocks import DecoderConv1x1Head, conv1x1
from .catalog import UNIT_NAMES, WAVEFORM_UNITS, n_active_blocks  # noqa: F401
from .convtasnet import ConvTasNet, build_model, dims_for
from .norms import make_norm


@dataclass
class Unit:
    name: str
    module: nn.Module
    inputs: list[tuple[str, list[int]]]  # ONNX input names and NCHW shapes [1, C, 1, W]
    outputs: list[str]
    description: str
    layers: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def in_chan(self) -> int:
        return self.inputs[0][1][1]

    @property
    def latent_width(self) -> int:
        """The time width the unit's latent tensors have (encoder frames for waveform units)."""
        return self.extra.get("latent_width", self.inputs[0][1][3])

    def example_inputs(self, seed: int = 0) -> tuple[torch.Tensor, ...]:
        g = torch.Generator().manual_seed(seed)
        return tuple(torch.randn(*shape, generator=g) for _, shape in self.inputs)


class _Sequential(nn.Module):
    def __init__(self, *fns):
        super().__init__()
        self.parts = nn.ModuleList(f for f in fns if isinstance(f, nn.Module))
        self.fns = fns

    def forward(self, x):
        for f in self.fns:
            x = f(x)
        return x


class _Block(nn.Module):
    """A TCN block with its residual connection: x -> (x + res, skip?)."""

    def __init__(self, block):
        super().__init__()
        self.block = block

    def forward(self, x):
        res, skip = self.block(x)
        return (x + res, skip) if skip is not None else x + res


class _Masker(nn.Module):
    def __init__(self, masker, k):
        super().__init__()
        self.masker, self.k = masker, k

    def forward(self, x):
        return self.masker(x, self.k)


class _MaskApply(nn.Module):
    def __init__(self, model: ConvTasNet):
        super().__init__()
        self.model = model

    def forward(self, enc, masks):
        return self.model.apply_masks(enc, masks)


class _Decoder(nn.Module):
    def __init__(self, decoder):
        super().__init__()
        self.decoder = decoder

    def forward(self, feats):
        if isinstance(self.decoder, DecoderConv1x1Head):
            return self.decoder.frames(feats)
        return self.decoder(feats)


class _Npu(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, wav):
        return self.model.npu_forward(wav)


def _source_projector(model: ConvTasNet, source: int) -> nn.Module:
    """One source's slice of the mask head: act -> 1x1 (Sc -> N) -> mask activation."""
    head = model.masker.mask_head
    n = model.n_filters
    proj = conv1x1(head.conv.in_channels, n)
    with torch.no_grad():
        proj.weight.copy_(head.conv.weight[source * n:(source + 1) * n])
        proj.bias.copy_(head.conv.bias[source * n:(source + 1) * n])
    return _Sequential(head.act, proj, head.mask_act)


def build_unit(model_cfg, unit_cfg, model: ConvTasNet | None = None) -> Unit:
    """Build the named unit; ``model`` may be passed to share weights with a built model."""
    u, m = unit_cfg, model_cfg
    if u.name == "tdconvnet":
        k = u.blocks or m.truncate_k_blocks or 1
        model_cfg = {**dict(m), "truncate_k_blocks": k}
        model = None
    model = model if model is not None else build_model(model_cfg)
    d = dims_for(m.kernel_size, m.stride, m.time_len)
    w = u.width or d.latent_width
    n, src = m.n_filters, m.n_src

    def latent(c):
        return [1, c, 1, w]

    wave = [1, 1, 1, m.time_len]
    skip_c = m.skip
    masker = model.masker
    name = u.name
    if name in WAVEFORM_UNITS:
        unit = _waveform_unit(name, model, m, wave, n)
        unit.extra["latent_width"] = d.latent_width
        return unit
    return _latent_unit(name, model, masker, m, u, latent, n, src, skip_c)


def _waveform_unit(name, model, m, wave, n) -> Unit:
    if name == "full":
        return Unit(name, _Npu(model), [("input", wave)], ["output"],
                    "whole NPU graph: encoder, masker, mask multiply, decoder",
                    "encoder, masker, mask multiply, decoder")
    if name == "encoder":
        return Unit(name, model.encoder, [("input", wave)], ["output"],
                    f"encoder conv 1->{n} kernel {m.kernel_size} stride {m.stride}, relu",
                    "conv, relu")
    if name == "encoder_only":
        return Unit(name, model.encoder.conv, [("input", wave)], ["output"],
                    f"encoder conv 1->{n} kernel {m.kernel_size} stride {m.stride}", "conv")
    raise ValueError(f"unknown waveform unit {name!r}")


def _latent_unit(name, model, masker, m, u, latent, n, src, skip_c) -> Unit:
    if name in ("masker_only", "tdconvnet"):
        k = (u.blocks or m.truncate_k_blocks or 1) if name == "tdconvnet" else None
        kept = n_active_blocks(m) if k is None else k
        return Unit(name, _Masker(masker, k), [("input", latent(n))], ["output"],
                    f"masker with {kept} block(s): norm, bottleneck, blocks, mask head",
                    "norm, conv1x1, conv1d blocks, conv1x1, mask activation",
                    {"blocks": kept})
    if name == "masker_bottleneck":
        return Unit(name, _Sequential(masker.norm, masker.bottleneck), [("input", latent(n))],
                    ["output"], f"input norm + conv1x1 {n}->{m.bn}", "norm, conv1x1")
    if name in ("conv1d_block", "masker_tcn_block0"):
        block = masker.blocks[0 if name == "masker_tcn_block0" else u.block]
        outs = ["output", "skip"] if block.skip_conv is not None else ["output"]
        return Unit(name, _Block(block), [("input", latent(m.bn))], outs,
                    f"conv1d block {m.bn}->{m.hidden}->{m.bn}, depthwise k{block.kernel} "
                    f"d{block.dilation}, skip {'yes' if len(outs) == 2 else 'no'}",
                    "conv1x1, act, norm, dw, act, norm, conv1x1")
    if name == "masker_mask_head":
        return Unit(name, masker.mask_head, [("input", latent(skip_c))], ["output"],
                    f"mask head act + conv1x1 {skip_c}->{src * n} + {m.mask_act}",
                    "act, conv1x1, mask activation")
    if name == "source_projector":
        return Unit(name, _source_projector(model, u.source), [("input", latent(skip_c))],
                    ["output"], f"mask head slice for source {u.source}: conv1x1 {skip_c}->{n}",
                    "act, conv1x1, mask activation")
    if name == "decoder_pre":
        return Unit(name, _MaskApply(model), [("input", latent(n)), ("mask", latent(src * n))],
                    ["output"], f"mask multiply: {n} encoder channels x {src} masks",
                    "elementwise mul")
    if name == "decoder":
        return Unit(name, _Decoder(model.decoder), [("input", latent(src * n))], ["output"],
                    f"decoder ({m.decoder}) for {src} sources", m.decoder)
    if name == "decoder_head":
        dec = model.decoder
        mod = dec.head if isinstance(dec, DecoderConv1x1Head) else dec.deconv
        return Unit(name, mod, [("input", latent(n))], ["output"],
                    f"decoder for one source ({m.decoder}) {n}->"
                    f"{m.kernel_size if isinstance(dec, DecoderConv1x1Head) else 1}", m.decoder)
    if name == "norm":
        op = u.op or m.norm
        c = u.channels or m.bn
        return Unit(name, make_norm(op, c), [("input", latent(c))], ["output"],
                    f"{op} norm on {c} channels", "norm", {"op": op})
    if name == "activation":
        op = u.op or m.mask_act
        c = u.channels or m.bn
        return Unit(name, make_activation(op), [("input", latent(c))], ["output"],
                    f"{op} on {c} channels", "activation", {"op": op})
    raise ValueError(f"unknown unit {name!r}")  # unit_problems rejects it first


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
