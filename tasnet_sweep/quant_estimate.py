"""``python -m tasnet_sweep.quant_estimate``: how much an int8 deployment of the plan would
change the separated sources (per-source SNR against float, in dB), before compiling.

Calibration waveforms come from ``compiler.calibration`` (synthetic, npz or wav_dir, at
``model.time_len`` samples); the evaluation signal is ``runtime.input`` when given, else a fresh
seeded signal.  Writes ``quant_estimate.json`` into ``runtime.output_dir``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
import numpy as np

from .cli import CONF_DIR
from .config import register_configs

PROG = "tasnet_sweep.quant_estimate"
register_configs()


def run_quant_estimate(cfg) -> dict:
    from .atomic import write_json
    from .compile.calibration import load_calibration
    from .runtime.quant import estimate
    from .runtime.session import load_deployment

    r = cfg.runtime
    dep = load_deployment(cfg)
    n = dep.model_cfg["time_len"]
    cal = load_calibration(cfg.compiler.calibration, [("input", [1, 1, 1, n])], waveform=True)
    frames = [f.reshape(-1) for f in cal["input"]]
    if r.input:
        from .separate import load_mixture

        evaluation = load_mixture(cfg, dep.sample_rate)[0]
    else:
        evaluation = np.random.default_rng(r.seed + 1).standard_normal(n).astype(np.float32)
    result = estimate(dep.plan, dep.params, frames, evaluation, r.quant_bits,
                      r.weight_quant == "per_channel")
    result.update(tiling=dep.plan.mode, calibration=cfg.compiler.calibration.source,
                  evaluation=r.input or "seeded noise", evidence="cpu_emulation")
    write_json(Path(r.output_dir) / "quant_estimate.json", result)
    snrs = ", ".join(f"{s:.1f}" for s in result["snr_db_per_source"])
    print(f"{PROG}: int{r.quant_bits} ({r.weight_quant} weights) SNR per source vs float: "
          f"{snrs} dB", file=sys.stderr)
    return result


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def quant_app(cfg) -> None:
    from .runtime.entry import user_errors

    with user_errors(PROG):
        run_quant_estimate(cfg)


if __name__ == "__main__":
    from .runtime.entry import main

    sys.exit(main(PROG, quant_app))
