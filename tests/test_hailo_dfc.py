"""The hailo_dfc backend against the hailo_sdk_client TEST DOUBLE (tests/doubles; not a compiler).

The double follows the README's API, checks call order and shapes, and logs every call to a JSON
lines file; environment variables make it raise a real DFC error text, hang or crash.
"""

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import SMALL, compose_cfg, run_cli

from tasnet_sweep.compile.base import CompileRequest
from tasnet_sweep.compile.hailo_dfc import HailoDfcBackend, model_script
from tasnet_sweep.config import ConfigError

DOUBLES = Path(__file__).resolve().parent / "doubles"


@pytest.fixture(scope="module")
def units(tmp_path_factory):
    """ONNX files of a one-input unit (source_projector) and a two-input unit (decoder_pre)."""
    from tasnet_sweep.export import export_unit
    from tasnet_sweep.model.units import build_unit

    out = {}
    d = tmp_path_factory.mktemp("onnx")
    for name in ("source_projector", "decoder_pre"):
        cfg = compose_cfg(*SMALL, f"unit={name}")
        unit = build_unit(cfg.model, cfg.unit)
        out[name] = (unit, export_unit(unit, d / f"{name}.onnx").onnx_path)
    return out


@pytest.fixture
def sdk(monkeypatch, tmp_path):
    """The test double on the import path (of this process only) and a fresh call log."""
    monkeypatch.syspath_prepend(str(DOUBLES))
    for var in ("HAILO_DOUBLE_FAIL", "HAILO_DOUBLE_HANG", "HAILO_DOUBLE_CRASH",
                "HAILO_DOUBLE_CONTEXTS", "HAILO_DOUBLE_VERSION"):
        monkeypatch.delenv(var, raising=False)
    calls = tmp_path / "calls.jsonl"
    monkeypatch.setenv("HAILO_DOUBLE_LOG", str(calls))

    def read():
        return [json.loads(ln) for ln in calls.read_text().splitlines()] if calls.exists() else []
    return read


def compile_unit(units, tmp_path, name="source_projector", *overrides):
    cfg = compose_cfg(*SMALL, f"unit={name}", "compiler=hailo_dfc", *overrides)
    unit, onnx_path = units[name]
    work = tmp_path / "run"
    req = CompileRequest(unit.name, "tnet", Path(onnx_path), unit.inputs, unit.outputs, work)
    return HailoDfcBackend(cfg.compiler, cfg.hw).compile(req), unit, work


def stage_oks(outcome):
    return [s.ok for s in outcome.stages]


def test_stages_run_in_documented_order_with_nchw_shapes_and_nhwc_calibration(units, sdk,
                                                                           tmp_path):
    outcome, unit, work = compile_unit(units, tmp_path)
    calls = sdk()
    assert [c["method"] for c in calls] == [
        "__init__", "translate_onnx_model", "save_har", "load_model_script", "optimize",
        "save_har", "compile", "save_har"]
    assert calls[0]["args"]["hw_arch"] == "hailo8"
    assert len({c["pid"] for c in calls}) == 1 and calls[0]["pid"] != os.getpid()
    tr = calls[1]["args"]
    (name, shape), = unit.inputs
    assert tr["model"] == str(Path(units["source_projector"][1]).resolve())
    assert tr["net_name"] == "tnet"
    assert tr["start_node_names"] == ["input"] and tr["end_node_names"] == ["output"]
    assert tr["net_input_shapes"] == {"input": shape} and shape[0] == 1 and shape[2] == 1
    n, c, _, w = shape
    assert calls[4]["args"]["calib"] == {"array_shape": [16, 1, w, c], "dtype": "float32"}
    assert [Path(c["args"]["path"]).name for c in calls if c["method"] == "save_har"] == \
        ["parsed.har", "quantized.har", "compiled.har"]
    assert [c["args"]["state"] for c in calls if c["method"] == "save_har"] == \
        ["hailo_model", "quantized_model", "compiled_model"]

    assert outcome.failure is None and outcome.verdict == "pass"
    assert outcome.backend == "hailo_dfc" and outcome.evidence == "real"
    assert stage_oks(outcome) == [True, True, True]
    assert [Path(s.artifact).name for s in outcome.stages] == \
        ["parsed.har", "quantized.har", "source_projector.hef"]
    assert all(Path(s.artifact).is_file() for s in outcome.stages)
    assert (work / "source_projector.hef").read_bytes().startswith(b"TEST-DOUBLE-HEF")
    assert outcome.tool_version == "3.33.0" and outcome.metrics["dfc_major"] == 3
    assert outcome.metrics["contexts"] == 1 and outcome.metrics["calibration_frames"] == 16
    assert outcome.metrics["optimization_level_reduced_to_0"] is True
    assert "Successful Compilation" in outcome.stage("compile").log
    assert "Reducing optimization level" in outcome.stage("optimize").log
    assert not list(work.glob(".*.tmp")) and not (work / "dfc_calib.npz").exists()


