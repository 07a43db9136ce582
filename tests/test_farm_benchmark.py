"""The farm benchmark's simulation (benchmarks/farm.py) on a tiny lattice: every strategy
certifies the true frontier, and the clock and the compile-hours add up."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from tasnet_sweep.search.lattice import PASS, Lattice, is_monotone, truth_grid

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import farm  # noqa: E402

SPACE = {"a": [1, 2, 3, 4], "b": [1, 2, 3], "c": [1, 2, 3, 4]}  # 48 points

STRATEGIES = farm.STRATEGIES | farm.FITTED_BELIEVER | farm.CLAIMS
#: (strategy, oracle seed): seeds 0 and 2 make compiles that are stopped or implied in flight
CASES = [(name, seed) for name in farm.STRATEGIES for seed in (0, 2)] + [
    (name, 2) for name in farm.FITTED_BELIEVER | farm.CLAIMS]


def tiny(seed: int) -> tuple[Lattice, np.ndarray]:
    """A random monotone oracle: pass iff dominated by one of a few random points."""
    lattice = Lattice.from_spec(SPACE)
    rng = np.random.default_rng(seed)
    tops = [dict(zip(SPACE, (rng.choice(v) for v in SPACE.values())))
            for _ in range(1 + seed % 3)]
    truth = truth_grid(lattice, lambda v: any(all(v[k] <= t[k] for k in v) for t in tops))
    assert is_monotone(truth)
    return lattice, truth


@pytest.mark.parametrize(("name", "seed"), CASES)
def test_farm_invariants(name, seed):
    lattice, truth = tiny(seed)
    durations = farm.draw_durations(truth, seed)
    walls = {}
    for workers in (1, 8):
        run = farm.simulate(lattice, truth, durations, workers,
                            STRATEGIES[name](lattice, seed))
        assert (run.knowledge.status == truth).all()  # the true frontier, certified
        points = run.compiled + [p for p, _ in run.stopped]
        assert len(points) == len(set(points))  # no point compiled twice
        assert all(0 <= hours <= durations[p] for p, hours in run.stopped)
        assert run.compile_h == pytest.approx(
            sum(durations[p] for p in run.compiled) + sum(h for _, h in run.stopped))
        assert run.wall_h >= run.compile_h / workers - 1e-9
        assert run.wall_h >= max(durations[p] for p in run.compiled) - 1e-9
        walls[workers] = run
    one = walls[1]
    assert one.wall_h == pytest.approx(one.compile_h)
    assert not one.stopped and one.implied == 0


@pytest.mark.parametrize("seed", [0, 1])
def test_one_worker_is_the_sequential_benchmark(seed):
    """With one worker the farm compiles what frontier_strategies.py's loops compile."""
    import frontier_strategies as fs

    from tasnet_sweep.search.sampler import FrontierSampler, run_search

    lattice, truth = tiny(seed)
    durations = farm.draw_durations(truth, seed)
    compiles = {name: farm.simulate(lattice, truth, durations, 1, make(lattice, seed)).compiles
                for name, make in farm.STRATEGIES.items()}
    _, sampler_calls = run_search(lattice, lambda p: bool(truth[p] == PASS),
                                  FrontierSampler(lattice, seed=seed))
    assert compiles == {"frontier, assume_running=block": sampler_calls,
                        "frontier, assume_running=fail": sampler_calls,
                        "frontier, assume_running=auto": sampler_calls,
                        "grid order + inference": fs.grid_order(lattice, truth),
                        "random order + inference": fs.random_order(lattice, truth, seed)}


def test_the_fail_setting_is_the_earlier_prototype_on_the_same_farm():
    """search.assume_running=fail in the sampler proposes what the farm's prototype did (every
    in-flight compile, and each earlier pick, assumed failed, one pick at a time)."""
    from tasnet_sweep.search.lattice import Knowledge
    from tasnet_sweep.search.sampler import FrontierSampler, assume_failed

    lattice, truth = tiny(2)
    real = farm.FrontierStrategy(lattice, 0, assume_running="fail")
    proto = FrontierSampler(lattice, seed=0)
    knowledge = Knowledge(lattice)
    running = real.propose(knowledge, 1, [])
    assert proto.propose(knowledge, 1) == running  # the same seed, the same draws so far
    for _ in range(3):
        chosen = []
        for _ in range(3):  # the prototype: the unchanged sampler on the believed copy
            got = proto.propose(assume_failed(knowledge, [*running, *chosen]), 1)
            if not got:
                break
            chosen += got
        assert real.propose(knowledge, 3, running) == chosen
        running += chosen
        done = running.pop(0)  # the oldest compile answers; the rest still run
        knowledge.record(done, bool(truth[done] == PASS))
        running = [p for p in running if p not in knowledge.observed]
        if not running:
            break


def test_auto_follows_the_recorded_times_of_the_farm():
    """With the model's durations (fails near the allocator timeout) auto keeps planning
    running compiles as failed once 3 timed compiles of each verdict are in; with fails as
    quick as passes it turns to block."""
    lattice, truth = tiny(2)
    for fail_median, on in ((None, True), (4, False)):
        strategy = farm.STRATEGIES["frontier, assume_running=auto"](lattice, 0)
        run = farm.simulate(lattice, truth, farm.draw_durations(truth, 0, fail_median), 4,
                            strategy)
        assert len(strategy.records) == run.compiles
        passes = sum(truth[p] == PASS for p in run.compiled)
        if min(passes, run.compiles - passes) >= 3:
            assert strategy.sampler.assume_running is on


def test_exact_prior_compiles_the_certificate_alone():
    """The hook for prior comparisons runs the farm; an exact prior needs only the
    certificate with one worker."""
    from tasnet_sweep.search.lattice import certificate

    lattice, truth = tiny(1)
    rows = farm.farm_with_prior(lattice, truth, truth, workers=(1, 4), seeds=(0,))
    maximal, minimal = certificate(lattice, truth)
    assert [r.workers for r in rows] == [1, 4]
    assert rows[0].runs[0].compiles == len(maximal) + len(minimal)


def test_durations_follow_the_model():
    lattice, truth = tiny(0)
    minutes = farm.draw_durations(np.tile(truth, (20, 1, 1)), 0) * 60
    passing = np.tile(truth, (20, 1, 1)) == PASS
    assert minutes[passing].min() >= 1 and minutes[passing].max() <= 30
    assert minutes[~passing].min() >= 3 and minutes[~passing].max() <= 32
    assert np.median(minutes[passing]) == pytest.approx(4, rel=0.15)
    assert (farm.draw_durations(truth, 0) == farm.draw_durations(truth, 0)).all()
    quick_fails = farm.draw_durations(np.tile(truth, (20, 1, 1)), 0, fail_median=4) * 60
    assert np.median(quick_fails[~passing]) == pytest.approx(4, rel=0.15)
