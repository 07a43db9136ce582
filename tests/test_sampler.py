"""The frontier sampler's learned hypothesis: fitted monotone scores, spread weights, a prior
moved once compiles contradict it, exactness on random monotone functions of two shapes,
batches, fresh samplers on resumed knowledge, no scipy."""

from __future__ import annotations

import itertools
import math
import sys

import numpy as np
import pytest

from tasnet_sweep.search.lattice import (
    FAIL,
    PASS,
    UNKNOWN,
    Knowledge,
    Lattice,
    certificate,
    is_monotone,
    truth_grid,
)
from tasnet_sweep.search.sampler import (
    FrontierSampler,
    knob_groups,
    monotone_score,
    prior_distance,
    run_search,
    thermometer_features,
)

SPACE = {"model.n_blocks": [1, 2, 3, 4, 6, 8], "model.bn": [32, 64, 128],
         "model.hidden": {"low": 64, "high": 320, "step": 64}, "tiling.tile_width": [64, 256]}


def boxes(lattice: Lattice, seed: int):
    """Pass iff dominated by one of a few random points (a union of boxes)."""
    rng = np.random.default_rng(seed)
    tops = [tuple(int(rng.integers(n)) for n in lattice.shape) for _ in range(1 + seed % 4)]
    return lambda p: any(Lattice.dominates(t, p) for t in tops)


def products(lattice: Lattice, seed: int):
    """Pass iff every one of 1-3 random 'product of knobs rounded up' costs fits its cap."""
    rng = np.random.default_rng(seed)
    cons = []
    for _ in range(1 + seed % 3):
        knobs = rng.choice(len(lattice.shape), int(rng.integers(1, 4)), replace=False)
        units = [int(rng.integers(1, 3)) for _ in knobs]
        cons.append((knobs, units, int(rng.integers(2, 12))))
    return lambda p: all(math.prod(math.ceil((p[a] + 1) / u) for a, u in zip(k, us)) <= cap
                         for k, us, cap in cons)


def grid_of(lattice, oracle):
    return truth_grid(lattice, lambda v: oracle(lattice.point_of(v)))


def test_fitted_score_is_monotone_and_separates_an_additive_truth():
    lat = Lattice.from_spec(SPACE)
    weights = [3, 1, 2, 4]
    truth = grid_of(lat, lambda p: sum(w * i for w, i in zip(weights, p)) <= 9)
    features = thermometer_features(lat.shape, 1)
    assert features.shape == (lat.size, sum(n - 1 for n in lat.shape))
    known = np.full(lat.shape, UNKNOWN, dtype=np.int8)
    for p in itertools.chain(*certificate(lat, truth)):
        known[p] = truth[p]
    score = monotone_score(features, known)
    for axis in range(score.ndim):
        assert (np.diff(score, axis=axis) >= -1e-9).all()  # never smaller on a larger knob
    assert ((score < 0) == (truth == PASS)).all()  # the certificate alone pins it down


def test_pair_features_fit_an_and_of_two_constraints_that_the_additive_model_cannot():
    lat = Lattice.from_spec(SPACE)
    truth = grid_of(lat, lambda p: p[0] + p[1] <= 4 and p[2] + p[3] <= 3)
    known = np.full(lat.shape, UNKNOWN, dtype=np.int8)
    for p in itertools.chain(*certificate(lat, truth)):
        known[p] = truth[p]
    single = thermometer_features(lat.shape, 1)
    both = np.hstack([single, thermometer_features(lat.shape, 2)])
    assert ((monotone_score(both, known) < 0) == (truth == PASS)).all()
    assert ((monotone_score(single, known) < 0) != (truth == PASS)).any()


@pytest.mark.parametrize("shape_name, seed", [(s, k) for s in ("boxes", "products")
                                              for k in range(4)])
def test_exact_frontier_on_random_monotone_functions(shape_name, seed):
    lat = Lattice.from_spec(SPACE)
    oracle = (boxes if shape_name == "boxes" else products)(lat, seed)
    truth = grid_of(lat, oracle)
    assert is_monotone(truth)
    calls = []
    k, n = run_search(lat, lambda p: calls.append(p) or oracle(p), FrontierSampler(lat, seed=seed),
                      batch_size=1 + seed % 3)
    assert k.complete and (k.status == truth).all()
    assert len(calls) == len(set(calls)) == n
    maximal, minimal = certificate(lat, truth)
    assert set(maximal) | set(minimal) <= set(calls)


