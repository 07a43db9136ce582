"""An int8 estimate of the plan on the CPU: every NPU unit instance runs with symmetric
fake-quantized weights (per output channel or per tensor) and per-tensor fake-quantized input
and output activations, their ranges calibrated on calibration waveforms; host steps stay
float, as they run on the host.  Reported: per-source SNR of the quantized chain against the
float chain (the DFC prints a similar per-output SNR after optimize).

The DFC's own emulator (SDK_QUANTIZED against SDK_NATIVE on each compiled unit's quantized HAR)
is compared with these executors unit by unit in ``sdk_compare``.
"""

from __future__ import annotations

import numpy as np

from ..progress import bar
from ..tiling.executors import TorchExecutor
from ..tiling.stitch import separate


def fake_quant(x: np.ndarray, scale, bits: int) -> np.ndarray:
    top = 2 ** (bits - 1) - 1
    return (np.clip(np.round(x / scale), -top, top) * scale).astype(np.float32)


def _scale(max_abs, bits: int):
    return np.maximum(max_abs, 1e-12) / (2 ** (bits - 1) - 1)


class RangeRecorder(TorchExecutor):
    """The float executor, remembering each instance's largest |input| and |output|."""

    def __init__(self, plan, params):
        super().__init__(plan, params)
        self.ranges: dict[str, list[float]] = {}

    def run(self, inst, x):
        y = super().run(inst, x)
        r = self.ranges.setdefault(inst.name, [0.0, 0.0])
        r[0], r[1] = max(r[0], float(np.abs(x).max())), max(r[1], float(np.abs(y).max()))
        return y


class FakeQuantExecutor(TorchExecutor):
    """Each instance as an int8 unit would compute it (weights, input and output on a grid)."""

    def __init__(self, plan, params, ranges: dict, bits: int = 8, per_channel: bool = True):
        super().__init__(plan, params)
        self.ranges, self.bits, self.per_channel = ranges, bits, per_channel

    def weights(self, inst):
        w, b = super().weights(inst)
        op = self._op[inst.name]
        out_axis = 1 if op == "deconv" else 0
        if self.per_channel:
            axes = tuple(a for a in range(w.ndim) if a != out_axis)
            m = np.abs(w).max(axis=axes, keepdims=True)
        else:
            m = np.abs(w).max()
        return fake_quant(w, _scale(m, self.bits), self.bits), b

    def run(self, inst, x):
        in_max, out_max = self.ranges[inst.name]
        x = fake_quant(x, _scale(in_max, self.bits), self.bits)
        y = super().run(inst, x)
        return fake_quant(y, _scale(out_max, self.bits), self.bits)


def snr_db(est: np.ndarray, ref: np.ndarray) -> float:
    noise = float(np.sum((est.astype(np.float64) - ref) ** 2))
    signal = float(np.sum(ref.astype(np.float64) ** 2))
    return 200.0 if noise == 0 else float(10 * np.log10(max(signal, 1e-300) / noise))


def calibrate_ranges(plan, params, calibration: list[np.ndarray]) -> dict[str, list[float]]:
    """Each instance's largest |input| and |output| over the ``calibration`` waveforms."""
    rec = RangeRecorder(plan, params)
    with bar(len(calibration), "calibration frames", unit="frame") as shown:
        for wav in calibration:
            separate(plan, params, rec, wav)
            shown.update()
    return rec.ranges


def estimate(plan, params, ranges: dict, evaluation: np.ndarray, bits: int = 8,
             per_channel: bool = True) -> dict:
    """SNR per source of the fake-quantized chain against the float chain on ``evaluation``."""
    ref = separate(plan, params, TorchExecutor(plan, params), evaluation)
    quant = separate(plan, params, FakeQuantExecutor(plan, params, ranges, bits, per_channel),
                     evaluation)
    return {"bits": bits, "weight_quant": "per_channel" if per_channel else "per_tensor",
            "instances": len(ranges),
            "snr_db_per_source": [snr_db(quant[s], ref[s]) for s in range(ref.shape[0])]}
