"""One trial, once: config -> unit -> ONNX export + checks -> compile backend -> records.

This is the only place that strings the stages together; sweeps and experiments only choose
configs, and nothing here knows how a backend compiles.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from omegaconf import OmegaConf

from .atomic import write_json, write_text
from .config import ConfigError, validate
from .report.tsv import KNOB_COLUMNS, append_row

log = logging.getLogger(__name__)
RESULT_SCHEMA = 1


def knobs_of(cfg) -> dict:
    return {k: cfg.model[k] for k in KNOB_COLUMNS}


def run(cfg, run_dir: str | Path, summary_path: str | Path | None = None) -> dict:
    """Run one trial into ``run_dir`` and append its row to ``summary_path``; return the result."""
    problems = validate(cfg)
    if problems:
        raise ConfigError(problems)
    import torch

    from .export import export_unit, onnx_parity
    from .model.units import build_unit, count_macs, count_params

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    torch.manual_seed(cfg.export.seed)
    unit = build_unit(cfg.model, cfg.unit)
    write_text(run_dir / "config_resolved.yaml", OmegaConf.to_yaml(cfg, resolve=True))

    onnx_path = run_dir / f"{unit.name}.onnx"
    exported = export_unit(unit, onnx_path, opset=cfg.export.opset, seed=cfg.export.seed)
    if cfg.export.parity:
        exported.parity_max_abs, exported.parity_seconds = onnx_parity(unit, onnx_path,
                                                                        seed=cfg.export.seed + 1)
    with torch.no_grad():
        out = unit.module(*unit.example_inputs(cfg.export.seed))
    out_shape = list((out[0] if isinstance(out, tuple) else out).shape)

    result = {
        "schema": RESULT_SCHEMA,
        "run_tag": cfg.run_tag,
        "unit": {"name": unit.name, "description": unit.description, "layers": unit.layers,
                 "inputs": [{"name": n, "shape_nchw": s} for n, s in unit.inputs],
                 "outputs": unit.outputs, "output_shape_nchw": out_shape, **unit.extra},
        "knobs": knobs_of(cfg),
        "params": count_params(unit.module),
        "macs": count_macs(unit),
        "export": exported.as_dict(),
    }
    status = "ok"
    if cfg.export.parity and exported.parity_max_abs > cfg.export.parity_tol:
        status = "parity_fail"
        log.warning("ONNX parity %.3g exceeds export.parity_tol=%g", exported.parity_max_abs,
                    cfg.export.parity_tol)
    result["status"] = status
    result["seconds"] = time.perf_counter() - t0
    result["summary"] = summary_row(cfg, result, run_dir, unit, out_shape)
    write_json(run_dir / "result.json", result)
    if summary_path is not None:
        append_row(summary_path, result["summary"])
    return result


def summary_row(cfg, result: dict, run_dir: Path, unit, out_shape) -> dict:
    row = {"run_tag": cfg.run_tag, "unit": unit.name, **result["knobs"],
           "tiling": cfg.tiling.mode, "tile_width": cfg.tiling.tile_width,
           "channel_block": cfg.tiling.channel_block,
           "in_chan": unit.in_chan, "out_chan": out_shape[1], "latent_width": unit.latent_width,
           "params": result["params"], "macs": result["macs"], "hw_arch": cfg.hw.arch,
           "parity_max_abs": result["export"]["parity_max_abs"], "status": result["status"],
           "seconds": round(result["seconds"], 3), "onnx_path": result["export"]["onnx_path"],
           "result_path": str(run_dir / "result.json"), "run_dir": str(run_dir)}
    return row


def one_line(result: dict) -> str:
    """The line a person reads in the log for each trial."""
    s = result["summary"]
    parts = [f"[{s['run_tag']}] unit={s['unit']}", f"params={s['params']:,}",
             f"macs={s['macs']:,}"]
    if s.get("parity_max_abs") is not None:
        parts.append(f"onnx_parity={s['parity_max_abs']:.2g}")
    if s.get("verdict"):
        parts.append(f"{s['verdict'].upper()} ({s['evidence']})")
        if s.get("failure_family"):
            parts.append(f"family={s['failure_family']}")
        if s.get("first_failing_layer"):
            parts.append(f"first_failing_layer={s['first_failing_layer']}")
    parts.append(f"-> {s['run_dir']}")
    return " ".join(parts)