@pytest.mark.slow
def test_two_inputs_are_calibrated_by_the_layer_names_the_parser_reports(units, sdk, tmp_path):
    """The double numbers input layers from the last start node, and says which ONNX input each
    stands for only in the HN: each layer must get its own input's data (1.0 vs 2.0 here)."""
    unit, _ = units["decoder_pre"]
    values = {name: float(k) for k, (name, _) in enumerate(unit.inputs, start=1)}
    np.savez(tmp_path / "cal.npz", **{name: np.full((3, 1, s[3], s[1]), values[name], np.float32)
                                      for name, s in unit.inputs})
    outcome, unit, work = compile_unit(units, tmp_path, "decoder_pre",
                                       "compiler.calibration.source=npz",
                                       f"compiler.calibration.path={tmp_path / 'cal.npz'}")
    assert outcome.verdict == "pass", outcome.failure
    calls = {c["method"]: c["args"] for c in sdk()}
    assert "get_hn_model" in calls  # the names came from the parsed net
    assert calls["translate_onnx_model"]["start_node_names"] == ["input", "mask"]
    assert calls["translate_onnx_model"]["net_input_shapes"] == dict(unit.inputs)
    har = json.loads((work / "quantized.har").read_text())
    assert har["original"] == {"tnet/input_layer1": "mask", "tnet/input_layer2": "input"}
    assert {layer: har["input_max_abs"][layer] for layer in har["original"]} == {
        layer: values[onnx] for layer, onnx in har["original"].items()}


@pytest.mark.slow
def test_model_script_comes_from_the_config(units, sdk, tmp_path):
    _, _, work = compile_unit(units, tmp_path, "source_projector",
                              "compiler.optimization_level=2", "compiler.compression_level=1",
                              "compiler.compiler_optimization_level=max",
                              "compiler.allocator_timeout=45m", "compiler.max_utilization=0.8",
                              "compiler.context_switch=disabled")
    script = next(c for c in sdk() if c["method"] == "load_model_script")["args"]["text"]
    assert script.splitlines() == [
        "model_optimization_flavor(optimization_level=2, compression_level=1)",
        "performance_param(compiler_optimization_level=max)",
        "allocator_param(timeout=45m)",
        "resources_param(max_utilization=0.8)",
        "context_switch_param(mode=disabled)"]
    assert (work / "model_script.alls").read_text() == script
    default = model_script(compose_cfg("compiler=hailo_dfc").compiler)
    assert "resources_param" not in default and "mode=allowed" in default


@pytest.mark.slow
def test_hw_arch_and_dfc5_version_reach_the_runner(units, sdk, tmp_path, monkeypatch):
    monkeypatch.setenv("HAILO_DOUBLE_VERSION", "5.1.0")
    monkeypatch.setenv("HAILO_DOUBLE_CONTEXTS", "3")
    outcome, _, _ = compile_unit(units, tmp_path, "source_projector", "hw=hailo10h")
    assert sdk()[0]["args"]["hw_arch"] == "hailo10h"
    assert outcome.tool_version == "5.1.0" and outcome.metrics["dfc_major"] == 5
    assert outcome.metrics["contexts"] == 3


