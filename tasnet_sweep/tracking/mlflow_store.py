"""Trials and sweeps in an MLflow tracking store (SQLite file or ``mlflow server``).

Layout: one experiment per study/experiment name, a parent run per sweep, a child run per
trial (``mlflow.parentRunId``), a plain run per single trial.  The sweep's parent is created
by the sweep's MLflow process, which the Hydra callback starts (tracking/sweep_process.py) and
which also creates the store's schema before any job opens it; the jobs find the parent and
the queue they leave their trials in through ``.mlflow_sweep.json`` in the sweep dir.

Tracking never costs a trial: the run dir and summary TSV are written before anything here
runs.  A trial process that has not opened the store itself (a launcher's worker, a single
run) does not import MLflow at all: it queues the trial for a process that has (the sweep's
parent, or the tracking agent of single runs; tracking/queue.py).
The first failure in a sweep creates ``tracking_failed.txt`` there (O_EXCL, so it is
reported once), later trials of that sweep skip MLflow, and ``python -m tasnet_sweep.commands.sync``
pushes whatever is missing.  MLflow is imported inside the functions that use it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from ..atomic import locked, write_json
from ..processes import pid_alive
from ..results import TrialResult, read_result
from .flatten import (
    COMPLETE_TAG,
    EXPERIMENT_KIND,
    HOST_TAG,
    KIND_TAG,
    MAX_METRICS_PER_BATCH,
    MAX_PARAM_VALUE,
    MAX_PARAMS_PER_BATCH,
    MAX_TAG_VALUE,
    MAX_TAGS_PER_BATCH,
    PID_TAG,
    STUDY_TAG,
    SWEEP_ID_TAG,
    TRIAL_ID_TAG,
    TRIAL_KEY_TAG,
    chunks,
    clean_key,
    flatten_config,
    redact,
    standard_tags,
    trial_metrics,
    trial_tags,
)
from .queue import QUEUE_NAME, Drainer, agent_queue, enqueue, hand_over
from .sweep_process import SweepProcess

log = logging.getLogger("tasnet_sweep.tracking")

DEFAULT_URI = "sqlite:///outputs/mlflow.db"
DEFAULT_EXPERIMENT = "tasnet_sweep"
LINK_NAME = ".mlflow_sweep.json"
FAILED_MARKER = "tracking_failed.txt"
#: where a single run's background logging writes its output (see log_in_background)
BACKGROUND_LOG = "tracking.log"
#: fail fast against an unreachable server (MLflow's own defaults: 7 retries, 120 s timeout)
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
#: files a sweep leaves in its dir that belong on the parent run
SWEEP_FILE_PATTERNS = ("*.tsv", "report.md", "report.png", "frontier.*",
                       "optimization_results.yaml", "ladder.json", "multirun.yaml")

for _name, _value in HTTP_DEFAULTS.items():
    os.environ.setdefault(_name, _value)  # before mlflow is imported; a user's value wins


# -- where and under which name -----------------------------------------------------------
def resolve_uri(configured: str | None, create: bool = True) -> str:
    """tracking.tracking_uri, else $MLFLOW_TRACKING_URI, else ``sqlite:///outputs/mlflow.db``;
    a relative SQLite path is made absolute (against the cwd) and its folder created."""
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI
    if uri.startswith("sqlite:///") and uri != "sqlite:///:memory:":
        path = Path(uri[len("sqlite:///"):])
        path = path if path.is_absolute() else Path.cwd() / path
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        uri = "sqlite:///" + str(path.resolve())
    return uri


def _select(config, key: str):
    from omegaconf import OmegaConf

    try:
        return OmegaConf.select(config, key, default=None)
    except Exception:  # an interpolation that cannot resolve here
        return None


def experiment_name(config) -> str:
    """tracking.experiment, else the study name (search.study_name or search.name), else the
    experiment config's report name (a sweep's config carries its hydra node), else
    ``tasnet_sweep``."""
    for key in ("tracking.experiment", "search.study_name", "search.name",
                "hydra.callbacks.report.experiment"):
        value = _select(config, key)
        if value:
            return str(value)
    return DEFAULT_EXPERIMENT


def digest(path: str | Path) -> str:
    """A short stable id for a run or sweep dir (its absolute path)."""
    return hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:20]


def git_commit() -> str | None:
    """The checkout's HEAD commit, read from .git without running git; None outside a checkout."""
    git = Path(__file__).resolve().parents[2] / ".git"
    try:
        if git.is_file():  # a worktree: "gitdir: <path>"
            git = Path(git.read_text().split(":", 1)[1].strip())
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head
        ref = head.split(":", 1)[1].strip()
        loose = git / ref
        if loose.is_file():
            return loose.read_text().strip()
        common = git / "commondir"
        roots = [git, git / common.read_text().strip()] if common.is_file() else [git]
        for root in roots:
            packed = root / "packed-refs"
            if packed.is_file():
                for line in packed.read_text().splitlines():
                    if line.endswith(" " + ref):
                        return line.split()[0]
            if (root / ref).is_file():
                return (root / ref).read_text().strip()
    except (OSError, IndexError):
        pass
    return None


