"""What MLflow tracking adds to one trial process, measured side by side.

    python benchmarks/tracking_cost.py [--repeats 5]

One cached single trial (the paper's encoder unit, estimate backend) is run as a user runs it,
``python -m tasnet_sweep ...``, in turns: ``tracking=none``, ``tracking=mlflow`` (the default:
a single run hands its logging to a detached sync), and ``tracking=mlflow
tracking.background=false`` (logging inside the trial process).  Each turn is timed as wall
clock and as the trial process's CPU; the figure is each mode's overhead over the
``tracking=none`` run of the same turn (min / median / max over the turns).  The goal (issue
M11) is at most 1.5 s over ``tracking=none``.  The background sync's own time is reported
apart: it no longer holds the trial up, but it still runs.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRIAL = ["unit=encoder", "model.n_filters=64", "model.time_len=4000"]
MODES = {"none": ["tracking=none"], "mlflow": [],
         "mlflow inline": ["tracking.background=false"]}


def _run(args: list[str], cwd: Path) -> tuple[float, float, str]:
    """(wall s, CPU s of the process, output) of one ``python -m tasnet_sweep`` call."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "tasnet_sweep", *args], cwd=cwd,
                          capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        sys.exit(f"tracking_cost: {' '.join(args)} failed: {done.stderr[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout + done.stderr


def _wait_background(output: str) -> float:
    """Seconds until a single run's detached MLflow sync ends (0 when there is none)."""
    import re
    import select

    found = re.search(r"in the background \(pid (\d+)", output)
    if not found:
        return 0.0
    t0 = time.perf_counter()
    try:
        fd = os.pidfd_open(int(found.group(1)))
    except ProcessLookupError:
        return 0.0
    select.select([fd], [], [], 600)
    os.close(fd)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="interleaved turns (default 5)")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tracking_cost_") as tmp:
        cwd = Path(tmp)
        base = [*TRIAL, f"compiler.cache_dir={cwd / 'cache'}", f"hydra.run.dir={cwd / 'run'}"]
        _run([*base, "tracking=none"], cwd)  # fill the trial cache: every timed run is a hit
        _wait_background(_run(base, cwd)[2])  # create the MLflow store's schema once
        figures: dict[str, list[tuple[float, float]]] = {m: [] for m in MODES}
        background: list[float] = []
        for turn in range(args.repeats):
            for mode, extra in MODES.items():
                wall, cpu, out = _run([*base, *extra], cwd)
                figures[mode].append((wall, cpu))
                if mode == "mlflow":
                    background.append(_wait_background(out))
            print(f"turn {turn + 1}/{args.repeats}: " + ", ".join(
                f"{m} {figures[m][-1][0]:.2f} s" for m in MODES), flush=True)
    print("\noverhead of tracking over tracking=none in the same turn (goal: <= 1.5 s)")
    for mode in ("mlflow", "mlflow inline"):
        for k, what in ((0, "wall"), (1, "CPU")):
            extra = [f[k] - n[k] for f, n in zip(figures[mode], figures["none"])]
            ratio = statistics.median(f[k] / n[k] for f, n in zip(figures[mode],
                                                                  figures["none"]))
            print(f"  {mode:<14} {what:<4} min {min(extra):6.2f} s  median "
                  f"{statistics.median(extra):6.2f} s  max {max(extra):6.2f} s  "
                  f"(x{ratio:.2f} of tracking=none)")
    print(f"  the detached sync itself took {min(background):.2f}-{max(background):.2f} s "
          "after each trial had returned")
    print(f"\nbenchmark run time {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
