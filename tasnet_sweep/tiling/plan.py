"""Model config + tiling config -> a plan: NPU units, the host steps between them, and counts.

Every NPU unit of a tiled plan is one linear convolution on one time tile and one channel block:
``conv`` (1x1 or the encoder's strided kernel), ``depthwise`` (the dilated (1, P) conv, fed a
halo so each tile sees its whole receptive field) or ``deconv`` (the transposed-conv decoder).
Norms, activations, residual sums, the mask multiply and every overlap-add run on the host,
after the blocks of a layer have been reconstructed: partial products summed over input-channel
blocks, output blocks concatenated, each bias added once (the unit of input block 0 carries it).

Units are deduplicated by structure (op, channels, kernel, stride, dilation, groups, bias, tile
widths); each structural unit records the weight instances (layer, block pair) that use it.
The plan holds no weights and no audio length: the same plan stitches any input length.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from ..model.catalog import SAMPLE_RATE

#: host cost per element, counted as elementwise operations (a rough, stated convention)
HOST_COST = {"gLN": 6, "cLN": 6, "affine": 2, "identity": 0, "relu": 1, "prelu": 2,
             "sigmoid": 4, "add": 1, "mask_mul": 1, "overlap_add": 1, "pad_to": 0,
             "copy": 0}
#: the layer kinds a plan leaves to the host, since its NPU units are linear convolutions only
#: (residual sums, copies and the final pad run there too); recorded as the plan's ``host_ops``
#: (plan.json, the trial's result) for provenance: a fact of the plan, not a setting
HOST_OPS = ("norm", "activation", "mask_mul", "overlap_add")


@dataclass(frozen=True)
class UnitSpec:
    """The structure of one NPU unit; equal specs compile to the same graph."""

    op: str  # conv | depthwise | deconv
    cin: int
    cout: int
    kernel: int
    stride: int
    dilation: int
    bias: bool
    in_width: int
    out_width: int

    @property
    def groups(self) -> int:
        return self.cin if self.op == "depthwise" else 1

    @property
    def key(self) -> str:
        return (f"{self.op}_c{self.cin}x{self.cout}_k{self.kernel}s{self.stride}d{self.dilation}"
                f"_{'b' if self.bias else 'nb'}_w{self.in_width}")

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one invocation (batch 1)."""
        per_in = self.cin // self.groups
        if self.op == "deconv":
            return self.in_width * self.cin * self.cout * self.kernel
        return self.out_width * self.cout * per_in * self.kernel

    def input_shape(self, batch: int = 1) -> list[int]:
        return [batch, self.cin, 1, self.in_width]

    def output_shape(self, batch: int = 1) -> list[int]:
        return [batch, self.cout, 1, self.out_width]


@dataclass(frozen=True)
class Instance:
    """One weight instance of a unit: a layer's (output block, input block) slice."""

    name: str
    unit: str  # UnitSpec.key
    layer: str  # the state_dict prefix, e.g. masker.blocks.0.in_conv
    out_block: tuple[int, int]
    in_block: tuple[int, int]
    bias: bool

    @property
    def file_stem(self) -> str:
        return self.name.replace(".", "_")


@dataclass
class UnitGroup:
    """Instances of one unit in one step: ``outs`` x ``ins`` blocks (``outs`` alone when
    depthwise), each list of channel spans sorted."""

    unit: str
    instances: list[Instance]
    outs: list[tuple[int, int]]
    ins: list[tuple[int, int]]