# -- the client -------------------------------------------------------------------------
#: one client per store and process: importing MLflow and opening a store take seconds, so a
#: process that logs many trials (a sweep's jobs in one process or worker) pays them once
_CLIENTS: dict[str, Any] = {}
_EXPERIMENTS: dict[tuple[str, str], str] = {}
#: a process that opened a sweep logs from its drain thread, and a job whose tracking URI is
#: not its sweep's logs for itself: one at a time, should both share a process
_LOGGING = threading.Lock()
#: sweep dir -> the thread logging its jobs' queued trials (in the process that started it)
_DRAINERS: dict[Path, Drainer] = {}


def client_for(uri: str):
    """The process's client for ``uri``.  Opening a SQLite store creates or upgrades its schema;
    MLflow does that without a lock, so workers opening a fresh store together fail with
    "duplicate column" (issue M12): here they open it one at a time."""
    client = _CLIENTS.get(uri)
    if client is None:
        from mlflow.tracking import MlflowClient

        if uri.startswith("sqlite:///") and uri != "sqlite:///:memory:":
            with locked(uri[len("sqlite:///"):]):
                client = MlflowClient(tracking_uri=uri)
        else:
            client = MlflowClient(tracking_uri=uri)
        _CLIENTS[uri] = client
    return client


def ensure_experiment(client, name: str, uri: str) -> str:
    """The experiment's id, created if missing (artifacts beside a local SQLite store), tagged
    so MLflow 3's UI opens it on the model-training view."""
    from mlflow.exceptions import MlflowException

    known = _EXPERIMENTS.get((uri, name))
    if known is not None:
        return known
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            client.restore_experiment(found.experiment_id)
        if EXPERIMENT_KIND[0] not in (found.tags or {}):
            client.set_experiment_tag(found.experiment_id, *EXPERIMENT_KIND)
        _EXPERIMENTS[(uri, name)] = found.experiment_id
        return found.experiment_id
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri[len("sqlite:///"):]).parent / "mlartifacts").as_uri()
    try:
        experiment_id = client.create_experiment(name, artifact_location=location,
                                                 tags=dict([EXPERIMENT_KIND]))
    except MlflowException:  # another process created it first
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        experiment_id = found.experiment_id
    _EXPERIMENTS[(uri, name)] = experiment_id
    return experiment_id


# -- the sweep link and the failure marker ------------------------------------------------
def read_link(sweep_dir: str | Path) -> dict | None:
    try:
        return json.loads((Path(sweep_dir) / LINK_NAME).read_text())
    except (OSError, ValueError):
        return None


