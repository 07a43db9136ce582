"""search.assume_running: the frontier sampler plans around compiles other workers are running
(assumed to fail, or blocked like pending), never proposes one of them, proposes as before when
nothing runs, and ``auto`` follows the recorded compile times."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from omegaconf import OmegaConf

from tasnet_sweep.config import SearchConfig, validate_search
from tasnet_sweep.search import driver
from tasnet_sweep.search.lattice import FAIL, PASS, UNKNOWN, Knowledge, Lattice, truth_grid
from tasnet_sweep.search.proposers import OptunaProposer, fails_take_longer
from tasnet_sweep.search.sampler import FrontierSampler
from tasnet_sweep.search.study import FrontierStudy

SPACE = {"model.n_blocks": [1, 2, 3, 4, 6, 8], "model.bn": [32, 64, 128],
         "model.hidden": {"low": 64, "high": 320, "step": 64}}


def _truth(lat, seed):
    """Pass iff dominated by one of a few random points (a union of boxes)."""
    rng = np.random.default_rng(seed)
    tops = [tuple(int(rng.integers(n)) for n in lat.shape) for _ in range(1 + seed % 3)]
    return truth_grid(lat, lambda v: any(Lattice.dominates(t, lat.point_of(v)) for t in tops))


def _states(lat, truth, seed, steps=6):
    """Knowledge after 0, 1, ... compiles of a sampler's proposals."""
    k, sampler = Knowledge(lat), FrontierSampler(lat, seed=seed)
    for _ in range(steps):
        yield k
        got = sampler.propose(k, 1)
        if not got:
            return
        k.record(got[0], bool(truth[got[0]] == PASS))


@pytest.mark.parametrize("seed", [0, 2])
@pytest.mark.parametrize("assume", [True, False])
def test_a_running_point_is_never_proposed_and_a_fail_assumed_keeps_off_its_up_set(seed,
                                                                                  assume):
    lat = Lattice.from_spec(SPACE)
    truth = _truth(lat, seed)
    for k in _states(lat, truth, seed):
        unknown = [tuple(int(i) for i in p) for p in np.argwhere(k.status == UNKNOWN)]
        running = [unknown[i] for i in np.random.default_rng(seed).permutation(len(unknown))[:3]]
        for room in (1, 4):
            got = FrontierSampler(lat, seed=seed, assume_running=assume).propose(
                k, room, running=running)
            assert got and len(got) == len(set(got)) <= room
            assert not set(got) & set(running)
            assert all(k.status[p] == UNKNOWN for p in got)
            if assume:  # a running point assumed failed settles its up-set in the plan
                assert not any(lat.dominates(p, r) for p in got for r in running)


@pytest.mark.parametrize("seed", [0, 2])
def test_with_nothing_running_the_proposals_are_the_same_either_way(seed):
    """One worker never has anything running while it proposes: the setting changes nothing
    (and running points already answered count as nothing running)."""
    lat = Lattice.from_spec(SPACE)
    truth = _truth(lat, seed)
    for k in _states(lat, truth, seed):
        known = [tuple(int(i) for i in p) for p in np.argwhere(k.status != UNKNOWN)][:2]
        for room in (1, 3):
            plain = FrontierSampler(lat, seed=seed).propose(k, room)
            assert FrontierSampler(lat, seed=seed, assume_running=True).propose(
                k, room, running=()) == plain
            assert FrontierSampler(lat, seed=seed, assume_running=True).propose(
                k, room, running=known) == plain


def test_a_fail_assumed_with_a_prior_does_not_count_as_contradicting_it():
    """A running point the prior passes, assumed failed for planning, must not switch the
    sampler to "prior contradicted" (moved fits): the plan follows the prior as before."""
    lat = Lattice.from_spec(SPACE)
    truth = _truth(lat, 1)
    sampler = FrontierSampler(lat, prior=truth, seed=0, assume_running=True)
    k = Knowledge(lat)
    running = sampler.propose(k, 1)
    assert truth[running[0]] == PASS or truth[running[0]] == FAIL
    seen = []
    original = sampler._prior_contradicted
    sampler._prior_contradicted = lambda knowledge: seen.append(original(knowledge)) or seen[-1]
    sampler.propose(k, 1, running=running)
    assert seen and not any(seen)


def _timed(lat, passes, fails):
    """Knowledge and records of compiles with those times (seconds)."""
    k, records = Knowledge(lat), {}
    for i, seconds in enumerate(passes):
        p = (0, 0, i)
        k.record(p, True)
        records[p] = {"verdict": "pass", "compile_seconds": seconds}
    for i, seconds in enumerate(fails):
        p = (5, 2, i)
        k.record(p, False)
        records[p] = {"verdict": "fail", "compile_seconds": seconds}
    return k, records