@dataclass
class NpuStep:
    """One convolution layer run as tiled, blocked units; the host reconstructs its output."""

    layer: str
    op: str  # conv | depthwise | deconv
    src: str
    dst: str
    stage: str
    kernel: int
    stride: int
    dilation: int
    pad: int  # zero padding of the whole signal on each side (the layer's own padding)
    cin: int
    cout: int
    per_source: int  # >1: the input holds this many sources, stacked into the batch
    tile: int  # tile width in the layer's tiled axis (output frames; input frames for deconv)
    instances: list[Instance] = field(default_factory=list)

    kind = "npu"

    @property
    def out_blocks(self) -> list[tuple[int, int]]:
        return sorted({i.out_block for i in self.instances})

    @property
    def in_blocks(self) -> list[tuple[int, int]]:
        return sorted({i.in_block for i in self.instances})

    def unit_groups(self) -> list[UnitGroup]:
        """The instances of each distinct unit, in the order of their first instance: every
        (output block, input block) pair of a rectangle of blocks (the diagonal for a
        depthwise conv), so one graph holding their weights side by side computes them all
        at once, partial sums over the group's input blocks included.  A unit whose
        instances form no such shape is split into one group per instance."""
        by_unit: dict[str, list[Instance]] = {}
        for inst in self.instances:
            by_unit.setdefault(inst.unit, []).append(inst)
        groups = []
        for unit, insts in by_unit.items():
            outs = sorted({i.out_block for i in insts})
            ins = sorted({i.in_block for i in insts})
            pairs = {(i.out_block, i.in_block) for i in insts}
            whole = (pairs == {(o, o) for o in outs} if self.op == "depthwise" else
                     pairs == {(o, i) for o in outs for i in ins}) and len(pairs) == len(insts)
            if whole:
                groups.append(UnitGroup(unit, insts, outs, ins))
            else:
                groups += [UnitGroup(unit, [i], [i.out_block], [i.in_block]) for i in insts]
        return groups

    def tile_in_width(self) -> int:
        if self.op == "deconv":
            return self.tile
        return (self.tile - 1) * self.stride + self.dilation * (self.kernel - 1) + 1

    def tile_out_width(self) -> int:
        if self.op == "deconv":
            return (self.tile - 1) * self.stride + self.kernel
        return self.tile

    def out_len(self, in_len: int) -> int:
        if self.op == "deconv":
            return (in_len - 1) * self.stride + self.kernel
        return (in_len + 2 * self.pad - self.dilation * (self.kernel - 1) - 1) // self.stride + 1

    def n_tiles(self, in_len: int) -> int:
        tiled = in_len if self.op == "deconv" else self.out_len(in_len)
        return math.ceil(tiled / self.tile)

    def exact_macs(self, in_len: int) -> int:
        """MACs of the untiled layer on ``in_len`` frames (no padding waste)."""
        per_in = self.cin // (self.cin if self.op == "depthwise" else 1)
        frames = in_len if self.op == "deconv" else self.out_len(in_len)
        return frames * self.cout * per_in * self.kernel * self.per_source

    def as_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k != "instances"}
        d.update(kind=self.kind, tile_in_width=self.tile_in_width(),
                 tile_out_width=self.tile_out_width(),
                 instances=[asdict(i) for i in self.instances])
        return d


@dataclass
class HostStep:
    """A host operation on whole (reconstructed) tensors [C, T]."""

    op: str  # norm | act | add | mask_mul | copy | overlap_add | pad_to
    inputs: list[str]
    dst: str
    stage: str
    layer: str | None = None  # state_dict prefix of the op's parameters
    variant: str | None = None  # gLN/cLN/affine/identity, relu/prelu/sigmoid
    channels: int = 0

    kind = "host"

    def as_dict(self) -> dict:
        return {**asdict(self), "kind": self.kind}


