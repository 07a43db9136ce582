"""Ordered knobs, monotone inference, the frontier sampler and the Optuna study, against
monotone oracles (no compiles)."""

from __future__ import annotations

import itertools
import types

import numpy as np
import optuna
import pytest

from tasnet_sweep.search import driver
from tasnet_sweep.search.frontier import frontier_markdown, summarize, write_reports
from tasnet_sweep.search.lattice import (
    FAIL,
    PASS,
    UNKNOWN,
    Knowledge,
    Lattice,
    SearchSpaceError,
    boundary_masks,
    certificate,
    is_monotone,
    truth_grid,
)
from tasnet_sweep.search.sampler import FrontierSampler, run_search
from tasnet_sweep.search.study import FrontierStudy, open_storage

SPACE = {"model.n_blocks": [1, 2, 3, 4, 6, 8], "model.bn": [32, 64, 128],
         "model.hidden": {"low": 64, "high": 320, "step": 64}, "tiling.tile_width": [64, 256]}


def random_oracle(lattice: Lattice, seed: int, generators: int = 4):
    """A random monotone function: pass iff dominated by one of a few random points."""
    rng = np.random.default_rng(seed)
    tops = [tuple(int(rng.integers(n)) for n in lattice.shape) for _ in range(generators)]
    return lambda p: any(Lattice.dominates(t, p) for t in tops)


def grid_of(lattice, oracle):
    return truth_grid(lattice, lambda v: oracle(lattice.point_of(v)))


def brute_certificate(lattice, truth):
    pts = [tuple(p) for p in lattice.points()]
    passing = [p for p in pts if truth[p] == PASS]
    failing = [p for p in pts if truth[p] == FAIL]
    maximal = {p for p in passing
               if not any(q != p and Lattice.dominates(q, p) for q in passing)}
    minimal = {p for p in failing
               if not any(q != p and Lattice.dominates(p, q) for q in failing)}
    return maximal, minimal


# -- knobs ---------------------------------------------------------------------------------
def test_knobs_from_lists_and_ranges():
    lat = Lattice.from_spec(SPACE)
    assert lat.names == list(SPACE)
    assert lat.knobs[2].values == (64, 128, 192, 256, 320)
    assert lat.shape == (6, 3, 5, 2) and lat.size == 180
    p = lat.point_of({"model.n_blocks": 4, "model.bn": 64, "model.hidden": 192,
                      "tiling.tile_width": 256})
    assert p == (3, 1, 2, 1)
    assert lat.values(p)["model.hidden"] == 192
    assert lat.point_of({"model.n_blocks": 5, "model.bn": 64, "model.hidden": 192,
                         "tiling.tile_width": 256}) is None


@pytest.mark.parametrize("spec, words", [
    ({"model.bn": [64, 32]}, ["model.bn", "not ordered"]),
    ({"model.bn": []}, ["model.bn", "empty"]),
    ({"model.bn": [32, 32]}, ["model.bn", "repeats"]),
    ({"model.bn": {"low": 64, "high": 32}}, ["model.bn", "low <= high"]),
    ({"model.bn": "64"}, ["model.bn", "list of values"]),
    ({}, ["search.knobs", "mapping"]),
])
def test_bad_search_space_is_one_clear_line(spec, words):
    with pytest.raises(SearchSpaceError) as exc:
        Lattice.from_spec(spec)
    text = str(exc.value)
    assert "\n" not in text and all(w in text for w in words)


# -- inference -----------------------------------------------------------------------------
def test_pass_infers_its_down_set_and_fail_its_up_set():
    lat = Lattice.from_spec(SPACE)
    k = Knowledge(lat)
    k.record((2, 1, 2, 0), True)
    k.record((4, 1, 3, 0), False)
    for p in lat.points():
        p = tuple(p)
        if Lattice.dominates((2, 1, 2, 0), p):
            assert k.outcome(p) is True
        elif Lattice.dominates(p, (4, 1, 3, 0)):
            assert k.outcome(p) is False
        else:
            assert k.outcome(p) is None
    assert k.evidence((2, 1, 2, 0)) == "observed"
    assert k.evidence((0, 0, 0, 0)) == "inferred"
    assert k.evidence((5, 2, 4, 1)) == "inferred"
    assert k.evidence((5, 0, 0, 0)) is None


