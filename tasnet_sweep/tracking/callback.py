"""The sweep-level half of MLflow tracking, as a Hydra callback (``hydra.callbacks.mlflow``).

``on_multirun_start`` runs in the sweep's own process before any job: it leaves the link file
in the sweep dir for the jobs (which may run in other processes), then starts the sweep's
MLflow process, which creates the store's schema, the experiment and the parent run while the
jobs start, and logs their trials.  ``on_multirun_end`` has that process attach the sweep's
summary, report and frontier files, finish the parent and end, and waits for it.  Both do
nothing with tracking=none.
"""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from .mlflow_store import begin_sweep, end_sweep


def _enabled(config: DictConfig) -> bool:
    tracking = config.get("tracking")
    return tracking is not None and tracking.get("backend") == "mlflow"


class MlflowSweep(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if _enabled(config):
            begin_sweep(config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if _enabled(config):
            end_sweep(config)
