"""Stitched onnxruntime time over untiled onnxruntime time, 4 s of audio at 8 kHz.

The bring-up configuration (N=256, B=128, H=256, Sc=128, cLN, ReLU, projection, 1x1 decoder
head) blocked into 64-channel blocks on 256-frame tiles, for one block x one repeat and for
8 blocks x 3 repeats.  Goal: <= 1.3x.  Both sides run onnxruntime with the same session
options (``tiling.executors.ort_options``: ``--threads`` intra-op threads, one inter-op
thread, no spinning); the stitched side's host ops (numpy, and the mask sigmoid through
onnxruntime) run on one thread.  Each turn times both sides once, the order alternating
between turns, and the ratio is taken per turn (wall time and process CPU time):
min / median / max over the turns.
Prints figures only; timing is never asserted.

    python benchmarks/tiling_speed.py [--repeats 5] [--threads 1] [--plans 1x1,8x3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SAMPLES = 4 * 8000
PLANS = {"1x1": (1, 1), "8x3": (8, 3)}


def _build(blocks: int, repeats_x: int):
    import numpy as np
    import torch
    from hydra import compose, initialize_config_dir

    from tasnet_sweep.cli import CONF_DIR
    from tasnet_sweep.config import register_configs
    from tasnet_sweep.model.convtasnet import build_model
    from tasnet_sweep.tiling.plan import build_plan
    from tasnet_sweep.tiling.weights import model_params

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[
            "model=hailo_convtasnet", "model.bn=128", "model.skip=128",
            f"model.n_blocks={blocks}", f"model.n_repeats={repeats_x}",
            f"model.time_len={SAMPLES}", "tiling=blocked", "tiling.tile_width=256",
            "tiling.channel_block=64"])
    torch.manual_seed(0)
    model = build_model(cfg.model)
    wav = np.random.default_rng(0).standard_normal(SAMPLES).astype(np.float32)
    return cfg, model, build_plan(cfg.model, cfg.tiling), model_params(model), wav


def measure_tiling(blocks: int = 1, repeats_x: int = 1, repeats: int = 5,
                   threads: int = 1) -> dict:
    """Paired stitched/untiled onnxruntime times of the bring-up plan with ``blocks`` x
    ``repeats_x`` blocks: ``ratios`` (wall time, one per turn), ``cpu_ratios`` (process CPU
    time, the same turns), ``untiled_s``, ``stitched_s`` (wall),
    ``threads``, ``ort_calls`` (onnxruntime calls of one stitched run) and ``seconds``."""
    import onnxruntime as ort

    from tasnet_sweep.export import export_unit
    from tasnet_sweep.model.units import build_unit
    from tasnet_sweep.tiling.executors import OrtExecutor, ort_options
    from tasnet_sweep.tiling.stitch import separate

    t_start = time.perf_counter()
    cfg, model, plan, params, wav = _build(blocks, repeats_x)
    with tempfile.TemporaryDirectory() as tmp:
        unit = build_unit(cfg.model, cfg.unit, model=model)  # unit=full: the untiled graph
        export_unit(unit, Path(tmp) / "full.onnx")
        sess = ort.InferenceSession(str(Path(tmp) / "full.onnx"), ort_options(threads),
                                    providers=["CPUExecutionProvider"])
    feed = {"input": wav.reshape(1, 1, 1, -1)}

    class Counting(OrtExecutor):
        calls = 0

        def run(self, inst, x):
            self.calls += 1
            return super().run(inst, x)

        def run_group(self, step, group, x):
            self.calls += 1
            return super().run_group(step, group, x)

    ex = Counting(plan, params, threads=threads)
    ex.warm_up()
    sides = {"untiled": lambda: sess.run(None, feed),
             "stitched": lambda: separate(plan, params, ex, wav)}
    for fn in sides.values():
        fn()  # warm-up: first-run allocations and the host sigmoid's session
    ex.calls = 0
    sides["stitched"]()
    calls = ex.calls
    times = {name: [] for name in sides}
    cpu = {name: [] for name in sides}
    for turn in range(repeats):
        order = list(sides) if turn % 2 == 0 else list(sides)[::-1]
        for name in order:
            t0, c0 = time.perf_counter(), time.process_time()
            sides[name]()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return {"blocks": blocks, "repeats_x": repeats_x, "threads": threads,
            "ratios": [s / u for s, u in zip(times["stitched"], times["untiled"])],
            "cpu_ratios": [s / u for s, u in zip(cpu["stitched"], cpu["untiled"])],
            "untiled_s": times["untiled"], "stitched_s": times["stitched"],
            "ort_calls": calls, "instances": sum(len(s.instances) for s in plan.npu_steps()),
            "units": len(plan.units), "seconds": time.perf_counter() - t_start}


def spread(values, fmt: str = "{:.2f}x") -> str:
    return "min {} / median {} / max {}".format(*(fmt.format(v) for v in (
        min(values), statistics.median(values), max(values))))


def describe(fig: dict) -> list[str]:
    ms = lambda ts: spread([1e3 * t for t in ts], "{:.1f}")  # noqa: E731
    return [f"{fig['blocks']} x {fig['repeats_x']}: {fig['units']} distinct units, "
            f"{fig['instances']} instances, {fig['ort_calls']} onnxruntime unit calls per "
            f"stitched run (and one for the host sigmoid); {len(fig['ratios'])} paired turns",
            f"  untiled onnxruntime (whole NPU graph) ms   {ms(fig['untiled_s'])}",
            f"  stitched onnxruntime (whole chain) ms      {ms(fig['stitched_s'])}",
            f"  ratio stitched/untiled, wall time          {spread(fig['ratios'])}"
            f"  (goal <= 1.3x)",
            f"  ratio stitched/untiled, CPU time           {spread(fig['cpu_ratios'])}"
            f"  (less sensitive to other load)",
            f"  ({fig['threads']} intra-op onnxruntime thread(s) on each side; "
            f"took {fig['seconds']:.1f} s)"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="paired turns per plan (>= 1)")
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    ap.add_argument("--plans", default="1x1,8x3", help=f"comma-separated, of {', '.join(PLANS)}")
    args = ap.parse_args(argv)
    plans = [p.strip() for p in args.plans.split(",") if p.strip()]
    bad = [p for p in plans if p not in PLANS]
    if bad or not plans or args.repeats < 1 or args.threads < 1:
        print(f"tiling_speed: --plans={args.plans!r} --repeats={args.repeats} "
              f"--threads={args.threads}: expected plans from {', '.join(PLANS)}, "
              "repeats and threads >= 1", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    print(f"bring-up N=256 B=128 H=256 Sc=128 cLN relu project conv1x1_head; blocked 64 ch x "
          f"256 frames; {SAMPLES} samples (4 s at 8 kHz)")
    for name in plans:
        for line in describe(measure_tiling(*PLANS[name], repeats=args.repeats,
                                            threads=args.threads)):
            print(line)
    print(f"total run time {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