def test_an_sdk_exception_is_classified_with_its_layer(units, sdk, tmp_path, monkeypatch):
    monkeypatch.setenv("HAILO_DOUBLE_FAIL", "compile:BackendAllocatorException:"
                       "No successful assignments: dw66 errors: Agent infeasible")
    outcome, _, work = compile_unit(units, tmp_path)
    f = outcome.failure
    assert (f.family, f.stage, f.exception_type, f.layer, f.layer_family) == \
        ("allocator_infeasible", "compile", "BackendAllocatorException", "dw66", "dw")
    assert f.head == "No successful assignments: dw66 errors: Agent infeasible"
    assert stage_oks(outcome) == [True, True, False]
    assert outcome.har_success is True and outcome.hef_success is False
    assert not (work / "source_projector.hef").exists()
    assert "BackendAllocatorException" in outcome.stage("compile").log  # the traceback


def test_a_parse_failure_stops_before_optimize(units, sdk, tmp_path, monkeypatch):
    monkeypatch.setenv("HAILO_DOUBLE_FAIL", "translate_onnx_model:UnsupportedModelError:"
                       "1D form is not supported in layer tnet/conv1")
    outcome, _, _ = compile_unit(units, tmp_path)
    assert stage_oks(outcome) == [False, None, None]
    assert (outcome.failure.family, outcome.failure.layer) == ("parse_unsupported_op",
                                                               "tnet/conv1")
    assert [c["method"] for c in sdk()] == ["__init__", "translate_onnx_model"]


@pytest.mark.slow
def test_a_script_error_is_a_failure_of_the_optimize_stage(units, sdk, tmp_path, monkeypatch):
    monkeypatch.setenv("HAILO_DOUBLE_FAIL", "load_model_script:BackendScriptParserException:"
                       "Parsing failed at: >!<allocator_param(timeout=30m)")
    outcome, _, _ = compile_unit(units, tmp_path)
    assert (outcome.failure.family, outcome.failure.stage) == ("script_error", "optimize")
    assert stage_oks(outcome) == [True, False, None]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


#: the hang test's budget: the double blocks in compile until killed (it reaches compile in about
#: a second on an idle machine), so this only has to outlast translate and optimize
HANG_TIMEOUT_S = 20


@pytest.mark.slow
def test_a_hang_is_killed_with_its_whole_process_group_at_the_timeout(units, sdk, tmp_path,
                                                                      monkeypatch):
    monkeypatch.setenv("HAILO_DOUBLE_HANG", "compile")
    t0 = time.monotonic()
    outcome, _, _ = compile_unit(units, tmp_path, "source_projector",
                                 f"compiler.timeout_s={HANG_TIMEOUT_S}")  # hang budget
    assert time.monotonic() - t0 >= HANG_TIMEOUT_S  # it ran until the budget, not less
    f = outcome.failure
    assert (f.family, f.stage) == ("timeout", "compile")
    assert f"compiler.timeout_s={HANG_TIMEOUT_S}" in f.head
    assert stage_oks(outcome) == [True, True, False]
    sleeper = next(c for c in sdk() if c["method"] == "hang")["args"]["sleeper_pid"]
    assert not _alive(sleeper)  # the grandchild went with the group


