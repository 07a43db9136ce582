"""A Hydra callback that writes an experiment's report when its multirun ends."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from .experiment import write_report

log = logging.getLogger(__name__)


class ExperimentReport(Callback):
    def __init__(self, experiment: str = "experiment"):
        self.experiment = experiment

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not (sweep_dir / config.summary_name).exists():
            log.warning("no %s in %s: no report written", config.summary_name, sweep_dir)
            return
        compiler = OmegaConf.to_container(config.compiler, resolve=True)
        path = write_report(sweep_dir, config.summary_name, self.experiment, compiler)
        log.info("report: %s", path)
