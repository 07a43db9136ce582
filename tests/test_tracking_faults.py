"""MLflow under faults: workers opening a fresh store together, a killed sweep run again, a
sweep process that died with its parent run open."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from helpers import REPO, compose_cfg, run_cli

#: a worker: import MLflow, say so, wait for the go file, then open the store and log a run
WORKER = """
import sys, time
from pathlib import Path
import mlflow  # noqa: F401  (imported before the start line, so the openings collide)
uri, ready, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
ready.touch()
while not go.exists():
    time.sleep(0.005)
from tasnet_sweep.tracking.mlflow_store import client_for, ensure_experiment
client = client_for(uri)
client.create_run(ensure_experiment(client, "race", uri))
"""


def _runs(uri: str, experiment: str, view: str = "ACTIVE_ONLY"):
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id], run_view_type=getattr(ViewType, view),
                              max_results=1000) if found else []


@pytest.mark.slow
def test_workers_opening_a_fresh_store_together_all_log(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, uri, str(tmp_path / f"ready{i}"),
                               str(go)], env=env, stderr=subprocess.PIPE, text=True)
             for i in range(4)]
    while not all((tmp_path / f"ready{i}").exists() for i in range(4)):
        assert all(p.poll() is None for p in procs), [p.stderr.read() for p in procs]
        time.sleep(0.01)
    go.touch()
    errors = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [e[-1500:] for e in errors]
    assert len(_runs(uri, "race")) == 4


@pytest.mark.slow
def test_a_killed_sweep_run_again_replaces_its_trials_instead_of_adding_them(tmp_path):
    args = ["-m", "model.bn=16,24", "unit=encoder", "model.n_filters=16", "model.time_len=4000",
            "hydra.sweep.dir=sweep"]
    for _ in range(2):  # the second run stands for the rerun of a sweep that was killed
        proc = run_cli(args, tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
    uri = f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}"
    runs = _runs(uri, "tasnet_sweep")
    parents = [r for r in runs if r.data.tags.get("tasnet.kind") == "sweep"]
    children = [r for r in runs if r.data.tags.get("tasnet.kind") == "trial"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == 2
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    assert len({c.data.tags["tasnet.trial_key"] for c in children}) == 2
    # the first run's children are deleted, not lost: MLflow keeps them in its trash
    assert len(_runs(uri, "tasnet_sweep", "DELETED_ONLY")) == 2


KILLED_SWEEP = """
import os, signal, sys
sys.path.insert(0, {tests!r})
from helpers import compose_cfg
from tasnet_sweep.tracking.mlflow_store import open_sweep, sweep_spec
link = open_sweep(sweep_spec(compose_cfg("hydra.sweep.dir={sweep}", "tracking.tracking_uri={uri}",
                                         return_hydra_config=True)))
print(link["parent_run_id"], flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.slow
def test_the_parent_of_a_killed_sweep_ends_killed_when_the_next_sweep_starts(tmp_path):
    from tasnet_sweep.tracking.mlflow_store import client_for, open_sweep, sweep_spec

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    script = KILLED_SWEEP.format(tests=str(REPO / "tests"), sweep=tmp_path / "s1", uri=uri)
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=600)
    assert killed.returncode == -9, killed.stderr[-2000:]
    dead_parent = killed.stdout.split()[-1]
    client = client_for(uri)
    assert client.get_run(dead_parent).info.status == "RUNNING"
    link = open_sweep(sweep_spec(compose_cfg(f"hydra.sweep.dir={tmp_path / 's2'}",
                                             f"tracking.tracking_uri={uri}",
                                             return_hydra_config=True)))
    assert client.get_run(dead_parent).info.status == "KILLED"
    alive = client.get_run(link["parent_run_id"])
    assert alive.info.status == "RUNNING" and alive.data.tags["tasnet.pid"] == str(os.getpid())