def report_failure_once(where: str | Path, exc: BaseException, uri: str) -> bool:
    """Create ``tracking_failed.txt`` in ``where`` (sweep or run dir); only the process that
    creates it logs a warning.  Returns True for that process."""
    where = Path(where)
    first_line = (str(exc).strip().splitlines() or [""])[0][:300]
    first_line = redact(first_line)
    text = (f"MLflow tracking failed at {redact(uri)}: {type(exc).__name__}: {first_line}\n"
            f"Trials are still recorded in {where} (result.json per run, the summary TSV).\n"
            f"Push them later with: python -m tasnet_sweep.commands.sync {where}\n")
    try:
        where.mkdir(parents=True, exist_ok=True)
        fd = os.open(where / FAILED_MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        log.debug("tracking failed again (already reported): %s", first_line)
        return False
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    log.warning("%s", " ".join(text.split("\n")[:1]) + " -- trials are kept locally; run "
                f"`python -m tasnet_sweep.commands.sync {where}` when MLflow is back")
    return True


def tracking_failed(where: str | Path) -> bool:
    return (Path(where) / FAILED_MARKER).exists()


# -- runs --------------------------------------------------------------------------------
def _log_batches(client, run_id: str, params: dict | None = None, metrics: dict | None = None,
                 tags: dict | None = None) -> None:
    """Params, metrics and tags in as few ``log_batch`` calls as MLflow's limits allow (a
    trial's fit in two: its config has a little over 100 params); one call holds at most 1000
    entities in all, MLflow's limit."""
    import itertools
    import time

    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    for p, m, t in itertools.zip_longest(chunks(params or {}, MAX_PARAMS_PER_BATCH),
                                         chunks(metrics or {}, MAX_METRICS_PER_BATCH
                                                - MAX_PARAMS_PER_BATCH - MAX_TAGS_PER_BATCH),
                                         chunks(tags or {}, MAX_TAGS_PER_BATCH), fillvalue=()):
        client.log_batch(run_id, params=[Param(k, redact(v)) for k, v in p],
                         metrics=[Metric(k, v, now, 0) for k, v in m],
                         tags=[RunTag(k, redact(v)) for k, v in t])


def trial_artifacts(result: TrialResult, run_dir: Path,
                    cfg_plain: dict) -> list[tuple[Path, str | None]]:
    """(local file, artifact folder) pairs for one trial; ONNX/HEF only when configured."""
    files: list[tuple[Path, str | None]] = []
    for name in ("config_resolved.yaml", "result.json", "compile_failure.txt",
                 "compile_failure.json", ".hydra/overrides.yaml"):
        files.append((run_dir / name, None))
    report = result.compile.report_path
    if report:
        files.append((Path(report), None))
    files += [(p, None) for p in sorted(run_dir.glob("*.log")) if p.name != BACKGROUND_LOG]
    tracking = cfg_plain.get("tracking") or {}
    if tracking.get("log_onnx") and result.export.get("onnx_path"):
        files.append((Path(result.export["onnx_path"]), "onnx"))
    if tracking.get("log_hef") and result.summary.get("hef_path"):
        files.append((Path(result.summary["hef_path"]), "hef"))
    seen, out = set(), []
    inside = run_dir.resolve()
    for path, folder in files:
        real = path.resolve()
        # only the run's own files: a result.json is data, and may name any path at all
        if path.is_file() and real.is_relative_to(inside) and real not in seen:
            seen.add(real)
            out.append((path, folder))
    return out


def log_trial_run(client, experiment_id: str, result: TrialResult, run_dir: str | Path,
                  cfg_plain: dict, parent_run_id: str | None = None,
                  trial_key: str | None = None, replaces: bool = True) -> str:
    """One trial as one run.  The completion tag is set last, so a run cut short (server gone
    mid-upload) is recognised by ``sync`` and redone.  ``trial_key`` names the sweep job: a
    job run again under the same parent (a killed sweep rerun) replaces its earlier run;
    ``replaces=False`` skips that search, for a caller that knows there is none.

    Tags go in with the run and the files before the ~100 params: MLflow finds a run's
    artifact store with one ``get_run``, which is cheaper while the run holds few rows."""
    run_dir = Path(run_dir).resolve()
    tags = trial_tags(result, str(run_dir), None if parent_run_id else git_commit())
    tags[TRIAL_ID_TAG] = digest(run_dir)
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    if trial_key:
        tags[TRIAL_KEY_TAG] = trial_key
    started, finished = _trial_times_ms(result)
    run = client.create_run(experiment_id, start_time=started,
                            tags={k: redact(v)[:MAX_TAG_VALUE] for k, v in tags.items()},
                            run_name=tags.get("mlflow.runName"))
    run_id = run.info.run_id
    for path, folder in trial_artifacts(result, run_dir, cfg_plain):
        client.log_artifact(run_id, str(path), folder)
    _log_batches(client, run_id, params=flatten_config(cfg_plain), metrics=trial_metrics(result))
    client.set_tag(run_id, COMPLETE_TAG, "true")
    status = "FINISHED" if result.status == "ok" else "FAILED"
    client.set_terminated(run_id, status, end_time=finished)
    if parent_run_id and trial_key and replaces:  # the new run is complete: earlier ones go
        for earlier in _job_runs(client, experiment_id, parent_run_id, trial_key):
            if earlier != run_id:
                client.delete_run(earlier)
    return run_id


def _job_runs(client, experiment_id: str, parent_run_id: str, trial_key: str) -> list[str]:
    from mlflow.entities import ViewType

    runs = client.search_runs(
        [experiment_id], run_view_type=ViewType.ACTIVE_ONLY, max_results=1000,
        filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}' "
                      f"and tags.`{TRIAL_KEY_TAG}` = '{trial_key}'")
    return [r.info.run_id for r in runs]


