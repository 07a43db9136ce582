"""Every fixed-cost figure of issue M15, as paired ratios measured side by side in one run.

    python benchmarks/perf.py [--repeats 5] [--only trial,help,workers,tiling]

Whole processes are run as a user runs them (``python -m tasnet_sweep ...`` in a scratch
folder) and charged their CPU time (user + system) together with every process they leave
behind: this process makes itself the child subreaper (Linux ``PR_SET_CHILD_SUBREAPER``), so a
launcher's worker is re-parented here, waited for, and counted; single runs' tracking agent is
charged the CPU it spends on each trial (trial_speed.py, which the trial figures come from).

Figures (goal in brackets):
  trial    fresh trial of the paper model, default tracking, over a bare export script (<= 1.5x);
           its tracking over tracking=none (<= 0.3 s CPU); a cache hit over a fresh trial (<= 10%)
  help     ``python -m tasnet_sweep --help`` (<= 0.5 s CPU)
  workers  trials per minute of 2 joblib workers over 1 on a 16-trial estimate grid (>= 1.7x),
           with the ceilings this machine's CPUs set (from the CPU the 2 workers' sweep used,
           and from the CPU the 1 worker's sweep used: the most a free second worker could
           add), the same ratio with tracking=none; processes still alive when the sweep has
           exited (0)
  tiling   stitched onnxruntime over untiled, one block x one repeat and 8 x 3 (<= 1.3x)

Each turn runs every side once, the order alternating between turns, so that load on a noisy
machine falls on both sides of a ratio alike; ratios are taken per turn and shown as
min / median / max.  Nothing is asserted: the figures are printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from trial_speed import (  # noqa: E402  (a sibling script, not a package)
    Cost,
    become_subreaper,
    children,
    measure_trial_speed,
    reap_leftovers,
    report,
    run,
    spread,
    tasnet,
)

SECTIONS = ("trial", "help", "workers", "tiling")
#: a 16-trial grid of small estimate trials (2 x 2 x 2 x 2)
GRID = ["model.bn=32,64", "model.hidden=128,256", "model.n_blocks=2,4", "model.n_repeats=1,2",
        "model.time_len=4000"]


def turns(sides: dict, repeats: int) -> dict[str, list[tuple[Cost, int]]]:
    """Every side once per turn, in alternating order, after one warm-up turn; each side
    returns (its cost, how many processes it left running)."""
    names = list(sides)
    for name in names:
        sides[name]()
    out: dict[str, list] = {name: [] for name in names}
    for turn in range(repeats):
        for name in (names if turn % 2 == 0 else names[::-1]):
            out[name].append(sides[name]())
        print(f"  turn {turn + 1}/{repeats}: " + ", ".join(
            f"{n} {out[n][-1][0].wall:.1f} s wall, {out[n][-1][0].cpu:.2f} s CPU"
            for n in names), flush=True)
    return out


def whole(argv: list[str], cwd: Path) -> tuple[Cost, int]:
    """``argv``'s cost with every process it left behind waited for and charged, and how
    many it left behind (still running when it exited)."""
    cost, _ = run(argv, cwd)
    left = len(children())
    extra = reap_leftovers(keep=None)
    return Cost(cost.wall, cost.cpu + extra), left


def bench_trial(tmp: Path, repeats: int) -> list[str]:
    return report(measure_trial_speed(repeats=repeats))


def bench_help(tmp: Path, repeats: int) -> list[str]:
    got = turns({"--help": lambda: whole(tasnet("--help"), tmp)}, repeats)
    cpu = [c.cpu for c, _ in got["--help"]]
    return [f"--help, CPU s                              {spread(cpu)}  (goal <= 0.5 s)"]


def steady_rate(sweep_dir: Path) -> float:
    """Trials per second between the first trial's end and the last's: the sweep's rate once
    its workers run, without the parent's start, the workers' start and the sweep's end."""
    import json

    ends = sorted(r["started_at"] + r["seconds"] for r in
                  (json.loads(p.read_text()) for p in sweep_dir.glob("*/result.json")))
    return (len(ends) - 1) / (ends[-1] - ends[0])


