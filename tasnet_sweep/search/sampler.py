"""Which configurations to compile next, so the unknown part of the grid shrinks fastest.

An exact frontier needs a compile of every maximal passing and every minimal failing
configuration (nothing else can vouch for them): that certificate is the lower bound.  The
frontier sampler spends its other compiles on reaching certificate points quickly:

1. Fill every unknown point with a guess and compile the unknown points on the boundary of
   that hypothesis.  The guess is the prior when one is given (an approximate oracle, e.g. the
   estimate backend before real compiles), else the nearer of a known pass below and a known
   fail above.  Real outcomes override guesses, so a wrong prior costs compiles, never a
   wrong frontier.
2. Walk: from the latest compiled point that can still move (a pass with an unknown larger
   neighbour, a fail with an unknown smaller one), pick the knob whose line through the
   point has the fewest unknown points left, try the far end of that line first, then
   bisect along it.  A walk from a pass ends on a maximal pass, a walk from a fail on a
   minimal fail; each walk adds one new certificate point.  The walk is derived from the
   history of outcomes, not kept in the sampler, so a resumed study continues where it
   stopped.
3. Start a new walk at the unknown point whose answer settles the most points in the worse
   case (the split of the unknown region closest to even).

Each proposal is a few numpy passes over the status grid (O(grid size)).  Measured on the
4,200-point reference lattice (``python benchmarks/frontier_strategies.py --seeds 10
--tpe-seeds 0``; bound = certificate size, no prior):

    walk knob            plateau oracle (bound 48)   smooth oracle (bound 437)
    first movable knob   159.1 = 3.31x               776.7 = 1.78x
    shortest line (now)  152.3 = 3.17x               780.7 = 1.79x

An exact prior compiles exactly the certificate (1.00x).  Alternatives measured and rejected
(3 seeds, plateau / smooth): pure worst-case split 6.47x / 1.25x; split with walks gated by
their split value 3.90x-6.1x / 1.26x-1.64x; maximising the chance of hitting a certificate
point 6.6x-9.7x / 1.8x-2.0x; hypothesis boundary with a knob-weighted nearest-known guess
4.19x / 1.44x.  Splitting evenly wins on smooth frontiers, walks win where knobs stop
mattering on plateaus; none of them reached 2x on the plateau oracle.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .lattice import FAIL, PASS, UNKNOWN, Knowledge, Lattice, boundary_masks

SAMPLERS = ("frontier", "tpe", "random", "grid")


def count_down(mask: np.ndarray) -> np.ndarray:
    """For each point, how many ``mask`` points it dominates (itself included)."""
    out = mask.astype(np.int64)
    for axis in range(out.ndim):
        out = np.cumsum(out, axis=axis)
    return out


def count_up(mask: np.ndarray) -> np.ndarray:
    """For each point, how many ``mask`` points dominate it (itself included)."""
    flipped = tuple(slice(None, None, -1) for _ in mask.shape)
    return count_down(mask[flipped])[flipped]


def distance_down(target: np.ndarray) -> np.ndarray:
    """Steps from each point down to the nearest ``target`` point it dominates (L1 on the
    grid; a large number where there is none).  Separable: one forward pass per axis."""
    dist = np.where(target, 0, _FAR).astype(np.int64)
    for axis in range(dist.ndim):
        view = np.moveaxis(dist, axis, 0)  # a view: writes go to dist
        for i in range(1, view.shape[0]):
            np.minimum(view[i:i + 1], view[i - 1:i] + 1, out=view[i:i + 1])
    return dist


def distance_up(target: np.ndarray) -> np.ndarray:
    """Steps from each point up to the nearest ``target`` point dominating it."""
    flipped = tuple(slice(None, None, -1) for _ in target.shape)
    return distance_down(target[flipped])[flipped]


def nearest_known_guess(status: np.ndarray) -> np.ndarray:
    """Guess each point from the nearer of a known pass below it and a known fail above it
    (UNKNOWN on a tie or when neither exists): the prior used when none is given."""
    to_pass = distance_down(status == PASS)
    to_fail = distance_up(status == FAIL)
    return np.where(to_pass < to_fail, PASS,
                    np.where(to_fail < to_pass, FAIL, UNKNOWN)).astype(np.int8)


_FAR = 1 << 40


class FrontierSampler:
    """Proposes the next configurations to compile (see the module docstring).

    ``prior``: an optional status grid from an approximate oracle (PASS / FAIL per point,
    UNKNOWN where it has no answer), e.g. a finished estimate-backend study's knowledge.
    """

    name = "frontier"

    def __init__(self, lattice: Lattice, prior: np.ndarray | None = None, seed: int = 0):
        self.lattice = lattice
        self.prior = None if prior is None else np.asarray(prior, dtype=np.int8)
        if self.prior is not None and self.prior.shape != lattice.shape:
            raise ValueError(f"prior shape {self.prior.shape} != lattice shape {lattice.shape}")
        self.rng = np.random.default_rng(seed)

    def propose(self, knowledge: Knowledge, k: int = 1,
                pending: list[tuple[int, ...]] = ()) -> list[tuple[int, ...]]:
        """Up to ``k`` unknown points to compile next, not in ``pending`` (launched, no answer
        yet); incomparable with each other and with ``pending`` as long as such points exist."""
        status = knowledge.status
        unknown = status == UNKNOWN
        for p in pending:
            unknown[p] = False
        free = unknown.copy()
        for p in pending:
            self._block(free, p)
        chosen: list[tuple[int, ...]] = []
        for pick in (self._from_prior, self._from_walks, self._from_split):
            while len(chosen) < k and free.any():
                p = pick(knowledge, free)
                if p is None:
                    break
                chosen.append(p)
                self._block(free, p)
        while len(chosen) < k:  # comparable points are better than idle workers
            for p in chosen:
                unknown[p] = False
            p = self._from_split(knowledge, unknown)
            if p is None:
                break
            chosen.append(p)
        return chosen

    def _block(self, free: np.ndarray, p) -> None:
        """A launched point settles its up- or down-set: keep other picks out of both."""
        free[self.lattice.down(p)] = False
        free[self.lattice.up(p)] = False

    def _argmax(self, score: np.ndarray, pool: np.ndarray) -> tuple[int, ...] | None:
        if not pool.any():
            return None
        ranked = np.where(pool, score + self.rng.random(score.shape) * 1e-3, -np.inf)
        return tuple(int(i) for i in np.unravel_index(int(np.argmax(ranked)), score.shape))

    def _worst_split(self, free: np.ndarray) -> np.ndarray:
        return np.minimum(count_down(free), count_up(free)).astype(float)

    def _from_prior(self, knowledge: Knowledge, free: np.ndarray):
        """An unknown point on the boundary of the hypothesis (known answers + guesses)."""
        status = knowledge.status
        guess = nearest_known_guess(status)
        if self.prior is not None:  # the prior where it has an answer, else the guess
            guess = np.where(self.prior != UNKNOWN, self.prior, guess)
        hypothesis = np.where(status == UNKNOWN, guess, status).astype(np.int8)
        maximal, minimal = boundary_masks(hypothesis)
        return self._argmax(self._worst_split(free), free & (maximal | minimal))

    def _from_walks(self, knowledge: Knowledge, free: np.ndarray):
        for p, passed in reversed(list(knowledge.observed.items())):
            q = self._walk_step(knowledge.status, free, p, passed)
            if q is not None:
                return q
        return None

    @staticmethod
    def _walk_step(status, free, p, up: bool):
        """The next point on the knob along which ``p`` can still move with the fewest unknown
        points on its line (the first such knob on a tie): the far end of the line first
        (knobs that do not matter are settled in one compile), then the midpoint of the
        unknown run next to ``p``."""
        best = None
        for axis in range(status.ndim):
            steps = range(p[axis] + 1, status.shape[axis]) if up else range(p[axis] - 1, -1, -1)
            line = [p[:axis] + (t,) + p[axis + 1:] for t in steps]
            if not line or status[line[0]] != UNKNOWN:
                continue
            if status[line[-1]] == UNKNOWN and free[line[-1]]:
                step = line[-1]
            else:
                run = [q for q in line if status[q] == UNKNOWN and free[q]]
                if not run:
                    continue
                step = run[len(run) // 2]
            left = sum(status[q] == UNKNOWN for q in line)
            if best is None or left < best[0]:
                best = (left, step)
        return None if best is None else best[1]

    def _from_split(self, knowledge: Knowledge, free: np.ndarray):
        return self._argmax(self._worst_split(free), free)


def run_search(lattice: Lattice, oracle: Callable[[tuple[int, ...]], bool], sampler,
               knowledge: Knowledge | None = None, batch_size: int = 1,
               max_compiles: int | None = None) -> tuple[Knowledge, int]:
    """Ask ``oracle`` (a compile) for the sampler's proposals until every point is known.

    Returns the knowledge and the number of oracle calls.  Used by the benchmark and the tests;
    the Hydra sweeper runs the same loop with the launcher as the oracle.
    """
    knowledge = knowledge or Knowledge(lattice)
    calls = 0
    while not knowledge.complete and (max_compiles is None or calls < max_compiles):
        batch = sampler.propose(knowledge, batch_size)
        if not batch:
            break
        for p in batch:
            knowledge.record(p, oracle(p))
            calls += 1
    return knowledge, calls


