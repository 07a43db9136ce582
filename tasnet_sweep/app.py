"""The thin Hydra face: compose, locate the run and summary paths, call ``trial.run``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from .config import register_configs
from .config_path import VERSION_BASE
from .errors import DISK_ERRORS, EXIT_DISK, ConfigError, report_config_errors
from .resources import CONF_PKG

log = logging.getLogger("tasnet_sweep")
register_configs()


def run_paths(cfg) -> tuple[Path, Path]:
    """This job's run directory and the summary TSV it appends to (the sweep's, in multirun)."""
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    if hc.mode == RunMode.MULTIRUN:
        return run_dir, Path(hc.sweep.dir) / cfg.summary_name
    return run_dir, run_dir / cfg.summary_name


@hydra.main(version_base=VERSION_BASE, config_path=CONF_PKG, config_name="config")
def hydra_app(cfg) -> dict | None:
    from . import tracking, trial
    from .processes import end_with_parent, exit_without_teardown

    end_with_parent()  # a launcher's worker ends with the sweep that started it
    exit_without_teardown()  # ... and its end does not keep the sweep waiting
    if cfg.get("search") is not None and cfg.search.get("worker") is not None:
        return search_worker(cfg)
    run_dir, summary = run_paths(cfg)
    try:
        result = trial.run(cfg, run_dir, summary)
    except ConfigError as exc:
        sys.exit(report_config_errors(exc.problems))
    except OSError as exc:
        if exc.errno not in DISK_ERRORS:
            raise
        print(f"tasnet_sweep: error: cannot write {exc.filename or run_dir}: {exc.strerror}: "
              "expected a writable output folder with room (hydra.run.dir / hydra.sweep.dir)",
              file=sys.stderr)
        sys.exit(EXIT_DISK)
    log.info("%s", trial.one_line(result))
    tracking.log_trial(cfg, result, run_dir)  # after the local record; never raises
    return trial.sweep_return(result)


def search_worker(cfg) -> dict:
    """A ``search.workers=N`` job: trials composed and run in this process, one per claimed
    config, until the frontier is exact (tasnet_sweep/search/worker.py)."""
    from hydra import compose

    from . import tracking, trial
    from .search.worker import run_worker

    sweep_dir = Path(HydraConfig.get().sweep.dir)

    def run_trial(overrides: list[str], run_dir: Path) -> dict | None:
        job_cfg = compose(config_name="config", overrides=overrides)
        run_dir = run_dir.with_name(f"{run_dir.name}_{job_cfg.run_tag}")
        try:
            result = trial.run(job_cfg, run_dir, sweep_dir / job_cfg.summary_name)
        except Exception as exc:  # a crashed trial is no evidence; the worker goes on
            log.error("trial %s failed: %s: %s", " ".join(overrides), type(exc).__name__, exc)
            return None
        log.info("%s", trial.one_line(result))
        tracking.log_trial(job_cfg, result, run_dir, overrides)
        return trial.sweep_return(result)

    return run_worker(cfg, sweep_dir, run_trial)
