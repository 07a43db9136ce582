"""Which configurations to compile next, so the unknown part of the grid shrinks fastest.

An exact frontier needs a compile of every maximal passing and every minimal failing
configuration (nothing else can vouch for them): that certificate is the lower bound.  The
frontier sampler spends its other compiles on reaching certificate points quickly:

1. Fill every unknown point with a guess and compile the unknown points on the boundary of
   that hypothesis.  Real outcomes override guesses, so a wrong guess costs compiles, never
   a wrong frontier.
   - With a prior (an approximate oracle, e.g. the estimate backend before real compiles)
     the guess is the prior.  Once a compile contradicts it, the prior is taken as off by
     some margin: the two fitted scores below get the prior's signed distance to its own
     boundary as one more, cheap, feature, so they can move the prior's boundary instead of
     re-learning its shape.  Proposals come from their committee and from the points where
     the additive one agrees with the prior, those on the prior's own boundary first.
     Points the prior marks UNCERTAIN (the estimate lay inside a recorded bracket: it cannot
     tell) are no guess at all; they are proposed before anything else, since only a real
     compile can answer them and each answer settles its up- or down-set.
   - Without a prior the guess is learned: two monotone scores (``monotone_score``: an
     L1-sparse linear programme over 0/1 "knob >= level" features) are fitted to the extreme
     known points, and only points on the boundary of BOTH are proposed (a committee: where
     the models disagree, the walks decide).  One is additive with its weight spread evenly
     over each knob's levels, so its boundary falls midway between the evidence and a miss
     still halves the gap; the other also has pairs of knobs and hugs the evidence.
2. Walk: from the latest compiled point that can still move (a pass with an unknown larger
   neighbour, a fail with an unknown smaller one), pick the knob whose line through the
   point has the fewest unknown points left, try the far end of that line first, then
   bisect along it.  A walk from a pass ends on a maximal pass, a walk from a fail on a
   minimal fail; each walk adds one new certificate point.  The walk is derived from the
   history of outcomes, not kept in the sampler, so a resumed study continues where it
   stopped.
3. Start a new walk at the unknown point whose answer settles the most points in the worse
   case (the split of the unknown region closest to even).

A proposal costs two small linear programmes (scipy's HiGHS; about 10-50 ms on 4,200
points, growing with the number of known extreme points) plus a few numpy passes over the
grid.  Without scipy the sampler falls back to the nearest-known guess.  Figures, and the
strategies measured and rejected: benchmarks/frontier_strategies.md.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

from .lattice import FAIL, PASS, UNCERTAIN, UNKNOWN, Knowledge, Lattice, boundary_masks


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


def prior_distance(prior: np.ndarray) -> np.ndarray:
    """Signed steps from each point to the prior's boundary, scaled to 0..1 and
    non-decreasing in every knob: low deep inside the prior's pass region, high deep inside
    its fail region.  As a feature of a fitted score it lets the fit learn how far the
    prior's boundary is off (a threshold) instead of re-learning its shape."""
    to_fail = np.minimum(distance_up(prior == FAIL), _PRIOR_REACH)
    to_pass = np.minimum(distance_down(prior == PASS), _PRIOR_REACH)
    signed = np.where(prior == PASS, 0.5 - to_fail,
                      np.where(prior == FAIL, to_pass - 0.5, 0.0)).astype(float)
    span = signed.max() - signed.min()
    return (signed - signed.min()) / span if span > 0 else np.zeros_like(signed)


_FAR = 1 << 40
_PRIOR_REACH = 64  # steps; farther than any grid we search
_MAX_FEATURE_CELLS = 4_000_000  # grid points x features of the degree-2 model, else degree 1


def thermometer_features(shape: tuple[int, ...], degree: int) -> np.ndarray:
    """Monotone 0/1 features of every grid point, one row per point in C order:
    ``[i_a >= t]`` per knob and level (degree 1) and ``[i_a >= t][i_b >= u]`` per pair of
    knobs (degree 2).  A non-negative combination of them is non-decreasing in every knob."""
    index = np.indices(shape).reshape(len(shape), -1)
    cols = []
    for knobs in itertools.combinations(range(len(shape)), degree):
        for levels in itertools.product(*(range(1, shape[a]) for a in knobs)):
            col = np.ones(index.shape[1], dtype=bool)
            for a, t in zip(knobs, levels):
                col &= index[a] >= t
            cols.append(col)
    if not cols:
        return np.zeros((index.shape[1], 0), dtype=np.float32)
    return np.stack(cols, axis=1).astype(np.float32)