def job_key(overrides) -> str:
    """A sweep job's identity: the digest of its overrides, in any order."""
    return hashlib.sha256("\n".join(sorted(map(str, overrides))).encode()).hexdigest()[:16]


def _trial_times_ms(result: TrialResult) -> tuple[int | None, int | None]:
    """The trial's own start and end (epoch ms), so a run's duration is the trial's; None for
    records written before they were kept (MLflow then uses the logging time)."""
    started, seconds = result.started_at, result.seconds
    if not isinstance(started, (int, float)):
        return None, None
    end = started + (seconds if isinstance(seconds, (int, float)) else 0.0)
    return int(started * 1000), int(end * 1000)


def create_sweep_run(client, experiment_id: str, sweep_dir: str | Path,
                     extra_tags: dict | None = None, params: dict | None = None,
                     name: str | None = None, start_ms: int | None = None) -> str:
    """The sweep's parent run (``start_ms``: when the sweep started, if not now)."""
    sweep_dir = Path(sweep_dir).resolve()
    commit = git_commit()
    tags = {SWEEP_ID_TAG: digest(sweep_dir), KIND_TAG: "sweep", "sweep_dir": str(sweep_dir),
            **standard_tags(), **({"mlflow.source.git.commit": commit} if commit else {}),
            **_owner_tags(), **(extra_tags or {})}
    tags = {k: redact(v)[:MAX_TAG_VALUE] for k, v in tags.items() if v not in (None, "")}
    run_id = client.create_run(experiment_id, start_time=start_ms, tags=tags,
                               run_name=name or "/".join(sweep_dir.parts[-2:])).info.run_id
    if params:
        _log_batches(client, run_id, params=params)
    return run_id


def _owner_tags(pid: int | None = None) -> dict[str, str]:
    """Host and pid of the process a sweep's run belongs to (``pid``: not this one's)."""
    import socket

    return {HOST_TAG: socket.gethostname(), PID_TAG: str(pid or os.getpid())}


def end_dead_sweeps(client, experiment_id: str) -> list[str]:
    """Parent runs left RUNNING by a sweep process of this host that is gone (killed, or the
    machine rebooted) are ended as KILLED.  A sweep on another host is left to its own host;
    a dead pid taken over by a new process keeps its run RUNNING until the next check."""
    from mlflow.entities import ViewType

    here = _owner_tags()[HOST_TAG]
    ended = []
    runs = client.search_runs(
        [experiment_id], run_view_type=ViewType.ACTIVE_ONLY, max_results=1000,
        filter_string=f"tags.`{KIND_TAG}` = 'sweep' and attributes.status = 'RUNNING'")
    for run in runs:
        tags = run.data.tags
        pid = tags.get(PID_TAG, "")
        if tags.get(HOST_TAG) == here and pid.isdigit() and not pid_alive(int(pid)):
            client.set_terminated(run.info.run_id, "KILLED")
            ended.append(run.info.run_id)
    if ended:
        log.warning("MLflow: %d sweep run(s) whose process is gone marked KILLED: %s",
                    len(ended), ", ".join(ended))
    return ended


def _reusable_parent(client, earlier_link: dict | None) -> str | None:
    """The parent of an earlier sweep into this same dir (a killed sweep run again; its link
    file), if MLflow still has it: its jobs are run again and replace their earlier runs there."""
    run_id = earlier_link.get("parent_run_id") if earlier_link else None
    if not run_id:
        return None
    try:
        run = client.get_run(run_id)
    except Exception:  # another store, or deleted for good
        return None
    return run_id if run.info.lifecycle_stage == "active" else None


def finish_sweep_run(client, run_id: str, sweep_dir: str | Path) -> list[str]:
    """Attach the sweep-level files that exist, log the sweep's figures, mark it finished."""
    sweep_dir = Path(sweep_dir)
    logged = []
    for pattern in SWEEP_FILE_PATTERNS:
        for path in sorted(sweep_dir.glob(pattern)):
            if path.is_file() and path.name not in logged:
                client.log_artifact(run_id, str(path))
                logged.append(path.name)
    _log_batches(client, run_id, metrics=sweep_metrics(sweep_dir),
                 tags=sweep_cost_tags(sweep_dir))
    client.set_terminated(run_id, "FINISHED")
    return logged


