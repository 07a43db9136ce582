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


def _per_channel(params, name: str, tiled: bool = False) -> np.ndarray:
    """A per-channel parameter shaped to broadcast over a dense [C, T] array, or over a Tiled
    array [P, C, n, w]."""
    v = params[name].reshape(-1)
    if v.size == 1:  # one shared parameter (PReLU's default)
        return v.reshape(1, 1, 1, 1) if tiled else v.reshape(1, 1)
    return v.reshape(1, -1, 1, 1) if tiled else v.reshape(-1, 1)


# ---- norms ------------------------------------------------------------------------------------
def norm(x, variant: str, params: dict, layer: str, inplace: bool = False):
    if variant == "identity":
        return x
    if variant not in ("gLN", "cLN", "affine"):
        raise ValueError(f"unknown norm {variant!r}")
    if isinstance(x, Tiled):
        return x.like(_norm_tiled(x, variant, params, layer, inplace))
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


def _norm_tiled(x: Tiled, variant, params, layer, inplace) -> np.ndarray:
    """The norm over the whole [P, C, n, w] array at once, whatever its channel blocks."""
    data = x.data
    out = data if inplace else np.empty_like(data)
    gamma = _per_channel(params, f"{layer}.gamma", tiled=True)
    beta = _per_channel(params, f"{layer}.beta", tiled=True)
    if variant == "affine":
        np.multiply(data, gamma, out=out)
        out += beta
        return out
    if variant == "cLN":  # per frame, over every channel
        c = x.channels
        mean = data.sum(axis=1, keepdims=True)
        mean /= c  # [P, 1, n, w]
        np.subtract(data, mean, out=out)
        var = np.einsum("pcnw,pcnw->pnw", out, out)[:, None]  # no full-size temporary
        var /= c
        var += EPS
        np.sqrt(var, out=var)
        scale = np.reciprocal(var, out=var)
    else:  # gLN: per source, over every channel and every valid frame
        x.zero_tail()
        p, count = x.n_src, x.channels * x.length
        flat = data.reshape(p, -1)
        mean = (flat.sum(axis=1, dtype=np.float64) / count).astype(np.float32)
        np.subtract(data, mean.reshape(p, 1, 1, 1), out=out)
        x.like(out).zero_tail()
        flat_out = out.reshape(p, -1)
        var = np.einsum("pk,pk->p", flat_out, flat_out, dtype=np.float64)
        scale = (1.0 / np.sqrt(var / count + EPS)).astype(np.float32).reshape(p, 1, 1, 1)
    out *= scale
    out *= gamma
    out += beta
    return out


# ---- activations ------------------------------------------------------------------------------
def act(x, variant: str, params: dict, layer: str, inplace: bool = False):
    if variant not in ("relu", "prelu", "sigmoid"):
        raise ValueError(f"unknown activation {variant!r}")
    tiled = isinstance(x, Tiled)
    b = x.data if tiled else x
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
            a = _per_channel(params, f"{layer}.weight", tiled)
            np.copyto(o, np.where(b >= 0, b, a * b))
    return x.like(o) if tiled else o


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
            dst.data += src.data
            return dst
        return a.like(a.data + b.data)
    return as_dense(a) + as_dense(b)


def mask_mul(x, masks, n_src: int, inplace: bool = False):
    """features [C, T] times masks [n_src * C, T] -> [n_src * C, T] (P = n_src when tiled),
    into the masks' own array when nothing reads them later."""
    if isinstance(x, Tiled) and isinstance(masks, Tiled) and x.n_src == 1 and \
            masks.n_src == 1 and x.length == masks.length and \
            masks.channels == n_src * x.channels and \
            x.data.shape[2:] == masks.data.shape[2:]:
        m = masks.data.reshape((n_src,) + x.data.shape[1:])  # [n_src, C, n, w], no copy
        out = m if inplace else np.empty_like(m)
        np.multiply(m, x.data, out=out)
        return Tiled(out, x.edges, x.length)
    x, masks = as_dense(x), as_dense(masks)
    c, t = x.shape
    return (masks.reshape(n_src, c, t) * x[None]).reshape(n_src * c, t)


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
