"""One tiled trial: plan -> distinct unit ONNX -> compile each -> stitched parity -> records."""

from __future__ import annotations

import time
from pathlib import Path


def parity_lengths_for(time_len: int) -> list[int]:
    """The configured length and a longer one (neither a multiple of a tile, typically)."""
    return [time_len, time_len * 2 + 1234]


def _net_name(key: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in key)[:64]


def compile_units(plan, params, cfg, run_dir: Path, backend) -> list[dict]:
    """Export each distinct unit (batch 1, its first instance's weights) and compile it."""
    from ..atomic import write_bytes
    from ..compile.base import CompileRequest
    from .onnx_units import checked_bytes, unit_model
    from .weights import instance_params

    ops = {i.name: s.op for s in plan.npu_steps() for i in s.instances}
    verdicts = []
    for key, spec in plan.units.items():
        inst = plan.instances_of(key)[0]
        w, b = instance_params(params, inst, ops[inst.name])
        onnx_path = run_dir / "units" / f"{key}.onnx"
        write_bytes(onnx_path, checked_bytes(unit_model(spec, w, b, batch=1, name=key)))
        work_dir = run_dir / "units" / key
        work_dir.mkdir(parents=True, exist_ok=True)
        knobs = {**{k: cfg.model[k] for k in cfg.model.keys()},
                 "unit": f"tiled_{spec.op}", "unit_op": key, "in_chan": spec.cin,
                 "out_chan": spec.cout, "latent_width": spec.in_width, "time_len": None,
                 "hw_arch": cfg.hw.arch, "tiling": plan.mode, "tile_width": plan.tile_width,
                 "channel_block": plan.channel_block}
        request = CompileRequest(unit_name=f"tiled_{spec.op}", net_name=_net_name(key),
                                 onnx_path=onnx_path, inputs=[("input", spec.input_shape())],
                                 outputs=["output"], work_dir=work_dir, knobs=knobs)
        outcome = backend.compile(request)
        verdicts.append({"unit": key, "op": spec.op, "in_shape_nchw": spec.input_shape(),
                         "out_shape_nchw": spec.output_shape(), "macs": spec.macs,
                         "instances": len(plan.instances_of(key)), "onnx_path": str(onnx_path),
                         "verdict": outcome.verdict, "evidence": outcome.evidence,
                         "failure_head": outcome.failure.head if outcome.failure else None,
                         "compile": outcome.as_dict()})
    return verdicts


def run_tiled(cfg, run_dir: Path, backend, parity_lengths: list[int] | None = None) -> dict:
    """Build, save and compile the plan of ``cfg.model`` + ``cfg.tiling``; measure parity.

    Writes plan.json, plan.txt, units/<unit>.onnx and parity.tsv in ``run_dir``; returns every
    unit's verdict, ``feasible`` (all units pass), the parity rows and the host-share figures.
    """
    import torch

    from ..atomic import write_json, write_text
    from ..model.convtasnet import build_model
    from .executors import OrtExecutor
    from .parity import measure_parity, parity_tsv
    from .plan import build_plan
    from .weights import model_params

    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.export.seed)
    model = build_model(cfg.model)
    plan = build_plan(cfg.model, cfg.tiling)
    write_json(run_dir / "plan.json", plan.as_dict())
    write_text(run_dir / "plan.txt", plan.describe())
    params = model_params(model)

    units = compile_units(plan, params, cfg, run_dir, backend)
    rows: list[dict] = []
    executor = OrtExecutor(plan, params)
    lengths = parity_lengths or parity_lengths_for(cfg.model.time_len)
    for n, length in enumerate(lengths):
        rows += measure_parity(model, plan, params, executor, length, seed=cfg.export.seed + n)
    write_text(run_dir / "parity.tsv", parity_tsv(rows))
    full = [r for r in rows if r["path"] == "full"]
    return {
        "mode": plan.mode, "tile_width": plan.tile_width, "channel_block": plan.channel_block,
        "units": units,
        "n_units": len(units),
        "n_instances": sum(u["instances"] for u in units),
        "feasible": all(u["verdict"] == "pass" for u in units),
        "parity": rows,
        "parity_max_abs": max(r["max_abs"] for r in full),
        "parity_min_si_snr_db": min(r["si_snr_db"] for r in full),
        "parity_executor": executor.name,
        "host_share": plan.host_share(),
        "plan_path": str(run_dir / "plan.json"),
        "seconds": time.perf_counter() - t0,
    }
