"""A deployable plan: one HEF per distinct instance weights, at most ``hw.max_configured_networks``
network groups per VDevice (run in waves), and what that costs per second of audio.

The device is the hailo_platform TEST DOUBLE (tests/doubles; it computes with onnxruntime and
enforces HailoRT's per-device core-op limit); the compiler in the end-to-end test is the
hailo_sdk_client TEST DOUBLE behind the real hailo_dfc backend.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from helpers import DOUBLES, TINY, compose_cfg, placeholder_hefs

from tasnet_sweep.tiling.deploy import DeviceWaves, execution_order, hef_names, schedule
from tasnet_sweep.tiling.executors import HailortExecutor, TorchExecutor
from tasnet_sweep.tiling.plan import build_plan
from tasnet_sweep.tiling.stitch import separate

PLAN = (*TINY, "model.time_len=203", "tiling=blocked", "tiling.tile_width=6",
        "tiling.channel_block=8", "model.decoder=conv1x1_head")


@pytest.fixture
def small(tmp_path):
    return placeholder_hefs(PLAN, tmp_path / "hef")[1:]


def test_every_instance_with_its_own_weights_needs_its_own_hef(small):
    plan, params, _ = small
    names = hef_names(plan, params)
    instances = execution_order(plan)
    assert sorted(names) == sorted(instances)
    assert len(set(names.values())) == len(instances) > len(plan.units)  # random weights differ
    # two instances of one unit with equal weights share a HEF
    step = next(s for s in plan.npu_steps() if s.op == "conv" and len(s.instances) > 1)
    a, b = step.instances[0], step.instances[1]
    assert a.unit == b.unit
    same = dict(params)
    w = same[f"{a.layer}.weight"].copy()
    (oa, ob), (ia, ib), (oa2, ob2), (ia2, ib2) = a.out_block, a.in_block, b.out_block, b.in_block
    w[oa2:ob2, ia2:ib2] = w[oa:ob, ia:ib]
    same[f"{a.layer}.weight"] = w
    if a.bias and b.bias:
        bias = same[f"{a.layer}.bias"].copy()
        bias[oa2:ob2] = bias[oa:ob]
        same[f"{a.layer}.bias"] = bias
    shared = hef_names(plan, same)
    if a.bias == b.bias:
        assert shared[a.name] == shared[b.name]
        assert len(set(shared.values())) == len(instances) - 1


def test_schedule_counts_configures_waves_and_switches():
    order = ["a", "b", "c", "d", "e"]
    hef_of = {n: f"{n}.hef" for n in order}
    tight = schedule(order, hef_of, limit=2)
    assert (tight.configures_first_chunk, tight.waves_first_chunk) == (5, 3)
    # the next chunk starts on the open VDevice (holding "e", one slot free): "a" fits there
    assert (tight.configures_per_chunk, tight.waves_per_chunk) == (5, 2)
    roomy = schedule(order, hef_of, limit=5)
    assert (roomy.waves_first_chunk, roomy.configures_per_chunk, roomy.waves_per_chunk) == \
        (1, 0, 0)  # configured once, kept for every later chunk
    assert tight.switches_per_chunk == roomy.switches_per_chunk == 4
    shared = schedule(order, dict.fromkeys(order, "one.hef"), limit=1)
    assert (shared.hefs, shared.configures_first_chunk, shared.switches_per_chunk) == (1, 1, 0)
    with pytest.raises(ValueError):
        DeviceWaves(0, lambda: None, lambda d, h: None)


def _run_plan(plan, params, hef_dir, **kw):
    wav = np.random.default_rng(1).standard_normal(203).astype(np.float32)
    with TorchExecutor(plan, params) as ref:
        want = separate(plan, params, ref, wav)
    ex = HailortExecutor(plan, params, hef_dir, **kw)
    with ex:
        got = separate(plan, params, ex, wav)
    return want, got, ex.waves.stats()


@pytest.mark.parametrize("api", ["infer_model", "vstreams"])
def test_a_plan_larger_than_the_device_runs_in_waves(hailo_platform, small, api):
    plan, params, hef_dir = small
    hailo_platform.MAX_CORE_OPS = 4
    if api == "vstreams":
        from tasnet_sweep.runtime.hailort_vstreams import VStreamsExecutor as Executor
    else:
        Executor = HailortExecutor
    wav = np.random.default_rng(1).standard_normal(203).astype(np.float32)
    with TorchExecutor(plan, params) as ref:
        want = separate(plan, params, ref, wav)
    with Executor(plan, params, hef_dir, max_configured=4) as ex:
        got = separate(plan, params, ex, wav)
        stats = ex.waves.stats()
    np.testing.assert_allclose(got, want, atol=2e-4)
    n = len(execution_order(plan))
    assert stats["configures"] == n and stats["configure_waves"] == math.ceil(n / 4)
    per_device: dict[int, int] = {}
    for serial, _ in hailo_platform.CONFIGURE_LOG:
        per_device[serial] = per_device.get(serial, 0) + 1
    assert max(per_device.values()) <= 4 and len(per_device) == stats["configure_waves"]
    assert hailo_platform.VDevice.open_devices == 0  # every wave's VDevice was released


def test_the_double_refuses_more_network_groups_than_the_device_holds(hailo_platform, small):
    plan, params, hef_dir = small
    hailo_platform.MAX_CORE_OPS = 4
    with pytest.raises(hailo_platform.HailoRTInvalidOperationException,
                       match="maximum allowed core-ops: 4"):
        _run_plan(plan, params, hef_dir, max_configured=32)


def test_the_vstreams_path_does_not_activate_under_the_scheduler(hailo_platform, small, caplog):
    from tasnet_sweep.runtime.hailort_vstreams import VStreamsExecutor

    plan, params, hef_dir = small
    wav = np.zeros(203, np.float32)
    with caplog.at_level("WARNING"), VStreamsExecutor(plan, params, hef_dir) as ex:
        separate(plan, params, ex, wav)
    assert not [r for r in caplog.records if "activate()" in r.getMessage()]


def test_the_runtime_doubles_exceptions_live_where_hailort_puts_them(hailo_platform):
    import hailo_platform as root

    assert root.HailoRTException is hailo_platform.HailoRTException
    for name in ("HailoRTTimeout", "HailoRTInvalidHEFException",
                 "HailoRTInvalidOperationException"):
        assert not hasattr(root, name) and issubclass(getattr(hailo_platform, name),
                                                      hailo_platform.HailoRTException)


def test_an_estimate_trial_reports_what_the_plan_takes_on_a_device(tmp_path):
    from tasnet_sweep import trial

    cfg = compose_cfg(*PLAN, "model.time_len=400", "tracking=none",
                      f"compiler.cache_dir={tmp_path / 'cache'}")
    result = trial.run(cfg, tmp_path / "run", tmp_path / "summary.tsv")
    deploy = result.deploy
    plan = build_plan(cfg.model, cfg.tiling)
    n = len(execution_order(plan))
    assert deploy["n_hefs"] == n and deploy["distinct_units"] == len(plan.units)
    assert n <= 32  # it fits one Hailo-8 VDevice: one wave, then it stays configured
    assert (deploy["schedule"]["waves_first_chunk"], deploy["schedule"]["waves_per_chunk"]) == \
        (1, 0)
    assert deploy["switches_per_audio_s"] == (n - 1) * 8000 / 400
    assert deploy["est_device_rtf"] > 0 and "GUESSED" in deploy["est_device_note"]
    assert deploy["hefs"] is None  # the estimate writes no HEF
    s = result.summary
    assert s["n_hefs"] == n and s["est_device_rtf"] == deploy["est_device_rtf"]
    text = (tmp_path / "run" / "plan.txt").read_text()
    assert f"{n} HEFs (one per distinct instance weights)" in text
    assert "network-group switches" in text and "estimated real-time factor" in text
    untiled = trial.run(compose_cfg("model.n_filters=16", "model.bn=8", "model.hidden=16",
                                    "model.skip=8", "model.n_blocks=2", "model.n_repeats=1",
                                    "model.time_len=400", "tracking=none",
                                    f"compiler.cache_dir={tmp_path / 'cache'}"),
                        tmp_path / "whole")
    assert untiled.deploy["n_hefs"] == 1 and untiled.deploy["switches_per_audio_s"] == 0
    from tasnet_sweep.tracking.flatten import trial_metrics

    assert trial_metrics(result)["n_hefs"] == n
    assert trial_metrics(result)["switches_per_audio_s"] == deploy["switches_per_audio_s"]


@pytest.mark.slow
def test_a_real_tiled_compile_writes_every_instances_hef_and_hailort_runs_them(
        hailo_platform, tmp_path, monkeypatch):
    """hailo_dfc (SDK double) on a blocked plan -> hefs/ + hef_map.json -> separate on the
    HailoRT double matches the torch model."""
    from tasnet_sweep import trial
    from tasnet_sweep.commands.separate import run_separate
    from tasnet_sweep.runtime.audio import write_wav

    monkeypatch.syspath_prepend(str(DOUBLES))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(DOUBLES),
                                                     os.environ.get("PYTHONPATH", "")]))
    tiny = ("model.n_filters=8", "model.bn=8", "model.hidden=8", "model.skip=8",
            "model.n_blocks=1", "model.n_repeats=1", "model.time_len=400", "tiling=blocked",
            "tiling.tile_width=40", "tiling.channel_block=8", "model.decoder=conv1x1_head")
    cfg = compose_cfg(*tiny, "compiler=hailo_dfc", "compiler.calibration.count=2",
                      "tracking=none", f"compiler.cache_dir={tmp_path / 'cache'}")
    result = trial.run(cfg, tmp_path / "run", tmp_path / "summary.tsv")
    assert result.summary["verdict"] == "pass", result.compile.failure
    hefs = result.deploy["hefs"]
    plan = build_plan(cfg.model, cfg.tiling)
    n = len(execution_order(plan))
    assert hefs["complete"] and hefs["hefs_written"] == n == result.deploy["n_hefs"]
    assert hefs["instance_compiles"] == n - len(plan.units)  # first instances compiled already
    hef_map = json.loads((Path(hefs["hef_dir"]) / "hef_map.json").read_text())
    assert sorted(hef_map["instances"]) == sorted(execution_order(plan))
    assert all((Path(hefs["hef_dir"]) / f).is_file() for f in hef_map["instances"].values())

    write_wav(tmp_path / "mix.wav", np.random.default_rng(3).standard_normal(800)
              .astype(np.float32) * 0.3, 8000)
    common = (*tiny, f"runtime.input={tmp_path}/mix.wav", "runtime.output_format=float32",
              "runtime.random_weights=true", f"runtime.seed={cfg.export.seed}")
    on_device = run_separate(compose_cfg(*common, "runtime=hailort",
                                         f"runtime.hef_dir={hefs['hef_dir']}",
                                         f"runtime.output_dir={tmp_path}/h"))
    reference = run_separate(compose_cfg(*common, "runtime=torch",
                                         f"runtime.output_dir={tmp_path}/t"))
    from tasnet_sweep.runtime.audio import read_audio

    for got, want in zip(on_device["outputs"], reference["outputs"]):
        np.testing.assert_allclose(read_audio(got)[0], read_audio(want)[0], atol=1e-3)
    assert on_device["device"]["n_hefs"] == n
    assert on_device["device"]["configure_waves"] >= 1


@pytest.mark.slow
def test_max_hefs_fails_a_plan_that_needs_more_hefs_than_a_device_should_hold(tmp_path):
    """The deployability constraint a frontier search can carry in search.fixed."""
    from tasnet_sweep import trial

    common = (*PLAN, "model.time_len=400", "tracking=none",
              f"compiler.cache_dir={tmp_path / 'cache'}")
    cfg = compose_cfg(*common)
    n = len(execution_order(build_plan(cfg.model, cfg.tiling)))
    over = trial.run(compose_cfg(*common, f"tiling.max_hefs={n - 1}"), tmp_path / "over")
    s = over.summary
    assert (s["verdict"], s["failure_family"], s["n_hefs"]) == ("fail", "deploy_limit", n)
    assert f"tiling.max_hefs={n - 1}" in s["failure_head"]
    within = trial.run(compose_cfg(*common, f"tiling.max_hefs={n}"), tmp_path / "within")
    assert within.summary["verdict"] == "pass"
    from helpers import run_cli

    bad = run_cli(["tiling.max_hefs=0"], tmp_path)
    assert bad.returncode == 2 and "tiling.max_hefs=0 is invalid" in bad.stderr
