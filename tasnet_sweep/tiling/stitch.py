"""The host program: run a plan's steps, tiling each NPU layer and reconstructing its output.

Host tensors are float32 [C, T] at their true length.  An NPU step pads the whole signal (its
own conv padding plus zeros after the last frame so the last tile is full), cuts it into tiles
(overlapping by the receptive field: the encoder's kernel, a dilated conv's halo), runs every
instance on all tiles at once, sums partial products over input blocks, concatenates output
blocks and tiles, and drops the padding again.  Host ops mirror tasnet_sweep/model/norms.py.
"""

from __future__ import annotations

import numpy as np

from .plan import NpuStep, Plan

EPS = 1e-8
STAGES = ("encoder", "masker", "mask_mul", "decoder")


# ---- NPU layers -------------------------------------------------------------------------------
def cut_tiles(x: np.ndarray, step: NpuStep, n_tiles: int) -> np.ndarray:
    """[P, C, T] -> [P * n_tiles, C, 1, tile_in_width] (source-major), zero-padded."""
    hop = step.tile * (1 if step.op == "deconv" else step.stride)
    w_in = step.tile_in_width()
    need = (n_tiles - 1) * hop + w_in
    left = step.pad
    right = max(0, need - left - x.shape[-1])
    xp = np.pad(x, ((0, 0), (0, 0), (left, right)))[..., :need]
    if w_in == hop:
        t = xp.reshape(x.shape[0], x.shape[1], n_tiles, w_in)
    else:
        t = np.stack([xp[..., j * hop:j * hop + w_in] for j in range(n_tiles)], axis=2)
    return np.ascontiguousarray(t.transpose(0, 2, 1, 3)).reshape(-1, x.shape[1], 1, w_in)


def join_tiles(y: np.ndarray, step: NpuStep, n_src: int, n_tiles: int, out_len: int) -> np.ndarray:
    """[P * n_tiles, C, 1, w_out] -> [P, C, out_len]; deconv tiles are overlap-added."""
    c, w_out = y.shape[1], y.shape[3]
    y = y.reshape(n_src, n_tiles, c, w_out)
    if step.op != "deconv":
        full = y.transpose(0, 2, 1, 3).reshape(n_src, c, n_tiles * w_out)
        return full[..., :out_len]
    hop = step.tile * step.stride
    full = np.zeros((n_src, c, (n_tiles - 1) * hop + w_out), np.float32)
    for j in range(n_tiles):
        full[..., j * hop:j * hop + w_out] += y[:, j]
    return full[..., :out_len]


def run_npu_step(step: NpuStep, x: np.ndarray, executor) -> np.ndarray:
    """One layer through its units: [P*cin, T] -> [P*cout, T_out]."""
    p = step.per_source
    x = x.reshape(p, step.cin, x.shape[-1])
    in_len = x.shape[-1]
    n_tiles = step.n_tiles(in_len)
    tiles = cut_tiles(x, step, n_tiles)
    blocks: dict[tuple[int, int], np.ndarray] = {}  # each input block copied out once
    by_out: dict[tuple[int, int], np.ndarray] = {}
    for inst in step.instances:
        block = blocks.get(inst.in_block)
        if block is None:
            ia, ib = inst.in_block
            block = blocks[inst.in_block] = np.ascontiguousarray(tiles[:, ia:ib])
        part = executor.run(inst, block)
        acc = by_out.get(inst.out_block)
        if acc is None:
            by_out[inst.out_block] = part
        else:
            acc += part
    y = np.concatenate([by_out[o] for o in sorted(by_out)], axis=1)
    out = join_tiles(y, step, p, n_tiles, step.out_len(in_len))
    return out.reshape(p * step.cout, -1)


