"""Benchmark (not a test): what a trial costs on top of exporting the model, and a cache hit.

Prints, for the paper-size ConvTasNet at time_len=16000 on the estimate backend:
  fresh trial / bare ONNX export   (goal <= 1.5x)
  cache-hit trial / fresh trial    (goal <= 5%)
measured side by side in one process, median of --repeats runs each.

    python benchmarks/trial_speed.py [--repeats 3] [overrides ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def compose(overrides):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from tasnet_sweep.cli import CONF_DIR
    from tasnet_sweep.config import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=overrides)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("overrides", nargs="*", default=["model.time_len=16000"])
    args = parser.parse_args()

    import torch

    from tasnet_sweep import trial
    from tasnet_sweep.export import export_unit
    from tasnet_sweep.model.units import build_unit

    export_s, fresh_s, hit_s = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for i in range(args.repeats):
            cfg = compose([*args.overrides, f"compiler.cache_dir={tmp / f'cache{i}'}"])
            t0 = time.perf_counter()
            torch.manual_seed(cfg.export.seed)
            export_unit(build_unit(cfg.model, cfg.unit), tmp / f"bare{i}.onnx",
                        opset=cfg.export.opset)
            export_s.append(time.perf_counter() - t0)

            t0 = time.perf_counter()
            fresh = trial.run(cfg, tmp / f"fresh{i}")
            fresh_s.append(time.perf_counter() - t0)
            assert not fresh["summary"]["cache_hit"]

            t0 = time.perf_counter()
            hit = trial.run(cfg, tmp / f"hit{i}")
            hit_s.append(time.perf_counter() - t0)
            assert hit["summary"]["cache_hit"]
    e, f, h = (statistics.median(x) for x in (export_s, fresh_s, hit_s))
    s = fresh["summary"]
    print(f"model: {s['unit']} params={s['params']:,} macs={s['macs']:,} "
          f"verdict={s['verdict']} (evidence={s['evidence']})")
    print(f"bare ONNX export        {e:8.3f} s")
    print(f"fresh estimate trial    {f:8.3f} s   ratio to export {f / e:5.2f}x  (goal <= 1.5x)")
    print(f"cache-hit trial         {h:8.3f} s   ratio to fresh  {100 * h / f:5.1f}%  (goal <= 5%)")


if __name__ == "__main__":
    main()