def test_a_contradicting_observation_is_kept_and_reported():
    lat = Lattice.from_spec(SPACE)
    k = Knowledge(lat)
    k.record((1, 1, 1, 0), False)
    k.record((3, 2, 2, 1), True)  # dominates a failure: not monotone
    assert k.outcome((3, 2, 2, 1)) is True and k.outcome((1, 1, 1, 0)) is False
    assert ((3, 2, 2, 1), (1, 1, 1, 0)) in k.conflicts


@pytest.mark.parametrize("seed", range(5))
def test_certificate_matches_brute_force(seed):
    lat = Lattice.from_spec(SPACE)
    truth = grid_of(lat, random_oracle(lat, seed))
    assert is_monotone(truth)
    maximal, minimal = certificate(lat, truth)
    assert (set(maximal), set(minimal)) == brute_certificate(lat, truth)


def test_is_monotone_detects_a_violation():
    truth = np.full((3, 3), PASS, dtype=np.int8)
    truth[1, 1] = FAIL
    assert not is_monotone(truth)


# -- the frontier sampler ------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_frontier_sampler_finds_the_exact_frontier(seed):
    lat = Lattice.from_spec(SPACE)
    oracle = random_oracle(lat, seed, generators=1 + seed % 4)
    truth = grid_of(lat, oracle)
    calls = []
    k, n = run_search(lat, lambda p: calls.append(p) or oracle(p), FrontierSampler(lat, seed=seed))
    assert k.complete and (k.status == truth).all()
    assert n == len(calls) == len(set(calls)) == len(k.observed)  # never the same config twice
    maximal, minimal = certificate(lat, truth)
    assert set(maximal) | set(minimal) <= set(k.observed)  # the certificate was compiled
    assert n < lat.size / 2


def test_batches_hold_no_two_comparable_unknown_points():
    lat = Lattice.from_spec(SPACE)
    k = Knowledge(lat)
    k.record((2, 1, 2, 0), True)
    sampler = FrontierSampler(lat, seed=3)
    pending = [(3, 2, 3, 0)]
    batch = sampler.propose(k, 4, pending=pending)
    assert len(batch) == 4
    for a, b in itertools.combinations(batch + pending, 2):
        assert not Lattice.dominates(a, b) and not Lattice.dominates(b, a)
    assert all(k.outcome(p) is None for p in batch)
    # the top config pending blocks every comparable point: the batch is still filled
    top = (5, 2, 4, 1)
    batch = sampler.propose(k, 3, pending=[top])
    assert len(batch) == 3 == len(set(batch)) and top not in batch


def test_exact_prior_compiles_only_the_certificate_and_a_wrong_prior_stays_exact():
    lat = Lattice.from_spec(SPACE)
    oracle = random_oracle(lat, 11, generators=3)
    truth = grid_of(lat, oracle)
    bound = sum(map(len, certificate(lat, truth)))
    k, n = run_search(lat, oracle, FrontierSampler(lat, prior=truth))
    assert n == bound and (k.status == truth).all()
    wrong = grid_of(lat, random_oracle(lat, 12, generators=3))
    assert (wrong != truth).any()
    k, n = run_search(lat, oracle, FrontierSampler(lat, prior=wrong))
    assert (k.status == truth).all()


