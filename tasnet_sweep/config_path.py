"""Hydra's compose API on the config search path the app itself uses, for the commands that
compose configs before (or instead of) running the app."""

from __future__ import annotations

import contextlib
from pathlib import Path

from .resources import CONF_PKG


@contextlib.contextmanager
def config_search_path(config_path: str | None, config_dir: str | None):
    """The package's configs (or ``--config-path``) with ``--config-dir`` in front, as Hydra's
    ``_run_hydra`` builds it."""
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_automatic_config_search_path
    from hydra.core.config_search_path import SearchPathQuery
    from hydra.core.global_hydra import GlobalHydra

    search_path = create_automatic_config_search_path(None, "tasnet_sweep.app",
                                                      config_path or CONF_PKG)
    if config_dir is not None:
        search_path.prepend(provider="command-line", path=f"file://{Path(config_dir).resolve()}",
                            anchor=SearchPathQuery(provider="schema"))
    GlobalHydra.instance().clear()
    Hydra.create_main_hydra2(task_name="tasnet_sweep", config_search_path=search_path)
    try:
        yield
    finally:
        GlobalHydra.instance().clear()
