"""The plan's host operations, on dense [P * C, T] arrays or on ``Tiled`` values.

They mirror tasnet_sweep/model/norms.py and the model's activations.  ``inplace=True`` lets an
op overwrite its (first) input, which the program allows when nothing reads that input later;
it is what keeps the host's share of a stitched run small.
"""

from __future__ import annotations

import numpy as np

from . import ort_kernels
from .tiled import Tiled

EPS = 1e-8


def _per_channel(params, name: str, span=None) -> np.ndarray:
    """A per-channel parameter shaped to broadcast over a dense [C, T] array, or over a Tiled
    block [P, c, n, w] of channels ``span``."""
    v = params[name].reshape(-1)
    if v.size == 1:  # one shared parameter (PReLU's default)
        return v.reshape(1, 1, 1, 1) if span is not None else v.reshape(1, 1)
    if span is None:
        return v.reshape(-1, 1)
    return v[span[0]:span[1]].reshape(1, -1, 1, 1)


# ---- norms ------------------------------------------------------------------------------------
def norm(x, variant: str, params: dict, layer: str, inplace: bool = False):
    if variant == "identity":
        return x
    if variant not in ("gLN", "cLN", "affine"):
        raise ValueError(f"unknown norm {variant!r}")
    if isinstance(x, Tiled):
        return _norm_tiled(x, variant, params, layer, inplace)
    return _norm_dense(x, variant, params, layer)


def _norm_dense(x, variant, params, layer):
    """Statistics accumulate in float64 (cheap: reductions only); the tensor stays float32."""
    gamma, beta = _per_channel(params, f"{layer}.gamma"), _per_channel(params, f"{layer}.beta")
    if variant == "affine":
        return x * gamma + beta
    if variant == "gLN":  # over time, then channels, as the model does
        mean = x.mean(axis=1, keepdims=True, dtype=np.float64).mean(axis=0, keepdims=True)
        centered = x - mean.astype(np.float32)
        var = np.square(centered).mean(axis=1, keepdims=True, dtype=np.float64).mean(
            axis=0, keepdims=True)
    else:  # cLN
        mean = x.mean(axis=0, keepdims=True, dtype=np.float64)
        centered = x - mean.astype(np.float32)
        var = np.square(centered).mean(axis=0, keepdims=True, dtype=np.float64)
    centered *= (1.0 / np.sqrt(var + EPS)).astype(np.float32)
    centered *= gamma
    centered += beta
    return centered


def _norm_tiled(x: Tiled, variant, params, layer, inplace):
    spans = x.spans
    out = x.blocks if inplace else [np.empty_like(b) for b in x.blocks]
    if variant == "affine":
        for (lo, hi), b, o in zip(spans, x.blocks, out):
            np.multiply(b, _per_channel(params, f"{layer}.gamma", (lo, hi)), out=o)
            o += _per_channel(params, f"{layer}.beta", (lo, hi))
        return x.like(out)
    if variant == "cLN":  # per frame, over all channels of every block
        c = x.channels
        mean = sum(b.sum(axis=1, keepdims=True) for b in x.blocks) / c  # [P, 1, n, w]
        for b, o in zip(x.blocks, out):
            np.subtract(b, mean, out=o)
        var = sum(np.einsum("pcnw,pcnw->pnw", o, o)[:, None] for o in out) / c  # no temporaries
        scale = 1.0 / np.sqrt(var + EPS)
    else:  # gLN: per source, over every channel and every valid frame
        x.zero_tail()
        p, count = x.n_src, x.channels * x.length
        mean = sum(b.reshape(p, -1).sum(axis=1, dtype=np.float64) for b in x.blocks) / count
        mean = mean.astype(np.float32).reshape(p, 1, 1, 1)
        for b, o in zip(x.blocks, out):
            np.subtract(b, mean, out=o)
        x.like(out).zero_tail()
        var = sum(np.square(o).reshape(p, -1).sum(axis=1, dtype=np.float64) for o in out)
        scale = (1.0 / np.sqrt(var / count + EPS)).astype(np.float32).reshape(p, 1, 1, 1)
    for (lo, hi), o in zip(spans, out):
        o *= scale
        o *= _per_channel(params, f"{layer}.gamma", (lo, hi))
        o += _per_channel(params, f"{layer}.beta", (lo, hi))
    return x.like(out)