def sweep_params(config) -> dict[str, str]:
    """What defines a sweep, as the parent run's params: search space, fixed overrides,
    sampler, objective, backend, hardware, sweeper and the command line's overrides."""
    from omegaconf import OmegaConf

    def text(value) -> str:
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        return (json.dumps(value, separators=(",", ":")) if isinstance(value, (dict, list))
                else str(value))[:MAX_PARAM_VALUE]

    keys = ("search.name", "search.study_name", "search.knobs", "search.fixed",
            "search.sampler", "search.objective", "search.storage", "compiler.backend",
            "hw.arch", "tiling.mode", "hydra.sweeper._target_", "hydra.launcher._target_",
            "hydra.overrides.task")
    out = {}
    for key in keys:
        value = _select(config, key)
        if value not in (None, "") and not (OmegaConf.is_config(value) and len(value) == 0):
            out[clean_key("sweep." + key.removeprefix("hydra."))] = text(value)
    return out


def sweep_metrics(sweep_dir: Path) -> dict[str, float]:
    """The sweep's figures from its own files: trials and passes (the summary), compiles,
    inferred answers, frontier size and whether it is exact (a frontier search's
    optimization_results.yaml), the largest passing params and MACs, and the compile-hours:
    spent (the summary's trials; a frontier search's: its study's compiles), saved by inference
    and the wall clock (a frontier search)."""
    import csv

    rows: list[dict] = []
    for summary in sorted(sweep_dir.glob("*summary*.tsv")):
        with open(summary, newline="") as f:
            rows += [r for r in csv.DictReader(f, delimiter="\t") if r.get("verdict")]
    metrics = _summary_metrics(rows)
    frontier = sweep_dir / "optimization_results.yaml"
    if frontier.is_file():
        if "compile_hours_spent" in metrics:  # this sweep's jobs (timed-out ones too)
            metrics["compile_hours_spent_this_run"] = metrics["compile_hours_spent"]
        metrics.update(_frontier_metrics(frontier))  # compile_hours_spent: the study's
    return metrics


def _summary_metrics(rows: list[dict]) -> dict[str, float]:
    if not rows:
        return {}
    passing = [r for r in rows if r["verdict"] == "pass"]
    metrics = {"trials": len(rows), "passes": len(passing), "fails": len(rows) - len(passing)}
    for size in ("params", "macs"):
        values = [float(r[size]) for r in passing if (r.get(size) or "").strip()]
        if values:
            metrics[f"best_{size}_passing"] = max(values)
    spent = [_float(r.get("compile_seconds_spent")) for r in rows]
    if any(s is not None for s in spent):
        metrics["compile_hours_spent"] = sum(s or 0.0 for s in spent) / 3600
    return metrics


#: a frontier search's optimization_results.yaml keys -> the parent run's metric names
FRONTIER_METRICS = (("compiles_this_run", "compiles"), ("compiles_before", "compiles_before"),
                    ("inferred_recorded", "inferred"), ("certificate_size", "frontier_size"),
                    ("unknown", "unknown"), ("compile_hours_spent", "compile_hours_spent"),
                    ("compile_hours_saved_by_inference", "compile_hours_saved_by_inference"),
                    ("wall_clock_hours", "wall_clock_hours"))


def _frontier_metrics(path: Path) -> dict[str, float]:
    from omegaconf import OmegaConf

    res = OmegaConf.to_container(OmegaConf.load(path))
    metrics = {name: float(res[key]) for key, name in FRONTIER_METRICS
               if isinstance(res.get(key), (int, float)) and not isinstance(res[key], bool)}
    metrics["frontier_exact"] = 1.0 if res.get("exact") else 0.0
    metrics["maximal_passing"] = float(len(res.get("maximal_passing") or []))
    metrics["minimal_failing"] = float(len(res.get("minimal_failing") or []))
    return metrics


def sweep_cost_tags(sweep_dir: Path) -> dict[str, str]:
    """What a frontier search's compile-hours are (estimate run times, replayed or measured
    compile times) and how the saved hours were priced, as the parent run's tags."""
    path = Path(sweep_dir) / "optimization_results.yaml"
    if not path.is_file():
        return {}
    from omegaconf import OmegaConf

    cost = OmegaConf.to_container(OmegaConf.load(path)).get("compile_cost")
    if not isinstance(cost, dict):
        return {}
    return {f"compile_cost.{key}": str(cost[key])[:MAX_TAG_VALUE]
            for key in ("note", "saved_rule") if cost.get(key)}


