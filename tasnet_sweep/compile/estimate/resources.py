"""What one parsed layer costs on the chip: bytes, MACs and control/compute/memory units.

The one cost the public outcomes pin down is the row buffer: a ConvTasNet latent tensor is a
single row (H = 1), so a layer must hold its whole input row (``kernel height`` rows of it)
and its output row, W x C bytes each at 8 bit; the layer's memory units are that buffer.
The rest (one control unit per layer, compute demand from MACs per output column) is a plain
guess that decides the number of contexts and the utilization figures, never a single layer's
fate.  Weights are reported but not placed: where and how densely the DFC stores them is
unknown, and a Hailo-8 runs 25M-parameter models, so they cannot live in the few MiB the row
rule's fitted memory units add up to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .graph import CONV_FAMILIES, Layer
from .profile import HwProfile

ACTIVATION_BYTES = 1  # a8_w8, the DFC's default precision mode
WEIGHT_BYTES = 1


@dataclass
class LayerCost:
    layer: Layer
    row_bytes: int  # the largest row the layer must buffer (input rows x kernel height, output)
    weight_bytes: int
    macs: int  # multiply-accumulates (elementwise/norm/activation: one per element)
    control_units: int
    compute_units: int
    row_units: int  # memory units for the row buffer
    cap_units: int | None  # memory units the layer's row buffer may use at most (before ceiling)
    cap_rule: str  # which constant sets the cap: layer_max_clusters | aux_layer_memory_units
    columns: int = 1  # output (or input) columns the layer streams: H x W

    @property
    def memory_units(self) -> int:
        return self.row_units

    def units(self, resource: str) -> int:
        if resource == "memory":
            return self.row_units
        return self.control_units if resource == "control" else self.compute_units


def row_bytes(layer: Layer) -> int:
    kh = layer.kernel[0] if layer.family in CONV_FAMILIES else 1
    rows = [w * c * kh for _, w, c in layer.in_shapes]
    rows += [w * c for _, w, c in layer.out_shapes]
    return max(rows, default=0) * ACTIVATION_BYTES


def macs(layer: Layer) -> int:
    kh, kw = layer.kernel
    if layer.family in ("input", "output", "shape"):
        return 0
    h, w, c = layer.out_shapes[0]
    if layer.family == "conv" and layer.kind == "dense":
        return layer.weights
    if layer.family == "conv":
        cin = layer.in_shapes[0][2]
        return h * w * c * (cin // layer.groups) * kh * kw
    if layer.family == "dw":
        return h * w * c * kh * kw
    if layer.family == "deconv":
        hi, wi, ci = layer.in_shapes[0]
        return hi * wi * ci * (c // layer.groups) * kh * kw
    return max([h * w * c] + [a * b * d for a, b, d in layer.in_shapes])


def _geometry(layer: Layer) -> tuple[int, int, int]:
    """(row bytes, MACs, columns): profile-independent, computed once per layer."""
    geom = layer.__dict__.get("_geometry")
    if geom is None:
        columns = max(h * w for h, w, _ in layer.in_shapes + layer.out_shapes)
        geom = (row_bytes(layer), macs(layer), columns)
        layer.__dict__["_geometry"] = geom
    return geom


def layer_cost(layer: Layer, hw: HwProfile) -> LayerCost:
    placed = layer.family not in ("input", "output")
    rb, m, columns = _geometry(layer)
    wb = layer.weights * WEIGHT_BYTES
    if layer.family in CONV_FAMILIES:
        cap, rule = hw.layer_max_clusters * hw.memory_units_per_cluster, "layer_max_clusters"
    elif placed:
        cap, rule = hw.aux_layer_memory_units, "aux_layer_memory_units"
    else:
        cap, rule = None, ""
    compute = 0
    if placed and layer.family != "shape":
        demand = math.ceil(m / columns / hw.macs_per_compute_unit_column)
        compute = min(max(1, demand), hw.layer_max_clusters * hw.compute_units_per_cluster)
    return LayerCost(layer, rb, wb, m, control_units=1 if placed else 0, compute_units=compute,
                     row_units=math.ceil(rb / hw.memory_unit_bytes) if placed else 0,
                     cap_units=cap, cap_rule=rule, columns=columns)


def graph_costs(layers: list[Layer], hw: HwProfile) -> list[LayerCost]:
    return [layer_cost(layer, hw) for layer in layers]
