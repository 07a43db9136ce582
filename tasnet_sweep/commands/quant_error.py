"""``python -m tasnet_sweep.commands.quant_error``: how much an int8 deployment of the plan would
change the separated sources (per-source SNR against float, in dB), before compiling.

Calibration waveforms come from ``compiler.calibration`` (synthetic, npz or wav_dir, at
``model.time_len`` samples); the evaluation signal is ``runtime.input`` when given, else a fresh
seeded signal.  Writes ``quant_error.json`` into ``runtime.output_dir``.

With ``runtime.sdk_compare=auto`` (the default), ``hailo_sdk_client`` installed and
``runtime.har_dir`` pointing at a tiled trial compiled with ``compiler=hailo_dfc``, each distinct
unit's quantized HAR also runs through the DFC's SDK_QUANTIZED and SDK_NATIVE emulators; the
per-unit SNRs sit under ``"sdk_quantized"`` next to ours for the same unit instance
(runtime/sdk_compare.py).  Otherwise ``"sdk_quantized"`` says why not (``available: false``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
import numpy as np

from ..atomic import write_json
from ..compile.calibration import load_calibration
from ..config import register_configs
from ..resources import CONF_PKG
from ..runtime.entry import command, user_errors
from ..runtime.quant import calibrate_ranges, estimate
from ..runtime.sdk_compare import compare_units, locate
from ..runtime.session import load_deployment
from .separate import load_mixture

PROG = "tasnet_sweep.commands.quant_error"
register_configs()


def run_quant_estimate(cfg) -> dict:
    r = cfg.runtime
    dep = load_deployment(cfg)
    hars, sdk = locate(r, dep.plan)  # a bad runtime.har_dir stops here, before any work
    n = dep.model_cfg["time_len"]
    cal = load_calibration(cfg.compiler.calibration, [("input", [1, 1, 1, n])], waveform=True)
    frames = [f.reshape(-1) for f in cal["input"]]
    if r.input:
        evaluation = load_mixture(cfg, dep.sample_rate, int(dep.model_cfg["kernel_size"]))[0]
    else:
        evaluation = np.random.default_rng(r.seed + 1).standard_normal(n).astype(np.float32)
    per_channel = r.weight_quant == "per_channel"
    ranges = calibrate_ranges(dep.plan, dep.params, frames)
    result = estimate(dep.plan, dep.params, ranges, evaluation, r.quant_bits, per_channel)
    if sdk is None:
        sdk = compare_units(dep.plan, dep.params, ranges, evaluation, hars, cfg.hw.arch,
                            r.quant_bits, per_channel)
    result.update(calibration_frames=len(frames), tiling=dep.plan.mode,
                  calibration=cfg.compiler.calibration.source,
                  evaluation=r.input or "seeded noise", evidence="cpu_emulation",
                  sdk_quantized=sdk)
    write_json(Path(r.output_dir) / "quant_error.json", result)
    snrs = ", ".join(f"{s:.1f}" for s in result["snr_db_per_source"])
    print(f"{PROG}: int{r.quant_bits} ({r.weight_quant} weights) SNR per source vs float: "
          f"{snrs} dB", file=sys.stderr)
    print(f"{PROG}: {sdk_line(sdk)}", file=sys.stderr)
    print(f"{PROG}: wrote {Path(r.output_dir) / 'quant_error.json'}", file=sys.stderr)
    return result


def sdk_line(sdk: dict) -> str:
    """One line on the DFC emulator comparison."""
    if not sdk.get("available"):
        return f"DFC SDK_QUANTIZED comparison not run: {sdk['why']}"
    rows = [u for u in sdk["units"] if "sdk_quantized_snr_db" in u]
    head = (f"DFC SDK_QUANTIZED vs SDK_NATIVE on {len(rows)}/{sdk['units_total']} distinct "
            "units")
    if not rows:
        return head + " (none ran; see quant_error.json)"
    worst = min(rows, key=lambda u: u["sdk_quantized_snr_db"])
    text = (f"{head}: worst {worst['sdk_quantized_snr_db']:.1f} dB ({worst['unit']}; our CPU "
            f"estimate for it {worst['cpu_fake_quant_snr_db']:.1f} dB)")
    odd = [u["unit"] for u in rows if not u["same_unit"]] + \
        [u["unit"] for u in sdk["units"] if "error" in u]
    return text + (f"; check {', '.join(odd)} in quant_error.json" if odd else "")


@hydra.main(version_base="1.3", config_path=CONF_PKG, config_name="config")
def quant_app(cfg) -> None:
    with user_errors(PROG):
        run_quant_estimate(cfg)


ABOUT = ("SNR per source of an int8 emulation of the plan against float, written to "
         "runtime.output_dir/quant_error.json")

main = command(PROG, quant_app, ABOUT)


if __name__ == "__main__":
    sys.exit(main())