# ---- host ops ---------------------------------------------------------------------------------
def _norm(x, variant, params, layer):
    """Statistics accumulate in float64 (cheap: reductions only); the tensor stays float32."""
    if variant == "identity":
        return x
    gamma = params[f"{layer}.gamma"].reshape(-1, 1)
    beta = params[f"{layer}.beta"].reshape(-1, 1)
    if variant == "affine":
        return x * gamma + beta
    if variant == "gLN":  # over time, then channels, as the model does
        mean = x.mean(axis=1, keepdims=True, dtype=np.float64).mean(axis=0, keepdims=True)
        centered = x - mean.astype(np.float32)
        var = np.square(centered).mean(axis=1, keepdims=True, dtype=np.float64).mean(
            axis=0, keepdims=True)
    elif variant == "cLN":
        mean = x.mean(axis=0, keepdims=True, dtype=np.float64)
        centered = x - mean.astype(np.float32)
        var = np.square(centered).mean(axis=0, keepdims=True, dtype=np.float64)
    else:
        raise ValueError(f"unknown norm {variant!r}")
    scale = (1.0 / np.sqrt(var + EPS)).astype(np.float32)
    centered *= scale
    centered *= gamma
    centered += beta
    return centered


def _act(x, variant, params, layer):
    if variant == "relu":
        return np.maximum(x, 0)
    if variant == "prelu":
        a = params[f"{layer}.weight"].reshape(-1, 1)
        return np.where(x >= 0, x, a * x).astype(np.float32)
    if variant == "sigmoid":
        out = np.exp(-np.clip(x, -80, 80))
        out += 1
        return np.reciprocal(out, out=out)
    raise ValueError(f"unknown activation {variant!r}")


def _overlap_add(frames, n_src, kernel, stride):
    """[n_src*L, F] frames -> [n_src, (F-1)*S + L]."""
    f = frames.shape[-1]
    frames = frames.reshape(n_src, kernel, f)
    out = np.zeros((n_src, (f - 1) * stride + kernel), np.float32)
    for k in range(kernel):  # L strided adds instead of F small ones
        out[:, k:k + (f - 1) * stride + 1:stride] += frames[:, k]
    return out


def run_host_step(step, env: dict, params: dict, m: dict) -> np.ndarray:
    x = env[step.inputs[0]]
    if step.op == "norm":
        return _norm(x, step.variant, params, step.layer)
    if step.op == "act":
        return _act(x, step.variant, params, step.layer)
    if step.op == "add":
        return x + env[step.inputs[1]]
    if step.op == "copy":
        return x
    if step.op == "mask_mul":
        return np.concatenate([x] * m["n_src"], axis=0) * env[step.inputs[1]]
    if step.op == "overlap_add":
        return _overlap_add(x, m["n_src"], m["kernel_size"], m["stride"])
    if step.op == "pad_to":
        n = env["wav"].shape[-1] if "wav" in env else env["time_len"]
        out = np.zeros((x.shape[0], n), np.float32)
        out[:, :min(n, x.shape[-1])] = x[:, :n]
        return out
    raise ValueError(f"unknown host op {step.op!r}")


# ---- the program ------------------------------------------------------------------------------
def run_plan(plan: Plan, params: dict, executor, env: dict, stages=STAGES) -> dict:
    """Run the steps of ``stages`` in order on ``env`` (name -> [C, T] arrays); returns env.

    Seed ``env`` with ``wav`` [1, T] for the full chain, ``enc`` for the masker alone, ``feats``
    (and ``time_len``) for the decoder alone.
    """
    env = dict(env)
    for step in plan.steps:
        if step.stage not in stages:
            continue
        if step.kind == "npu":
            env[step.dst] = run_npu_step(step, env[step.src], executor)
        else:
            env[step.dst] = run_host_step(step, env, params, plan.model)
    return env


def separate(plan: Plan, params: dict, executor, wav: np.ndarray) -> np.ndarray:
    """Waveform [T] -> separated sources [n_src, T] through the whole stitched chain."""
    env = run_plan(plan, params, executor, {"wav": np.asarray(wav, np.float32).reshape(1, -1)})
    return env["sources"]