def test_a_walk_moves_along_the_knob_with_the_fewest_unknown_points_left():
    lat = Lattice.from_spec({"model.n_blocks": [1, 2, 3, 4, 5], "model.bn": [32, 64]})
    k = Knowledge(lat)
    k.record((0, 0), True)
    free = k.status == UNKNOWN
    # from a pass: n_blocks has 4 unknown points above, bn 1 -> bn first, at its far end
    assert FrontierSampler._walk_step(k.status, free, (0, 0), True) == (0, 1)
    k.record((0, 1), True)
    free = k.status == UNKNOWN
    # only n_blocks can move now: its far end first, then the middle of the unknown run
    assert FrontierSampler._walk_step(k.status, free, (0, 1), True) == (4, 1)
    k.record((4, 1), False)
    free = k.status == UNKNOWN
    assert FrontierSampler._walk_step(k.status, free, (0, 1), True) == (2, 1)
    # from a fail: the shorter downward line (bn) before the longer one (n_blocks)
    k = Knowledge(lat)
    k.record((4, 1), False)
    free = k.status == UNKNOWN
    assert FrontierSampler._walk_step(k.status, free, (4, 1), False) == (4, 0)


def test_boundary_masks_leave_unknown_neighbours_undecided():
    status = np.array([[PASS, UNKNOWN], [FAIL, FAIL]], dtype=np.int8)
    maximal, minimal = boundary_masks(status)
    assert not maximal[0, 0]  # its right neighbour is unknown
    assert minimal[1, 0]


# -- the study -----------------------------------------------------------------------------
def oracle_launcher(lat, oracle, launched):
    def launch(points):
        launched.extend(points)
        return [{"verdict": "pass" if oracle(p) else "fail", "evidence": "estimate",
                 "params": 1000 + 10 * sum(p), "macs": 5000 + 7 * sum(p),
                 "failure_family": None if oracle(p) else "allocator_infeasible",
                 "cache_hit": False, "run_dir": f"/runs/{'-'.join(map(str, p))}"}
                for p in points]
    return launch


def test_study_resumes_with_zero_compiles_and_loads_with_optuna(tmp_path):
    lat = Lattice.from_spec(SPACE)
    oracle = random_oracle(lat, 5, generators=3)
    truth = grid_of(lat, oracle)
    path = tmp_path / "optuna" / "s.journal"
    launched: list = []
    study = FrontierStudy(lat, "s", str(path))
    state = driver.run(lat, study, oracle_launcher(lat, oracle, launched), max_trials=5)
    assert state.compiled_now == len(launched) == 5 and not state.knowledge.complete

    state = driver.run(lat, FrontierStudy(lat, "s", str(path)),
                       oracle_launcher(lat, oracle, launched), batch_size=3)
    assert state.compiled_before == 5 and state.knowledge.complete
    assert (state.knowledge.status == truth).all()
    assert len(launched) == len(set(launched))  # resumed: nothing compiled twice
    n_compiled = len(launched)

    state = driver.run(lat, FrontierStudy(lat, "s", str(path)),
                       oracle_launcher(lat, oracle, launched))
    assert state.compiled_now == 0 and len(launched) == n_compiled

    loaded = optuna.load_study(study_name="s", storage=open_storage(str(path)))
    trials = loaded.get_trials()
    compiled = [t for t in trials if t.user_attrs.get("compiled")]
    inferred = [t for t in trials if t.user_attrs.get("evidence") == "inferred"]
    assert len(compiled) == n_compiled
    assert all(not t.user_attrs["compiled"] for t in inferred)
    assert len(compiled) + len(inferred) == lat.size
    State = optuna.trial.TrialState
    for t in trials:
        p = lat.point_of(t.params)
        feasible = 0.0 if truth[p] == PASS else 1.0
        assert t.constraints["compile_fails"] == feasible  # Optuna 5's form
        assert t.system_attrs["constraints"] == [feasible]  # the list optuna-dashboard reads
        if not t.user_attrs["compiled"]:
            assert t.state == State.PRUNED  # answered by inference: never compiled
        else:
            assert t.state == (State.COMPLETE if truth[p] == PASS else State.FAIL)
    assert loaded.metric_names == ["params"]
    assert all(t.user_attrs["verdict"] == "pass" for t in loaded.best_trials)