def _float(text) -> float | None:
    """A summary cell as a finite number, or None."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if abs(value) < float("inf") else None  # nan and inf compare false


def runs_with_tag(client, experiment_id: str, tag: str) -> dict[str, list]:
    """Active runs of an experiment that carry ``tag``, grouped by its value."""
    from mlflow.entities import ViewType

    found: dict[str, list] = {}
    token = None
    while True:
        page = client.search_runs([experiment_id], filter_string=f"tags.`{tag}` != ''",
                                  run_view_type=ViewType.ACTIVE_ONLY, max_results=1000,
                                  page_token=token)
        for run in page:
            found.setdefault(run.data.tags[tag], []).append(run)
        token = page.token
        if not token:
            return found


def settle_earlier(client, runs: list) -> bool:
    """Whether one of a trial's earlier ``runs`` is complete; if none is, they were cut short
    (a logger stopped mid-upload) and are deleted, so logging the trial again leaves one."""
    if any(r.data.tags.get(COMPLETE_TAG) == "true" for r in runs):
        return True
    for cut_short in runs:
        client.delete_run(cut_short.info.run_id)
    return False


def already_logged(client, experiment_id: str, run_dir: str | Path) -> bool:
    """``settle_earlier`` for the runs of ``run_dir``'s trial."""
    from mlflow.entities import ViewType

    return settle_earlier(client, client.search_runs(
        [experiment_id], run_view_type=ViewType.ACTIVE_ONLY,
        filter_string=f"tags.`{TRIAL_ID_TAG}` = '{digest(run_dir)}'"))


def ui_hint(uri: str, experiment_id: str) -> str:
    """Where to look: MLflow 3.17's UI picks its GenAI or model-training view from the URL's
    ``workflowType`` (else the browser's last choice, GenAI at first), not from the
    experiment's ``mlflow.experimentKind`` tag that earlier 3.x UIs read."""
    page = f"#/experiments/{experiment_id}?workflowType=machine_learning"
    if uri.startswith(("http://", "https://")):
        return f"open {uri.rstrip('/')}/{page}"
    return f"run `mlflow ui --backend-store-uri {uri}` and open http://127.0.0.1:5000/{page}"


def _study_key(config) -> str | None:
    """A frontier search's identity (storage and study name): its resumes share a parent."""
    if not str(_select(config, "hydra.sweeper._target_") or "").endswith("FrontierSweeper"):
        return None
    study = _select(config, "search.study_name") or _select(config, "search.name")
    if not study:
        return None
    from ..search.study import storage_location

    location = storage_location(_select(config, "search.storage"), str(study))
    if "://" not in location:
        location = str(Path(location).resolve())
    return f"{location}::{study}"[:MAX_TAG_VALUE]


def _study_parent(client, experiment_id: str, study: str) -> str | None:
    from mlflow.entities import ViewType

    runs = client.search_runs([experiment_id], filter_string=f"tags.`{STUDY_TAG}` = '{study}'",
                              run_view_type=ViewType.ACTIVE_ONLY, max_results=1,
                              order_by=["attributes.start_time DESC"])
    return runs[0].info.run_id if runs else None


# -- the two entry points a sweep uses ----------------------------------------------------
#: sweeps whose MLflow side runs in a process of its own (begin_sweep), by resolved sweep dir
_STARTS: dict[Path, SweepProcess] = {}


def begin_sweep(config) -> SweepProcess | None:
    """on_multirun_start without waiting for MLflow: the link file at once, with the queue the
    jobs leave their trials in, then ``open_sweep`` and the drain of that queue in a process
    of their own (tracking/sweep_process.py), which ``end_sweep`` ends and waits for.

    Importing MLflow, opening the store and logging each trial take about 3 s of CPU in a
    16-trial sweep; in a thread of the sweep's process they share its one interpreter lock
    with the jobs a basic launcher runs there, in a process of their own they take a CPU that
    is otherwise idle.  Trials that end before the parent run exists wait in the queue."""
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    spec = sweep_spec(config)
    # an earlier sweep into this dir failed to log; its runs can still be synced
    (sweep_dir / FAILED_MARKER).unlink(missing_ok=True)
    earlier = read_link(sweep_dir)
    write_json(sweep_dir / LINK_NAME, {
        "uri": redact(spec["uri"]), "experiment": spec["experiment"], "experiment_id": None,
        "parent_run_id": None, "sweep_id": digest(sweep_dir), "queue": QUEUE_NAME})
    started_ms = int(time.time() * 1000)  # the parent run spans the sweep, not its opening
    try:
        process = SweepProcess.start(open_sweep, close_sweep, spec, earlier, started_ms)
    except OSError as exc:  # no process to be had: the jobs skip MLflow, sync pushes later
        report_failure_once(sweep_dir, exc, spec["uri"])
        return None
    _STARTS[sweep_dir.resolve()] = process
    return process


