"""The DFC's own quantization emulator next to our CPU estimate, unit by unit.

A tiled trial compiled with ``compiler=hailo_dfc`` leaves, for every DISTINCT unit of the plan,
``<run dir>/units/<unit key>/quantized.har`` (the optimize stage's artifact; a compile-cache hit
restores it there too).  Each of those HARs holds the weights of the unit's FIRST instance, so
the comparison is per unit, not per source: that instance's input, captured from the float chain
on the evaluation signal and laid out NHWC ``[tiles, 1, W, C]`` (one frame per tile, as the DFC
takes calibration data), goes through ``SDK_QUANTIZED`` and ``SDK_NATIVE``; the SNR of the
first against the second is the DFC's figure.  Ours is the SNR of the same instance on the
same input through the fake-quant executor against the float executor.  ``SDK_NATIVE``
against our float output says whether the HAR holds the unit we think it does (same weights,
same layout).

Differences to keep in mind when reading the numbers: the DFC calibrated each unit on
``compiler.calibration`` data at the unit's input shape (synthetic noise for inner units unless
the user gave real data), while our ranges come from running calibration audio through the
chain; the DFC's default precision is a8_w8 whatever ``runtime.quant_bits`` says.

Only calls public Hailo code makes are used (hailo-ai/hailo_model_zoo v2.18):
``ClientRunner(hw_arch=..., har=...)`` (``hailo_model_zoo/main_driver.py``; ``har_path=`` for
DFC <= 3.25, as in Hailo-Application-Code-Examples' PointPillars notebook),
``runner.infer_context(InferenceContext.<ctx>)`` (``main_driver.py``, ``utils/hw_utils.py``) and
``runner.infer(ctx, x_nhwc)`` (``core/infer/runner_infer.py`` passes them as ``context=`` and
``dataset=``).  What ``infer`` returns for a one-output net is not documented;
an array is assumed, and a one-element list or dict is unwrapped.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np

from ..config import ConfigError
from ..progress import iterate
from ..tiling.executors import TorchExecutor
from ..tiling.stitch import separate
from .quant import FakeQuantExecutor, snr_db

EVIDENCE = "dfc_emulator"
HAR_NAME = "quantized.har"
#: SDK_NATIVE vs our float output above this: the HAR holds the same unit and weights
SAME_UNIT_SNR_DB = 40.0


def find_hars(har_dir: Path, unit_keys) -> dict[str, Path]:
    """unit key -> its quantized HAR, from a tiled run dir (``units/<key>/``) or a folder of
    ``<key>/`` work dirs; units without one are left out."""
    found = {}
    for key in unit_keys:
        for path in (har_dir / "units" / key / HAR_NAME, har_dir / key / HAR_NAME):
            if path.is_file():
                found[key] = path
                break
    return found


class FirstInputRecorder(TorchExecutor):
    """The float executor, keeping the input of the first instance of every distinct unit."""

    def __init__(self, plan, params):
        super().__init__(plan, params)
        self.first = {key: plan.instances_of(key)[0] for key in plan.units}
        self.inputs: dict[str, np.ndarray] = {}  # unit key -> the executor's x [B, cin, H, w]

    def run(self, inst, x):
        if self.first[inst.unit] is inst and inst.unit not in self.inputs:
            self.inputs[inst.unit] = np.array(x, np.float32)  # a copy: blocks are reused
        return super().run(inst, x)


def nhwc(x: np.ndarray) -> np.ndarray:
    """An executor's tiles [B, C, H, W] (a tile a (b, h) row) -> one DFC frame per tile,
    [B * H, 1, W, C], C-contiguous float32 (the layout of the DFC's calibration data)."""
    b, c, h, w = x.shape
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1), np.float32).reshape(b * h, 1, w, c)


def _single_output(y) -> np.ndarray:
    if isinstance(y, dict) and len(y) == 1:
        y = next(iter(y.values()))
    elif isinstance(y, (list, tuple)) and len(y) == 1:
        y = y[0]
    return np.asarray(y, np.float32)


def sdk_loader_keyword(version: str) -> str:
    """``har_path`` for DFC <= 3.25, ``har`` otherwise (and when unknown); see the docstring."""
    m = re.match(r"(\d+)\.(\d+)", version or "")
    return "har_path" if m and (int(m.group(1)), int(m.group(2))) <= (3, 25) else "har"


