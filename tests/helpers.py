"""Shared test helpers: the project's real configs through Hydra's compose API, the CLI as a
user runs it, and the model presets the tests build."""

from __future__ import annotations

import copy
import functools
import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_module

from tasnet_sweep.config import register_configs
from tasnet_sweep.resources import CONF_MODULE

REPO = Path(__file__).resolve().parent.parent
DOUBLES = Path(__file__).resolve().parent / "doubles"
#: the tiniest model that still has every part (two blocks, bottleneck, skip): builds, exports
#: and runs in milliseconds; tests add the time length and tiling they need
TINY = ("model.n_filters=16", "model.bn=8", "model.hidden=16", "model.skip=8",
        "model.n_blocks=2", "model.n_repeats=1")
#: a small model that builds and exports in well under a second
SMALL = ["model.n_filters=32", "model.bn=16", "model.hidden=32", "model.skip=16",
         "model.n_blocks=2", "model.n_repeats=1", "model.time_len=800"]


def compose_cfg(*overrides: str, return_hydra_config: bool = False):
    """The project's config as the app composes it, from the package (pkg://tasnet_sweep.conf).

    A compose takes Hydra about 0.2 s and many tests ask for the same overrides, so each result
    is composed once per session; every caller gets its own deep copy to change."""
    return copy.deepcopy(_composed(overrides, return_hydra_config))


@functools.cache
def _composed(overrides: tuple, return_hydra_config: bool):
    register_configs()
    with initialize_config_module(config_module=CONF_MODULE, version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides),
                       return_hydra_config=return_hydra_config)


def run_cli(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m tasnet_sweep`` as a user would, in ``cwd``."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "0"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run([sys.executable, "-m", "tasnet_sweep", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def placeholder_hefs(overrides, where: Path):
    """(model, plan, params, hef dir) for a tiled plan of seeded weights: each instance's ONNX
    file, and beside it a ``.hef`` placeholder that only the HailoRT test double reads."""
    import torch

    from tasnet_sweep.model.convtasnet import build_model
    from tasnet_sweep.tiling.executors import export_instances
    from tasnet_sweep.tiling.plan import build_plan
    from tasnet_sweep.tiling.weights import model_params

    cfg = compose_cfg(*overrides)
    torch.manual_seed(0)
    model = build_model(cfg.model)
    plan, params = build_plan(cfg.model, cfg.tiling), model_params(model)
    hef_dir = export_instances(plan, params, where, batch=1)
    for onnx_path in hef_dir.glob("*.onnx"):
        onnx_path.with_suffix(".hef").write_bytes(b"test-double placeholder, not a HEF")
    return model, plan, params, hef_dir


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