@pytest.mark.parametrize(("passes", "fails", "told", "on"), [
    ([240, 200, 300], [1500, 1800, 1900], True, True),  # fails run to the allocator timeout
    ([240, 200, 300], [250, 260, 230], False, False),  # as quick as passes
    ([240, 200, 300], [480, 400, 900], True, True),  # 2x passes, median against median
    ([240, 200, 300], [250, 900, 230], False, False),  # one long fail is not the median
    ([240, 200, 300], [250, 260], None, True),  # too few timed fails to tell: assumed
    ([], [], None, True),  # nothing timed yet (the start of a search)
])
def test_auto_assumes_fails_until_recorded_times_show_they_are_not_clearly_longer(
        passes, fails, told, on):
    lat = Lattice.from_spec(SPACE)
    k, records = _timed(lat, passes, fails)
    assert fails_take_longer(k, records) is told
    state = driver.SearchRun(k, records, compiled_before=0, assume_running="auto")
    sampler = FrontierSampler(lat, assume_running=not on)
    driver._plan_running(state, sampler, [])
    assert sampler.assume_running is on
    for setting, expected in (("fail", True), ("block", False)):
        state.assume_running = setting
        driver._plan_running(state, sampler, [])
        assert sampler.assume_running is expected
    driver._plan_running(state, object(), [])  # a proposer without the attribute is left alone


def test_auto_tells_of_a_turn_only_while_other_workers_compile(caplog):
    """A lone worker has no running compiles to plan around: the switch is not logged to it;
    once another worker's compile runs, the plan in force is logged, once."""
    lat = Lattice.from_spec(SPACE)
    k, records = _timed(lat, [240, 200, 300], [250, 260, 230])  # fails as quick: block
    state = driver.SearchRun(k, records, compiled_before=0, assume_running="auto")
    sampler = FrontierSampler(lat, assume_running=True)
    with caplog.at_level(logging.INFO, logger=driver.log.name):
        driver._plan_running(state, sampler, [])
        assert sampler.assume_running is False and not caplog.records
        driver._plan_running(state, sampler, [(0, 0)])
        driver._plan_running(state, sampler, [(0, 0)])
    told = [r.getMessage() for r in caplog.records]
    assert len(told) == 1 and "running compiles are blocked" in told[0], told


def test_the_driver_passes_other_workers_live_claims_as_running(tmp_path):
    """Another worker's claim (this host, a live process, beating) is running: the proposal
    keeps off it and, with search.assume_running=fail, off its up-set; released, it is not.
    (This worker's own claims are running for the others.)"""
    lat = Lattice.from_spec(SPACE)
    journal = str(tmp_path / "s.journal")
    other = FrontierStudy(lat, "s", journal)
    mine = FrontierStudy(lat, "s", journal)
    held = (2, 1, 2)
    claim = other.claim(held)
    assert claim is not None and driver.running_claims(mine) == [held]
    state = driver.SearchRun(Knowledge(lat), {}, compiled_before=0, assume_running="fail")
    seen = []

    class Spy(FrontierSampler):
        def propose(self, knowledge, room=1, pending=(), allowed=None, running=()):
            seen.append((list(running), self.assume_running))
            return super().propose(knowledge, room, pending, allowed, running)

    got = driver._claim_proposals(state, mine, Spy(lat, seed=0), 4)
    assert seen[0] == ([held], True)
    points = [p for p, _ in got]
    assert held not in points and not any(lat.dominates(p, held) for p in points)
    assert set(driver.running_claims(other)) == {held, *points}  # mine are running too
    other.record_claimed(claim, held, None)  # released: says nothing about size
    assert held not in driver.running_claims(mine)


def test_optuna_proposer_takes_running_and_ignores_it():
    import inspect

    assert "running" in inspect.signature(OptunaProposer.propose).parameters


def _search(**values):
    return OmegaConf.merge(OmegaConf.structured(SearchConfig), values)


@pytest.mark.parametrize("value", ["never", "off", False])
def test_a_bad_assume_running_is_one_line_naming_it_and_the_accepted_values(value):
    problems: list[str] = []
    validate_search(_search(assume_running=value), problems)
    assert len(problems) == 1
    assert "search.assume_running=" in problems[0] and "auto, fail, block" in problems[0]


@pytest.mark.parametrize("value", ["auto", "fail", "block"])
def test_each_accepted_assume_running_passes_the_check(value):
    problems: list[str] = []
    validate_search(_search(assume_running=value), problems)
    assert problems == []
    assert SearchConfig().assume_running == "auto"
