"""verdict=uncertain in the frontier search: never evidence of pass or fail, kept in the study,
and handed to a real-compile search as the points to compile first."""

from __future__ import annotations

import numpy as np
import pytest

from tasnet_sweep.search import driver
from tasnet_sweep.search.lattice import (
    FAIL,
    PASS,
    UNCERTAIN,
    UNKNOWN,
    Knowledge,
    Lattice,
    certificate,
    truth_grid,
)
from tasnet_sweep.search.sampler import FrontierSampler, run_search
from tasnet_sweep.search.study import FrontierStudy, job_outcome

SPACE = {"model.n_blocks": [1, 2, 3, 4, 6, 8], "model.bn": [32, 64, 128],
         "model.hidden": {"low": 64, "high": 320, "step": 64}}


def _truth(lat):
    """A monotone oracle: pass while the knob indices stay under a plane."""
    def passes(p):
        return 2 * p[0] + 3 * p[1] + 2 * p[2] <= 10
    return passes, truth_grid(lat, lambda v: passes(lat.point_of(v)))


def _launcher(lat, answer, launched):
    def launch(points):
        launched.extend(points)
        out = []
        for p in points:
            verdict = answer(p)
            out.append({"verdict": verdict, "evidence": "estimate", "params": 1000 + sum(p),
                        "macs": 5000 + sum(p), "cache_hit": False,
                        "failure_family": "allocator_infeasible" if verdict == "fail" else None,
                        "run_dir": f"/runs/{'-'.join(map(str, p))}"})
        return out
    return launch


def _estimate(lat):
    """The estimate: right everywhere except on the real certificate, where it is unsure."""
    passes, truth = _truth(lat)
    maximal, minimal = certificate(lat, truth)
    unsure = {tuple(p) for p in [*maximal, *minimal]}
    answer = lambda p: "uncertain" if p in unsure else "pass" if passes(p) else "fail"  # noqa: E731
    return answer, unsure, truth


def test_an_uncertain_job_is_no_evidence_either_way():
    assert job_outcome({"verdict": "uncertain", "evidence": "estimate"}) is None
    assert job_outcome({"verdict": "pass"}) is True and job_outcome({"verdict": "fail"}) is False


@pytest.mark.slow
def test_an_estimate_search_keeps_uncertain_answers_apart_and_resumes_without_them(tmp_path):
    lat = Lattice.from_spec(SPACE)
    answer, unsure, truth = _estimate(lat)
    storage = str(tmp_path / "s.journal")
    launched: list = []
    state = driver.run(lat, FrontierStudy(lat, "est", storage), _launcher(lat, answer, launched))
    assert len(launched) == len(set(launched))
    asked = {p for p in launched if p in unsure}
    assert asked and set(state.uncertain) == asked and not state.errors
    status = state.knowledge.status
    for p in asked:  # no compile answered it, and nothing known contradicts the truth
        assert p not in state.knowledge.observed
    known = status != UNKNOWN
    assert (status[known] == truth[known]).all() and not state.knowledge.complete
    again = FrontierStudy(lat, "est", storage)  # its records check out (reopened)
    knowledge, records = again.load()
    assert set(knowledge.observed) == set(state.knowledge.observed)
    assert again.uncertain_points() == asked and not asked & set(records)
    more: list = []
    resumed = driver.run(lat, again, _launcher(lat, answer, more))
    assert not set(more) & asked and set(resumed.uncertain) >= asked  # not asked again
    stored = [t for t in again.study.get_trials() if t.user_attrs.get("verdict") == "uncertain"]
    assert stored and all(t.state.name == "FAIL" and t.user_attrs["compiled"] for t in stored)
    assert all(not t.system_attrs.get("constraints") for t in stored)  # no feasibility claim


