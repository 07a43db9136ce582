"""One tiled trial: plan -> distinct unit ONNX -> compile each -> stitched parity -> records."""

from __future__ import annotations

import time
from pathlib import Path

from ..atomic import write_bytes, write_json, write_text
from ..compile.base import CompileRequest
from .plan import build_plan


def parity_lengths_for(time_len: int) -> list[int]:
    """The configured length and a longer one (neither a multiple of a tile, typically)."""
    return [time_len, time_len * 2 + 1234]


def _net_name(key: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in key)[:64]


def _request(plan, spec, key: str, inst, params, ops, cfg, run_dir: Path, stem: str):
    """Export one instance of unit ``key`` (batch 1, its own weights) and describe its compile."""
    from .onnx_units import checked_bytes, unit_model
    from .weights import instance_params

    w, b = instance_params(params, inst, ops[inst.name])
    onnx_path = run_dir / "units" / f"{stem}.onnx"
    write_bytes(onnx_path, checked_bytes(unit_model(spec, w, b, batch=1, name=key)))
    work_dir = run_dir / "units" / stem
    work_dir.mkdir(parents=True, exist_ok=True)
    knobs = {**{k: cfg.model[k] for k in cfg.model},
             "unit": f"tiled_{spec.op}", "unit_op": key, "in_chan": spec.cin,
             "out_chan": spec.cout, "latent_width": spec.in_width, "time_len": None,
             "hw_arch": cfg.hw.arch, "tiling": plan.mode, "tile_width": plan.tile_width,
             "channel_block": plan.channel_block}
    return CompileRequest(unit_name=f"tiled_{spec.op}", net_name=_net_name(key),
                          onnx_path=onnx_path, inputs=[("input", spec.input_shape())],
                          outputs=["output"], work_dir=work_dir, knobs=knobs)


def compile_units(plan, params, cfg, run_dir: Path, backend) -> list[dict]:
    """Export each distinct unit (batch 1, its first instance's weights) and compile it."""
    ops = {i.name: s.op for s in plan.npu_steps() for i in s.instances}
    verdicts = []
    for key, spec in plan.units.items():
        inst = plan.instances_of(key)[0]
        request = _request(plan, spec, key, inst, params, ops, cfg, run_dir, key)
        outcome = backend.compile(request)
        verdicts.append({"unit": key, "op": spec.op, "in_shape_nchw": spec.input_shape(),
                         "out_shape_nchw": spec.output_shape(), "macs": spec.macs,
                         "instances": len(plan.instances_of(key)),
                         "onnx_path": str(request.onnx_path), "first_instance": inst.name,
                         "verdict": outcome.verdict, "evidence": outcome.evidence,
                         "failure_head": outcome.failure.head if outcome.failure else None,
                         "compile": outcome.as_dict()})
    return verdicts


def compile_instance_hefs(plan, params, cfg, run_dir: Path, backend, units: list[dict],
                          hef_of: dict[str, str]) -> dict:
    """One HEF per distinct instance content into ``run_dir/hefs`` with ``hef_map.json``.

    Only the real compiler writes HEFs.  Identical weights share a HEF (``hef_of``); each
    distinct unit's first instance was compiled already, the rest compile here (the compile
    cache answers any content it has seen).  A failure stops it: the map then lists only what
    compiled, and the record says which HEF failed.
    """
    import shutil

    from .deploy import HEF_MAP

    ops = {i.name: s.op for s in plan.npu_steps() for i in s.instances}
    hef_dir = run_dir / "hefs"
    hef_dir.mkdir(parents=True, exist_ok=True)
    produced: dict[str, str] = {}  # HEF file name -> the compile's own .hef
    for u in units:
        hef = _compiled_hef(u["compile"])
        if hef:
            produced.setdefault(hef_of[u["first_instance"]], hef)
    compiled, failure = 0, None
    for step in plan.npu_steps():
        for inst in step.instances:
            name = hef_of[inst.name]
            if name in produced:
                continue
            spec = plan.units[inst.unit]
            request = _request(plan, spec, inst.unit, inst, params, ops, cfg, run_dir,
                               f"instances/{inst.file_stem}")
            outcome = backend.compile(request)
            compiled += 1
            hef = _compiled_hef(outcome.as_dict())
            if outcome.failure is not None or not hef:
                failure = {"instance": inst.name, "hef": name,
                           "failure_head": outcome.failure.head if outcome.failure else
                           "the compiler wrote no HEF"}
                break
            produced[name] = hef
        if failure:
            break
    for name, src in produced.items():
        shutil.copyfile(src, hef_dir / name)
    listed = {i: n for i, n in hef_of.items() if n in produced}
    write_json(hef_dir / HEF_MAP, {"instances": listed, "n_hefs": len(set(hef_of.values())),
                                   "complete": len(listed) == len(hef_of)})
    return {"hef_dir": str(hef_dir), "hefs_written": len(produced),
            "instance_compiles": compiled, "complete": len(listed) == len(hef_of),
            "failure": failure}


