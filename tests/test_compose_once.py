"""A single run's config is composed once (tasnet_sweep/compose_once.py) and Hydra gets exactly
the config it would have composed itself."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import yaml
from helpers import SMALL
from hydra._internal import config_loader_impl
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from omegaconf import OmegaConf

from tasnet_sweep import cli
from tasnet_sweep.compose_once import RUN_OVERRIDE, compose_run, hydra_reuses
from tasnet_sweep.config import register_configs
from tasnet_sweep.config_path import config_search_path

JOB = [*SMALL, "unit=encoder", "tracking=none"]


def _hydras_own(overrides: list[str]):
    hydra = GlobalHydra.instance().hydra
    return hydra.compose_config(config_name="config", overrides=[*overrides, RUN_OVERRIDE],
                                run_mode=RunMode.RUN, from_shell=True)


@pytest.mark.parametrize("extra", [[], ["hydra.job.chdir=false", "hw=hailo8l"]], ids=str)
def test_hydra_run_gets_the_config_of_its_own_compose(extra):
    register_configs()
    with config_search_path(None, None):
        own = OmegaConf.to_container(_hydras_own([*JOB, *extra]))
        kept = compose_run("config", [*JOB, *extra])
        with hydra_reuses(kept):
            assert GlobalHydra.instance().hydra.get_mode("config", [*JOB, *extra]) is None
            handed = _hydras_own([*JOB, *extra])
            assert kept.cfg is None  # taken: a second compose is Hydra's own again
            again = _hydras_own([*JOB, *extra])
    assert OmegaConf.to_container(handed) == own
    assert OmegaConf.to_container(again) == own
    assert own["hydra"]["mode"] == RunMode.RUN
    assert own["hydra"]["overrides"]["hydra"][-1] == RUN_OVERRIDE


def test_other_overrides_are_composed_by_hydra():
    register_configs()
    with config_search_path(None, None):
        kept = compose_run("config", JOB)
        with hydra_reuses(kept):
            other = _hydras_own([*JOB, "model.bn=24"])
        assert kept.cfg is not None
    assert other.model.bn == 24


class _Composes:
    """Counts Hydra's composes (``_load_configuration_impl``) in this process."""

    def __init__(self, monkeypatch):
        self.count = 0
        real = config_loader_impl.ConfigLoaderImpl._load_configuration_impl

        def counted(loader, *args, **kwargs):
            self.count += 1
            return real(loader, *args, **kwargs)

        monkeypatch.setattr(config_loader_impl.ConfigLoaderImpl, "_load_configuration_impl",
                            counted)


def _run_files(run_dir: Path) -> dict:
    files = {name: yaml.safe_load((run_dir / ".hydra" / name).read_text())
             for name in ("config.yaml", "hydra.yaml", "overrides.yaml")}
    text = yaml.safe_dump(files).replace(str(run_dir), "RUN_DIR")
    return yaml.safe_load(text)


def test_a_single_run_composes_once_and_writes_what_hydra_alone_writes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    composes = _Composes(monkeypatch)
    argv = [*JOB, f"compiler.cache_dir={tmp_path / 'cache'}"]
    assert cli.main([*argv, f"hydra.run.dir={tmp_path / 'once'}"]) == 0
    once = composes.count

    monkeypatch.setattr(cli, "_reusing", lambda kept: contextlib.nullcontext())
    composes.count = 0
    assert cli.main([*argv, f"hydra.run.dir={tmp_path / 'alone'}"]) == 0
    assert (once, composes.count) == (1, 3)  # preflight, get_mode, run

    assert _run_files(tmp_path / "once") == _run_files(tmp_path / "alone")


def test_a_single_run_with_a_config_dir_composes_once(tmp_path, monkeypatch):
    from tasnet_sweep.resources import CONF_DIR

    (tmp_path / "mine" / "hw").mkdir(parents=True)
    (tmp_path / "mine" / "hw" / "my_hailo8.yaml").write_text(
        (CONF_DIR / "hw" / "hailo8.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    composes = _Composes(monkeypatch)
    assert cli.main(["--config-dir", "mine", "hw=my_hailo8", *JOB,
                     f"compiler.cache_dir={tmp_path / 'cache'}",
                     f"hydra.run.dir={tmp_path / 'run'}"]) == 0
    assert composes.count == 1
    hydra_yaml = yaml.safe_load((tmp_path / "run" / ".hydra" / "hydra.yaml").read_text())
    assert hydra_yaml["hydra"]["runtime"]["choices"]["hw"] == "my_hailo8"


def test_a_cache_hit_imports_nothing_it_does_not_use(tmp_path):
    """A hit reads a record: no torch, onnx, onnxruntime, numpy or mlflow, and not filelock
    (whose asyncio import alone costs a hit 40 ms)."""
    import os
    import subprocess
    import sys

    from helpers import REPO

    heavy = ("torch", "onnx", "onnxruntime", "numpy", "mlflow", "filelock", "asyncio")
    code = ("import atexit, sys, runpy\n"  # the modules listed as the process ends
            f"atexit.register(lambda: print([m for m in {heavy!r} if m in sys.modules]))\n"
            "sys.argv = ['tasnet_sweep', *sys.argv[1:]]\n"
            "runpy.run_module('tasnet_sweep', run_name='__main__')\n")
    args = [*JOB, f"compiler.cache_dir={tmp_path / 'cache'}"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("MLFLOW_TRACKING_URI", None)
    fresh = subprocess.run([sys.executable, "-c", code, *args, "hydra.run.dir=one"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=600, env=env)
    assert fresh.returncode == 0 and "'torch'" in fresh.stdout, fresh.stdout + fresh.stderr
    hit = subprocess.run([sys.executable, "-c", code, *args, "hydra.run.dir=two"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600, env=env)
    assert hit.returncode == 0 and "cache_hit" in hit.stdout + hit.stderr, hit.stderr[-2000:]
    assert hit.stdout.strip().splitlines()[-1] == "[]", hit.stdout + hit.stderr
