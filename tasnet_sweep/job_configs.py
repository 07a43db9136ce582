"""The configs of a sweep's jobs, for checking them, from one compose per set of group choices.

Composing a config through Hydra takes most of a second (the defaults list, the YAML files, the
structured schema).  A job's config is its config-group choices composed, then its value
overrides (``model.bn=32``) applied in order, which is all Hydra does after the defaults list.
So the jobs of a grid that differ only in values share one compose: each job is a copy of it
with its own values applied by Hydra's own code, giving the same config and the same errors.
Only the launcher then composes each job, once, to run it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable

#: the jobs (their app overrides) this process has already composed and found good, before
#: Hydra ran (cli.preflight): the grid sweeper's own check skips them
_checked: set[tuple[str, ...]] = set()


def split_overrides(repository, overrides: list[str]) -> tuple[tuple[str, ...], list]:
    """(what the compose needs: group choices and ``hydra`` overrides, as text; the parsed
    value overrides of the app config), as Hydra's defaults list tells them apart."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    composed, values = [], []
    for o in OverridesParser.create().parse_overrides(overrides):
        is_group = repository.group_exists(o.key_or_group) and not isinstance(o.value(), dict)
        (composed if is_group or o.is_hydra_override() else values).append(o)
    return tuple(o.input_line for o in composed), values


def _app_overrides(job: Iterable[str]) -> tuple[str, ...]:
    return tuple(o for o in job if not o.lstrip("+~").startswith(("hydra.", "hydra/")))


def mark_checked(jobs: Iterable[list[str]]) -> None:
    _checked.update(_app_overrides(job) for job in jobs)


def was_checked(job: Iterable[str]) -> bool:
    return _app_overrides(job) in _checked


class JobConfigs:
    """``configs(job)``: the config ``job`` (a list of overrides) composes to, without its
    ``hydra`` node (its ``hydra`` overrides are checked by the compose).

    ``compose(overrides)`` composes the config; it is called once per distinct set of group
    choices (and ``hydra`` overrides), its result or its error kept for the next job."""

    def __init__(self, repository, compose: Callable[[list[str]], object]):
        self.repository, self.compose = repository, compose
        self._bases: dict[tuple[str, ...], object] = {}
        self.composed = 0  # how many composes were needed (for tests and benchmarks)

    def __call__(self, job: list[str]):
        from hydra._internal.config_loader_impl import ConfigLoaderImpl

        key, values = split_overrides(self.repository, job)
        if key not in self._bases:
            self.composed += 1
            try:
                self._bases[key] = _without_hydra(self.compose(list(key)))
            except Exception as exc:  # the same error for every job with these choices
                self._bases[key] = exc
        base = self._bases[key]
        if isinstance(base, Exception):
            raise base
        cfg = copy.deepcopy(base)
        ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
        return cfg

    @classmethod
    def for_sweep(cls, config_loader, master_config) -> JobConfigs:
        """A sweeper's jobs, composed as its launcher will (``load_sweep_config``)."""
        return cls(config_loader.repository,
                   lambda overrides: config_loader.load_sweep_config(master_config, overrides))


def _without_hydra(cfg):
    """A job's app config (a third cheaper to copy than with Hydra's node)."""
    from omegaconf import open_dict, read_write

    if "hydra" in cfg:
        with read_write(cfg), open_dict(cfg):
            del cfg["hydra"]
    return cfg