@dataclass
class Plan:
    mode: str
    tile_width: int | None
    channel_block: int | None
    model: dict
    units: dict[str, UnitSpec]
    steps: list

    # ---- figures ---------------------------------------------------------------------------
    def npu_steps(self) -> list[NpuStep]:
        return [s for s in self.steps if s.kind == "npu"]

    def instances_of(self, unit_key: str) -> list[Instance]:
        return [i for s in self.npu_steps() for i in s.instances if i.unit == unit_key]

    def lengths(self, time_len: int) -> dict[str, int]:
        """The time length of every tensor of the program for a ``time_len`` input."""
        lens = {"wav": time_len}
        for s in self.steps:
            if s.kind == "npu":
                lens[s.dst] = s.out_len(lens[s.src])
            elif s.op == "overlap_add":
                lens[s.dst] = (lens[s.inputs[0]] - 1) * self.model["stride"] + \
                    self.model["kernel_size"]
            elif s.op == "pad_to":
                lens[s.dst] = time_len
            else:
                lens[s.dst] = lens[s.inputs[0]]
        return lens

    def workload(self, time_len: int) -> dict:
        """NPU invocations and MACs, host elementwise operations, for one input length."""
        lens = self.lengths(time_len)
        calls = npu_macs = exact = host = 0
        for s in self.steps:
            if s.kind == "npu":
                in_len = lens[s.src]
                n = s.n_tiles(in_len) * s.per_source
                calls += n * len(s.instances)
                npu_macs += n * sum(self.units[i.unit].macs for i in s.instances)
                exact += s.exact_macs(in_len)
                # partial sums over input blocks, and the overlap of deconv tiles
                extra_in = len(s.in_blocks) - 1 if s.op != "depthwise" else 0
                host += n * extra_in * s.cout * s.tile_out_width()
                if s.op == "deconv":
                    host += n * s.cout * s.tile_out_width()
            else:
                c = s.channels or 1
                cost = HOST_COST.get(s.variant or s.op, 1)
                host += cost * c * lens[s.inputs[0]]
        return {"time_len": time_len, "npu_invocations": calls, "npu_macs": npu_macs,
                "untiled_macs": exact, "host_elementwise_ops": host,
                "npu_share": npu_macs / (npu_macs + host) if npu_macs + host else 0.0}

    def host_share(self) -> dict:
        """The figures for one second of audio (SAMPLE_RATE samples)."""
        w = self.workload(SAMPLE_RATE)
        return {"per_second_of_audio": w, "sample_rate": SAMPLE_RATE,
                "npu_invocations_per_s": w["npu_invocations"],
                "npu_macs_per_s": w["npu_macs"],
                "host_elementwise_ops_per_s": w["host_elementwise_ops"],
                "npu_share": w["npu_share"],
                "tiling_mac_overhead": w["npu_macs"] / w["untiled_macs"] - 1.0}

    # ---- records ---------------------------------------------------------------------------
    def as_dict(self) -> dict:
        return {
            "mode": self.mode, "tile_width": self.tile_width,
            "channel_block": self.channel_block, "host_ops": list(HOST_OPS), "model": self.model,
            "units": [{**asdict(u), "key": k, "groups": u.groups, "macs": u.macs,
                       "instances": len(self.instances_of(k))} for k, u in self.units.items()],
            "steps": [s.as_dict() for s in self.steps],
            "host_share": self.host_share(),
        }

    def describe(self) -> str:
        """A printable plan: distinct units, then the program step by step."""
        m = self.model
        lines = [f"tiling plan: mode={self.mode} tile_width={self.tile_width} "
                 f"channel_block={self.channel_block} host_ops={','.join(HOST_OPS)}",
                 f"model: N={m['n_filters']} L={m['kernel_size']} S={m['stride']} B={m['bn']} "
                 f"H={m['hidden']} Sc={m['skip']} P={m['conv_kernel']} "
                 f"X={m['n_blocks']} R={m['n_repeats']} norm={m['norm']} "
                 f"skip_topology={m['skip_topology']} decoder={m['decoder']}",
                 "", f"distinct NPU units ({len(self.units)}):"]
        for k, u in self.units.items():
            lines.append(f"  {k:<44} in {u.input_shape()} -> out {u.output_shape()}  "
                         f"macs={u.macs:,}  weight instances={len(self.instances_of(k))}")
        lines += ["", "program (host tensors are [C, T]; NPU steps run every tile of every "
                  "instance):"]
        for s in self.steps:
            if s.kind == "npu":
                blocks = (f"{len(s.out_blocks)} out x {len(s.in_blocks)} in blocks"
                          if s.op != "depthwise" else f"{len(s.out_blocks)} channel blocks")
                extra = f", halo {s.pad} each side" if s.op == "depthwise" else ""
                if s.op == "deconv":
                    extra = ", tile outputs overlap-added on host"
                src = f"{s.src} (x{s.per_source} sources in batch)" if s.per_source > 1 else s.src
                lines.append(f"  [{s.stage}] NPU  {s.dst} = {s.layer} {s.op}({src}) "
                             f"{s.cin}->{s.cout} k{s.kernel} s{s.stride} d{s.dilation}: {blocks}, "
                             f"tile {s.tile} (in {s.tile_in_width()}){extra}; units "
                             f"{','.join(sorted({i.unit for i in s.instances}))}")
            else:
                what = s.variant or s.op
                lines.append(f"  [{s.stage}] HOST {s.dst} = {what}({', '.join(s.inputs)})"
                             + (f" [{s.layer}]" if s.layer else ""))
        hs = self.host_share()
        lines += ["", f"per second of audio at {SAMPLE_RATE} Hz: "
                  f"{hs['npu_invocations_per_s']:,} NPU unit invocations, "
                  f"{hs['npu_macs_per_s']:,} NPU MACs, "
                  f"{hs['host_elementwise_ops_per_s']:,} host elementwise ops "
                  f"(NPU share {hs['npu_share']:.4f}, tiling MAC overhead "
                  f"{hs['tiling_mac_overhead']:.2%})"]
        return "\n".join(lines) + "\n"


