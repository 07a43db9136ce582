"""quant_error next to the DFC's SDK_QUANTIZED emulator, unit by unit.

The HARs come from a real tiled trial compiled by the hailo_dfc backend against the
hailo_sdk_client TEST DOUBLE (tests/doubles; not a compiler): its HAR keeps the translated ONNX,
and its ``infer`` emulates the net with onnxruntime, rounding to an 8-bit grid under
SDK_QUANTIZED.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys

import numpy as np
import pytest
from helpers import DOUBLES, TINY, compose_cfg

from tasnet_sweep.checks import validate
from tasnet_sweep.commands.quant_error import run_quant_estimate
from tasnet_sweep.config import ConfigError

SMALL = (*TINY, "model.time_len=408", "tiling=blocked",
         "tiling.tile_width=50", "tiling.channel_block=8", "compiler.calibration.count=4")
DOUBLE_ENV = ("HAILO_DOUBLE_FAIL", "HAILO_DOUBLE_HANG", "HAILO_DOUBLE_CRASH",
              "HAILO_DOUBLE_VERSION", "HAILO_DOUBLE_LOG", "HAILO_DOUBLE_ONLY_NETS")


def _forget_sdk():
    for name in [m for m in sys.modules if m.split(".")[0] == "hailo_sdk_client"]:
        del sys.modules[name]


@pytest.fixture(scope="module")
def trial_dir(tmp_path_factory):
    """A tiled trial compiled with compiler=hailo_dfc (the double): units/<key>/quantized.har."""
    from tasnet_sweep.compile.hailo_dfc import HailoDfcBackend
    from tasnet_sweep.tiling.run import run_tiled

    run_dir = tmp_path_factory.mktemp("trial")
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(DOUBLES))
        for var in DOUBLE_ENV:
            mp.delenv(var, raising=False)
        cfg = compose_cfg(*SMALL, "compiler=hailo_dfc")
        assert validate(cfg) == []
        result = run_tiled(cfg, run_dir, HailoDfcBackend(cfg.compiler, cfg.hw),
                           parity_lengths=[cfg.model.time_len])
    _forget_sdk()
    assert result["feasible"], [u["failure_head"] for u in result["units"]]
    return run_dir


@pytest.fixture
def sdk(monkeypatch, tmp_path):
    """The double importable in this process, with a call log; returns the log reader."""
    monkeypatch.syspath_prepend(str(DOUBLES))
    for var in DOUBLE_ENV:
        monkeypatch.delenv(var, raising=False)
    calls = tmp_path / "calls.jsonl"
    monkeypatch.setenv("HAILO_DOUBLE_LOG", str(calls))
    _forget_sdk()
    yield lambda: [json.loads(ln) for ln in calls.read_text().splitlines()] \
        if calls.exists() else []
    _forget_sdk()


def estimate(tmp_path, *overrides):
    out = tmp_path / "out"
    return run_quant_estimate(compose_cfg(*SMALL, f"runtime.output_dir={out}", *overrides)), out


def plan_of(*overrides):
    from tasnet_sweep.tiling.plan import build_plan

    cfg = compose_cfg(*SMALL, *overrides)
    return build_plan(cfg.model, cfg.tiling)


@pytest.mark.slow
def test_every_unit_runs_through_both_contexts_with_its_nhwc_input(trial_dir, sdk, tmp_path,
                                                                    capsys):
    res, out = estimate(tmp_path, f"runtime.har_dir={trial_dir}")
    cmp = res["sdk_quantized"]
    plan = plan_of()
    assert cmp["available"] is True and cmp["evidence"] == "dfc_emulator"
    assert cmp["units_total"] == cmp["units_compared"] == len(plan.units) > 3
    assert cmp["missing_har"] == []
    for u in cmp["units"]:
        spec = plan.units[u["unit"]]
        assert "error" not in u, u
        assert u["instance"] == plan.instances_of(u["unit"])[0].name  # the HAR's weights
        assert u["input_nhwc"][1:] == [1, spec.in_width, spec.cin]
        # the double rounds to 8 bits: noise shows up, but the output is far from noise
        assert 10 < u["sdk_quantized_snr_db"] < 100 and math.isfinite(u["sdk_quantized_snr_db"])
        assert 10 < u["cpu_fake_quant_snr_db"] < 100
        # SDK_NATIVE ran the same weights on the same (correctly laid out) input
        assert u["same_unit"] and u["sdk_native_vs_cpu_float_snr_db"] > 80
    calls = sdk()
    inits = [c for c in calls if c["method"] == "__init__"]
    assert sorted(c["args"]["har"] for c in inits) == sorted(u["har"] for u in cmp["units"])
    assert all(c["args"]["hw_arch"] == "hailo8" for c in inits)
    infers = [c for c in calls if c["method"] == "infer"]
    assert sorted(c["args"]["context"] for c in infers) == \
        sorted(["sdk_native", "sdk_quantized"] * len(plan.units))
    assert sorted(tuple(c["args"]["data"]["array_shape"]) for c in infers) == \
        sorted(tuple(u["input_nhwc"]) for u in cmp["units"] for _ in range(2))
    assert all(c["args"]["data"]["dtype"] == "float32" for c in infers)
    saved = json.loads((out / "quant_error.json").read_text())
    assert saved["sdk_quantized"]["units_compared"] == len(plan.units)
    assert "DFC SDK_QUANTIZED vs SDK_NATIVE on" in capsys.readouterr().err


@pytest.mark.slow
def test_more_cpu_bits_move_our_figure_but_not_the_dfcs(trial_dir, sdk, tmp_path):
    res4, _ = estimate(tmp_path, f"runtime.har_dir={trial_dir}", "runtime.quant_bits=4")
    res12, _ = estimate(tmp_path, f"runtime.har_dir={trial_dir}", "runtime.quant_bits=12")
    by4 = {u["unit"]: u for u in res4["sdk_quantized"]["units"]}
    gains = []
    for u in res12["sdk_quantized"]["units"]:
        gains.append(u["cpu_fake_quant_snr_db"] - by4[u["unit"]]["cpu_fake_quant_snr_db"])
        # the HARs were quantized once, by the (double's) optimize: runtime.quant_bits is ours
        assert u["sdk_quantized_snr_db"] == pytest.approx(by4[u["unit"]]["sdk_quantized_snr_db"])
    # rounding noise falls with bits; a unit whose evaluation input clips on the calibrated
    # range (4 calibration frames) gains nothing, so only "never worse" holds for every unit
    assert min(gains) >= -1e-6 and sorted(gains)[len(gains) // 2] > 20


@pytest.mark.slow
def test_hars_from_other_weights_are_flagged(trial_dir, sdk, tmp_path, capsys):
    res, _ = estimate(tmp_path, f"runtime.har_dir={trial_dir}", "runtime.seed=7")
    units = res["sdk_quantized"]["units"]
    assert units and not any(u["same_unit"] for u in units)
    assert all(u["sdk_native_vs_cpu_float_snr_db"] < 20 for u in units)
    assert "; check " in capsys.readouterr().err


@pytest.mark.slow
def test_dfc_up_to_3_25_loads_the_har_with_har_path(trial_dir, sdk, tmp_path, monkeypatch):
    monkeypatch.setenv("HAILO_DOUBLE_VERSION", "3.25.0")
    res, _ = estimate(tmp_path, f"runtime.har_dir={trial_dir}")
    assert res["sdk_quantized"]["units_compared"] == res["sdk_quantized"]["units_total"]
    inits = [c["args"] for c in sdk() if c["method"] == "__init__"]
    assert inits and all("har_path" in a and "har" not in a for a in inits)


@pytest.mark.slow
def test_an_sdk_failure_is_recorded_per_unit_not_raised(trial_dir, sdk, tmp_path, monkeypatch,
                                                        capsys):
    monkeypatch.setenv("HAILO_DOUBLE_FAIL", "infer:RuntimeError:emulator exploded")
    res, _ = estimate(tmp_path, f"runtime.har_dir={trial_dir}")
    cmp = res["sdk_quantized"]
    assert cmp["available"] and cmp["units_compared"] == 0
    assert all(u["error"] == "RuntimeError: emulator exploded" for u in cmp["units"])
    assert all(math.isfinite(s) for s in res["snr_db_per_source"])
    assert "none ran" in capsys.readouterr().err


@pytest.mark.slow
def test_partial_hars_compare_what_is_there(trial_dir, sdk, tmp_path):
    import shutil

    partial = tmp_path / "partial"
    keys = sorted(p.name for p in (trial_dir / "units").iterdir() if p.is_dir())
    for key in keys[:2]:  # the <key>/quantized.har layout (a folder of work dirs)
        (partial / key).mkdir(parents=True)
        shutil.copy(trial_dir / "units" / key / "quantized.har", partial / key)
    res, _ = estimate(tmp_path, f"runtime.har_dir={partial}")
    cmp = res["sdk_quantized"]
    assert sorted(u["unit"] for u in cmp["units"]) == keys[:2]
    assert sorted(cmp["missing_har"]) == sorted(set(plan_of().units) - set(keys[:2]))


@pytest.mark.slow
def test_without_the_sdk_the_json_says_unavailable(trial_dir, tmp_path):
    _forget_sdk()
    if importlib.util.find_spec("hailo_sdk_client") is not None:
        pytest.skip("a real hailo_sdk_client is installed here")
    res, out = estimate(tmp_path, f"runtime.har_dir={trial_dir}")
    saved = json.loads((out / "quant_error.json").read_text())
    assert saved["sdk_quantized"] == {"available": False, "why": "hailo_sdk_client (Hailo's "
                                      "Dataflow Compiler) is not installed"}
    assert len(res["snr_db_per_source"]) == 2


@pytest.mark.parametrize("overrides, why", [
    ((), "runtime.har_dir is not set"),
    (("runtime.sdk_compare=off",), "runtime.sdk_compare=off"),
    (("runtime.har_dir={empty}",), "no units/<unit>/quantized.har under"),
])
def test_reasons_not_to_compare_are_recorded(sdk, tmp_path, overrides, why):
    from tasnet_sweep.runtime.sdk_compare import locate

    empty = tmp_path / "empty"
    empty.mkdir()
    cfg = compose_cfg(*SMALL, *(o.format(empty=empty) for o in overrides))
    hars, record = locate(cfg.runtime, plan_of())
    assert hars == {} and record["available"] is False and why in record["why"]


def test_bad_har_dir_and_bad_option_are_one_line_errors(sdk, tmp_path):
    with pytest.raises(ConfigError) as exc:
        estimate(tmp_path, f"runtime.har_dir={tmp_path / 'nope'}")
    assert exc.value.problems[0].startswith(f"runtime.har_dir='{tmp_path / 'nope'}' is not a "
                                            "directory")
    assert validate(compose_cfg("runtime.sdk_compare=maybe")) == [
        "runtime.sdk_compare='maybe' is invalid: expected one of auto, off"]


def test_an_unquoted_yaml_off_is_named_as_such():
    """YAML reads ``sdk_compare: off`` as a boolean, which the str field turns into 'False'."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.merge(compose_cfg(), OmegaConf.create("runtime:\n  sdk_compare: off\n"))
    assert cfg.runtime.sdk_compare == "False"
    assert validate(cfg) == [
        "runtime.sdk_compare='False' is invalid: expected one of auto, off (YAML reads an "
        "unquoted off/no/on/yes as a boolean: quote the word, e.g. sdk_compare: 'off')"]