def knob_groups(shape: tuple[int, ...], degree: int) -> list[list[int]]:
    """Column indices of ``thermometer_features(shape, degree)``, one list per knob (or pair
    of knobs): the levels whose weights ``monotone_score(spread=...)`` spreads evenly."""
    groups, col = [], 0
    for knobs in itertools.combinations(range(len(shape)), degree):
        n = int(np.prod([shape[a] - 1 for a in knobs]))
        if n:
            groups.append(list(range(col, col + n)))
        col += n
    return groups


def monotone_score(features: np.ndarray, status: np.ndarray, weight_cost=1.0,
                   slack_cost: float = 100.0, spread: list[list[int]] | None = None,
                   spread_cost: float = 0.05) -> np.ndarray | None:
    """A monotone score over the grid fitted to the known answers: < 0 guesses pass.

    Linear programme: ``score = features @ w - c`` with ``w >= 0`` (so the score grows with
    every knob), known passes at <= -1 and known fails at >= +1, minimising
    ``sum(weight_cost * w)`` plus a penalty on violations.  The L1 norm keeps ``w`` sparse,
    so knobs and levels the answers do not need get no weight and the guess extends plateaus
    along them.  Only the extreme known
    points constrain a monotone score (the largest passes, the smallest fails).  None when
    nothing is known or scipy is missing.

    The L1 norm is the same whichever level of a knob carries the weight, and the solver then
    returns a corner: the whole step on the level next to a known answer, so the guessed
    boundary hugs the evidence and each proposal moves it by one level.  ``spread`` (groups of
    columns, see ``knob_groups``) adds ``spread_cost`` x the largest weight in each group,
    which breaks that tie toward even steps: the boundary then falls midway between the known
    pass and the known fail, and a proposal on it bisects.
    """
    try:
        from scipy import sparse
        from scipy.optimize import linprog
    except ImportError:  # scipy comes with mlflow; without it the sampler uses plain guesses
        return None
    passing, failing = status == PASS, status == FAIL
    top_pass = (passing & (count_up(passing) == 1)).ravel()
    low_fail = (failing & (count_down(failing) == 1)).ravel()
    rows = np.vstack([np.hstack([features[top_pass], -np.ones((int(top_pass.sum()), 1))]),
                      np.hstack([-features[low_fail], np.ones((int(low_fail.sum()), 1))])])
    m, nf = rows.shape[0], features.shape[1]
    if m == 0:
        return None
    weight_cost = np.broadcast_to(np.asarray(weight_cost, dtype=float), (nf,))
    groups = spread or []
    # variables: weights (nf), threshold, one slack per known point, one maximum per group
    a_ub = sparse.hstack([sparse.csr_matrix(rows), -sparse.identity(m, format="csr"),
                          sparse.csr_matrix((m, len(groups)))])
    b_ub = -np.ones(m)
    if groups:  # w_j - max_g <= 0 for every column j of group g
        cols = [j for g in groups for j in g]
        owner = [i for i, g in enumerate(groups) for _ in g]
        n = len(cols)
        caps = sparse.csr_matrix(
            (np.r_[np.ones(n), -np.ones(n)],
             (np.r_[np.arange(n), np.arange(n)], np.r_[cols, np.array(owner) + nf + 1 + m])),
            shape=(n, nf + 1 + m + len(groups)))
        a_ub = sparse.vstack([a_ub, caps])
        b_ub = np.r_[b_ub, np.zeros(n)]
    group_cost = [spread_cost * float(weight_cost[g].sum()) for g in groups]
    cost = np.concatenate([weight_cost, [0.0], np.full(m, slack_cost), group_cost])
    bounds = [(0, None)] * nf + [(None, None)] + [(0, None)] * (m + len(groups))
    res = linprog(cost, A_ub=a_ub.tocsr(), b_ub=b_ub, bounds=bounds, method="highs")
    if res.x is None:
        return None
    return (features @ res.x[:nf] - res.x[nf]).reshape(status.shape)


