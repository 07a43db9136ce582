"""Shared test helpers: compose the project's real configs with Hydra's compose API."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from tasnet_sweep.cli import CONF_DIR
from tasnet_sweep.config import register_configs

REPO = Path(__file__).resolve().parent.parent
DOUBLES = Path(__file__).resolve().parent / "doubles"
#: a small model that builds and exports in well under a second
SMALL = ["model.n_filters=32", "model.bn=16", "model.hidden=32", "model.skip=16",
         "model.n_blocks=2", "model.n_repeats=1", "model.time_len=800"]


def compose_cfg(*overrides: str):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


@pytest.fixture
def cfg_factory():
    return compose_cfg


def run_cli(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m tasnet_sweep`` as a user would, in ``cwd``."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "0"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run([sys.executable, "-m", "tasnet_sweep", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def hailo_platform(monkeypatch):
    """The test double of HailoRT's ``hailo_platform`` (tests/doubles), fresh for each test."""
    monkeypatch.syspath_prepend(str(DOUBLES))
    sys.modules.pop("hailo_platform", None)
    import hailo_platform

    hailo_platform.RUN_LOG.clear()
    hailo_platform.VSTREAM_LOG.clear()
    hailo_platform.slow_ms = 0
    yield hailo_platform
    sys.modules.pop("hailo_platform", None)
