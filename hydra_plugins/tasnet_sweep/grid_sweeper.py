"""``hydra/sweeper=basic``, Hydra's default sweeper, with each job of a grid composed once.

Before it launches a batch, Hydra's basic sweeper composes every job of it in the sweep's own
process, only to see that it composes (``validate_batch_is_legal``); the launcher then composes
each job again to run it.  Most of a second a compose: seconds of serial work before
the first job of a grid starts, while the workers wait.  This sweeper checks a batch from one
compose per set of group choices with each job's values applied (tasnet_sweep/job_configs.py,
the same errors; none for the jobs ``tasnet_sweep.cli`` checked that way before Hydra ran), so
the launcher's compose is each job's only one.  Everything else is the
basic sweeper's.  It takes the basic sweeper's place under its own name (Hydra scans its own
plugins before ``hydra_plugins``, so this entry is the one stored last): every grid, whichever
config chose the basic sweeper, gets it, and ``search=``/``+experiment=`` still choose theirs.

No ``from __future__ import annotations``: Hydra imports plugin modules without registering
them in sys.modules, and dataclasses then cannot resolve string annotations.
"""

from dataclasses import dataclass
from typing import Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper, BasicSweeperConf
from hydra.core.config_store import ConfigStore


@dataclass
class GridSweeperConf(BasicSweeperConf):
    _target_: str = "hydra_plugins.tasnet_sweep.grid_sweeper.GridSweeper"


ConfigStore.instance().store(group="hydra/sweeper", name="basic", node=GridSweeperConf,
                             provider="tasnet_sweep")


class GridSweeper(BasicSweeper):
    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        from tasnet_sweep.job_configs import JobConfigs, was_checked

        configs = JobConfigs.for_sweep(self.hydra_context.config_loader, self.config)
        for job in batch:
            if not was_checked(job):  # cli.preflight composed it in this process already
                configs(list(job))
