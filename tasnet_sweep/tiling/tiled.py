"""A host tensor kept in the layout the NPU units consume, so consecutive layers skip the
round trip through [C, T].

``Tiled`` holds what is densely ``[P * C, length]`` (P sources stacked on channels, as the
plan's host tensors are) as one array per channel block, each ``[P, c_block, n_tiles, width]``:
source, channel, tile, frame.  Read as NCHW, every row (one source, one tile) is one unit
input, so a block is a unit's input batch as it is, without a copy; and
``block.reshape(P, c_block, n_tiles * width)`` is the block's dense signal, also without a copy.
Frames at or past ``length`` in the last tile are padding whose content is undefined: every
reader either ignores them (per-frame ops, ``dense``) or zeroes them first (``zero_tail``:
whole-signal statistics, halos, deconv).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Tiled:
    blocks: list[np.ndarray]  # [P, c_block, n_tiles, width] each, C-contiguous float32
    edges: tuple[int, ...]  # channel block edges 0 = e0 < e1 < ... = C
    length: int  # valid frames

    @property
    def channels(self) -> int:
        return self.edges[-1]

    @property
    def n_src(self) -> int:
        return self.blocks[0].shape[0]

    @property
    def n_tiles(self) -> int:
        return self.blocks[0].shape[2]

    @property
    def width(self) -> int:
        return self.blocks[0].shape[3]

    @property
    def spans(self) -> list[tuple[int, int]]:
        return list(zip(self.edges[:-1], self.edges[1:]))

    def block(self, span: tuple[int, int]) -> np.ndarray | None:
        """The block covering exactly channels ``span``, if there is one."""
        try:
            return self.blocks[self.spans.index(tuple(span))]
        except ValueError:
            return None

    def like(self, blocks: list[np.ndarray]) -> Tiled:
        return Tiled(blocks, self.edges, self.length)

    def same_layout(self, other) -> bool:
        return isinstance(other, Tiled) and self.edges == other.edges and \
            self.length == other.length and self.blocks[0].shape == other.blocks[0].shape

    def zero_tail(self) -> Tiled:
        """Zero the padding frames in place (they hold no data, so this is always safe)."""
        for b in self.blocks:
            p, c, n, w = b.shape
            if self.length < n * w:
                b.reshape(p, c, n * w)[..., self.length:] = 0
        return self

    def dense(self) -> np.ndarray:
        """[P * C, length] float32."""
        p, _, n, w = self.blocks[0].shape
        out = np.empty((p, self.channels, self.length), np.float32)
        for (lo, hi), b in zip(self.spans, self.blocks):
            out[:, lo:hi] = b.reshape(p, hi - lo, n * w)[..., :self.length]
        return out.reshape(p * self.channels, self.length)


def from_unit_outputs(parts: dict[tuple[int, int], np.ndarray], length: int) -> Tiled:
    """Reconstructed unit outputs ``{(lo, hi): [P, c, n_tiles, width]}`` as a Tiled."""
    spans = sorted(parts)
    edges = (spans[0][0],) + tuple(hi for _, hi in spans)
    if edges[0] != 0 or any(a[1] != b[0] for a, b in zip(spans, spans[1:])):
        raise ValueError(f"output blocks {spans} do not tile the channels")
    return Tiled([parts[s] for s in spans], edges, length)


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