def sweep_spec(config) -> dict[str, Any]:
    """What opening a sweep's run takes from its config, resolved in the sweep's own process
    (``${now:}`` in the sweep dir resolves to another time elsewhere): the process that opens
    the run is given this, not the config."""
    hydra = config.hydra
    return {"sweep_dir": str(hydra.sweep.dir),
            "uri": resolve_uri(config.tracking.tracking_uri),
            "experiment": experiment_name(config),
            "tags": {"sweeper": _select(hydra, "sweeper._target_"),
                     "launcher": _select(hydra, "launcher._target_"),
                     "overrides": " ".join(_select(hydra, "overrides.task") or []),
                     "compiler_backend": _select(config, "compiler.backend"),
                     "hw_arch": _select(config, "hw.arch")},
            "study": _study_key(config),
            "params": sweep_params(config),
            "run_name": _select(config, "search.study_name") or _select(config, "search.name"),
            "owner_pid": os.getpid()}


def open_sweep(spec: dict[str, Any], earlier_link: dict | None = None,
               started_ms: int | None = None) -> dict:
    """Experiment, parent run and the link file for the workers; then the drain of their
    queued trials, in a thread of this process.  ``spec``: ``sweep_spec``'s; ``earlier_link``:
    the link an earlier sweep into this dir left (else read here); ``started_ms``: when the
    sweep started.  The parent run is tagged with the pid of the sweep's own process."""
    sweep_dir = Path(spec["sweep_dir"])
    sweep_dir.mkdir(parents=True, exist_ok=True)
    if earlier_link is None:
        earlier_link = read_link(sweep_dir)
    uri, name, study = spec["uri"], spec["experiment"], spec["study"]
    link: dict[str, Any] = {"uri": uri, "experiment": name, "experiment_id": None,
                            "parent_run_id": None, "sweep_id": digest(sweep_dir)}
    owner = _owner_tags(spec.get("owner_pid"))
    try:
        client = client_for(uri)  # a new SQLite store gets its schema here, before any worker
        link["experiment_id"] = ensure_experiment(client, name, uri)
        end_dead_sweeps(client, link["experiment_id"])
        resumed = _reusable_parent(client, earlier_link)
        if resumed is None and study:
            resumed = _study_parent(client, link["experiment_id"], study)
        if resumed is not None:  # a resumed search or a rerun sweep: the same parent
            client.update_run(resumed, "RUNNING")
            for key, value in {"sweep_dir": str(sweep_dir.resolve()), **owner}.items():
                client.set_tag(resumed, key, value)
            link["parent_run_id"] = resumed
        else:
            link["parent_run_id"] = create_sweep_run(
                client, link["experiment_id"], sweep_dir,
                {**spec["tags"], **owner, **({STUDY_TAG: study} if study else {})},
                spec["params"], name=spec["run_name"], start_ms=started_ms)
        link["queue"] = QUEUE_NAME  # jobs without MLflow of their own leave their trials here
        _start_drain(client, link["experiment_id"], link["parent_run_id"], sweep_dir, uri,
                     new_parent=resumed is None)
        log.info("MLflow: experiment %r, sweep run %s (%s); %s", name, link["parent_run_id"],
                 redact(uri), ui_hint(redact(uri), link["experiment_id"]))
    except Exception as exc:
        report_failure_once(sweep_dir, exc, uri)
    # the link is read by the sweep's jobs, which take the URI from their own config, and by
    # people: it never holds credentials
    write_json(sweep_dir / LINK_NAME, {**link, "uri": redact(uri)})
    return link


def _start_drain(client, experiment_id: str, parent: str, sweep_dir: Path, uri: str,
                 new_parent: bool = False) -> None:
    """Log the jobs' queued trials as children of ``parent`` from a thread of this process,
    which has MLflow open already; ``close_sweep`` logs what is left before finishing.

    ``new_parent``: the parent was created here, so its only children are the ones this drain
    logs, and a job's earlier run is searched for (to be replaced) only when this drain has
    logged that job before; a resumed parent is always searched."""
    logged: set[str] = set()

    def log_one(entry: dict) -> None:
        run_dir = Path(entry.get("run_dir", ""))
        result = read_result(run_dir / "result.json")
        if result is None or tracking_failed(sweep_dir):
            return  # sync pushes it from the run dir
        key = entry.get("trial_key")
        try:
            with _LOGGING:
                log_trial_run(client, experiment_id, result, run_dir, entry["config"], parent,
                              key, replaces=not new_parent or key in logged)
            logged.add(key)
        except Exception as exc:
            report_failure_once(sweep_dir, exc, uri)

    sweep_dir = Path(sweep_dir).resolve()
    earlier = _DRAINERS.pop(sweep_dir, None)
    if earlier is not None:
        earlier.stop()
    _DRAINERS[sweep_dir] = Drainer(sweep_dir / QUEUE_NAME, log_one)


