"""The host program: run a plan's steps, tiling each NPU layer and reconstructing its output.

A layer's output stays in the units' own layout (``Tiled``: one [tiles, channels, width] array
per channel block) for as long as the next layer can take it as it is: 1x1 convs and the deconv
read the blocks directly, a dilated depthwise conv reads them widened by halos from the
neighbouring tiles, and the host ops (tiled.py, host_ops.py) work on blocks too.  Anything
else (the strided encoder, a block split that does not line up) goes through the dense signal
[C, T]: padded (the layer's own padding plus zeros so the last tile is full), cut into tiles
that overlap by the receptive field, run, and put back.  Every instance runs on all tiles of a
layer at once (onnxruntime: every instance of a unit at once); partial products over input
blocks are summed, each bias added once.
"""

from __future__ import annotations

import numpy as np

from . import host_ops
from .host_ops import as_dense
from .plan import NpuStep, Plan
from .tiled import Tiled, halo_windows

STAGES = ("encoder", "masker", "mask_mul", "decoder")


# ---- NPU layers -------------------------------------------------------------------------------
def cut_tiles(x: np.ndarray, step: NpuStep, n_tiles: int) -> np.ndarray:
    """[P, C, T] -> [P, C, n_tiles, tile_in_width], zero-padded: row j is tile j."""
    hop = step.tile * (1 if step.op == "deconv" else step.stride)
    w_in = step.tile_in_width()
    need = (n_tiles - 1) * hop + w_in
    left = step.pad
    right = max(0, need - left - x.shape[-1])
    xp = np.pad(x, ((0, 0), (0, 0), (left, right)))[..., :need]
    if w_in == hop:
        return xp.reshape(x.shape[0], x.shape[1], n_tiles, w_in)
    windows = np.lib.stride_tricks.sliding_window_view(xp, w_in, axis=-1)
    return np.ascontiguousarray(windows[..., ::hop, :][..., :n_tiles, :])  # a writable copy


def join_deconv_tiles(y: np.ndarray, step: NpuStep, out_len: int) -> np.ndarray:
    """[P, C, n_tiles, w_out] deconv outputs -> [P, C, out_len]: tiles overlap-added."""
    p, c, n_tiles, w_out = y.shape
    hop = step.tile * step.stride
    if hop <= w_out <= 2 * hop:  # each tile spills into the next one only: two adds in all
        full = np.zeros((p, c, n_tiles + 1, hop), np.float32)
        full[:, :, :n_tiles] += y[..., :hop]
        full[:, :, 1:, :w_out - hop] += y[..., hop:]
        return full.reshape(p, c, -1)[..., :out_len]
    full = np.zeros((p, c, (n_tiles - 1) * hop + w_out), np.float32)
    for j in range(n_tiles):
        full[..., j * hop:j * hop + w_out] += y[:, :, j]
    return full[..., :out_len]


def _unit_input(step: NpuStep, x, n_tiles: int) -> np.ndarray:
    """The layer's input as unit inputs, [P, cin, n_tiles, w_in] (one tile per row).

    A ``Tiled`` input already in the step's tiling is used as it is (1x1 convs, deconv) or
    widened by halos from neighbouring tiles (dilated depthwise); anything else goes through
    the whole signal once (``cut_tiles``)."""
    if isinstance(x, Tiled) and (x.n_src, x.channels, x.width, x.n_tiles) == \
            (step.per_source, step.cin, step.tile, n_tiles):
        left = step.pad
        right = step.tile_in_width() - step.tile - left
        hop = step.tile * (1 if step.op == "deconv" else step.stride)
        if hop == step.tile and 0 <= left <= step.tile and 0 <= right <= step.tile:
            x.zero_tail()  # units see zeros past the signal's end, as the layer's padding
            return halo_windows(x.data, left, right) if left or right else x.data
    return cut_tiles(as_dense(x).reshape(step.per_source, step.cin, -1), step, n_tiles)


def _channels(x: np.ndarray, spans: list[tuple[int, int]]) -> np.ndarray:
    """Channels ``spans`` of ``x`` [P, C, ...] side by side: a view when they are adjacent."""
    if all(a[1] == b[0] for a, b in zip(spans, spans[1:])):
        return x[:, spans[0][0]:spans[-1][1]]
    return np.concatenate([x[:, lo:hi] for lo, hi in spans], axis=1)


