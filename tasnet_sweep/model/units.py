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
    name = u.name
    if name in WAVEFORM_UNITS:
        unit = _waveform_unit(name, model, m, wave, n)
        unit.extra["latent_width"] = d.latent_width
        return unit
    builder = _LATENT_UNITS.get(name)
    if builder is None:
        raise ValueError(f"unknown unit {name!r}")  # unit_problems rejects it first
    return builder(_Parts(name, model, model.masker, m, u, latent, n, src, m.skip))


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


@dataclass
class _Parts:
    """What a latent unit is cut from: the built model and its config, the unit's config,
    ``latent(c)`` (its NCHW input shape for c channels), N, the sources and skip channels."""
    name: str
    model: nn.Module
    masker: nn.Module
    m: object
    u: object
    latent: object
    n: int
    src: int
    skip_c: int


def _masker_unit(p: _Parts) -> Unit:
    m, u = p.m, p.u
    k = (u.blocks or m.truncate_k_blocks or 1) if p.name == "tdconvnet" else None
    kept = n_active_blocks(m) if k is None else k
    return Unit(p.name, _Masker(p.masker, k), [("input", p.latent(p.n))], ["output"],
                f"masker with {kept} block(s): norm, bottleneck, blocks, mask head",
                "norm, conv1x1, conv1d blocks, conv1x1, mask activation", {"blocks": kept})


def _bottleneck_unit(p: _Parts) -> Unit:
    return Unit(p.name, _Sequential(p.masker.norm, p.masker.bottleneck),
                [("input", p.latent(p.n))], ["output"],
                f"input norm + conv1x1 {p.n}->{p.m.bn}", "norm, conv1x1")


def _block_unit(p: _Parts) -> Unit:
    m = p.m
    block = p.masker.blocks[0 if p.name == "masker_tcn_block0" else p.u.block]
    outs = ["output", "skip"] if block.skip_conv is not None else ["output"]
    return Unit(p.name, _Block(block), [("input", p.latent(m.bn))], outs,
                f"conv1d block {m.bn}->{m.hidden}->{m.bn}, depthwise k{block.kernel} "
                f"d{block.dilation}, skip {'yes' if len(outs) == 2 else 'no'}",
                "conv1x1, act, norm, dw, act, norm, conv1x1")


def _mask_head_unit(p: _Parts) -> Unit:
    return Unit(p.name, p.masker.mask_head, [("input", p.latent(p.skip_c))], ["output"],
                f"mask head act + conv1x1 {p.skip_c}->{p.src * p.n} + {p.m.mask_act}",
                "act, conv1x1, mask activation")


def _source_projector_unit(p: _Parts) -> Unit:
    return Unit(p.name, _source_projector(p.model, p.u.source),
                [("input", p.latent(p.skip_c))], ["output"],
                f"mask head slice for source {p.u.source}: conv1x1 {p.skip_c}->{p.n}",
                "act, conv1x1, mask activation")


def _decoder_pre_unit(p: _Parts) -> Unit:
    return Unit(p.name, _MaskApply(p.model),
                [("input", p.latent(p.n)), ("mask", p.latent(p.src * p.n))], ["output"],
                f"mask multiply: {p.n} encoder channels x {p.src} masks", "elementwise mul")


def _decoder_unit(p: _Parts) -> Unit:
    return Unit(p.name, _Decoder(p.model.decoder), [("input", p.latent(p.src * p.n))],
                ["output"], f"decoder ({p.m.decoder}) for {p.src} sources", p.m.decoder)


def _decoder_head_unit(p: _Parts) -> Unit:
    dec = p.model.decoder
    head = isinstance(dec, DecoderConv1x1Head)
    return Unit(p.name, dec.head if head else dec.deconv, [("input", p.latent(p.n))],
                ["output"], f"decoder for one source ({p.m.decoder}) {p.n}->"
                f"{p.m.kernel_size if head else 1}", p.m.decoder)


def _norm_unit(p: _Parts) -> Unit:
    op, c = p.u.op or p.m.norm, p.u.channels or p.m.bn
    return Unit(p.name, make_norm(op, c), [("input", p.latent(c))], ["output"],
                f"{op} norm on {c} channels", "norm", {"op": op})


def _activation_unit(p: _Parts) -> Unit:
    op, c = p.u.op or p.m.mask_act, p.u.channels or p.m.bn
    return Unit(p.name, make_activation(op), [("input", p.latent(c))], ["output"],
                f"{op} on {c} channels", "activation", {"op": op})


#: latent unit name -> its builder (waveform units are built by _waveform_unit)
_LATENT_UNITS = {"masker_only": _masker_unit, "tdconvnet": _masker_unit,
                 "masker_bottleneck": _bottleneck_unit, "conv1d_block": _block_unit,
                 "masker_tcn_block0": _block_unit, "masker_mask_head": _mask_head_unit,
                 "source_projector": _source_projector_unit, "decoder_pre": _decoder_pre_unit,
                 "decoder": _decoder_unit, "decoder_head": _decoder_head_unit,
                 "norm": _norm_unit, "activation": _activation_unit}


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