def test_crashed_jobs_are_not_evidence_and_not_retried_in_the_run(tmp_path):
    lat = Lattice.from_spec({"model.bn": [16, 32, 64, 128]})
    study = FrontierStudy(lat, "c", str(tmp_path / "c.journal"))
    launched: list = []

    def launch(points):
        launched.extend(points)
        return [None if p == (2,) else {"verdict": "pass", "evidence": "estimate"}
                if p < (2,) else {"verdict": "fail", "failure_family": "crash"} for p in points]

    state = driver.run(lat, study, launch)
    assert (2,) in state.errors and len(launched) == len(set(launched))
    assert state.knowledge.outcome((2,)) is None
    assert all(t.user_attrs.get("verdict") != "fail" for t in study.study.get_trials())


@pytest.mark.parametrize("sampler", ["tpe", "random", "grid"])
def test_optuna_samplers_reach_the_frontier_and_never_compile_twice(tmp_path, sampler):
    lat = Lattice.from_spec({"model.n_blocks": [1, 2, 4, 8], "model.bn": [32, 64, 128]})
    oracle = random_oracle(lat, 2, generators=2)
    launched: list = []
    study = FrontierStudy(lat, sampler, str(tmp_path / f"{sampler}.journal"), sampler=sampler)
    state = driver.run(lat, study, oracle_launcher(lat, oracle, launched), sampler=sampler)
    assert state.knowledge.complete
    assert (state.knowledge.status == grid_of(lat, oracle)).all()
    assert len(launched) == len(set(launched)) == state.compiled_now
    compiled = [t for t in study.study.get_trials() if t.user_attrs.get("compiled")]
    assert len(compiled) == len(launched)


def test_every_search_sampler_name_has_a_proposer():
    from tasnet_sweep.config import SEARCH_SAMPLERS
    from tasnet_sweep.search.proposers import PROPOSERS, OptunaProposer, make_proposer

    assert list(PROPOSERS) == list(SEARCH_SAMPLERS)
    lat = Lattice.from_spec({"model.bn": [16, 32]})
    assert isinstance(make_proposer("frontier", lat, None), FrontierSampler)
    assert isinstance(make_proposer("tpe", lat, None), OptunaProposer)


@pytest.mark.parametrize("override, words", [
    ("search.batch_size=0", ["search.batch_size=0", ">= 1"]),
    ("search.sampler=bogus", ["search.sampler='bogus'", "frontier, tpe, random, grid"]),
])
def test_the_config_check_holds_the_driver_to_a_known_sampler_and_a_batch(override, words):
    """driver.run does not check them again: the config check before any work does."""
    from tasnet_sweep.cli import preflight

    problems = preflight(["-m", "search=encoder_width", override])
    assert len(problems) == 1 and all(w in problems[0] for w in words), problems


def test_any_object_with_the_proposer_protocol_drives_the_search(tmp_path):
    """driver.run takes a Proposer as well as a search.sampler name; its proposals go through
    the same claim / launch / record step, so the study keeps the usual records."""
    lat = Lattice.from_spec({"model.n_blocks": [1, 2, 4, 8], "model.bn": [32, 64, 128]})
    oracle = random_oracle(lat, 2, generators=2)
    calls = []

    class InGridOrder:
        exhaustive = True

        def propose(self, knowledge, room, pending=(), allowed=None, running=()):
            calls.append(room)
            return [p for p in map(tuple, lat.points()) if knowledge.outcome(p) is None
                    and p not in pending and p not in running][:room]

    launched: list = []
    path = str(tmp_path / "p.journal")
    state = driver.run(lat, FrontierStudy(lat, "p", path),
                       oracle_launcher(lat, oracle, launched), sampler=InGridOrder(),
                       batch_size=2)
    assert state.knowledge.complete and (state.knowledge.status == grid_of(lat, oracle)).all()
    assert calls and set(calls) <= {2} and len(launched) == len(set(launched))
    again = FrontierStudy(lat, "p", path)  # reopening checks every compiled trial's record
    knowledge, records = again.load()
    assert set(knowledge.observed) == set(launched) and len(records) == len(launched)
    compiled = [t for t in again.study.get_trials() if t.user_attrs.get("compiled")]
    assert all(t.state.name in ("COMPLETE", "FAIL") for t in compiled)


