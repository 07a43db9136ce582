"""``search.max_trials`` with ``search.workers=N``: the budget is the sweep's, shared by its
workers (counted in the study), not N times over."""

from __future__ import annotations

import multiprocessing
import time

import optuna

from tasnet_sweep.search import driver
from tasnet_sweep.search.lattice import Lattice
from tasnet_sweep.search.study import FrontierStudy, open_storage

#: 10 x 10 with a diagonal frontier: certifying it takes far more than the budget below
SPACE = {"model.n_blocks": list(range(1, 11)), "model.bn": list(range(8, 18))}


def _passes(point) -> bool:
    return sum(point) <= 9


def _search(journal: str, seed: int, max_trials: int, budget_from, go) -> None:
    lat = Lattice.from_spec(SPACE)
    study = FrontierStudy(lat, "budget", journal)

    def launch(points):
        time.sleep(0.2)  # a compile: long enough for the workers to overlap
        return [{"verdict": "pass" if _passes(p) else "fail", "evidence": "estimate",
                 "params": 1000 + 10 * sum(p), "macs": 5000 + 7 * sum(p),
                 "failure_family": None if _passes(p) else "allocator_infeasible",
                 "cache_hit": False, "run_dir": f"/runs/{'-'.join(map(str, p))}"}
                for p in points]

    go.wait()
    driver.run(lat, study, launch, max_trials=max_trials, seed=seed, record_inferred=False,
               budget_from=budget_from)


def _compiled_after(tmp_path, workers: int, max_trials: int, budget_from) -> int:
    journal = str(tmp_path / "study.journal")
    FrontierStudy(Lattice.from_spec(SPACE), "budget", journal)  # created once, before
    ctx = multiprocessing.get_context("fork")
    go = ctx.Event()
    procs = [ctx.Process(target=_search, args=(journal, i, max_trials, budget_from, go))
             for i in range(workers)]
    for p in procs:
        p.start()
    go.set()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    study = optuna.load_study(study_name="budget", storage=open_storage(journal))
    return sum(1 for t in study.get_trials() if t.user_attrs.get("compiled"))


def test_three_workers_share_one_max_trials_budget(tmp_path):
    assert _compiled_after(tmp_path, 3, 4, budget_from=0) == 4


def test_without_a_shared_budget_each_run_has_its_own(tmp_path):
    """The single-process meaning, and what workers did before: the check above can fail."""
    assert _compiled_after(tmp_path, 3, 4, budget_from=None) > 4
