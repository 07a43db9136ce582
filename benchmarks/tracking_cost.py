"""What MLflow tracking adds per trial, as whole processes measured side by side.

    python benchmarks/tracking_cost.py [--repeats 5] [--sweep-trials 4]

Single runs: one cached trial (the paper's encoder unit, estimate backend) run as a user runs
it, ``python -m tasnet_sweep ...``, in turns: ``tracking=none``, ``tracking=mlflow`` (the
default: the trial is queued for the store's tracking agent, whose CPU for it is counted) and
``tracking.background=false`` (logging inside the trial process).  Sweeps: a multirun of
``--sweep-trials`` small trials in 2 joblib worker processes, ``tracking=none`` against the
default (the workers queue their trials; the sweep's parent, which opened the parent run,
logs them), everything the sweep started counted (this process is the child subreaper).
Figures: CPU seconds over ``tracking=none`` in the same turn, per trial, min / median / max
over the turns (goal, issue M15: <= 0.3 s per trial).

``measure_tracking_cost()`` returns the figures for other scripts (benchmarks/perf.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trial_speed import (  # noqa: E402  (the benchmarks folder is not a package)
    AgentWatch,
    Cost,
    become_subreaper,
    reap_leftovers,
    run,
    spread,
    tasnet,
    tracked,
)

TRIAL = ["unit=encoder", "model.n_filters=64", "model.time_len=4000"]
SWEEP = ["model.n_filters=32", "model.hidden=64", "model.n_blocks=2", "model.n_repeats=1",
         "model.time_len=4000", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]


def measure_tracking_cost(repeats: int = 5, sweep_trials: int = 4, echo=print) -> dict:
    """Per-trial CPU over tracking=none: single cached runs (agent, inline) and a multirun of
    ``sweep_trials`` trials (0 skips it).  Returns {"single": {mode: [s]}, "sweep": [s per
    trial], "agent_start_cpu", "seconds"}, one value per turn."""
    t_start = time.perf_counter()
    if not become_subreaper():
        echo("cannot become the child subreaper: processes left behind are not counted")
    with tempfile.TemporaryDirectory(prefix="tracking_cost_") as tmp:
        cwd = Path(tmp)
        watch = AgentWatch(cwd)
        base = [*TRIAL, f"compiler.cache_dir={cwd / 'cache'}"]

        def single(extra: list[str]) -> list[str]:
            return tasnet(*base, *extra, f"hydra.run.dir={cwd}/run_{time.time_ns()}")

        bns = ",".join(str(16 + 8 * i) for i in range(sweep_trials))

        def sweep(extra: list[str]) -> Cost:
            folder = cwd / f"sweep_{time.time_ns()}"
            cost = run(tasnet("-m", f"model.bn={bns}", *SWEEP, *extra,
                              f"hydra.sweep.dir={folder}", f"compiler.cache_dir={folder}/c"),
                       cwd)[0]
            return Cost(cost.wall, cost.cpu + reap_leftovers(keep=watch.pid()))

        modes = {"none": lambda: run(single(["tracking=none"]), cwd)[0],
                 "mlflow (agent)": lambda: tracked(watch, single([]), cwd)[0],
                 "mlflow inline": lambda: run(single(["tracking.background=false"]), cwd)[0]}
        if sweep_trials:
            modes["sweep none"] = lambda: sweep(["tracking=none"])
            modes["sweep mlflow"] = lambda: sweep([])
        try:
            run(single(["tracking=none"]), cwd)  # fill the trial cache: every single run hits
            _, agent_start = tracked(watch, single([]), cwd)  # the store's schema, the agent
            costs: dict[str, list[Cost]] = {m: [] for m in modes}
            names = list(modes)
            for turn in range(repeats):
                for mode in (names if turn % 2 == 0 else names[::-1]):
                    costs[mode].append(modes[mode]())
                echo(f"  turn {turn + 1}/{repeats}: " + ", ".join(
                    f"{m} {costs[m][-1].cpu:.2f}" for m in names) + " s CPU")
        finally:
            agent = watch.pid()
            watch.stop()
            if agent is not None:
                try:
                    os.waitpid(agent, 0)
                except ChildProcessError:  # not re-parented here
                    pass

    def over(mode: str, base_mode: str, per: int = 1) -> list[float]:
        return [(a.cpu - b.cpu) / per for a, b in zip(costs[mode], costs[base_mode])]

    return {"single": {m: over(m, "none") for m in ("mlflow (agent)", "mlflow inline")},
            "sweep": over("sweep mlflow", "sweep none", sweep_trials) if sweep_trials else [],
            "costs": costs, "agent_start_cpu": agent_start,
            "seconds": time.perf_counter() - t_start}


def report(fig: dict, sweep_trials: int) -> list[str]:
    lines = ["CPU s per trial over tracking=none in the same turn (goal <= 0.3 s)"]
    for mode, extra in fig["single"].items():
        lines.append(f"  single cached run, {mode:<15} {spread(extra)}")
    if fig["sweep"]:
        lines.append(f"  multirun of {sweep_trials}, 2 joblib workers  {spread(fig['sweep'])}"
                     "  (the parent's MLflow start shared by its trials)")
    lines.append(f"  the tracking agent's start (MLflow import, store), once per idle spell: "
                 f"{fig['agent_start_cpu']:.2f} s CPU")
    lines.append("  absolute CPU s: " + "; ".join(
        f"{m} {spread([c.cpu for c in cs])}" for m, cs in fig["costs"].items()))
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="interleaved turns (default 5)")
    ap.add_argument("--sweep-trials", type=int, default=4,
                    help="trials in the multirun side (default 4; 0: no sweep)")
    args = ap.parse_args(argv)
    if args.repeats < 1 or args.sweep_trials < 0:
        ap.error("--repeats: a whole number >= 1; --sweep-trials: >= 0")
    fig = measure_tracking_cost(args.repeats, args.sweep_trials)
    print(f"\nfigures over {args.repeats} interleaved turns (load average at the end: "
          f"{os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs)")
    print("\n".join(report(fig, args.sweep_trials)))
    print(f"\nbenchmark run time {fig['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