@pytest.mark.parametrize("sampler", ["frontier", "tpe", "random", "grid"])
def test_every_sampler_leaves_a_config_another_worker_holds_to_that_worker(tmp_path, sampler,
                                                                            monkeypatch):
    """The frontier sampler and Optuna's go through one step: a configuration claimed by
    another worker is not compiled again; the run waits for that worker's answer and takes it
    in from the study.  The frontier sampler is told the live claims (``running``) and
    proposes around them; Optuna's draw the point, and their claim on it is lost."""
    lat = Lattice.from_spec({"model.n_blocks": [1, 2, 4, 8], "model.bn": [32, 64, 128]})
    oracle = random_oracle(lat, 2, generators=2)
    truth = grid_of(lat, oracle)
    maximal, minimal = certificate(lat, truth)
    held = tuple(maximal[0])  # only a compile of it can tell its answer
    path = str(tmp_path / f"{sampler}.journal")
    other = FrontierStudy(lat, "w", path, sampler=sampler)
    claim = other.claim(held)
    assert claim is not None
    waits = []

    def other_worker_answers(seconds):  # the run waits for the held config: it gets answered
        waits.append(seconds)
        if len(waits) == 1:
            other.record_claimed(claim, held, oracle_launcher(lat, oracle, [])([held])[0])

    monkeypatch.setattr(driver, "time", types.SimpleNamespace(sleep=other_worker_answers))
    launched: list = []
    study = FrontierStudy(lat, "w", path, sampler=sampler)
    state = driver.run(lat, study, oracle_launcher(lat, oracle, launched), sampler=sampler)
    assert held not in launched and len(launched) == len(set(launched))
    assert waits and state.knowledge.complete and (state.knowledge.status == truth).all()
    assert state.knowledge.evidence(held) == "observed" and state.records[held]["trial"] == \
        claim.number
    trials = study.study.get_trials()
    compiled = [lat.point_of(t.params) for t in trials if t.user_attrs.get("compiled")]
    assert sorted(compiled) == sorted([*launched, held])  # each compiled once, by one worker
    lost = [t for t in trials if "claim_lost_to" in t.system_attrs]
    assert all(t.system_attrs["claim_lost_to"] == claim.number for t in lost)
    assert bool(lost) is (sampler != "frontier")


@pytest.mark.slow
def test_reports_name_the_certificate_and_the_largest_passing_config(tmp_path):
    lat = Lattice.from_spec(SPACE)
    oracle = random_oracle(lat, 7, generators=2)
    launched: list = []
    study = FrontierStudy(lat, "r", str(tmp_path / "r.journal"))
    state = driver.run(lat, study, oracle_launcher(lat, oracle, launched))
    fr = summarize(lat, state.knowledge, state.records)
    truth = grid_of(lat, oracle)
    maximal, minimal = certificate(lat, truth)
    assert sorted(fr.maximal_passing) == sorted(maximal)
    assert sorted(fr.minimal_failing) == sorted(minimal)
    written = write_reports(fr, tmp_path / "out")
    rows = (tmp_path / "out" / "frontier.tsv").read_text().splitlines()
    assert len(rows) == 1 + len(maximal) + len(minimal)
    assert rows[0].split("\t")[:5] == ["role", *lat.names]
    best = max((p for p in state.knowledge.observed if oracle(p)), key=sum)
    md = frontier_markdown(fr)
    assert "exact" in md and f"model.n_blocks={lat.values(best)['model.n_blocks']}" in md
    assert (tmp_path / "out" / "frontier.png").read_bytes()[:4] == b"\x89PNG"
    assert len(written) == 3


