"""Stitched onnxruntime time over untiled onnxruntime time, 4 s of audio at 8 kHz.

The bring-up configuration (N=256, B=128, H=256, Sc=128, one block, cLN, ReLU, projection,
1x1 decoder head) blocked into 64-channel blocks on 256-frame tiles.  Goal: <= 1.3x.  Prints
figures only; timing is never asserted.  Both sides run onnxruntime on one thread.

    python benchmarks/tiling_speed.py [--repeats 10] [--blocks 1] [--repeats-x 1]
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


def _interleaved_medians(fns, repeats: int) -> list[float]:
    """Median seconds of each function, the functions taking turns, so that load on a noisy
    machine lands on all of them alike."""
    for fn in fns:
        fn()  # warm-up
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return [statistics.median(ts) for ts in times]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--blocks", type=int, default=1, help="model.n_blocks")
    ap.add_argument("--stacks", type=int, default=1, help="model.n_repeats")
    args = ap.parse_args(argv)

    import numpy as np
    import onnxruntime as ort
    import torch
    from hydra import compose, initialize_config_dir

    from tasnet_sweep.cli import CONF_DIR
    from tasnet_sweep.config import register_configs
    from tasnet_sweep.export import export_unit
    from tasnet_sweep.model.convtasnet import build_model
    from tasnet_sweep.model.units import build_unit
    from tasnet_sweep.tiling.executors import OrtExecutor
    from tasnet_sweep.tiling.plan import build_plan
    from tasnet_sweep.tiling.stitch import separate
    from tasnet_sweep.tiling.weights import model_params

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[
            "model=hailo_convtasnet", "model.bn=128", "model.skip=128",
            f"model.n_blocks={args.blocks}", f"model.n_repeats={args.stacks}",
            f"model.time_len={SAMPLES}", "tiling=blocked", "tiling.tile_width=256",
            "tiling.channel_block=64"])
    torch.manual_seed(0)
    model = build_model(cfg.model)
    plan, params = build_plan(cfg.model, cfg.tiling), model_params(model)
    wav = np.random.default_rng(0).standard_normal(SAMPLES).astype(np.float32)

    with tempfile.TemporaryDirectory() as tmp:
        unit = build_unit(cfg.model, cfg.unit, model=model)  # unit=full: the NPU graph
        export_unit(unit, Path(tmp) / "full.onnx")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 3
        sess = ort.InferenceSession(str(Path(tmp) / "full.onnx"), opts,
                                    providers=["CPUExecutionProvider"])
        feed = {"input": wav.reshape(1, 1, 1, -1)}
        ex = OrtExecutor(plan, params, threads=1)
        ex.warm_up()
        untiled, stitched = _interleaved_medians(
            [lambda: sess.run(None, feed), lambda: separate(plan, params, ex, wav)],
            args.repeats)
    work = plan.workload(SAMPLES)
    print(f"config: N=256 B=128 H=256 Sc=128 X={args.blocks} R={args.stacks} cLN relu project "
          f"conv1x1_head; blocked 64 ch x 256 frames; {SAMPLES} samples (4 s at 8 kHz)")
    print(f"units: {len(plan.units)} distinct, {work['npu_invocations']} invocations "
          f"({sum(len(s.instances) for s in plan.npu_steps())} onnxruntime calls, tiles batched)")
    print(f"untiled onnxruntime (NPU graph, no overlap-add): {untiled * 1e3:.1f} ms")
    print(f"stitched onnxruntime (whole chain, host ops incl.): {stitched * 1e3:.1f} ms")
    print(f"ratio stitched/untiled: {stitched / untiled:.2f}x (goal <= 1.3x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