def sdk_outputs(har: Path, hw_arch: str, x_nhwc: np.ndarray, version: str) -> dict:
    """{"quantized": y, "native": y} (NHWC) of one HAR on ``x_nhwc`` through the DFC emulator."""
    from hailo_sdk_client import ClientRunner, InferenceContext

    runner = ClientRunner(hw_arch=hw_arch, **{sdk_loader_keyword(version): str(har)})
    out = {}
    for name, ctx_kind in (("quantized", InferenceContext.SDK_QUANTIZED),
                           ("native", InferenceContext.SDK_NATIVE)):
        with runner.infer_context(ctx_kind) as ctx:
            out[name] = _single_output(runner.infer(ctx, x_nhwc))
    return out


def unavailable(why: str) -> dict:
    return {"available": False, "why": why}


def sdk_version() -> str:
    import hailo_sdk_client

    return str(getattr(hailo_sdk_client, "__version__", "") or "")


def locate(runtime_cfg, plan) -> tuple[dict[str, Path], dict | None]:
    """(unit key -> HAR, None) when a comparison can run, else ({}, the "unavailable" record).

    A ``runtime.har_dir`` that is not a directory is the user's mistake (ConfigError); every
    other reason not to compare is recorded, not raised."""
    r = runtime_cfg
    if r.sdk_compare == "off":
        return {}, unavailable("runtime.sdk_compare=off")
    if r.har_dir and not Path(r.har_dir).is_dir():
        raise ConfigError([f"runtime.har_dir={r.har_dir!r} is not a directory: expected the run "
                           "directory of a tiled trial compiled with compiler=hailo_dfc (it holds "
                           "units/<unit>/quantized.har), or null"])
    if importlib.util.find_spec("hailo_sdk_client") is None:
        return {}, unavailable("hailo_sdk_client (Hailo's Dataflow Compiler) is not installed")
    if not r.har_dir:
        return {}, unavailable("runtime.har_dir is not set: point it at the run directory of a "
                               "tiled trial compiled with compiler=hailo_dfc")
    hars = find_hars(Path(r.har_dir), plan.units)
    if not hars:
        return {}, unavailable(f"no units/<unit>/{HAR_NAME} under {r.har_dir} for any of the "
                               f"plan's {len(plan.units)} distinct units")
    return hars, None


def compare_units(plan, params, ranges: dict, evaluation: np.ndarray, hars: dict[str, Path],
                  hw_arch: str, bits: int = 8, per_channel: bool = True) -> dict:
    """The per-unit comparison record (see the module docstring) for the units in ``hars``."""
    try:
        version = sdk_version()
    except Exception as exc:  # noqa: BLE001 - a broken SDK install (e.g. its TensorFlow)
        return unavailable(f"hailo_sdk_client failed to import: {type(exc).__name__}: {exc}")
    recorder = FirstInputRecorder(plan, params)
    separate(plan, params, recorder, evaluation)
    fq = FakeQuantExecutor(plan, params, ranges, bits, per_channel)

    units = []
    for key, har in iterate(hars.items(), "DFC emulator per unit", "unit", total=len(hars)):
        inst = recorder.first[key]
        x = recorder.inputs[key]
        ref = recorder.run(inst, x)
        row = {"unit": key, "op": plan.units[key].op, "instance": inst.name, "har": str(har),
               "input_nhwc": list(nhwc(x).shape),
               "cpu_fake_quant_snr_db": snr_db(fq.run(inst, x), ref)}
        try:
            y = sdk_outputs(har, hw_arch, nhwc(x), version)
        except Exception as exc:  # noqa: BLE001 - one unit's SDK failure is data, not a crash
            row["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}" \
                if str(exc).strip() else type(exc).__name__
            units.append(row)
            continue
        want = nhwc(ref).shape
        if y["native"].shape != want or y["quantized"].shape != want:
            row["error"] = (f"SDK output shapes {list(y['native'].shape)} (native), "
                            f"{list(y['quantized'].shape)} (quantized) != expected {list(want)}")
            units.append(row)
            continue
        native_vs_float = snr_db(y["native"], nhwc(ref))
        row.update(sdk_quantized_snr_db=snr_db(y["quantized"], y["native"]),
                   sdk_native_vs_cpu_float_snr_db=native_vs_float,
                   same_unit=native_vs_float >= SAME_UNIT_SNR_DB)
        units.append(row)
    compared = [u for u in units if "sdk_quantized_snr_db" in u]
    return {"available": True, "evidence": EVIDENCE, "sdk_version": version, "hw_arch": hw_arch,
            "units_total": len(plan.units), "units_with_har": len(hars),
            "units_compared": len(compared), "units": units,
            "missing_har": [k for k in plan.units if k not in hars]}