def test_a_fresh_sampler_on_resumed_knowledge_proposes_the_same_and_finishes_exact():
    lat = Lattice.from_spec(SPACE)
    oracle = products(lat, 5)
    truth = grid_of(lat, oracle)
    k, _ = run_search(lat, oracle, FrontierSampler(lat, seed=1), max_compiles=12)
    assert not k.complete
    resumed = Knowledge(lat)  # what the driver rebuilds from the study on resume
    for p, ok in k.observed.items():
        resumed.record(p, ok)
    assert FrontierSampler(lat, seed=4).propose(resumed, 3) == \
        FrontierSampler(lat, seed=4).propose(k, 3)
    done, more = run_search(lat, oracle, FrontierSampler(lat, seed=4), knowledge=resumed)
    assert (done.status == truth).all() and len(done.observed) == 12 + more


def test_batches_from_the_fitted_hypothesis_are_incomparable_with_pending():
    lat = Lattice.from_spec(SPACE)
    oracle = products(lat, 2)
    k, _ = run_search(lat, oracle, FrontierSampler(lat, seed=0), max_compiles=6)
    pending = FrontierSampler(lat, seed=0).propose(k, 2)
    batch = FrontierSampler(lat, seed=0).propose(k, 4, pending=pending)
    assert len(batch) == 4 and not set(batch) & set(pending)
    assert all(k.outcome(p) is None for p in batch)
    for a, b in itertools.combinations(batch + pending, 2):  # 6 compiles in: room enough
        assert not Lattice.dominates(a, b) and not Lattice.dominates(b, a)


def test_without_scipy_the_sampler_falls_back_and_stays_exact(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.optimize", None)  # import raises ImportError
    lat = Lattice.from_spec(SPACE)
    assert monotone_score(thermometer_features(lat.shape, 1),
                          np.full(lat.shape, FAIL, dtype=np.int8)) is None
    oracle = boxes(lat, 3)
    k, _ = run_search(lat, oracle, FrontierSampler(lat, seed=0))
    assert (k.status == grid_of(lat, oracle)).all()


def test_spread_weights_put_the_guessed_boundary_midway_between_a_pass_and_a_fail():
    lat = Lattice.from_spec({"model.n_blocks": {"low": 1, "high": 9}, "model.bn": [32, 64]})
    known = np.full(lat.shape, UNKNOWN, dtype=np.int8)
    known[0, 0], known[8, 0] = PASS, FAIL  # one pass at the bottom, one fail at the top
    features = thermometer_features(lat.shape, 1)
    groups = knob_groups(lat.shape, 1)
    assert [len(g) for g in groups] == [8, 1]
    assert sorted(j for g in groups for j in g) == list(range(features.shape[1]))

    def first_fail_level(score):
        return int(np.argmax(score[:, 0] > 0))

    corner = monotone_score(features, known)
    spread = monotone_score(features, known, spread=groups)
    assert first_fail_level(corner) in (1, 8)  # the whole step next to a known answer
    assert 3 <= first_fail_level(spread) <= 5  # even steps: the middle of the line
    assert (np.diff(spread, axis=0) >= -1e-9).all()


def test_prior_distance_orders_the_prior_pass_region_below_its_fail_region():
    lat = Lattice.from_spec(SPACE)
    prior = grid_of(lat, products(lat, 4))
    d = prior_distance(prior)
    for axis in range(d.ndim):
        assert (np.diff(d, axis=axis) >= -1e-12).all()
    assert d[prior == PASS].max() < d[prior == FAIL].min()
    assert d.min() == 0.0 and d.max() == 1.0


def test_a_contradicted_prior_is_moved_and_costs_fewer_compiles_than_following_it():
    lat = Lattice.from_spec(SPACE)
    truth = grid_of(lat, lambda p: sum(p) <= 5)
    shifted = grid_of(lat, lambda p: sum(p) <= 8)  # an estimate three steps too optimistic

    class FollowsThePrior(FrontierSampler):
        def _prior_contradicted(self, knowledge):
            return False

    oracle = lambda p: bool(truth[p] == PASS)  # noqa: E731
    k_moved, moved = run_search(lat, oracle, FrontierSampler(lat, prior=shifted, seed=0))
    k_plain, plain = run_search(lat, oracle, FollowsThePrior(lat, prior=shifted, seed=0))
    assert (k_moved.status == truth).all() and (k_plain.status == truth).all()
    assert moved < 0.8 * plain  # measured 58 vs 101
    exact, n = run_search(lat, oracle, FrontierSampler(lat, prior=truth, seed=0))
    maximal, minimal = certificate(lat, truth)
    assert n == len(maximal) + len(minimal)  # never contradicted: the prior as it is