@pytest.mark.parametrize("how,stage,exception,oks,words", [
    pytest.param("segv", "optimize", "SIGSEGV", [True, False, None],
                 "died from SIGSEGV during optimize", marks=pytest.mark.slow),
    pytest.param("kill", "compile", "SIGKILL", [True, True, False], "out-of-memory",
                 marks=pytest.mark.slow),
    ("exit3", "translate_onnx_model", "exit 3", [False, None, None], "exited with code 3"),
])
def test_a_crash_is_reported_with_its_signal_or_exit_code(units, sdk, tmp_path, monkeypatch,
                                                         how, stage, exception, oks, words):
    monkeypatch.setenv("HAILO_DOUBLE_CRASH", f"{stage}:{how}")
    outcome, _, _ = compile_unit(units, tmp_path)
    f = outcome.failure
    assert f.family == "crash" and f.exception_type == exception and words in f.head
    assert f.stage == {"translate_onnx_model": "translate"}.get(stage, stage)
    assert stage_oks(outcome) == oks


def test_calibration_shape_error_stops_before_any_compile(units, sdk, tmp_path):
    unit, _ = units["source_projector"]
    _, c, _, w = unit.inputs[0][1]
    np.savez(tmp_path / "calib.npz", np.zeros((4, 1, w + 5, c), np.float32))
    with pytest.raises(ConfigError) as err:
        compile_unit(units, tmp_path, "source_projector", "compiler.calibration.source=npz",
                     f"compiler.calibration.path={tmp_path / 'calib.npz'}")
    (msg,) = err.value.problems
    assert f"time length {w + 5} where the unit takes {w}" in msg
    assert "input_length_policy=crop" in msg
    assert sdk() == []  # the SDK was never touched
    assert not (tmp_path / "run" / "dfc_request.json").exists()


@pytest.mark.slow
def test_npz_calibration_with_crop_reaches_optimize(units, sdk, tmp_path):
    unit, _ = units["source_projector"]
    _, c, _, w = unit.inputs[0][1]
    np.savez(tmp_path / "calib.npz", np.ones((5, 1, w + 5, c), np.float64))
    outcome, _, _ = compile_unit(units, tmp_path, "source_projector",
                                 "compiler.calibration.source=npz",
                                 f"compiler.calibration.path={tmp_path / 'calib.npz'}",
                                 "compiler.calibration.input_length_policy=crop")
    assert outcome.verdict == "pass"
    calib = next(c for c in sdk() if c["method"] == "optimize")["args"]["calib"]
    assert calib == {"array_shape": [5, 1, w, c], "dtype": "float32"}


def test_missing_sdk_is_a_one_line_config_error(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "hailo_sdk_client" else real(name, *a))
    cfg = compose_cfg("compiler=hailo_dfc")
    with pytest.raises(ConfigError) as err:
        HailoDfcBackend(cfg.compiler, cfg.hw)
    (msg,) = err.value.problems
    assert "\n" not in msg and "hailo_sdk_client" in msg
    assert "pip install hailo_dataflow_compiler-" in msg and "compiler=estimate" in msg


def test_missing_sdk_on_the_command_line_exits_2_with_one_line(tmp_path):
    done = run_cli(["compiler=hailo_dfc"], cwd=tmp_path, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "hailo_sdk_client" in lines[0] and "compiler=estimate" in lines[0]
    assert not (tmp_path / "outputs").exists()


def test_a_trial_with_the_real_backend_records_stages_and_failure(units, sdk, tmp_path,
                                                                  monkeypatch):
    from tasnet_sweep import trial

    monkeypatch.setenv("HAILO_DOUBLE_FAIL", "compile:BackendAllocatorException:"
                       "Reshape is needed for layers: conv2, conv3, but adding a reshape has "
                       "failed.")
    cfg = compose_cfg(*SMALL, "unit=source_projector", "compiler=hailo_dfc",
                      f"compiler.cache_dir={tmp_path / 'cache'}")
    result = trial.run(cfg, tmp_path / "t", tmp_path / "summary.tsv")
    s = result.summary
    assert (s["evidence"], s["verdict"], s["failure_family"], s["first_failing_layer"]) == \
        ("real", "fail", "reshape_failed", "conv2")
    assert s["har_path"].endswith("quantized.har") and s["hef_path"] is None
    text = (tmp_path / "t" / "compile_failure.txt").read_text()
    assert "family: reshape_failed" in text and "first failing layer: conv2 (conv)" in text
