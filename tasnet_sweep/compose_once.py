"""A single run's config composed once, by the preflight check, and handed to Hydra.

Hydra 1.3 composes a single run's config twice: ``_run_hydra`` asks ``Hydra.get_mode`` (a
compose of its own, to read ``hydra.mode``), then ``Hydra.run`` composes it again with
``hydra.mode=RUN`` appended.  The preflight check composed it a third time.  Each compose costs
about 0.15 s CPU, most of a cache hit's own work.

Here the preflight composes it with the main Hydra's own loader and the arguments
``Hydra.run`` passes (``compose_run``); while Hydra runs (``hydra_reuses``), ``get_mode`` answers
from that config and ``Hydra.run``'s compose receives it, with ``hydra.mode=RUN`` applied by
Hydra's own override code, as ``_load_configuration_impl`` applies it.  Anything else (another
search path, other overrides, a multirun) composes as usual.  Checked against Hydra 1.3.2's
``hydra/_internal/utils.py:_run_hydra, _run_app`` and ``hydra/_internal/hydra.py:Hydra.get_mode,
Hydra.run``; ``tests/test_compose_once.py`` compares the handed-over config with a compose of
Hydra's own, so a Hydra that composes differently fails there.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

#: what ``_run_app`` appends to a single run's overrides when the config sets no ``hydra.mode``
RUN_OVERRIDE = "hydra.mode=RUN"


@dataclass
class Kept:
    """One composed config, and what it was composed from."""

    sources: tuple[str, ...]
    config_name: str | None
    overrides: tuple[str, ...]
    cfg: object | None  # None once Hydra took it

    def answers(self, sources: tuple[str, ...], config_name, overrides) -> bool:
        return (sources, config_name, tuple(overrides)) == (self.sources, self.config_name,
                                                             self.overrides)


def _sources(config_loader) -> tuple[str, ...]:
    return tuple(s.full_path() for s in config_loader.repository.get_sources())


def compose_run(config_name: str, overrides: list[str]) -> Kept:
    """The run's config (with its ``hydra`` node) as ``Hydra.run`` would compose it, from the
    main Hydra of a ``config_search_path`` block.  Raises what that compose raises."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    hydra = GlobalHydra.instance().hydra
    cfg = hydra.compose_config(config_name=config_name, overrides=list(overrides),
                               run_mode=RunMode.RUN, from_shell=True)
    return Kept(_sources(hydra.config_loader), config_name, tuple(overrides), cfg)


def _with_run_mode(cfg):
    """``cfg`` as if composed with ``hydra.mode=RUN`` last (Hydra applies value overrides in
    order after the defaults list, and lists hydra overrides in order)."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.core.override_parser.overrides_parser import OverridesParser

    ConfigLoaderImpl._apply_overrides_to_config(
        OverridesParser.create().parse_overrides([RUN_OVERRIDE]), cfg)
    cfg.hydra.overrides.hydra.append(RUN_OVERRIDE)
    return cfg


@contextlib.contextmanager
def hydra_reuses(kept: Kept):
    """While this block runs, Hydra's single-run composes are answered from ``kept``."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.hydra import Hydra
    from hydra.types import RunMode

    load, get_mode = ConfigLoaderImpl.load_configuration, Hydra.get_mode
    mode = kept.cfg.hydra.mode

    def kept_mode(self, config_name, overrides):
        if kept.cfg is not None and kept.answers(_sources(self.config_loader), config_name,
                                                 overrides):
            return mode
        return get_mode(self, config_name, overrides)

    def kept_config(self, config_name, overrides, run_mode, from_shell=True,
                    validate_sweep_overrides=True):
        if kept.cfg is not None and run_mode == RunMode.RUN:
            sources = _sources(self)
            appended = overrides[-1:] == [RUN_OVERRIDE] and mode is None
            if kept.answers(sources, config_name, overrides[:-1] if appended else overrides):
                cfg, kept.cfg = kept.cfg, None
                return _with_run_mode(cfg) if appended else cfg
        return load(self, config_name, overrides, run_mode, from_shell, validate_sweep_overrides)

    ConfigLoaderImpl.load_configuration, Hydra.get_mode = kept_config, kept_mode
    try:
        yield
    finally:
        ConfigLoaderImpl.load_configuration, Hydra.get_mode = load, get_mode
