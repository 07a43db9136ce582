"""A host tensor kept in the layout the NPU units consume, so consecutive layers skip the
round trip through [C, T].

``Tiled`` holds what is densely ``[P * C, length]`` (P sources stacked on channels, as the
plan's host tensors are) as one array ``[P, C, n_tiles, width]``: source, channel, tile, frame.
Read as NCHW, every row (one source, one tile) is one unit input, so a channel block
``data[:, lo:hi]`` is a unit's input batch as it is (a view; contiguous when P = 1), host ops
run on the whole array at once whatever the blocks, and
``data.reshape(P, C, n_tiles * width)`` is the dense signal, also without a copy.  ``edges``
records the channel blocks of the layer that made it (the units' output blocks).
Frames at or past ``length`` in the last tile are padding whose content is undefined: every
reader either ignores them (per-frame ops, ``dense``) or zeroes them first (``zero_tail``:
whole-signal statistics, halos, deconv).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Tiled:
    data: np.ndarray  # [P, C, n_tiles, width], C-contiguous float32
    edges: tuple[int, ...]  # channel block edges 0 = e0 < e1 < ... = C
    length: int  # valid frames

    @property
    def channels(self) -> int:
        return self.data.shape[1]

    @property
    def n_src(self) -> int:
        return self.data.shape[0]

    @property
    def n_tiles(self) -> int:
        return self.data.shape[2]

    @property
    def width(self) -> int:
        return self.data.shape[3]

    @property
    def spans(self) -> list[tuple[int, int]]:
        return list(zip(self.edges[:-1], self.edges[1:]))

    @property
    def blocks(self) -> list[np.ndarray]:
        """One view [P, c_block, n_tiles, width] per channel block."""
        return [self.data[:, lo:hi] for lo, hi in self.spans]

    def like(self, data: np.ndarray) -> Tiled:
        return Tiled(data, self.edges, self.length)

    def same_layout(self, other) -> bool:
        return isinstance(other, Tiled) and self.length == other.length and \
            self.data.shape == other.data.shape

    def zero_tail(self) -> Tiled:
        """Zero the padding frames in place (they hold no data, so this is always safe)."""
        p, c, n, w = self.data.shape
        if self.length < n * w:
            self.data.reshape(p, c, n * w)[..., self.length:] = 0
        return self

    def dense(self) -> np.ndarray:
        """[P * C, length] float32 (a view when there is no padding)."""
        p, c, n, w = self.data.shape
        flat = self.data.reshape(p, c, n * w)
        if self.length == n * w:
            return flat.reshape(p * c, n * w)
        return np.ascontiguousarray(flat[..., :self.length]).reshape(p * c, self.length)


def halo_windows(block: np.ndarray, left: int, right: int) -> np.ndarray:
    """Each tile (row) of ``block`` [P, c, n, w] widened by ``left``/``right`` frames from its
    neighbours, zeros at the signal's ends: [P, c, n, left + w + right].  Needs
    left, right <= w and a zeroed tail."""
    p, c, n, w = block.shape
    out = np.empty((p, c, n, left + w + right), np.float32)
    out[..., left:left + w] = block
    if left:
        out[:, :, 1:, :left] = block[:, :, :-1, w - left:]
        out[:, :, 0, :left] = 0
    if right:
        out[:, :, :-1, left + w:] = block[:, :, 1:, :right]
        out[:, :, -1, left + w:] = 0
    return out
