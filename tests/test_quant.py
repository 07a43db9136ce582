"""The int8 fake-quantization estimate of a plan (python -m tasnet_sweep.commands.quant_error)."""

from __future__ import annotations

import json

import numpy as np
from helpers import TINY, compose_cfg

from tasnet_sweep.commands.quant_error import run_quant_estimate
from tasnet_sweep.runtime.quant import fake_quant

SMALL = (*TINY, "model.time_len=400", "tiling=blocked",
         "tiling.tile_width=50", "tiling.channel_block=8", "compiler.calibration.count=4")


def test_more_bits_give_a_higher_snr_and_the_result_is_written(tmp_path):
    snr = {}
    for bits in (4, 8, 12):
        res = run_quant_estimate(compose_cfg(*SMALL, f"runtime.quant_bits={bits}",
                                             f"runtime.output_dir={tmp_path}"))
        assert len(res["snr_db_per_source"]) == 2
        snr[bits] = min(res["snr_db_per_source"])
    assert snr[4] < snr[8] < snr[12]
    assert 15 < snr[8] < 80  # int8 is lossy but far from noise
    saved = json.loads((tmp_path / "quant_error.json").read_text())
    assert saved["bits"] == 12 and saved["calibration_frames"] == 4


def test_fake_quant_is_a_symmetric_grid():
    x = np.linspace(-2, 2, 101).astype(np.float32)
    q = fake_quant(x, 1 / 127, 8)
    assert np.max(np.abs(q)) <= 1.0 + 1e-6  # clipped to the calibrated range
    assert len(np.unique(q)) <= 255
    inside = np.abs(x) <= 1
    assert np.max(np.abs(q[inside] - x[inside])) <= 0.5 / 127 + 1e-6
