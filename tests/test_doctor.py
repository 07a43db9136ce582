"""``python -m tasnet_sweep.commands.doctor`` against the Hailo TEST DOUBLES (tests/doubles):
versions, the signatures of every call the adapters make, devices, one tiny compile and a
device run."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import DOUBLES, REPO


def _doctor(tmp_path, *args, doubles=True, **env):
    paths = [str(REPO), *([str(DOUBLES)] if doubles else [])]
    run_env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), **env}
    for var in ("HAILO_DOUBLE_FAIL", "HAILO_DOUBLE_HANG", "HAILO_DOUBLE_CRASH",
                "HAILO_DOUBLE_VERSION", "HAILO_DOUBLE_SIGNATURE"):
        if var not in env:
            run_env.pop(var, None)
    return subprocess.run([sys.executable, "-m", "tasnet_sweep.commands.doctor", *args],
                          cwd=tmp_path, env=run_env, capture_output=True, text=True, timeout=600)


def test_without_hailos_wheels_it_says_what_is_missing(tmp_path):
    done = _doctor(tmp_path, doubles=False)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert "hailo_sdk_client and hailo_platform not installed" in done.stderr


@pytest.mark.slow
def test_every_check_passes_on_an_sdk_with_the_calls_the_adapters_make(tmp_path):
    done = _doctor(tmp_path, "--keep", str(tmp_path / "kept"))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert all(ln.startswith("ok") for ln in lines[:-1]) and "every check passed" in lines[-1]
    for check in ("DFC version", "HailoRT version", "devices: 0000:01:00.0", "DFC translate",
                  "DFC optimize", "DFC compile", "device run"):
        assert any(check in ln for ln in lines), check
    assert any("translate_onnx_model(start_node_names=..., end_node_names=..., "
               "net_input_shapes=...)" in ln for ln in lines)
    assert (tmp_path / "kept" / "compile" / "doctor_conv1x1.hef").is_file()


@pytest.mark.slow
def test_a_call_whose_signature_differs_is_named_with_what_it_got(tmp_path):
    done = _doctor(tmp_path, HAILO_DOUBLE_SIGNATURE="no_net_input_shapes")
    assert done.returncode == 1
    fails = [ln for ln in done.stdout.splitlines() if ln.startswith("FAIL")]
    assert any("translate_onnx_model" in ln and "lacks net_input_shapes" in ln for ln in fails)
    assert any(ln.startswith("FAIL DFC translate") and "TypeError" in ln
               and "net_input_shapes" in ln for ln in fails), fails
    assert "check(s) failed" in done.stdout.splitlines()[-1]


@pytest.mark.slow
def test_wheels_of_the_other_product_line_are_named(tmp_path):
    done = _doctor(tmp_path, "--hw", "hailo10h")
    assert done.returncode == 1
    assert "FAIL DFC version: hailo_sdk_client 3.33.0; hw=hailo10h needs DFC 5.x" in done.stdout
    assert "FAIL HailoRT version: hailo_platform 4.23.0" in done.stdout
