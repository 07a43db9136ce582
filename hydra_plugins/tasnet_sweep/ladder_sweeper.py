"""``hydra/sweeper=ladder``: run an experiment's rungs in order, one job at a time.

No ``from __future__ import annotations`` here: Hydra imports plugin modules without
registering them in sys.modules, and dataclasses then cannot resolve string annotations.

Thin Hydra face; the ladder logic is in ``tasnet_sweep.experiments.ladder``.  Every rung's
config is composed and checked before the first job starts, so a mistake anywhere in the
ladder stops it with exit code 2 and nothing written.
"""


import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from omegaconf import OmegaConf

log = logging.getLogger(__name__)


@dataclass
class LadderSweeperConf:
    _target_: str = "hydra_plugins.tasnet_sweep.ladder_sweeper.LadderSweeper"
    rungs: List[Any] = field(default_factory=list)  # each: a list of overrides
    ramp: List[Any] = field(default_factory=list)  # each: {key: [values, ...]}
    stop_on: Optional[str] = None  # null | pass | fail


ConfigStore.instance().store(group="hydra/sweeper", name="ladder", node=LadderSweeperConf,
                             provider="tasnet_sweep")


class LadderSweeper(Sweeper):
    def __init__(self, rungs: List[Any], ramp: List[Any], stop_on: Optional[str] = None):
        self.rungs = OmegaConf.to_container(rungs) if OmegaConf.is_config(rungs) else rungs
        self.ramp = OmegaConf.to_container(ramp) if OmegaConf.is_config(ramp) else ramp
        self.stop_on = stop_on
        self.config = self.launcher = self.hydra_context = None

    def setup(self, *, hydra_context, task_function, config) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def _check(self, jobs: List[List[str]]) -> List[str]:
        from tasnet_sweep.cli import sweep_job_problems
        from tasnet_sweep.job_configs import JobConfigs

        configs = JobConfigs.for_sweep(self.hydra_context.config_loader, self.config)
        return sweep_job_problems(configs, jobs, "rung")

    def sweep(self, arguments: List[str]) -> Any:
        from tasnet_sweep.atomic import write_json
        from tasnet_sweep.experiments import ladder

        problems = ladder.problems(self.rungs, self.ramp, self.stop_on)
        rungs = ladder.ladder_rungs(self.rungs, self.ramp)
        jobs = [[*arguments, *rung] for rung in rungs]
        problems = problems or self._check(jobs)
        if problems:
            from tasnet_sweep.errors import report_config_errors

            sys.exit(report_config_errors(problems))
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        state = ladder.LadderState(rungs, self.stop_on)
        returns = []
        from tasnet_sweep.progress import iterate

        for idx, job in iterate(list(enumerate(jobs)), "ladder rungs", "rung"):
            log.info("ladder rung %d/%d: %s", idx + 1, len(jobs), " ".join(rungs[idx]))
            result = self.launcher.launch([job], initial_job_idx=idx)[0]
            returns.append([result])
            value = result.return_value  # re-raises a job's exception, as Hydra's sweepers do
            stop = state.record((value or {}).get("verdict", "fail"))
            write_json(sweep_dir / "ladder.json", state.as_dict())
            if stop:
                log.info("ladder stopped at rung %d (first %s)", idx + 1, self.stop_on)
                break
        return returns