def end_sweep(config) -> None:
    """on_multirun_end: the jobs' queued trials, then the sweep-level files on the parent run,
    which is then finished: all done by the sweep's MLflow process, which this waits for (none
    when ``begin_sweep`` could not start it and left the failure marker for ``sync``)."""
    process = _STARTS.pop(Path(str(config.hydra.sweep.dir)).resolve(), None)
    if process is not None:
        process.finish()


def close_sweep(sweep_dir: str | Path, uri: str) -> None:
    """What is left in the queue, then the sweep-level files on the parent run, which is then
    finished (in the process that opened the sweep)."""
    sweep_dir = Path(sweep_dir)
    drainer = _DRAINERS.pop(sweep_dir.resolve(), None)
    if drainer is not None:
        drainer.stop()
    link = read_link(sweep_dir)
    if not link or not link.get("parent_run_id") or tracking_failed(sweep_dir):
        return  # sync finishes the parent later
    try:
        finish_sweep_run(client_for(uri), link["parent_run_id"], sweep_dir)
    except Exception as exc:
        report_failure_once(sweep_dir, exc, uri)


def log_job_trial(cfg, result: TrialResult, run_dir: str | Path,
                  overrides: list[str] | None = None) -> str | None:
    """Called by every job after its trial: a child run in a sweep, a plain run otherwise;
    ``overrides``: the trial's own (a search worker runs many trials in one job), else the
    job's."""
    from omegaconf import OmegaConf

    run_dir = Path(run_dir)
    sweep_dir = _sweep_dir()
    link = read_link(sweep_dir) if sweep_dir is not None else None
    where = sweep_dir if link is not None else run_dir
    if tracking_failed(where):
        return None  # reported once already; sync pushes this trial later
    uri = resolve_uri(cfg.tracking.tracking_uri)
    cfg_plain = OmegaConf.to_container(cfg, resolve=True)
    if link is not None:
        experiment_id, parent = link.get("experiment_id"), link.get("parent_run_id")
        key = job_key(overrides or _job_overrides())
        queued = link.get("queue") and link.get("uri") == redact(uri)
        if queued:  # the sweep's MLflow process logs it
            enqueue(sweep_dir / link["queue"], {"run_dir": str(run_dir.resolve()),
                                                "trial_key": key, "config": cfg_plain})
            return None
        if not parent:
            return None
    else:
        experiment_id, parent, key = None, None, None
        if cfg.tracking.get("background", False) and uri not in _CLIENTS:
            return log_in_background(run_dir, uri, experiment_name(cfg), cfg_plain)
    try:
        client = client_for(uri)
        if experiment_id is None:
            experiment_id = ensure_experiment(client, experiment_name(cfg), uri)
        with _LOGGING:
            return log_trial_run(client, experiment_id, result, run_dir, cfg_plain, parent, key)
    except Exception as exc:
        report_failure_once(where, exc, uri)
        return None


def log_in_background(run_dir: Path, uri: str, experiment: str, cfg_plain: dict) -> None:
    """Hand a single run's logging to the store's tracking agent (tracking/agent.py), started
    unless one runs: importing MLflow and opening its store take seconds that the trial need
    not wait for, and trials run one after another pay them once.  A failure leaves
    ``tracking_failed.txt`` with the command to run again, as inline logging does."""
    started = hand_over(uri, {"run_dir": str(Path(run_dir).resolve()),
                              "experiment": experiment, "config": cfg_plain})
    log.info("MLflow: this run is logged by the tracking agent (%s; its log: %s)",
             f"started, pid {started}" if started else "running",
             agent_queue(uri) / "agent.log")  # the URI reaches the agent's environment only
    return None


def _job_overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task)


def _sweep_dir() -> Path | None:
    """This job's sweep dir in a multirun, else None."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
    except Exception:  # not inside a Hydra job
        return None
    if hc.mode != RunMode.MULTIRUN:
        return None
    return Path(str(hc.sweep.dir))