# ---- activations ------------------------------------------------------------------------------
def act(x, variant: str, params: dict, layer: str, inplace: bool = False):
    if variant not in ("relu", "prelu", "sigmoid"):
        raise ValueError(f"unknown activation {variant!r}")
    if isinstance(x, Tiled):
        spans, blocks = x.spans, x.blocks
    else:
        spans, blocks = [None], [x]
    out = []
    for span, b in zip(spans, blocks):
        if variant == "sigmoid":
            o = ort_kernels.sigmoid(b)
            if o is None:
                o = b if inplace else np.empty_like(b)
                _sigmoid(b, o)
        else:
            o = b if inplace else np.empty_like(b)
            if variant == "relu":
                _relu(b, o)
            else:
                a = _per_channel(params, f"{layer}.weight", span)
                np.copyto(o, np.where(b >= 0, b, a * b))
        out.append(o)
    return x.like(out) if isinstance(x, Tiled) else out[0]


def _relu(x: np.ndarray, out: np.ndarray) -> None:
    """max(x, 0) on the float32 bit patterns read as int32: a negative float is a negative
    int (sign bit), a positive one keeps its order, so the integer max gives the float relu.
    numpy's float ``maximum`` handles NaN on every element and runs ~2x slower."""
    if x.dtype != np.float32 or not (x.flags.c_contiguous and out.flags.c_contiguous):
        np.maximum(x, 0, out=out)
        return
    np.maximum(x.view(np.int32), 0, out=out.view(np.int32))


def _sigmoid(x: np.ndarray, out: np.ndarray) -> None:
    """1 / (1 + exp(-x)); exp overflows to inf for x < -88, which gives the right 0."""
    with np.errstate(over="ignore"):
        np.negative(x, out=out)
        np.exp(out, out=out)
        out += 1
        np.reciprocal(out, out=out)


# ---- combinations -----------------------------------------------------------------------------
def add(a, b, inplace_a: bool = False, inplace_b: bool = False):
    if isinstance(a, Tiled) and a.same_layout(b):
        if inplace_a or inplace_b:
            dst, src = (a, b) if inplace_a else (b, a)
            for d, s in zip(dst.blocks, src.blocks):
                d += s
            return dst
        return a.like([x + y for x, y in zip(a.blocks, b.blocks)])
    return as_dense(a) + as_dense(b)


def mask_mul(x, masks, n_src: int):
    """features [C, T] times masks [n_src * C, T] -> [n_src * C, T] (P = n_src when tiled)."""
    if isinstance(x, Tiled) and isinstance(masks, Tiled) and x.n_src == 1 and \
            masks.n_src == 1 and x.length == masks.length and \
            x.blocks[0].shape[2:] == masks.blocks[0].shape[2:] and \
            masks.edges == _repeat_edges(x.edges, n_src):
        k = len(x.blocks)
        out = []
        for i, b in enumerate(x.blocks):
            o = np.empty((n_src,) + b.shape[1:], np.float32)
            for s in range(n_src):
                np.multiply(b[0], masks.blocks[s * k + i][0], out=o[s])
            out.append(o)
        return Tiled(out, x.edges, x.length)
    x, masks = as_dense(x), as_dense(masks)
    c, t = x.shape
    return (masks.reshape(n_src, c, t) * x[None]).reshape(n_src * c, t)


def _repeat_edges(edges: tuple[int, ...], times: int) -> tuple[int, ...]:
    c = edges[-1]
    return (0,) + tuple(s * c + e for s in range(times) for e in edges[1:])


def overlap_add(frames, n_src: int, kernel: int, stride: int) -> np.ndarray:
    """[n_src * L, F] frames -> [n_src, (F-1)*S + L]."""
    frames = as_dense(frames)
    f = frames.shape[-1]
    frames = frames.reshape(n_src, kernel, f)
    out = np.zeros((n_src, (f - 1) * stride + kernel), np.float32)
    for k in range(kernel):  # L strided adds instead of F small ones
        out[:, k:k + (f - 1) * stride + 1:stride] += frames[:, k]
    return out


def pad_to(x, n: int) -> np.ndarray:
    x = as_dense(x)
    out = np.zeros((x.shape[0], n), np.float32)
    out[:, :min(n, x.shape[-1])] = x[:, :n]
    return out


def as_dense(x) -> np.ndarray:
    return x.dense() if isinstance(x, Tiled) else x
