"""Hydra's compose API on the config search path the app itself uses, for the commands that
compose configs before (or instead of) running the app."""

from __future__ import annotations

import contextlib
import os

from .resources import CONF_PKG

#: the job name Hydra gives the app (``detect_task_name`` of ``tasnet_sweep/app.py``): the
#: ``hydra.job.name`` of a config composed here matches the app's
APP_TASK_NAME = "app"
#: the app's ``hydra.main(version_base=...)``; set here too, since a compose before the app is
#: imported would otherwise follow Hydra 1.1's defaults
VERSION_BASE = "1.3"


@contextlib.contextmanager
def config_search_path(config_path: str | None, config_dir: str | None):
    """The package's configs (or ``--config-path``) with ``--config-dir`` in front, as Hydra's
    ``_run_hydra`` builds it."""
    from hydra import version
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_automatic_config_search_path
    from hydra.core.config_search_path import SearchPathQuery
    from hydra.core.global_hydra import GlobalHydra

    search_path = create_automatic_config_search_path(None, "tasnet_sweep.app",
                                                      config_path or CONF_PKG)
    if config_dir is not None:
        search_path.prepend(provider="command-line", path=f"file://{os.path.abspath(config_dir)}",
                            anchor=SearchPathQuery(provider="schema"))
    version.setbase(VERSION_BASE)
    GlobalHydra.instance().clear()
    Hydra.create_main_hydra2(task_name=APP_TASK_NAME, config_search_path=search_path)
    try:
        yield
    finally:
        GlobalHydra.instance().clear()
