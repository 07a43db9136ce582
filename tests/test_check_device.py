"""python -m tasnet_sweep.commands.check_device and the hailort runtime against the
hailo_platform TEST DOUBLE (tests/doubles/hailo_platform): both HailoRT APIs, timeouts, missing
HEFs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import TINY, compose_cfg

from tasnet_sweep.commands.check_device import PATH_FILES, run_validate
from tasnet_sweep.commands.separate import run_separate
from tasnet_sweep.config import ConfigError
from tasnet_sweep.model.convtasnet import build_model
from tasnet_sweep.runtime.audio import read_audio, write_wav
from tasnet_sweep.tiling.executors import export_instances
from tasnet_sweep.tiling.plan import build_plan
from tasnet_sweep.tiling.weights import model_params

SMALL = (*TINY, "model.time_len=400", "tiling=blocked",
         "tiling.tile_width=20", "tiling.channel_block=8", "model.decoder=conv1x1_head")


@pytest.fixture
def hef_dir(tmp_path):
    """Per-instance ONNX from the seeded weights the commands build, with placeholder .hef
    files beside them that only the test double reads (nothing here compiles)."""
    cfg = compose_cfg(*SMALL)
    torch.manual_seed(cfg.runtime.seed)
    model = build_model(cfg.model)
    plan = build_plan(cfg.model, cfg.tiling)
    out = export_instances(plan, model_params(model), tmp_path / "hef", batch=1)
    for onnx_path in out.glob("*.onnx"):
        onnx_path.with_suffix(".hef").write_bytes(b"test-double placeholder, not a HEF")
    return out


@pytest.mark.parametrize("api", ["infer_model", pytest.param("vstreams", marks=pytest.mark.slow)])
def test_separate_on_hailort_double_matches_torch(hailo_platform, hef_dir, tmp_path, api):
    mix = np.random.default_rng(0).standard_normal(900).astype(np.float32) * 0.3
    write_wav(tmp_path / "mix.wav", mix, 8000, "float32")
    common = (*SMALL, f"runtime.input={tmp_path}/mix.wav", "runtime.output_format=float32",
              "runtime.random_weights=true")
    run_separate(compose_cfg(*common, "runtime=hailort", f"runtime.hef_dir={hef_dir}",
                             f"runtime.hailort_api={api}", f"runtime.output_dir={tmp_path}/h"))
    run_separate(compose_cfg(*common, "runtime=torch", f"runtime.output_dir={tmp_path}/t"))
    for k in (1, 2):
        np.testing.assert_allclose(read_audio(tmp_path / "h" / f"mix_s{k}.wav")[0],
                                   read_audio(tmp_path / "t" / f"mix_s{k}.wav")[0], atol=1e-5)
    if api == "infer_model":  # one NHWC (1, W, C) buffer per tile, no batch axis
        shapes = {s for _, s in hailo_platform.RUN_LOG}
        assert shapes and all(len(s) == 3 and s[0] == 1 for s in shapes)
        assert not hailo_platform.VSTREAM_LOG
    else:  # batched NHWC (tiles, 1, W, C) per instance
        shapes = {s for _, s in hailo_platform.VSTREAM_LOG}
        assert shapes and all(len(s) == 4 and s[1] == 1 for s in shapes)
        assert not hailo_platform.RUN_LOG
    assert hailo_platform.VDevice.open_devices == 0  # closed after the run


@pytest.mark.slow
def test_check_device_writes_tables_and_metrics(hailo_platform, hef_dir, tmp_path):
    out = tmp_path / "val"
    m = run_validate(compose_cfg(*SMALL, "runtime=hailort", f"runtime.hef_dir={hef_dir}",
                                 f"runtime.output_dir={out}", "runtime.validate_repeats=1"))
    assert m["full_chain_max_abs"] < 1e-4 and m["unit_max_abs"] < 1e-4
    assert m["latency_ms_total"] > 0 and m["rtf_total"] > 0
    assert set(m["latency_ms_per_stage"]) == {"encoder", "masker", "mask_mul", "decoder"}
    units = (out / "hef_units_summary.tsv").read_text().splitlines()
    assert len(units) == 1 + m["n_instances"] == 1 + len(list(hef_dir.glob("*.hef")))
    for path, name in PATH_FILES.items():
        rows = (out / name).read_text().splitlines()
        assert rows[0].startswith("path\t") and all(r.startswith(path + "\t") for r in rows[1:])
        assert len(rows) == 1 + 2 * 2  # two sources at two lengths
    assert json.loads((out / "validate_metrics.json").read_text())["n_units"] == m["n_units"]
    dry = run_validate(compose_cfg(*SMALL, "runtime=onnxruntime", "runtime.validate_repeats=1",
                                   f"runtime.output_dir={tmp_path}/dry"))
    assert dry["full_chain_max_abs"] < 1e-4


def test_hailort_timeouts_missing_hefs_and_missing_dir(hailo_platform, hef_dir, tmp_path):
    write_wav(tmp_path / "mix.wav", np.zeros(500, np.float32), 8000)
    common = (*SMALL, "runtime=hailort", f"runtime.input={tmp_path}/mix.wav",
              f"runtime.output_dir={tmp_path}/o", "runtime.random_weights=true")
    # simulated durations: the double compares a 50 ms run with a 10 ms budget, no clock runs
    simulated_run_ms, shorter_budget_ms = 50, 10
    hailo_platform.slow_ms = simulated_run_ms
    for api in ("infer_model", "vstreams"):
        with pytest.raises(hailo_platform.HailoRTTimeout):
            run_separate(compose_cfg(*common, f"runtime.hef_dir={hef_dir}",
                                     f"runtime.timeout_ms={shorter_budget_ms}",
                                     f"runtime.hailort_api={api}"))
    hailo_platform.slow_ms = 0
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no HEF for unit instance"):
        run_separate(compose_cfg(*common, f"runtime.hef_dir={tmp_path}/empty"))
    with pytest.raises(ConfigError, match="runtime.hef_dir"):
        run_separate(compose_cfg(*common, f"runtime.hef_dir={tmp_path}/absent"))
    assert not (tmp_path / "o").exists()
