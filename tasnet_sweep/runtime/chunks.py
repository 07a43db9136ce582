"""Separating a whole file: the plan run stage by stage (timed) on overlapping chunks that are
crossfaded back together, each chunk's sources reordered to match the previous chunk's.

A separation network may emit its sources in any order, and may pick a different order for
the next chunk; the overlap region decides which order continues the previous chunk best.
"""

from __future__ import annotations

import itertools
import sys
import time

import numpy as np

from ..tiling.stitch import STAGES, run_plan


def chunk_spans(n: int, chunk: int, overlap: float) -> list[tuple[int, int]]:
    """[start, stop) spans of at most ``chunk`` samples covering ``n``, sharing ~overlap."""
    if chunk <= 0 or n <= chunk:
        return [(0, n)]
    hop = max(1, int(round(chunk * (1 - overlap))))
    starts = list(range(0, n - chunk + 1, hop))
    if starts[-1] + chunk < n:
        starts.append(n - chunk)
    return [(s, s + chunk) for s in starts]


def run_timed(plan, params, executor, wav: np.ndarray, stage_s: dict) -> np.ndarray:
    """[T] -> [n_src, T]; adds each stage's seconds to ``stage_s``."""
    env = {"wav": np.asarray(wav, np.float32).reshape(1, -1)}
    for stage in STAGES:
        t0 = time.perf_counter()
        env = run_plan(plan, params, executor, env, stages=(stage,))
        stage_s[stage] = stage_s.get(stage, 0.0) + time.perf_counter() - t0
    return env["sources"]


def _best_order(prev: np.ndarray, new: np.ndarray) -> tuple[int, ...]:
    """The permutation of ``new``'s sources that correlates best with ``prev`` (both [S, T])."""
    n_src = prev.shape[0]
    if n_src > 6 or prev.shape[-1] == 0:
        return tuple(range(n_src))
    def score(order):
        return sum(float(np.dot(prev[i], new[j])) /
                   (np.linalg.norm(prev[i]) * np.linalg.norm(new[j]) + 1e-12)
                   for i, j in enumerate(order))
    return max(itertools.permutations(range(n_src)), key=score)


def _fade(length: int, fade_in: int, fade_out: int) -> np.ndarray:
    w = np.ones(length, np.float32)
    if fade_in:
        w[:fade_in] = (np.arange(fade_in) + 0.5) / fade_in
    if fade_out:
        w[length - fade_out:] = np.minimum(w[length - fade_out:],
                                           (np.arange(fade_out)[::-1] + 0.5) / fade_out)
    return w


def separate_file(plan, params, executor, wav: np.ndarray, chunk: int, overlap: float,
                  progress: bool = True) -> tuple[np.ndarray, dict]:
    """Waveform [T] -> (sources [n_src, T], timings in seconds by stage and chunk count)."""
    n = wav.shape[-1]
    spans = chunk_spans(n, chunk, overlap)
    n_src = plan.model["n_src"]
    acc = np.zeros((n_src, n), np.float64)
    weight = np.zeros(n, np.float64)
    stage_s: dict[str, float] = {}
    t_start = time.perf_counter()
    for k, (a, b) in enumerate(spans):
        y = run_timed(plan, params, executor, wav[a:b], stage_s)
        prev_stop = spans[k - 1][1] if k else a
        shared = max(0, prev_stop - a)
        if shared:
            done = acc[:, a:prev_stop] / np.maximum(weight[a:prev_stop], 1e-12)
            y = y[list(_best_order(done, y[:, :shared]))]
        fade_out = max(0, b - spans[k + 1][0]) if k + 1 < len(spans) else 0
        w = _fade(b - a, shared, fade_out)
        acc[:, a:b] += y * w
        weight[a:b] += w
        if progress and len(spans) > 1:
            elapsed = time.perf_counter() - t_start
            print(f"separate: chunk {k + 1}/{len(spans)} samples {a}-{b} "
                  f"({elapsed:.2f} s elapsed)", file=sys.stderr, flush=True)
    out = (acc / np.maximum(weight, 1e-12)).astype(np.float32)
    return out, {"stages_s": stage_s, "chunks": len(spans)}
