"""Experiment tracking for trials and sweeps (``tracking=mlflow`` | ``tracking=none``).

Only ``log_trial`` lives here, so ``app.py`` can call it without importing MLflow for
``tracking=none``; the MLflow side is in ``mlflow_store``, the Hydra callback in ``callback``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .mlflow_store import log_job_trial

log = logging.getLogger("tasnet_sweep.tracking")


def log_trial(cfg, result, run_dir: str | Path, overrides: list[str] | None = None) -> str | None:
    """Log one finished trial (a ``results.TrialResult``); returns the MLflow run id, or None
    (off, or failed: the local files remain the record, see mlflow_store).  Never raises."""
    if cfg.tracking.backend != "mlflow":
        return None
    try:
        return log_job_trial(cfg, result, run_dir, overrides)
    except Exception as exc:  # e.g. mlflow not installed: the trial is already recorded
        log.warning("MLflow tracking skipped: %s: %s", type(exc).__name__, exc)
        return None
