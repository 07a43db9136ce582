"""A sweep's jobs checked from one compose per set of group choices (tasnet_sweep/job_configs.py)
give the config, and the error, a compose of each job gives."""

from __future__ import annotations

import pytest
from hydra import compose
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from tasnet_sweep.cli import describe_hydra_error
from tasnet_sweep.config import register_configs
from tasnet_sweep.config_path import config_search_path
from tasnet_sweep.job_configs import JobConfigs, split_overrides

JOBS = [
    ["model.bn=32", "model.hidden=64", "tracking=none"],
    ["model.bn=48", "model.hidden=128", "tracking=none"],
    ["unit=encoder", "model.n_filters=64", "tiling=temporal", "tiling.tile_width=400"],
    ["+experiment=fine_parts", "model.bn=16"],
    ["hw=hailo8l", "compiler.max_utilization=0.5", "hydra/launcher=joblib"],
    ["model.bn=32", "+model.extra=1"],
]
BAD = [
    ["model.bn=abc"],
    ["model.nope=1"],
    ["unit=nope"],
    ["model.bn=[1,2]"],
    ["~runtime.checkpoint"],
    ["~export.max_memory_gb"],
]


@pytest.fixture()
def composed():
    register_configs()
    with config_search_path(None, None):
        repo = GlobalHydra.instance().config_loader().repository
        yield JobConfigs(repo, lambda o: compose(config_name="config", overrides=o)), \
            lambda o: compose(config_name="config", overrides=o)


@pytest.mark.parametrize("job", JOBS, ids=" ".join)
def test_a_job_gets_the_config_its_own_compose_gives(composed, job):
    configs, one_compose = composed
    assert OmegaConf.to_container(configs(job)) == OmegaConf.to_container(one_compose(job))


@pytest.mark.parametrize("job", BAD, ids=" ".join)
def test_a_bad_job_gets_the_error_its_own_compose_gives(composed, job):
    configs, one_compose = composed
    with pytest.raises(Exception) as shared:
        configs(job)
    with pytest.raises(Exception) as own:
        one_compose(job)
    assert describe_hydra_error(shared.value) == describe_hydra_error(own.value)


def test_a_grid_of_values_is_composed_once_and_each_job_keeps_its_values(composed):
    configs, _ = composed
    grid = [[f"model.bn={bn}", f"model.hidden={h}", "unit=encoder"]
            for bn in (32, 48) for h in (64, 128)]
    got = [configs(job) for job in grid]
    assert configs.composed == 1
    assert [(c.model.bn, c.model.hidden) for c in got] == [(32, 64), (32, 128), (48, 64),
                                                          (48, 128)]
    configs(["unit=decoder", "model.bn=32"])  # other group choices: a compose of their own
    assert configs.composed == 2


def test_group_choices_and_hydra_overrides_go_to_the_compose(composed):
    configs, _ = composed
    key, values = split_overrides(configs.repository, [
        "unit=encoder", "model.bn=32", "+experiment=fine_parts", "hydra.launcher.n_jobs=2",
        "hydra/launcher=joblib", "model={name: x}"])
    assert key == ("unit=encoder", "+experiment=fine_parts", "hydra.launcher.n_jobs=2",
                   "hydra/launcher=joblib")
    assert [o.input_line for o in values] == ["model.bn=32", "model={name: x}"]


@pytest.mark.slow
def test_a_grid_composes_each_job_once(tmp_path, monkeypatch):
    """Preflight composes the shared base, the grid sweeper does not compose again what it
    checked; only the launcher composes a job with its own values (Hydra's basic sweeper
    composes each twice more)."""
    from helpers import SMALL
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    from tasnet_sweep.cli import main

    composes: list[list[str]] = []
    load = ConfigLoaderImpl.load_configuration

    def counted(self, config_name, overrides, *args, **kwargs):
        composes.append(list(overrides))
        return load(self, config_name, overrides, *args, **kwargs)

    monkeypatch.setattr(ConfigLoaderImpl, "load_configuration", counted)
    monkeypatch.chdir(tmp_path)
    fixed = [s for s in SMALL if not s.startswith("model.bn")]
    assert main(["-m", "model.bn=16,24", *fixed, "tracking=none", "hydra.sweep.dir=sweep",
                 "compiler.cache_dir=cache"]) == 0
    assert len(list((tmp_path / "sweep").glob("*/result.json"))) == 2
    for bn in ("16", "24"):
        assert sum(f"model.bn={bn}" in job for job in composes) == 1, composes
    # preflight's, Hydra's two of the sweep (its mode, then the sweep), one for each job
    assert len(composes) == 5, composes