@pytest.mark.slow
def test_the_double_checks_context_layout_and_state(trial_dir, sdk):
    from hailo_model_optimization.acceleras.utils.acceleras_exceptions import BadInputsShape
    from hailo_sdk_client import ClientRunner, InferenceContext

    key = sorted(p.name for p in (trial_dir / "units").iterdir() if p.is_dir())[0]
    spec = plan_of().units[key]
    x = np.random.default_rng(0).standard_normal((3, 1, spec.in_width, spec.cin), np.float32)
    runner = ClientRunner(hw_arch="hailo8", har=str(trial_dir / "units" / key / "quantized.har"))
    with runner.infer_context(InferenceContext.SDK_QUANTIZED) as ctx:
        q = runner.infer(ctx, x)
        with pytest.raises(BadInputsShape):  # NCHW instead of NHWC
            runner.infer(ctx, np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    assert q.shape == (3, 1, spec.out_width, spec.cout)
    with pytest.raises(RuntimeError, match="open runner.infer_context"):
        runner.infer(ctx, x)  # the context is closed
    with runner.infer_context(InferenceContext.SDK_NATIVE) as ctx:
        n = runner.infer(ctx, x)
    assert 0 < np.abs(q - n).max() < 0.1 * np.abs(n).max()  # rounded, not garbage
    parsed = ClientRunner(hw_arch="hailo8", har=str(trial_dir / "units" / key / "parsed.har"))
    with parsed.infer_context(InferenceContext.SDK_QUANTIZED) as ctx:
        with pytest.raises(RuntimeError, match="needs a quantized model"):
            parsed.infer(ctx, x)
    with pytest.raises(TypeError, match="har_path"):
        ClientRunner(hw_arch="hailo8", har_path=str(trial_dir / "units" / key / "parsed.har"))