@pytest.mark.slow
def test_a_prior_study_orders_the_queries_and_real_outcomes_override_it(tmp_path):
    lat = Lattice.from_spec(SPACE)
    real = random_oracle(lat, 21, generators=3)
    truth = grid_of(lat, real)
    # a monotone "estimate" that wrongly fails two of the real maximal passing configs
    maximal, _ = certificate(lat, truth)
    wrong = set(maximal[:2])
    estimate = lambda p: real(p) and p not in wrong  # noqa: E731
    storage = str(tmp_path / "s.journal")
    driver.run(lat, FrontierStudy(lat, "estimate", storage), oracle_launcher(lat, estimate, []))
    prior = driver.prior_from_study(lat, "estimate", storage)
    assert (prior != UNKNOWN).all() and (prior != truth).any()

    launched: list = []
    state = driver.run(lat, FrontierStudy(lat, "real", storage),
                       oracle_launcher(lat, real, launched), prior=prior)
    assert (state.knowledge.status == truth).all()
    unaided: list = []
    driver.run(lat, FrontierStudy(lat, "unaided", storage), oracle_launcher(lat, real, unaided))
    assert len(launched) < len(unaided)
    with pytest.raises(ValueError, match="search.prior_study='nope'"):
        driver.prior_from_study(lat, "nope", storage)


def test_the_frontier_plot_shows_only_the_knobs_that_matter_and_their_staircase():
    from tasnet_sweep.search.frontier import _staircase, frontier_png, knobs_that_matter, summarize

    lat = Lattice.from_spec({"model.n_blocks": [1, 2, 4], "model.bn": [32, 64],
                             "tiling.tile_width": [64, 256]})
    knowledge = Knowledge(lat)
    for p in lat.points():
        p = tuple(int(i) for i in p)
        knowledge.record(p, p[0] + p[1] <= 2)  # tile width never matters
    assert knobs_that_matter(knowledge.status) == [0, 1]
    stairs = _staircase(knowledge.status[:, :, 0])
    assert list(stairs) == [1, 1, 0]  # the largest bn that passes, per n_blocks
    png = frontier_png(summarize(lat, knowledge))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_labels_lead_with_the_knob_that_steps():
    from tasnet_sweep.report.plots import varying_columns

    rows = [{"bn": "32", "hidden": h, "unit": "full"} for h in ("64", "128", "256")]
    rows += [{"bn": "64", "hidden": "256", "unit": "full"}]
    assert varying_columns(rows, ("bn", "hidden", "unit")) == ["hidden", "bn"]


@pytest.mark.slow
def test_on_an_rdb_storage_a_dead_workers_claim_expires_with_its_heartbeat(tmp_path):
    """A claim is a RUNNING trial with Optuna's heartbeat; a worker on another machine that
    dies stops beating, and after the grace period its config is handed to the next worker."""
    import time

    lat = Lattice.from_spec({"model.bn": [16, 32]})
    url = f"sqlite:///{tmp_path / 'rdb.db'}"
    grace_s = 1
    dead = FrontierStudy(lat, "hb", url, heartbeat_s=1, grace_s=grace_s)
    lost = dead.claim((0,))
    assert lost is not None
    # as if its worker ran on another machine: only the heartbeat can retire the claim
    dead.study._storage.set_trial_system_attr(lost._trial_id, "claim_by", ["elsewhere", 1])
    alive = FrontierStudy(lat, "hb", url, heartbeat_s=1, grace_s=grace_s)
    assert alive.claim((0,)) is None  # held: its heartbeat is fresh
    time.sleep(grace_s + 1)  # the grace period passing is the thing under test
    mine = alive.claim((0,))
    assert mine is not None  # the stale claim was failed, the config is this worker's
    states = {t.number: t.state.name for t in alive.study.get_trials()}
    assert states[lost.number] == "FAIL"