# ---- building ---------------------------------------------------------------------------------
def channel_blocks(channels: int, block: int | None) -> list[tuple[int, int]]:
    """[start, stop) channel ranges; a channel count not above the block stays whole."""
    if block is None or channels <= block:
        return [(0, channels)]
    if channels % block:
        raise ValueError(f"channel_block={block} does not divide {channels} channels")
    return [(a, a + block) for a in range(0, channels, block)]


class _Builder:
    def __init__(self, m, tiling):
        self.m = m
        self.mode = tiling.mode
        frames = (m.time_len - m.kernel_size) // m.stride + 1
        self.tile = tiling.tile_width if self.mode != "none" else frames
        self.block = tiling.channel_block if self.mode == "blocked" else None
        self.units: dict[str, UnitSpec] = {}
        self.steps: list = []

    def host(self, op, inputs, dst, stage, layer=None, variant=None, channels=0):
        self.steps.append(HostStep(op, list(inputs), dst, stage, layer, variant, channels))
        return dst

    def npu(self, layer, op, src, dst, stage, cin, cout, kernel=1, stride=1, dilation=1,
            pad=0, bias=True, per_source=1):
        step = NpuStep(layer, op, src, dst, stage, kernel, stride, dilation, pad, cin, cout,
                       per_source, self.tile)
        outs = channel_blocks(cout, self.block)
        ins = channel_blocks(cin, self.block)
        pairs = [(o, o) for o in outs] if op == "depthwise" else [(o, i) for o in outs for i in ins]
        for o, i in pairs:
            with_bias = bias and (op == "depthwise" or i == ins[0])  # each bias once
            spec = UnitSpec(op, i[1] - i[0], o[1] - o[0], kernel, stride, dilation, with_bias,
                            step.tile_in_width(), step.tile_out_width())
            self.units.setdefault(spec.key, spec)
            name = f"{layer}.o{o[0] // (o[1] - o[0])}" + \
                ("" if op == "depthwise" else f".i{i[0] // (i[1] - i[0])}")
            step.instances.append(Instance(name, spec.key, layer, o, i, with_bias))
        self.steps.append(step)
        return dst

    def build(self) -> None:
        m = self.m
        n, act = m.n_filters, m.activation
        self.npu("encoder.conv", "conv", "wav", "enc_lin", "encoder", 1, n, m.kernel_size,
                 m.stride, bias=False)
        if m.get("encoder_activation", "relu") == "relu":
            self.host("act", ["enc_lin"], "enc", "encoder", variant="relu", channels=n)
        else:  # a linear encoder (asteroid's default) hands its output on unchanged
            self.host("copy", ["enc_lin"], "enc", "encoder")
        x = self.host("norm", ["enc"], "m.norm", "masker", "masker.norm", m.norm, n)
        x = self.npu("masker.bottleneck", "conv", x, "m.bott", "masker", n, m.bn)
        skip_sum = None
        blocks = m.truncate_k_blocks or m.n_blocks * m.n_repeats
        for b in range(blocks):
            p, d = f"masker.blocks.{b}", 2 ** (b % m.n_blocks)
            h = self.npu(f"{p}.in_conv", "conv", x, f"b{b}.in", "masker", m.bn, m.hidden)
            h = self.host("act", [h], f"b{b}.act1", "masker", f"{p}.act1", act, m.hidden)
            h = self.host("norm", [h], f"b{b}.norm1", "masker", f"{p}.norm1", m.norm, m.hidden)
            h = self.npu(f"{p}.dw_conv", "depthwise", h, f"b{b}.dw", "masker", m.hidden,
                         m.hidden, m.conv_kernel, 1, d, pad=(m.conv_kernel - 1) * d // 2)
            h = self.host("act", [h], f"b{b}.act2", "masker", f"{p}.act2", act, m.hidden)
            h = self.host("norm", [h], f"b{b}.norm2", "masker", f"{p}.norm2", m.norm, m.hidden)
            r = self.npu(f"{p}.res_conv", "conv", h, f"b{b}.res", "masker", m.hidden, m.bn)
            if m.skip_topology == "sum":
                s = self.npu(f"{p}.skip_conv", "conv", h, f"b{b}.skip", "masker", m.hidden,
                             m.skip)
                skip_sum = s if skip_sum is None else self.host(
                    "add", [skip_sum, s], f"b{b}.skipsum", "masker", channels=m.skip)
            x = self.host("add", [x, r], f"b{b}.out", "masker", channels=m.bn)
        if m.skip_topology == "project":
            head_in = self.npu("masker.projection", "conv", x, "m.proj", "masker", m.bn, m.skip)
        else:
            head_in = skip_sum
        h = self.host("act", [head_in], "m.head_act", "masker", "masker.mask_head.act", act,
                      m.skip)
        h = self.npu("masker.mask_head.conv", "conv", h, "m.head", "masker", m.skip,
                     m.n_src * n)
        self.host("act", [h], "masks", "masker", variant=m.mask_act, channels=m.n_src * n)
        if m.mask_mul == "normal":
            self.host("mask_mul", ["enc", "masks"], "feats", "mask_mul", channels=m.n_src * n)
        else:
            self.host("copy", ["masks"], "feats", "mask_mul")
        if m.decoder == "conv1x1_head":
            self.npu("decoder.head", "conv", "feats", "frames", "decoder", n, m.kernel_size,
                     bias=False, per_source=m.n_src)
            self.host("overlap_add", ["frames"], "dec", "decoder", channels=m.n_src * m.kernel_size)
        else:
            self.npu("decoder.deconv", "deconv", "feats", "dec", "decoder", n, 1, m.kernel_size,
                     m.stride, bias=False, per_source=m.n_src)
        self.host("pad_to", ["dec"], "sources", "decoder", channels=m.n_src)


def build_plan(model_cfg, tiling_cfg) -> Plan:
    """The plan for a validated model config and tiling config (mode none: one tile per layer)."""
    b = _Builder(model_cfg, tiling_cfg)
    b.build()
    model = {k: model_cfg[k] for k in model_cfg}
    return Plan(tiling_cfg.mode, b.tile if tiling_cfg.mode != "none" else None, b.block,
                model, b.units, b.steps)