def bench_workers(tmp: Path, repeats: int) -> list[str]:
    rates: dict[str, list[float]] = {}

    def sweep(n_jobs: int, *extra: str):
        name = f"{n_jobs} worker{'s' if n_jobs > 1 else ''}{' ' if extra else ''}{' '.join(extra)}"
        rates[name] = []

        def side() -> tuple[Cost, int]:
            folder = tmp / f"sweep_{n_jobs}_{time.time_ns()}"
            out = whole(tasnet("-m", *GRID, "hydra/launcher=joblib",
                               f"hydra.launcher.n_jobs={n_jobs}", f"hydra.sweep.dir={folder}",
                               f"compiler.cache_dir={folder}/cache", *extra), tmp)
            rates[name].append(steady_rate(folder))
            return out
        return name, side

    sides = dict(sweep(n) for n in (1, 2)) | dict(sweep(n, "tracking=none") for n in (1, 2))
    got = turns(sides, repeats)
    one, two, one_off, two_off = (got[name] for name in sides)

    def speedup(a, b) -> list[float]:
        return [x.wall / y.wall for (x, _), (y, _) in zip(a, b)]

    names = list(sides)
    steady = [b / a for a, b in zip(rates[names[0]][1:], rates[names[1]][1:])]  # after warm-up
    ncpu = os.cpu_count() or 1
    # 2 workers cannot finish sooner than the CPU they used spread over every CPU: a ceiling
    # that the per-process warm-up a second worker repeats (imports) and the parent's work lower
    ceiling = [ncpu * a.wall / b.cpu for (a, _), (b, _) in zip(one, two)]
    # ... nor, were a second worker free, sooner than the CPU one worker's sweep used: with
    # tracking, that sweep keeps more than one CPU busy already (its MLflow process runs beside)
    free = [ncpu * a.wall / a.cpu for a, _ in one]
    per_min = [16 / (c.wall / 60) for c, _ in two]
    left = max(n for costs in got.values() for _, n in costs)
    return [f"2 workers / 1, trials per minute           {spread(speedup(one, two))}  (goal >= "
            "1.7x)",
            f"  2 workers: trials per minute {spread(per_min, '{:.0f}')} (16-trial grid, "
            "default tracking)",
            f"  the same, first to last trial's end only  {spread(steady)}  (the workers' "
            "steady rate: no process starts)",
            f"  the most {ncpu} CPUs allow for that CPU   {spread(ceiling)}  ({ncpu} x 1 "
            "worker's wall / 2 workers' CPU)",
            f"  ... were a second worker free of cost     {spread(free)}  ({ncpu} x 1 worker's "
            "wall / its CPU)",
            f"  both with tracking=none                   {spread(speedup(one_off, two_off))}",
            f"processes alive after the sweep exited     {left} at most  (goal 0)"]


def bench_tiling(tmp: Path, repeats: int) -> list[str]:
    from tiling_speed import measure_tiling

    lines = []
    for blocks, repeats_x in ((1, 1), (8, 3)):
        fig = measure_tiling(blocks=blocks, repeats_x=repeats_x, repeats=repeats)
        lines.append(f"stitched / untiled ORT, {blocks} x {repeats_x}, wall   "
                     f"{spread(fig['ratios'])}  (goal <= 1.3x; {fig['threads']} onnxruntime "
                     "thread(s) each side)")
        lines.append(f"stitched / untiled ORT, {blocks} x {repeats_x}, CPU    "
                     f"{spread(fig['cpu_ratios'])}")
    return lines


BENCHES = {"trial": bench_trial, "help": bench_help, "workers": bench_workers,
           "tiling": bench_tiling}


def parse_only(text: str) -> list[str]:
    chosen = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in chosen if s not in SECTIONS]
    if bad or not chosen:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected a comma-separated list of {', '.join(SECTIONS)}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="interleaved turns (default 5)")
    ap.add_argument("--only", type=parse_only, default=list(SECTIONS),
                    help=f"comma-separated sections (default: all of {','.join(SECTIONS)})")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error(f"--repeats {args.repeats}: expected a whole number >= 1")
    if not become_subreaper():
        print("perf: cannot become the child subreaper; processes left behind are not counted",
              file=sys.stderr)
    t_start = time.perf_counter()
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tasnet_perf_") as tmp:
        for section in args.only:
            t0 = time.perf_counter()
            print(f"{section} ...", flush=True)
            lines += BENCHES[section](Path(tmp), args.repeats)
            print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"\nfigures over {args.repeats} interleaved turns (load average at the end: "
          f"{os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs)")
    print("\n".join(lines))
    print(f"\nbenchmark run time {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