class FrontierSampler:
    """Proposes the next configurations to compile (see the module docstring); a
    ``proposers.Proposer``, ``search.sampler=frontier``.

    ``prior``: an optional status grid from an approximate oracle (PASS / FAIL per point,
    UNKNOWN where it has no answer), e.g. a finished estimate-backend study's knowledge.
    UNCERTAIN points (the estimate was unsure: inside a recorded bracket) are UNKNOWN to the
    hypothesis, and are proposed first, the one that splits the unknown region most evenly
    first, until a compile or inference answers each.

    ``assume_running`` (``search.assume_running``, set by the driver each step): plan as if
    every running compile (``propose(running=...)``) had already failed, one pick at a time,
    each pick assumed to fail too before the next (a "constant liar").  A running point's
    up-set is then not proposed, while its down-set stays open and the walks continue below
    it.  It pays when fails take clearly longer than passes (an allocator timeout against a
    few minutes): the compiles a running fail would have made unneeded are the expensive ones.
    Off, a running point blocks both its up- and its down-set, like ``pending``.
    Figures: benchmarks/farm.md.
    """

    name = "frontier"
    exhaustive = True  # proposes while any allowed unknown point is not pending

    def __init__(self, lattice: Lattice, prior: np.ndarray | None = None, seed: int = 0,
                 assume_running: bool = False):
        self.lattice = lattice
        self.assume_running = assume_running
        self._assumed: frozenset = frozenset()  # points assumed failed in the current plan
        self.prior = None if prior is None else np.asarray(prior, dtype=np.int8)
        if self.prior is not None and self.prior.shape != lattice.shape:
            raise ValueError(f"prior shape {self.prior.shape} != lattice shape {lattice.shape}")
        self.uncertain = None  # the prior's UNCERTAIN points, compiled first
        if self.prior is not None and (self.prior == UNCERTAIN).any():
            self.uncertain = self.prior == UNCERTAIN
            self.prior = np.where(self.uncertain, UNKNOWN, self.prior).astype(np.int8)
        self.rng = np.random.default_rng(seed)
        self._features: list | None = None  # built on first use
        self._prior_features: list | None = None  # likewise, when there is a prior
        self._hypothesis_pool: np.ndarray | None = None  # per propose() call

    def propose(self, knowledge: Knowledge, room: int = 1, pending: list[tuple[int, ...]] = (),
                allowed: np.ndarray | None = None,
                running: list[tuple[int, ...]] = ()) -> list[tuple[int, ...]]:
        """Up to ``room`` unknown points to compile next, not in ``pending`` (errored, held, ...)
        nor ``running`` (claimed and being compiled now, by this or other workers);
        incomparable with each other and with ``pending`` as long as such points exist.
        ``allowed``: a boolean grid; points outside it are never proposed (e.g. configs that
        cannot beat the best known pass on ``search.objective``).  Running points are planned
        as failed when ``assume_running`` is set, else they are pending; with nothing running
        the proposal is the same either way."""
        running = [tuple(int(i) for i in p) for p in running]
        running = [p for p in running if knowledge.status[p] == UNKNOWN]
        if not running:
            return self._propose(knowledge, room, pending, allowed)
        if not self.assume_running:
            return self._propose(knowledge, room, [*pending, *running], allowed)
        chosen: list[tuple[int, ...]] = []
        while len(chosen) < room:
            believed = assume_failed(knowledge, [*running, *chosen])
            self._assumed = frozenset(believed.observed) - frozenset(knowledge.observed)
            try:
                got = self._propose(believed, 1, pending, allowed)
            finally:
                self._assumed = frozenset()
            if not got:
                break
            chosen += got  # unknown in the believed copy, so unknown and not running
        return chosen

    def _propose(self, knowledge: Knowledge, room: int, pending, allowed) -> list:
        status = knowledge.status
        unknown = status == UNKNOWN
        if allowed is not None:
            unknown &= allowed
        for p in pending:
            unknown[p] = False
        free = unknown.copy()
        for p in pending:
            self._block(free, p)
        self._hypothesis_pool = None
        chosen: list[tuple[int, ...]] = []
        for pick in (self._from_uncertain, self._from_prior, self._from_walks, self._from_split):
            while len(chosen) < room and free.any():
                p = pick(knowledge, free)
                if p is None:
                    break
                chosen.append(p)
                self._block(free, p)
        while len(chosen) < room:  # comparable points are better than idle workers
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

    def _from_uncertain(self, knowledge: Knowledge, free: np.ndarray):
        """An unknown point where the prior's estimate was unsure: the real compile it needs
        anyway, the one splitting the unknown region most evenly first."""
        if self.uncertain is None:
            return None
        return self._argmax(self._worst_split(free), free & self.uncertain)

    def _from_prior(self, knowledge: Knowledge, free: np.ndarray):
        """An unknown point on the boundary of the hypothesis (known answers + guesses)."""
        if self._hypothesis_pool is None:
            self._hypothesis_pool = self._hypothesis_boundary(knowledge)
        return self._argmax(self._worst_split(free), free & self._hypothesis_pool)

    def _hypothesis_boundary(self, knowledge: Knowledge) -> np.ndarray:
        """Where the hypothesis puts maximal passing / minimal failing points.

        With a prior: the prior where it answers, else the nearest known answer -- until a
        compile contradicts the prior.  From then on the prior is taken as off by some margin:
        the fitted scores, with the prior's signed distance (``prior_distance``) as a feature,
        move its boundary; proposed are the points on the boundary of both moved scores, or
        of the additive one and the prior, those also on the prior's boundary first.
        Without a prior: the points on the boundary of both fitted monotone scores
        (additive, and with pairs of knobs) -- a committee, so a guess one model alone makes
        is left to the walks."""
        status = knowledge.status
        if self.prior is not None:
            guess = np.where(self.prior != UNKNOWN, self.prior, nearest_known_guess(status))
            plain = self._boundary_of([guess], status)
            if not self._prior_contradicted(knowledge):
                return plain
            moved = self._fitted_guesses(status, self._prior_models(), fallback=guess)
            if not moved:
                return plain
            pool = self._boundary_of(moved, status) | (self._boundary_of(moved[:1], status)
                                                       & plain)
            on_prior = pool & plain
            return on_prior if (on_prior & (status == UNKNOWN)).any() else pool
        guesses = self._fitted_guesses(status, self._model_features())
        return self._boundary_of(guesses or [nearest_known_guess(status)], status)

    def _prior_contradicted(self, knowledge: Knowledge) -> bool:
        return any(self.prior[p] != UNKNOWN and (self.prior[p] == PASS) != passed
                   for p, passed in knowledge.observed.items() if p not in self._assumed)

    @staticmethod
    def _fitted_guesses(status: np.ndarray, models, fallback=None) -> list[np.ndarray]:
        """One guess grid per fitted model (``fallback`` on a fitted boundary itself, the
        nearest known answer by default); [] when any fit is impossible (no scipy)."""
        guesses = []
        near = nearest_known_guess(status) if fallback is None else fallback
        for features, weight_cost, spread in models:
            score = monotone_score(features, status, weight_cost, spread=spread)
            if score is None:
                return []
            guess = np.where(score < -1e-9, PASS, np.where(score > 1e-9, FAIL, UNKNOWN))
            guesses.append(np.where(guess == UNKNOWN, near, guess).astype(np.int8))
        return guesses

    @staticmethod
    def _boundary_of(guesses: list[np.ndarray], status: np.ndarray) -> np.ndarray:
        """Points on the boundary of every hypothesis (known answers + that guess)."""
        pool = np.ones(status.shape, dtype=bool)
        for guess in guesses:
            hypothesis = np.where(status == UNKNOWN, guess, status).astype(np.int8)
            maximal, minimal = boundary_masks(hypothesis)
            pool &= maximal | minimal
        return pool

    def _prior_models(self) -> list[tuple[np.ndarray, np.ndarray, list | None]]:
        """The models of ``_model_features`` with the prior's signed distance as a first
        column: cheap (cost 0.1), so a fit leans on the prior and adds knobs where the
        outcomes disagree with it."""
        if self._prior_features is None:
            distance = prior_distance(self.prior).reshape(-1, 1).astype(np.float32)
            self._prior_features = [
                (np.hstack([distance, features]), np.r_[0.1, cost],
                 None if spread is None else [[j + 1 for j in g] for g in spread])
                for features, cost, spread in self._model_features()]
        return self._prior_features

    def _model_features(self) -> list[tuple[np.ndarray, np.ndarray, list | None]]:
        """(features, cost per feature, spread groups) of the additive model, whose weights
        are spread over each knob's levels (its boundary bisects the evidence), and, when the
        grid is small enough, of the model with pairs of knobs (a pair feature costs twice a
        single one; fitted to the corner, so the two models disagree where evidence is thin)."""
        if self._features is None:
            shape = self.lattice.shape
            single = thermometer_features(shape, 1)
            self._features = ([(single, np.ones(single.shape[1]), knob_groups(shape, 1))]
                              if single.shape[1] else [])
            pairs = sum((a - 1) * (b - 1) for a, b in itertools.combinations(shape, 2))
            if single.shape[1] and 0 < self.lattice.size * pairs <= _MAX_FEATURE_CELLS:
                both = np.hstack([single, thermometer_features(shape, 2)])
                cost = np.concatenate([np.ones(single.shape[1]), np.full(pairs, 2.0)])
                self._features.append((both, cost, None))
        return self._features

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


def assume_failed(knowledge: Knowledge, points) -> Knowledge:
    """A copy of ``knowledge`` in which each of ``points`` still unknown has failed, in order
    (a point an earlier one's assumed fail implies is skipped)."""
    believed = Knowledge(knowledge.lattice)
    believed.status = knowledge.status.copy()
    believed.observed = dict(knowledge.observed)
    for p in points:
        if believed.status[p] == UNKNOWN:
            believed.record(p, False)
    return believed


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


