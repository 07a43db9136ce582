"""On the target, parity and latency of every unit instance and of the stitched chain against
PyTorch: ``python -m tasnet_sweep.commands.check_device runtime=hailort runtime.hef_dir=<dir>``.

Writes into ``runtime.output_dir``: ``hef_units_summary.tsv`` (one row per unit instance),
``hef_tiled_decoder_path_summary.tsv``, ``hef_tiled_masker_path_summary.tsv``,
``hef_tiled_full_chain_summary.tsv`` (one row per source and input length) and
``validate_metrics.json`` (``latency_ms_total``, ``rtf_total``, per-stage latency).
``runtime=onnxruntime`` gives the same dry run on any machine.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import hydra
import numpy as np

from ..atomic import write_json, write_text
from ..config import register_configs
from ..progress import iterate
from ..resources import CONF_PKG
from ..runtime.chunks import run_timed
from ..runtime.entry import command, user_errors
from ..runtime.session import TimedExecutor, load_deployment, make_executor
from ..tiling.executors import TorchExecutor
from ..tiling.parity import measure_parity, si_snr_db
from ..tiling.run import parity_lengths_for

PROG = "tasnet_sweep.commands.check_device"
register_configs()
PATH_FILES = {"decoder": "hef_tiled_decoder_path_summary.tsv",
              "masker": "hef_tiled_masker_path_summary.tsv",
              "full": "hef_tiled_full_chain_summary.tsv"}


def _tsv(rows: list[dict], cols: list[str]) -> str:
    def fmt(v):
        return f"{v:.6g}" if isinstance(v, float) else str(v)
    return "\n".join(["\t".join(cols)] + ["\t".join(fmt(r[c]) for c in cols) for r in rows]) + "\n"


def unit_rows(dep, executor, reference, repeats: int, seed: int = 0) -> list[dict]:
    """Every instance on one random tile: max |runtime - torch| and mean ms per call."""
    rng = np.random.default_rng(seed)
    rows = []
    pairs = [(step, inst) for step in dep.plan.npu_steps() for inst in step.instances]
    for step, inst in iterate(pairs, "unit instances", "instance"):
        spec = dep.plan.units[inst.unit]
        x = rng.standard_normal((1, spec.cin, 1, spec.in_width)).astype(np.float32)
        ref = reference.run(inst, x)
        got = executor.run(inst, x)  # the first call also loads the unit
        t0 = time.perf_counter()
        for _ in range(repeats):
            executor.run(inst, x)
        rows.append({"instance": inst.name, "unit": inst.unit, "stage": step.stage,
                     "in_shape_nhwc": f"1x{spec.in_width}x{spec.cin}",
                     "max_abs": float(np.max(np.abs(got - ref))),
                     "snr_db": si_snr_db(got, ref),
                     "latency_ms": 1e3 * (time.perf_counter() - t0) / repeats})
    return rows


def chain_rows(dep, executor, lengths: list[int], repeats: int) -> tuple[dict, dict]:
    """Parity rows per path (decoder, masker, full) and the full chain's timing."""
    by_path: dict[str, list[dict]] = {p: [] for p in PATH_FILES}
    for n, length in enumerate(lengths):
        for path in PATH_FILES:
            t0 = time.perf_counter()
            rows = measure_parity(dep.model, dep.plan, dep.params, executor, length, seed=n,
                                  paths=(path,))
            ms = 1e3 * (time.perf_counter() - t0)
            by_path[path] += [{**r, "check_ms": ms} for r in rows]  # incl. the torch reference
    wav = np.random.default_rng(0).standard_normal(lengths[0]).astype(np.float32)
    stages: dict[str, float] = {}
    t0 = time.perf_counter()
    for _ in range(repeats):
        run_timed(dep.plan, dep.params, executor, wav, stages)
    total = (time.perf_counter() - t0) / repeats
    return by_path, {"stages_ms": {k: 1e3 * v / repeats for k, v in stages.items()},
                     "total_s": total, "time_len": lengths[0]}


def run_validate(cfg) -> dict:
    r = cfg.runtime
    dep = load_deployment(cfg)
    executor = make_executor(cfg, dep.plan, dep.params)
    for note in dep.notes:
        print(f"{PROG}: {note}", file=sys.stderr)
    timed = TimedExecutor(executor)
    out = Path(r.output_dir)
    try:
        units = unit_rows(dep, executor, TorchExecutor(dep.plan, dep.params),
                          r.validate_repeats)
        print(f"{PROG}: {len(units)} unit instances checked", file=sys.stderr)
        lengths = parity_lengths_for(dep.model_cfg["time_len"])
        by_path, timing = chain_rows(dep, timed, lengths, r.validate_repeats)
    finally:
        timed.close()
    write_text(out / "hef_units_summary.tsv", _tsv(units, list(units[0])))
    cols = ["path", "time_len", "source", "max_abs", "ref_max_abs", "si_snr_db", "check_ms"]
    for path, name in PATH_FILES.items():
        write_text(out / name, _tsv(by_path[path], cols))
    audio_s = timing["time_len"] / dep.sample_rate
    full = by_path["full"]
    metrics = {
        "runtime": r.name, "hef_dir": r.hef_dir, "tiling": dep.plan.mode,
        "tile_width": dep.plan.tile_width, "channel_block": dep.plan.channel_block,
        "n_units": len(dep.plan.units), "n_instances": len(units),
        "time_len": timing["time_len"], "sample_rate": dep.sample_rate,
        "latency_ms_total": 1e3 * timing["total_s"],
        "rtf_total": timing["total_s"] / audio_s,
        "latency_ms_per_stage": timing["stages_ms"],
        "unit_latency_ms_mean": float(np.mean([u["latency_ms"] for u in units])),
        "unit_max_abs": max(u["max_abs"] for u in units),
        "full_chain_max_abs": max(x["max_abs"] for x in full),
        "full_chain_min_si_snr_db": min(x["si_snr_db"] for x in full),
        "files": [str(out / n) for n in ("hef_units_summary.tsv", *PATH_FILES.values())],
    }
    write_json(out / "validate_metrics.json", metrics)
    print(f"{PROG}: chain max |err| {metrics['full_chain_max_abs']:.3g}, "
          f"{metrics['latency_ms_total']:.1f} ms per {audio_s:.2f} s "
          f"(rtf {metrics['rtf_total']:.3f}); tables in {out}", file=sys.stderr)
    return metrics


@hydra.main(version_base="1.3", config_path=CONF_PKG, config_name="config")
def check_device_app(cfg) -> None:
    with user_errors(PROG):
        run_validate(cfg)


ABOUT = ("parity and latency of every unit and of the stitched chain against PyTorch "
         "(runtime=hailort runtime.hef_dir=DIR on the target)")

main = command(PROG, check_device_app, ABOUT)


if __name__ == "__main__":
    sys.exit(main())
