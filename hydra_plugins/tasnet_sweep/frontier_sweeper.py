"""``hydra/sweeper=frontier``: find the largest configurations that still compile.

Thin Hydra face (registered in ConfigStore group ``hydra/sweeper``, name ``frontier``).  The
search space comes from ``search=<name>`` (conf/search/); heavy imports and the sweep itself
live in ``_impl`` (Hydra's plugin scanner skips ``_`` modules), the logic in
``tasnet_sweep.search``.

No ``from __future__ import annotations``: Hydra imports plugin modules without registering
them in sys.modules, and dataclasses then cannot resolve string annotations.
"""

from dataclasses import dataclass
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper


@dataclass
class FrontierSweeperConf:
    _target_: str = "hydra_plugins.tasnet_sweep.frontier_sweeper.FrontierSweeper"
    # overrides every job gets on top of search.fixed (e.g. [compiler=replay])
    job_overrides: Optional[List[str]] = None


ConfigStore.instance().store(group="hydra/sweeper", name="frontier", node=FrontierSweeperConf,
                             provider="tasnet_sweep")


class FrontierSweeper(Sweeper):
    def __init__(self, job_overrides: Optional[List[str]] = None):
        self.job_overrides = list(job_overrides or [])
        self._impl: Any = None

    def setup(self, *, hydra_context, task_function, config) -> None:
        from ._impl import FrontierSweeperImpl

        self._impl = FrontierSweeperImpl(self.job_overrides)
        self._impl.setup(hydra_context=hydra_context, task_function=task_function,
                         config=config)

    def sweep(self, arguments: List[str]) -> Any:
        return self._impl.sweep(arguments)
