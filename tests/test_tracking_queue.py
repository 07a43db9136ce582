"""Trials handed to a process that has MLflow open: a sweep job queues its trial for the sweep's
parent, a single run for the store's tracking agent; each queued trial is logged once."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys

import pytest
from helpers import SMALL, compose_cfg
from omegaconf import OmegaConf

from tasnet_sweep.tracking import log_trial
from tasnet_sweep.tracking import mlflow_store as store
from tasnet_sweep.tracking.queue import (
    AGENT_PID,
    RECLAIMED,
    Drainer,
    agent_queue,
    claim,
    drain,
    enqueue,
    hand_over,
)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_each_queued_entry_is_logged_once_and_a_dead_drainers_claim_is_taken_again(tmp_path):
    queue = tmp_path / "q"
    for n in range(3):
        enqueue(queue, {"n": n})
    first = next(claim(queue))  # held by this live process: nobody else takes it
    orphan = first[0].with_name(first[0].name.replace(f"-{os.getpid()}", f"-{_dead_pid()}"))
    first[0].rename(orphan)  # ... as if its drainer had died holding it
    (queue / "broken.json").write_text("{cut off")
    seen: list[int] = []
    reclaimed: list[int] = []
    assert drain(queue, lambda entry: (seen.append(entry["n"]), entry.get(RECLAIMED)
                                       and reclaimed.append(entry["n"]))) == 3
    assert sorted(seen) == [0, 1, 2]
    assert reclaimed == [first[1]["n"]]  # only the dead drainer's entry may be logged already
    assert list(queue.iterdir()) == []  # every claim, the unreadable one too, is gone
    assert drain(queue, lambda entry: seen.append(entry["n"])) == 0


def test_a_drainer_stopped_logs_what_was_queued_before(tmp_path):
    seen: list[int] = []
    drainer = Drainer(tmp_path / "q", lambda entry: seen.append(entry["n"]))
    for n in range(4):
        enqueue(tmp_path / "q", {"n": n})
    drainer.stop()  # whatever the thread had not taken yet is logged here
    assert sorted(seen) == [0, 1, 2, 3]
    assert not drainer._thread.is_alive()


def test_a_sweep_job_without_mlflow_queues_its_trial_for_the_parent(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep_dir, run_dir = tmp_path / "sweep", tmp_path / "sweep" / "0_job"
    run_dir.mkdir(parents=True)
    (sweep_dir / store.LINK_NAME).write_text(json.dumps({
        "uri": store.resolve_uri(uri), "experiment": "e", "experiment_id": "1",
        "parent_run_id": "p" * 32, "queue": store.QUEUE_NAME}))
    monkeypatch.setattr(store, "_sweep_dir", lambda: sweep_dir)
    monkeypatch.setattr(store, "_job_overrides", lambda: ["model.bn=16"])
    cfg = compose_cfg(*SMALL, f"tracking.tracking_uri={uri}")
    opened = dict(store._CLIENTS)

    assert log_trial(cfg, object(), run_dir) is None  # the record is read by the parent
    assert opened == store._CLIENTS  # no store opened (nor MLflow needed) in the job
    [entry] = (sweep_dir / store.QUEUE_NAME).iterdir()
    queued = json.loads(entry.read_text())
    assert queued == {"run_dir": str(run_dir.resolve()),
                      "trial_key": store.job_key(["model.bn=16"]),
                      "config": OmegaConf.to_container(cfg, resolve=True)}


@pytest.mark.slow
def test_trials_ending_before_the_sweeps_run_opens_become_its_children(tmp_path, monkeypatch):
    """``begin_sweep`` opens MLflow in a process of its own; a job that ends first (here:
    while that process waits for the store's lock, held by the test) queues its trial, and
    the sweep's MLflow process logs it once the run exists.  The sweep's own process never
    opens the store."""
    from mlflow.tracking import MlflowClient

    from tasnet_sweep import trial
    from tasnet_sweep.atomic import locked

    uri = store.resolve_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    sweep_dir = tmp_path / "sweep"
    cfg = compose_cfg(*SMALL, "unit=encoder", f"tracking.tracking_uri={uri}",
                      f"hydra.sweep.dir={sweep_dir}", f"compiler.cache_dir={tmp_path / 'c'}",
                      return_hydra_config=True)
    monkeypatch.setattr(store, "_sweep_dir", lambda: sweep_dir)
    monkeypatch.setattr(store, "_job_overrides", lambda: ["model.bn=16"])
    with locked(tmp_path / "mlflow.db"):  # what opening a SQLite store waits for
        opening = store.begin_sweep(cfg)
        assert store.read_link(sweep_dir)["parent_run_id"] is None
        job_cfg = compose_cfg(*SMALL, "unit=encoder", f"tracking.tracking_uri={uri}",
                              f"compiler.cache_dir={tmp_path / 'c'}")
        run_dir = sweep_dir / "0"
        result = trial.run(job_cfg, run_dir, sweep_dir / "summary.tsv")
        assert log_trial(job_cfg, result, run_dir) is None
        assert opening.process.is_alive()
        assert len(list((sweep_dir / store.QUEUE_NAME).iterdir())) == 1
    assert store.end_sweep(cfg) is None and opening.process.exitcode == 0
    assert uri not in store._CLIENTS

    parent = store.read_link(sweep_dir)["parent_run_id"]
    client = MlflowClient(tracking_uri=uri)
    assert client.get_run(parent).info.status == "FINISHED"
    [child] = client.search_runs([client.get_run(parent).info.experiment_id],
                                 f"tags.mlflow.parentRunId = '{parent}'")
    assert child.data.tags["run_dir"] == str(run_dir.resolve())
    # the parent spans the sweep from its start, not from when its run was opened
    assert client.get_run(parent).info.start_time <= child.info.start_time
    assert child.data.tags["tasnet.complete"] == "true"
    assert not list((sweep_dir / store.QUEUE_NAME).iterdir())
    # the run belongs to the sweep's process (a sweep killed with it is found dead)
    assert client.get_run(parent).data.tags["tasnet.pid"] == str(os.getpid())


@pytest.mark.slow
def test_the_agent_logs_queued_single_runs_as_plain_runs_then_leaves(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from tasnet_sweep import trial

    uri = store.resolve_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    cfg = compose_cfg(*SMALL, "unit=encoder", f"tracking.tracking_uri={uri}",
                      f"compiler.cache_dir={tmp_path / 'cache'}")
    runs = [tmp_path / "one", tmp_path / "two"]
    for run_dir in runs:
        trial.run(cfg, run_dir, run_dir / "summary.tsv")
    monkeypatch.setenv("TASNET_TRACKING_AGENT_IDLE_S", "1")
    plain = OmegaConf.to_container(cfg, resolve=True)
    started = hand_over(uri, {"run_dir": str(runs[0]), "experiment": "agent", "config": plain})
    second = hand_over(uri, {"run_dir": str(runs[1]), "experiment": "agent", "config": plain})
    assert started is not None
    assert second is None  # the agent started for the first, still starting, takes it
    queue = agent_queue(uri)
    pidfd = os.pidfd_open(started)
    assert select.select([pidfd], [], [], 600)[0], (queue / "agent.log").read_text()[-2000:]
    os.close(pidfd)
    assert int((queue / AGENT_PID).read_text()) == started

    client = MlflowClient(tracking_uri=uri)
    found = client.search_runs([client.get_experiment_by_name("agent").experiment_id])
    assert sorted(r.data.tags["run_dir"] for r in found) == sorted(str(r) for r in runs)
    for run in found:
        assert run.data.tags["tasnet.complete"] == "true"
        assert "mlflow.parentRunId" not in run.data.tags
        assert run.data.params["model.bn"] == str(cfg.model.bn)
    assert not [p for p in queue.iterdir() if p.name[0].isdigit()]  # nothing left queued


def test_a_new_sweep_run_searches_for_a_jobs_earlier_run_only_when_it_logged_the_job(tmp_path,
                                                                                    monkeypatch):
    """Under a parent it has just created, the sweep's drain knows every child: a job logged
    twice (the same overrides) keeps its last run, and jobs logged once cost no search."""
    from mlflow.entities import ViewType

    from tasnet_sweep import trial

    uri = store.resolve_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    sweep_dir = tmp_path / "sweep"
    cfg = compose_cfg(*SMALL, "unit=encoder", f"tracking.tracking_uri={uri}",
                      f"hydra.sweep.dir={sweep_dir}", f"compiler.cache_dir={tmp_path / 'c'}",
                      return_hydra_config=True)
    link = store.open_sweep(store.sweep_spec(cfg))
    client = store.client_for(uri)  # the drain's own client
    searches: list = []
    search_runs = client.search_runs
    monkeypatch.setattr(client, "search_runs",
                        lambda *a, **k: searches.append(a) or search_runs(*a, **k))
    job_cfg = compose_cfg(*SMALL, "unit=encoder", f"tracking.tracking_uri={uri}",
                          f"compiler.cache_dir={tmp_path / 'c'}")
    plain = OmegaConf.to_container(job_cfg, resolve=True)
    for n, job in enumerate(["model.bn=16", "model.bn=24", "model.bn=16"]):
        run_dir = sweep_dir / str(n)
        trial.run(job_cfg, run_dir, sweep_dir / "summary.tsv")
        enqueue(sweep_dir / store.QUEUE_NAME, {"run_dir": str(run_dir.resolve()),
                                               "trial_key": store.job_key([job]),
                                               "config": plain})
    store.close_sweep(sweep_dir, uri)

    assert len(searches) == 1  # for the job's second run only
    children = search_runs([link["experiment_id"]], run_view_type=ViewType.ACTIVE_ONLY,
                           filter_string=f"tags.mlflow.parentRunId = '{link['parent_run_id']}'")
    assert sorted(c.data.tags["run_dir"] for c in children) == [
        str((sweep_dir / n).resolve()) for n in ("1", "2")]
    assert len(search_runs([link["experiment_id"]], run_view_type=ViewType.DELETED_ONLY)) == 1


def _orphan(queue, entry: dict) -> None:
    """``entry`` queued and held by a drainer that died (as an agent killed mid-upload)."""
    path = enqueue(queue, entry)
    path.rename(path.with_name(f"{path.name}.taken-{_dead_pid()}"))


def test_an_agent_relogging_a_trial_cut_short_leaves_one_complete_run(tmp_path, monkeypatch):
    """An agent killed mid-upload leaves a run without the completion tag and its claim; the
    next agent takes the entry again: the trial ends with one complete run, and a further
    retry adds nothing.  An entry nobody held before is logged without that search."""
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    from tasnet_sweep import trial
    from tasnet_sweep.tracking.agent import Agent
    from tasnet_sweep.tracking.flatten import COMPLETE_TAG, TRIAL_ID_TAG

    uri = store.resolve_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    cfg = compose_cfg(*SMALL, "unit=encoder", f"tracking.tracking_uri={uri}",
                      f"compiler.cache_dir={tmp_path / 'cache'}")
    run_dir, fresh_dir = tmp_path / "one", tmp_path / "two"
    for folder in (run_dir, fresh_dir):
        trial.run(cfg, folder, folder / "summary.tsv")
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment("agent")
    cut_short = client.create_run(experiment_id, tags={TRIAL_ID_TAG: store.digest(run_dir)})

    agent = Agent(uri)
    plain = OmegaConf.to_container(cfg, resolve=True)
    queue = tmp_path / "queue"
    for _ in range(2):
        _orphan(queue, {"run_dir": str(run_dir), "experiment": "agent", "config": plain})
        assert drain(queue, agent.log_one) == 1
    runs = client.search_runs([experiment_id], run_view_type=ViewType.ACTIVE_ONLY)
    assert len(runs) == 1 and runs[0].info.run_id != cut_short.info.run_id
    assert runs[0].data.tags[COMPLETE_TAG] == "true"
    assert client.get_run(cut_short.info.run_id).info.lifecycle_stage == "deleted"

    searched: list = []
    monkeypatch.setattr(agent.client, "search_runs", lambda *a, **k: searched.append(a) or [])
    enqueue(queue, {"run_dir": str(fresh_dir), "experiment": "agent", "config": plain})
    assert drain(queue, agent.log_one) == 1
    assert searched == []
    assert len(client.search_runs([experiment_id], run_view_type=ViewType.ACTIVE_ONLY)) == 2


#: ``python -m tasnet_sweep`` as a user runs it, saying as the process ends whether MLflow was
#: ever imported there
WATCHED = ("import atexit, os, runpy, sys\n"
           "atexit.register(lambda: print('mlflow imported:', 'mlflow' in sys.modules,\n"
           "                              'pid:', os.getpid()))\n"
           "sys.argv = ['tasnet_sweep', *sys.argv[1:]]\n"
           "runpy.run_module('tasnet_sweep', run_name='__main__')\n")


@pytest.mark.slow
def test_a_basic_launcher_sweep_is_logged_by_a_process_of_its_own(tmp_path):
    """The jobs run in the sweep's process, MLflow never does: the sweep's MLflow process logs
    every trial under the parent run, finishes it, and has ended when the sweep exits."""
    from helpers import REPO

    from tasnet_sweep.processes import pid_alive

    uri = store.resolve_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    args = ["-m", *SMALL, "unit=encoder", "model.bn=8,16,24", f"tracking.tracking_uri={uri}",
            "hydra.sweep.dir=sweep", "compiler.cache_dir=cache"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "0"}
    done = subprocess.run([sys.executable, "-c", WATCHED, *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    said = done.stdout.strip().splitlines()[-1].split()
    assert said[:3] == ["mlflow", "imported:", "False"], done.stdout[-2000:]
    assert "MLflow: experiment 'tasnet_sweep', sweep run" in done.stderr  # said by that process

    from mlflow.tracking import MlflowClient

    parent = store.read_link(tmp_path / "sweep")["parent_run_id"]
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(parent)
    assert run.info.status == "FINISHED"
    assert {a.path for a in client.list_artifacts(parent)} >= {"summary.tsv"}
    children = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{parent}'")
    assert sorted(c.data.params["model.bn"] for c in children) == ["16", "24", "8"]
    assert not list((tmp_path / "sweep" / store.QUEUE_NAME).iterdir())
    assert run.data.tags["tasnet.pid"] == said[-1]  # the sweep's own process: a sweep killed
    assert not pid_alive(int(said[-1]))             # with it is found dead by the next one
