"""A tiled trial walks the same path: plan, compile every distinct unit, check the stitch."""

import json

import pytest
from helpers import compose_cfg

from tasnet_sweep import trial
from tasnet_sweep.config import ConfigError

TINY_TILED = ["model=hailo_convtasnet", "model.n_filters=32", "model.bn=16", "model.hidden=32",
              "model.skip=16", "model.n_blocks=2", "model.n_repeats=1", "model.time_len=1600",
              "tiling=blocked", "tiling.tile_width=64", "tiling.channel_block=16",
              "tracking=none"]


def test_tiled_trial_records_every_unit_and_the_stitched_parity(tmp_path):
    cfg = compose_cfg(*TINY_TILED, f"compiler.cache_dir={tmp_path / 'cache'}")
    result = trial.run(cfg, tmp_path / "run", tmp_path / "summary.tsv")
    s = result.summary
    units = result.tiling["units"]
    assert s["tiling"] == "blocked" and s["evidence"] == "estimate"
    assert s["verdict"] == ("pass" if all(u["verdict"] == "pass" for u in units) else "fail")
    assert result.compile.metrics["n_units"] == len(units) > 3
    assert s["parity_max_abs"] < 1e-4
    assert (tmp_path / "run" / "plan.txt").exists() and (tmp_path / "run" / "parity.tsv").exists()
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert len(saved["tiling"]["units"]) == len(units)
    again = trial.run(cfg, tmp_path / "run2")
    assert again.summary["cache_hit"]  # every distinct unit answered by the compile cache


def test_tiling_needs_the_full_model(tmp_path):
    with pytest.raises(ConfigError) as err:
        trial.run(compose_cfg(*TINY_TILED, "unit=encoder"), tmp_path / "x")
    assert "needs unit=full" in str(err.value)
