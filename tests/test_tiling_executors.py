"""The hailort executor against the hailo_platform TEST DOUBLE (tests/doubles/hailo_platform)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import TINY, placeholder_hefs

from tasnet_sweep.tiling.executors import (
    HailortExecutor,
    OrtExecutor,
    TorchExecutor,
    export_instances,
)
from tasnet_sweep.tiling.stitch import separate

SMALL = (*TINY, "model.time_len=203", "tiling=blocked",
         "tiling.tile_width=6", "tiling.channel_block=8")


@pytest.fixture
def small(tmp_path):
    return placeholder_hefs((*SMALL, "model.decoder=conv1x1_head"), tmp_path / "hef")


def test_hailort_executor_matches_torch_through_the_double(hailo_platform, small):
    model, plan, params, hef_dir = small
    wav = np.random.default_rng(1).standard_normal(203).astype(np.float32)
    with HailortExecutor(plan, params, hef_dir) as ex:
        got = separate(plan, params, ex, wav)
        assert hailo_platform.VDevice.open_devices == 1
    assert hailo_platform.VDevice.open_devices == 0
    with torch.no_grad():
        ref = model(torch.from_numpy(wav).reshape(1, 1, 1, -1))[0, :, 0].numpy()
    np.testing.assert_allclose(got, ref, atol=1e-5)
    # one run per tile and instance, every buffer NHWC without batch: (1, W, C)
    shapes = {s for _, s in hailo_platform.RUN_LOG}
    assert all(len(s) == 3 and s[0] == 1 for s in shapes)
    assert (1, (6 - 1) * 8 + 16, 1) in shapes  # an encoder tile
    assert len(hailo_platform.RUN_LOG) == sum(
        len(s.instances) * s.per_source * s.n_tiles(n) for s, n in _in_lengths(plan, 203))


def _in_lengths(plan, time_len):
    lens = plan.lengths(time_len)
    return [(s, lens[s.src]) for s in plan.npu_steps()]


def test_double_rejects_what_hailort_rejects(hailo_platform, small):
    _, plan, params, hef_dir = small
    inst = plan.npu_steps()[1].instances[0]
    with hailo_platform.VDevice(hailo_platform.VDevice.create_params()) as dev:
        im = dev.create_infer_model(str(hef_dir / f"{inst.file_stem}.hef"))
        with im.configure() as configured:
            b = configured.create_bindings()
            good = np.zeros(im.input().shape, np.float32)
            with pytest.raises(hailo_platform.HailoRTException, match="C-contiguous"):
                b.input().set_buffer(np.zeros(im.input().shape[::-1], np.float32).T)
            with pytest.raises(hailo_platform.HailoRTException, match="float32"):
                b.input().set_buffer(good.astype(np.float64))
            with pytest.raises(hailo_platform.HailoRTException, match="shape"):
                b.input().set_buffer(good[None])
            b.input().set_buffer(good)
            b.output().set_buffer(np.empty(im.output().shape, np.float32))
            with pytest.raises(hailo_platform.HailoRTException, match="FLOAT32"):
                configured.run([b], 1000)


#: a run the HailoRT double reports as taking 50 ms, against a 10 ms budget (no real clock)
SIMULATED_RUN_MS, SHORTER_BUDGET_MS = 50, 10


def test_hailort_executor_surfaces_timeouts_and_missing_hefs(hailo_platform, small, tmp_path):
    _, plan, params, hef_dir = small
    wav = np.zeros(203, np.float32)
    # simulated durations: the double compares them, no clock runs
    hailo_platform.slow_ms = SIMULATED_RUN_MS
    with HailortExecutor(plan, params, hef_dir, timeout_ms=SHORTER_BUDGET_MS) as ex:
        with pytest.raises(hailo_platform.HailoRTTimeout):
            separate(plan, params, ex, wav)
    hailo_platform.slow_ms = 0
    with HailortExecutor(plan, params, tmp_path / "empty") as ex:
        with pytest.raises(FileNotFoundError, match="no HEF for unit instance"):
            separate(plan, params, ex, wav)


def test_onnxruntime_executor_runs_exported_instance_files(small, tmp_path):
    model, plan, params, _ = small
    onnx_dir = export_instances(plan, params, tmp_path / "tiles")  # symbolic batch
    wav = np.random.default_rng(2).standard_normal(203).astype(np.float32)
    from_files = separate(plan, params, OrtExecutor(plan, params, onnx_dir), wav)
    reference = separate(plan, params, TorchExecutor(plan, params), wav)
    np.testing.assert_allclose(from_files, reference, atol=1e-5)
