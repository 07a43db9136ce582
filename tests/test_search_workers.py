"""``search.workers=N``: N worker jobs through a Hydra launcher (submitit_local here: the code
path of submitit_slurm on one machine), each proposing, claiming, compiling and recording on
its own, on a journal file and on PostgreSQL; and a SIGKILLed worker's claim handed on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
import yaml
from helpers import REPO, run_cli

pytest.importorskip("hydra_plugins.hydra_submitit_launcher",
                    reason="hydra-submitit-launcher is not installed (pip install .[cluster])")
pytestmark = pytest.mark.slow  # launcher subprocesses: the CI tier

# 4 x 3 encoder configs: 128 filters fit 16000 samples, 512 fit only 4000
KNOBS = ["model.n_filters=64,128,256,512", "model.time_len=4000,8000,16000"]


def _sweep(tmp_path, name: str, workers: int, storage: str | None):
    sweep = tmp_path / name
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["-m", "hydra/sweeper=frontier", "search=encoder_width", f"search.study_name={name}",
            *KNOBS, "search.plot=false", f"search.workers={workers}",
            "hydra/launcher=submitit_local", f"hydra.sweep.dir={sweep}",
            f"tracking.tracking_uri={uri}", f"tracking.experiment={name}"]
    if storage:
        args.append(f"search.storage={storage}")
    proc = run_cli(args, cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sweep, uri


def _study_trials(sweep, name: str, storage: str | None):
    import optuna

    from tasnet_sweep.search.study import open_storage, storage_location

    where = storage or storage_location(None, name)
    if "://" not in where:
        where = str(sweep.parent / where)
    return optuna.load_study(study_name=name, storage=open_storage(where)).get_trials()


def _check_one_sweep(tmp_path, name: str, workers: int, storage: str | None) -> dict:
    """Every config compiled at most once, and recorded once in the study, the summary and
    MLflow; returns the frontier."""
    import mlflow

    sweep, uri = _sweep(tmp_path, name, workers, storage)
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["exact"] is True and results["unknown"] == 0

    trials = _study_trials(sweep, name, storage)
    key = lambda t: tuple(sorted(t.params.items()))  # noqa: E731
    compiled = Counter(key(t) for t in trials if t.user_attrs.get("compiled"))
    assert compiled and max(compiled.values()) == 1, compiled
    answered = {key(t) for t in trials if "verdict" in t.user_attrs}
    assert len(answered) == 12  # the whole lattice: compiled or inferred
    assert results["compiles_this_run"] == len(compiled)

    rows = [r.split("\t") for r in (sweep / "summary.tsv").read_text().splitlines()[1:]]
    assert len(rows) == len(compiled)  # one summary row per compile
    runs = sorted(p.parent.name for p in sweep.glob("w*/result.json"))
    assert len(runs) == len(compiled) == len(set(runs))
    assert {r.split("-")[0] for r in runs} <= {f"w{i}" for i in range(workers)}

    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(name)
    children = [r for r in client.search_runs([exp.experiment_id], max_results=1000)
                if r.data.tags.get("tasnet.kind") == "trial"]
    assert len(children) == len(compiled)
    assert len({r.data.tags["tasnet.trial_key"] for r in children}) == len(children)
    parents = {r.data.tags.get("mlflow.parentRunId") for r in children}
    assert len(parents) == 1 and None not in parents  # all children of the one sweep
    return {"max": results["maximal_passing"], "min": results["minimal_failing"]}


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("one")
    return _check_one_sweep(tmp, "w1", 1, None)


@pytest.mark.parametrize("workers", [2, 4])
def test_workers_on_a_journal_compile_each_config_once_and_agree_with_one(tmp_path, workers,
                                                                          one_worker):
    assert _check_one_sweep(tmp_path, f"w{workers}", workers, None) == one_worker


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_workers_on_postgres_compile_each_config_once_and_agree_with_one(tmp_path, workers,
                                                                         one_worker, postgres):
    assert _check_one_sweep(tmp_path, f"pg{workers}", workers, postgres) == one_worker


# -- a worker killed with SIGKILL --------------------------------------------------------
HOLDER = """
import sys, time
from tasnet_sweep.search import study as study_module
from tasnet_sweep.search.lattice import Lattice
study_module._HOST = "another-machine"  # only the heartbeat can tell that it died
lat = Lattice.from_spec({"model.bn": [16, 32, 64, 128]})
study = study_module.FrontierStudy(lat, "kill", sys.argv[1], heartbeat_s=1, grace_s=3)
claim = study.claim((1,))
with study.heartbeat([claim]):
    print("claimed", flush=True)
    time.sleep(3600)  # a long compile, ended by SIGKILL
"""


@pytest.mark.parametrize("storage", ["journal", "rdb"])
def test_a_sigkilled_workers_config_goes_to_another_worker_after_the_grace(tmp_path, storage):
    from tasnet_sweep.search import driver
    from tasnet_sweep.search.lattice import Lattice
    from tasnet_sweep.search.study import BEAT_ATTR, FrontierStudy

    where = str(tmp_path / "kill.journal") if storage == "journal" else \
        f"sqlite:///{tmp_path / 'kill.db'}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, where], env=env,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "claimed"  # waits on the holder itself
        lat = Lattice.from_spec({"model.bn": [16, 32, 64, 128]})
        study = FrontierStudy(lat, "kill", where, heartbeat_s=1, grace_s=3)
        assert study.claim((1,)) is None  # held: its worker is beating
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
        killed_at = time.time()
    finally:
        holder.kill()
    launched = {}

    def launch(points):
        launched.update({p: time.time() for p in points})
        return [{"verdict": "pass" if p[0] <= 1 else "fail", "evidence": "estimate",
                 "params": p[0], "failure_family": None if p[0] <= 1 else "allocator_infeasible",
                 "cache_hit": False, "run_dir": f"/runs/{p[0]}"} for p in points]

    state = driver.run(lat, study, launch)
    assert state.knowledge.complete and (1,) in launched  # handed to this worker
    trials = study.study.get_trials()
    left = [t for t in trials if t.params == {"model.bn": 32} and not t.user_attrs.get("compiled")
            and "claim_lost_to" not in t.system_attrs]
    assert [t.state.name for t in left] == ["FAIL"]  # the dead claim no longer shows running
    if storage == "journal":  # the last beat it left is what aged out
        assert launched[(1,)] - left[0].system_attrs[BEAT_ATTR] >= 3
    else:  # Optuna's heartbeat, one beat per second until the kill
        assert launched[(1,)] - killed_at >= 3 - 1
    assert Counter(json.dumps(t.params) for t in trials if t.user_attrs.get("compiled")) \
        .most_common(1)[0][1] == 1  # nothing compiled twice