def test_a_torn_journal_tail_is_kept_aside_and_cut_back(tmp_path, caplog):
    """A full disk or a kill mid-write leaves a torn last record: resuming keeps a copy, cuts
    the journal back to its last complete record and goes on (it used to append after the
    garbage, and no tool could load the study again)."""
    lat = Lattice.from_spec(SPACE)
    oracle = random_oracle(lat, 5, generators=3)
    path = tmp_path / "t.journal"
    driver.run(lat, FrontierStudy(lat, "t", str(path)), oracle_launcher(lat, oracle, []),
               max_trials=3)
    whole = path.read_bytes()
    with open(path, "ab") as f:
        f.write(b'{"op_code": 4, "worker_id": "x", "trial_id": 9, "st')  # cut off
    state = driver.run(lat, FrontierStudy(lat, "t", str(path)),
                       oracle_launcher(lat, oracle, []))
    assert state.knowledge.complete and state.compiled_before == 3
    torn = list(tmp_path.glob("t.journal.torn-*"))
    assert len(torn) == 1 and torn[0].read_bytes().startswith(whole)
    assert "torn record" in caplog.text
    loaded = optuna.load_study(study_name="t", storage=open_storage(str(path)))
    assert len(loaded.trials) >= lat.size


def test_a_journal_damaged_before_its_end_is_refused_with_how_to_recover(tmp_path):
    from tasnet_sweep.search.study import JournalDamaged

    lat = Lattice.from_spec({"model.bn": [16, 32]})
    path = tmp_path / "d.journal"
    FrontierStudy(lat, "d", str(path))
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join([lines[0], b"garbage", *lines[1:]]))
    with pytest.raises(JournalDamaged, match="damaged record on line 2"):
        FrontierStudy(lat, "d", str(path))


@pytest.mark.slow
def test_a_journal_with_any_one_line_removed_is_refused_or_still_gives_the_true_frontier(
        tmp_path, monkeypatch):
    """Removing a line moves the journal's later lines to other trials or drops a verdict; a
    frontier built from that was once certified wrong. Every single-line removal of a finished
    search now either resumes to the true frontier or is refused as inconsistent."""
    from tasnet_sweep.search import study as study_module
    from tasnet_sweep.search.study import StudyInconsistent

    lat = Lattice.from_spec({"model.bn": [16, 32, 64], "model.hidden": [64, 128, 256]})
    oracle = random_oracle(lat, 3, generators=2)
    truth = tuple(sorted(x) for x in certificate(lat, grid_of(lat, oracle)))
    path = tmp_path / "j.journal"
    driver.run(lat, FrontierStudy(lat, "j", str(path)), oracle_launcher(lat, oracle, []))
    lines = path.read_bytes().split(b"\n")[:-1]
    monkeypatch.setattr(study_module, "_claimant_alive", lambda trial: False)  # worker gone
    outcomes = {"true frontier": 0, "refused": 0}
    for i in range(len(lines)):
        copy = tmp_path / f"c{i}.journal"
        copy.write_bytes(b"\n".join(lines[:i] + lines[i + 1:]) + b"\n")
        try:
            state = driver.run(lat, FrontierStudy(lat, "j", str(copy)),
                               oracle_launcher(lat, oracle, []))
        except StudyInconsistent as exc:
            assert "is inconsistent" in str(exc) and "Restore it from a copy" in str(exc)
            outcomes["refused"] += 1
            continue
        fr = summarize(lat, state.knowledge, state.records)
        assert fr.complete, f"line {i + 1} removed: the search stopped short"
        assert (sorted(fr.maximal_passing), sorted(fr.minimal_failing)) == truth, \
            f"line {i + 1} removed: a wrong frontier certified as exact: {lines[i][:120]!r}"
        outcomes["true frontier"] += 1
    assert outcomes["refused"] > 0 and outcomes["true frontier"] > 0, outcomes