def _compiled_hef(compile_record: dict) -> str | None:
    """The .hef a compile record's compile stage wrote, if it still exists."""
    for stage in compile_record.get("stages", []):
        if stage.get("name") == "compile" and stage.get("ok") and stage.get("artifact"):
            path = Path(stage["artifact"])
            return str(path) if path.suffix == ".hef" and path.is_file() else None
    return None


def deployment(plan, params, cfg, run_dir: Path, backend, units: list[dict]) -> dict:
    """The plan on a device: HEFs per instance content, configure waves and switches; with a
    compiler that writes HEFs and every unit passing, the HEFs themselves (``hefs/``)."""
    from .deploy import device_figures, hef_names

    hef_of = hef_names(plan, params)
    fps = {u["unit"]: (u["compile"].get("metrics") or {}).get("est_fps") for u in units}
    record = device_figures(plan, hef_of, cfg.hw, cfg.model.time_len,
                            fps if backend.evidence == "estimate" else None)
    record["hefs"] = None
    over = cfg.tiling.max_hefs is not None and record["n_hefs"] > cfg.tiling.max_hefs
    if getattr(backend, "writes_hef", False) and all(u["verdict"] == "pass" for u in units):
        if over:
            record["hefs"] = {"skipped": f"{record['n_hefs']} HEFs exceed tiling.max_hefs="
                                         f"{cfg.tiling.max_hefs}: none compiled per instance"}
        elif cfg.tiling.instance_hefs:
            record["hefs"] = compile_instance_hefs(plan, params, cfg, run_dir, backend, units,
                                                   hef_of)
        else:
            record["hefs"] = {"skipped": "tiling.instance_hefs=false: one HEF per distinct "
                                         "unit only (first instance's weights), not deployable"}
    return record


def describe_deployment(d: dict) -> str:
    """plan.txt's closing section: what the plan takes on a device."""
    s = d["schedule"]
    lines = ["", f"on the device ({d['chunk_len']}-sample chunks at {d['sample_rate']} Hz):",
             f"  {d['n_hefs']} HEFs (one per distinct instance weights) for "
             f"{d['distinct_units']} distinct unit graphs and {s['instances']} instances",
             f"  at most {d['max_configured_networks']} network groups per VDevice: "
             f"{s['waves_first_chunk']} configure waves ({s['configures_first_chunk']} "
             f"configures) for the first chunk, {s['waves_per_chunk']} "
             f"({s['configures_per_chunk']}) for every later one",
             f"  per second of audio: {d['configures_per_audio_s']:.1f} configures in "
             f"{d['configure_waves_per_audio_s']:.1f} waves, {d['switches_per_audio_s']:.1f} "
             "network-group switches"]
    if d.get("est_device_rtf") is not None:
        lines.append(f"  estimated real-time factor on the device: {d['est_device_rtf']:.3f} "
                     f"({d['est_device_note']})")
    hefs = d.get("hefs") or {}
    if hefs.get("hef_dir"):
        lines.append(f"  HEFs: {hefs['hefs_written']} in {hefs['hef_dir']} (hef_map.json maps "
                     f"instances to files){'' if hefs['complete'] else ': INCOMPLETE'}")
    elif hefs.get("skipped"):
        lines.append(f"  HEFs: {hefs['skipped']}")
    return "\n".join(lines) + "\n"


def plan_feasible(verdicts: list[str]) -> bool | None:
    """True when every unit passes; None (not known) when none fails but the estimate is
    unsure of one, as it is then of the plan; False otherwise."""
    if all(v == "pass" for v in verdicts):
        return True
    if all(v in ("pass", "uncertain") for v in verdicts):
        return None
    return False


def run_tiled(cfg, run_dir: Path, backend, parity_lengths: list[int] | None = None) -> dict:
    """Build, save and compile the plan of ``cfg.model`` + ``cfg.tiling``; measure parity.

    Writes plan.json, plan.txt, units/<unit>.onnx and parity.tsv in ``run_dir``; returns every
    unit's verdict, ``feasible`` (``plan_feasible``), the parity rows and the host-share
    figures.
    """
    import torch

    from ..model.convtasnet import build_model
    from .executors import OrtExecutor
    from .parity import measure_parity, parity_tsv
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
    deploy = deployment(plan, params, cfg, run_dir, backend, units)
    write_text(run_dir / "plan.txt", plan.describe() + describe_deployment(deploy))
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
        "feasible": plan_feasible([u["verdict"] for u in units]),
        "parity": rows,
        "parity_max_abs": max(r["max_abs"] for r in full),
        "parity_min_si_snr_db": min(r["si_snr_db"] for r in full),
        "parity_executor": executor.name,
        "host_share": plan.host_share(),
        "deploy": deploy,
        "plan_path": str(run_dir / "plan.json"),
        "seconds": time.perf_counter() - t0,
    }