def test_a_prior_study_marks_uncertain_points_and_the_real_search_compiles_them_first(tmp_path):
    lat = Lattice.from_spec(SPACE)
    answer, unsure, truth = _estimate(lat)
    passes, _ = _truth(lat)
    storage = str(tmp_path / "s.journal")
    driver.run(lat, FrontierStudy(lat, "est", storage), _launcher(lat, answer, []))
    prior = driver.prior_from_study(lat, "est", storage)
    marked = {tuple(int(i) for i in p) for p in np.argwhere(prior == UNCERTAIN)}
    assert marked and marked <= unsure
    assert ((prior == truth) | (prior == UNCERTAIN) | (prior == UNKNOWN)).all()

    real: list = []
    real_answer = lambda p: "pass" if passes(p) else "fail"  # noqa: E731
    state = driver.run(lat, FrontierStudy(lat, "real", storage),
                       _launcher(lat, real_answer, real), prior=prior)
    assert (state.knowledge.status == truth).all()  # the frontier stays exact
    first = real[:len([p for p in real if p in marked])]
    assert first and all(p in marked for p in first)  # uncertain points went first


def test_the_sampler_proposes_uncertain_points_first_and_keeps_the_prior_elsewhere():
    lat = Lattice.from_spec(SPACE)
    passes, truth = _truth(lat)
    prior = truth.copy()
    plain = FrontierSampler(lat, prior=prior, seed=0)
    assert plain.uncertain is None  # a pass/fail prior works as before
    unsure = [(2, 1, 1), (0, 2, 1)]
    for p in unsure:
        prior[p] = UNCERTAIN
    sampler = FrontierSampler(lat, prior=prior, seed=0)
    assert set(np.unique(sampler.prior)) <= {PASS, FAIL, UNKNOWN}
    batch = sampler.propose(Knowledge(lat), room=2)
    assert set(batch) == set(unsure)
    knowledge, calls = run_search(lat, passes, FrontierSampler(lat, prior=prior, seed=0))
    assert (knowledge.status == truth).all() and calls < lat.size


@pytest.mark.parametrize("sampler", ["random"])
def test_an_optuna_sampler_prunes_an_uncertain_ask_with_its_attrs(tmp_path, sampler):
    lat = Lattice.from_spec({"model.bn": [32, 64, 128], "model.hidden": [64, 128]})
    study = FrontierStudy(lat, "o", str(tmp_path / "o.journal"), sampler=sampler)
    launched: list = []
    state = driver.run(lat, study, _launcher(lat, lambda p: "uncertain", launched),
                       sampler=sampler, max_trials=3)
    assert launched and not state.knowledge.observed and set(state.uncertain) == set(launched)
    pruned = [t for t in study.study.get_trials() if t.user_attrs.get("verdict") == "uncertain"]
    assert pruned and {t.state.name for t in pruned} <= {"PRUNED", "FAIL"}
    assert FrontierStudy(lat, "o", str(tmp_path / "o.journal"), sampler=sampler) \
        .uncertain_points() == set(launched)


def test_a_frontier_with_only_uncertain_configs_left_is_exact_and_lists_them(tmp_path):
    from tasnet_sweep.search.frontier import frontier_markdown, frontier_tsv, summarize

    lat = Lattice.from_spec(SPACE)
    answer, unsure, _ = _estimate(lat)
    state = driver.run(lat, FrontierStudy(lat, "rep", str(tmp_path / "r.journal")),
                       _launcher(lat, answer, []))
    left = [p for p in state.uncertain if p not in state.knowledge.observed]
    assert left and state.knowledge.unknown >= len(left)
    whole = summarize(lat, state.knowledge, state.records, uncertain=state.uncertain)
    assert whole.unknown == state.knowledge.unknown - len(whole.open_uncertain)
    assert whole.complete == (whole.unknown == 0) and whole.complete
    assert sum(r["role"] == "uncertain" for r in whole.rows()) == len(whole.open_uncertain)
    tsv = frontier_tsv(whole).splitlines()
    assert sum(line.startswith("uncertain\t") for line in tsv) == len(whole.open_uncertain)
    assert f"{len(whole.open_uncertain)} uncertain (ESTIMATE" in frontier_markdown(whole)
    blind = summarize(lat, state.knowledge, state.records)  # without them: not exact
    assert not blind.complete and blind.unknown == state.knowledge.unknown