class _Layer:
    """A layer's output [P, cout, n_tiles, w_out] assembled from unit outputs: each output
    block's first part is stored, later parts (other input blocks) are added."""

    def __init__(self, step: NpuStep):
        self.step, self.out, self.done = step, None, set()

    def put(self, spans: list[tuple[int, int]], part: np.ndarray) -> None:
        if self.out is None and spans == self.step.out_blocks and \
                spans[0][0] == 0 and spans[-1][1] == self.step.cout:
            self.out = part  # the whole layer in one array already: no copy
            self.done.update(spans)
            return
        if self.out is None:
            self.out = np.empty((part.shape[0], self.step.cout) + part.shape[2:], np.float32)
        joined = all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
        if joined and self.done.issuperset(spans):  # the usual case: one add for all blocks
            self.out[:, spans[0][0]:spans[-1][1]] += part
            return
        at = 0
        for lo, hi in spans:
            piece = part[:, at:at + hi - lo]
            at += hi - lo
            if (lo, hi) in self.done:
                self.out[:, lo:hi] += piece
            else:
                self.out[:, lo:hi] = piece
                self.done.add((lo, hi))

    def result(self) -> np.ndarray:
        spans = sorted(self.done)
        if spans[0][0] != 0 or spans[-1][1] != self.step.cout or \
                any(a[1] != b[0] for a, b in zip(spans, spans[1:])):
            raise ValueError(f"{self.step.layer}: output blocks {spans} do not tile the channels")
        return self.out


def run_npu_step(step: NpuStep, x, executor):
    """One layer through its units: [P*cin, T] (dense or Tiled) -> [P*cout, T_out], Tiled
    unless the layer is a deconv (its tiles overlap-add into a dense signal).

    An executor with ``unit_batches`` (onnxruntime on graphs it builds) takes every instance
    of a unit at once (``NpuStep.unit_groups``, ``run_group``); any other runs each instance
    in the plan's order, as a device does."""
    in_len = x.length if isinstance(x, Tiled) else x.shape[-1]
    n_tiles = step.n_tiles(in_len)
    tiles = _unit_input(step, x, n_tiles)
    layer = _Layer(step)
    if getattr(executor, "unit_batches", False):
        for group in step.unit_groups():
            layer.put(group.outs, executor.run_group(step, group, _channels(tiles, group.ins)))
    else:
        for inst in step.instances:
            layer.put([inst.out_block], executor.run(inst, _channels(tiles, [inst.in_block])))
    y = layer.result()
    if step.op != "deconv":
        edges = (0,) + tuple(hi for _, hi in step.out_blocks)
        return Tiled(y, edges, step.out_len(in_len))
    return join_deconv_tiles(y, step, step.out_len(in_len)).reshape(
        step.per_source * step.cout, -1)


# ---- the program ------------------------------------------------------------------------------
def run_host_step(step, env: dict, params: dict, m: dict, consumable=frozenset()):
    """One host op; inputs named in ``consumable`` may be overwritten (nothing reads them later)."""
    x = env[step.inputs[0]]
    mine = step.inputs[0] in consumable
    if step.op == "norm":
        return host_ops.norm(x, step.variant, params, step.layer, inplace=mine)
    if step.op == "act":
        return host_ops.act(x, step.variant, params, step.layer, inplace=mine)
    if step.op == "add":
        return host_ops.add(x, env[step.inputs[1]], mine, step.inputs[1] in consumable)
    if step.op == "copy":
        return x
    if step.op == "mask_mul":
        return host_ops.mask_mul(x, env[step.inputs[1]], m["n_src"],
                                 inplace=step.inputs[1] in consumable)
    if step.op == "overlap_add":
        return host_ops.overlap_add(x, m["n_src"], m["kernel_size"], m["stride"])
    if step.op == "pad_to":
        return host_ops.pad_to(x, env["wav"].shape[-1] if "wav" in env else env["time_len"])
    raise ValueError(f"unknown host op {step.op!r}")


def _reads(step) -> list[str]:
    return [step.src] if step.kind == "npu" else list(step.inputs)


def run_plan(plan: Plan, params: dict, executor, env: dict, stages=STAGES) -> dict:
    """Run the steps of ``stages`` in order on ``env`` (name -> [C, T] arrays); returns env.

    Seed ``env`` with ``wav`` [1, T] for the full chain, ``enc`` for the masker alone, ``feats``
    (and ``time_len``) for the decoder alone.  Intermediates no later step reads are dropped
    (and may be overwritten by their last reader); what is returned is dense [C, T].
    """
    env = dict(env)
    last_read: dict[str, int] = {}
    for i, step in enumerate(plan.steps):
        for name in _reads(step):
            last_read[name] = i
    made: set[str] = set()  # produced here, so safe to overwrite or drop after the last read
    shared: set[str] = set()  # aliased by a copy step: never overwritten
    for i, step in enumerate(plan.steps):
        if step.stage not in stages:
            continue
        dead = {n for n in _reads(step) if n in made and last_read[n] == i}
        if step.kind == "npu":
            env[step.dst] = run_npu_step(step, env[step.src], executor)
        else:
            env[step.dst] = run_host_step(step, env, params, plan.model, dead - shared)
            if step.op == "copy":
                shared.update((step.dst, step.inputs[0]))
        made.add(step.dst)
        for name in dead - {step.dst}:
            env.pop(name, None)
    return {k: host_ops.as_dense(v) for k, v in env.items()}


def separate(plan: Plan, params: dict, executor, wav: np.ndarray) -> np.ndarray:
    """Waveform [T] -> separated sources [n_src, T] through the whole stitched chain."""
    env = run_plan(plan, params, executor, {"wav": np.asarray(wav, np.float32).reshape(1, -1)})
    return env["sources"]
