"""A search worker: one Hydra job of a ``search.workers=N`` frontier sweep.

The sweeper writes the search space into the sweep dir (``WORKER_SPEC``) and launches N jobs
through the configured Hydra launcher (basic, joblib, submitit_local, submitit_slurm), each with
``search.worker=<index>``.  Each job runs the search loop (``driver.run``) against the shared
study: propose, claim, compile the claimed config in its own process, record, repeat, until the
frontier is exact.  A worker never waits for another's compile (claims keep two workers off one
config, inference from every worker's answers applies at once), and a killed worker's claim
stops beating and goes to another worker after ``search.grace_s``.  Each worker's frontier
sampler plans around the others' running compiles by ``search.assume_running``.  The sweeper
then records the inferred answers and writes the reports, as without workers.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..atomic import write_json
from ..errors import ConfigError
from . import driver
from .lattice import Lattice
from .study import FrontierStudy

log = logging.getLogger(__name__)
#: the search space the workers share, written by the sweeper into the sweep dir
WORKER_SPEC = "search_workers.json"


def write_spec(sweep_dir: Path, knobs: dict, passthrough: list[str], study_name: str,
               prior=None, objective=None, compiled_before: int = 0) -> Path:
    """What every worker job needs beyond its own config: the knobs (after command-line
    sweeps became knobs), the overrides every job gets, the prior and objective grids, and
    how many configs the study had compiled before (``search.max_trials`` counts the sweep's
    compiles over all workers)."""
    spec = {"knobs": knobs, "passthrough": list(passthrough), "study_name": study_name,
            "compiled_before": int(compiled_before),
            "prior": None if prior is None else np.asarray(prior).tolist(),
            "objective": None if objective is None else np.asarray(objective).tolist()}
    return write_json(Path(sweep_dir) / WORKER_SPEC, spec)


def read_spec(sweep_dir: Path) -> dict:
    path = Path(sweep_dir) / WORKER_SPEC
    try:
        import json

        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError([f"search.worker is set but {path} cannot be read ({exc}): it is "
                           "written by hydra/sweeper=frontier with search.workers=N; run "
                           "the sweep, not a worker job on its own"]) from None


def knob_overrides(lattice: Lattice, point) -> list[str]:
    out = []
    for key, value in lattice.values(point).items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        out.append(f"{key}={value}")
    return out


def run_worker(cfg, sweep_dir: Path, run_trial) -> dict:
    """Search until the frontier is exact; ``run_trial(overrides, run_dir)`` runs one trial
    and returns its job result (None when it crashed).  Returns this worker's counts."""
    spec = read_spec(sweep_dir)
    s = cfg.search
    lattice = Lattice.from_spec(spec["knobs"])
    study = FrontierStudy(lattice, spec["study_name"], s.storage, s.sampler, s.seed,
                          s.get("objective"), heartbeat_s=s.heartbeat_s, grace_s=s.grace_s)
    index = int(s.worker)
    made = 0

    def launch(points):
        nonlocal made
        out = []
        for point in points:
            overrides = [*spec["passthrough"], *knob_overrides(lattice, point)]
            run_dir = Path(sweep_dir) / f"w{index}-{made:04d}"
            made += 1
            out.append(run_trial(overrides, run_dir))
        return out

    grid = {k: None if spec[k] is None else np.asarray(spec[k]) for k in ("prior", "objective")}
    state = driver.run(lattice, study, launch, sampler=s.sampler, batch_size=1,
                       max_trials=s.max_trials, seed=int(s.seed) + index,
                       record_inferred=False, prior=grid["prior"], objective=grid["objective"],
                       assume_running=s.get("assume_running", "auto"),
                       budget_from=int(spec.get("compiled_before", 0)))
    log.info("search worker %d: %d compiles; frontier %s", index, state.compiled_now,
             "exact" if state.done else "not exact")
    return {"worker": index, "compiled": state.compiled_now, "done": bool(state.done)}
