"""Benchmark (not a test): what a whole trial process costs, against a bare export script.

    python benchmarks/trial_speed.py [--repeats 5] [overrides ...]

Each side is a whole process run as a user runs it (``python -m tasnet_sweep ...`` in a scratch
folder, bytecode caching on), charged its CPU time (user + system).  Turns are interleaved (the
order alternating) and ratios taken per turn, shown as min / median / max:

  fresh trial (default tracking=mlflow) / bare ``torch.onnx.export`` script   goal <= 1.5x
  fresh trial, tracking=none / bare export
  tracking over tracking=none, CPU s per trial                               goal <= 0.3 s
  cache hit (the same trial run again) / fresh trial                         goal <= 10%

A single run hands its MLflow logging to the store's tracking agent (tasnet_sweep/tracking/
agent.py), a detached process that stays for the next trial: its CPU for each trial (read
from /proc before the trial and once the trial's entry is logged) is added to that trial.  The
agent's start (importing MLflow, opening the store) is paid once per idle spell and shown apart.
Any other process a trial leaves behind (an older checkout's detached ``commands.sync``) is
re-parented here (Linux ``PR_SET_CHILD_SUBREAPER``), waited for and charged to that trial.

``measure_trial_speed()`` returns the figures for other scripts (benchmarks/perf.py).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OVERRIDES: list[str] = []  # the paper model (conf defaults), time_len=16000
#: the bare side: the same model built and exported, nothing else (no Hydra, no checks)
BARE_EXPORT = """
import sys, torch, yaml
from tasnet_sweep.model.units import build_unit

class Node(dict):  # attribute access, as the composed config gives it
    __getattr__ = dict.get

model = Node(yaml.safe_load(open(sys.argv[2])))
model.update({k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in sys.argv[3:])})
unit = build_unit(model, Node(name="full", width=None, blocks=None))
torch.manual_seed(0)
with torch.no_grad():
    torch.onnx.export(unit.module, unit.example_inputs(0), sys.argv[1], opset_version=13,
                      dynamo=False, do_constant_folding=True)
"""
TICK = os.sysconf("SC_CLK_TCK")
PR_SET_CHILD_SUBREAPER = 36


@dataclass
class Cost:
    wall: float
    cpu: float


def env() -> dict:
    """Bytecode caching on (as users have it), this checkout first on the path."""
    out = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    out["PYTHONPATH"] = str(ROOT) + (os.pathsep + out["PYTHONPATH"]
                                     if out.get("PYTHONPATH") else "")
    return out


def run(argv: list[str], cwd: Path, extra_env: dict | None = None) -> tuple[Cost, str]:
    """(wall and CPU of the process ``argv``, its output); exits on failure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True,
                          env={**env(), **(extra_env or {})})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        sys.exit(f"{' '.join(argv)} failed (exit {done.returncode}):\n{done.stderr[-1500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Cost(wall, cpu), done.stdout + done.stderr


def tasnet(*args: str) -> list[str]:
    return [sys.executable, "-m", "tasnet_sweep", *args]


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    return (f"min {fmt.format(min(values))}  median {fmt.format(statistics.median(values))}  "
            f"max {fmt.format(max(values))}")


# -- the tracking agent of single runs -----------------------------------------------------
def proc_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) of a live process, from /proc; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


class AgentWatch:
    """The tracking agent of the store under ``cwd/outputs``: its pid and CPU, and waiting
    until it has logged everything queued."""

    def __init__(self, cwd: Path):
        self.root = cwd / "outputs" / ".mlflow_queue"

    def queue(self) -> Path | None:
        found = sorted(self.root.glob("*/agent.lock")) if self.root.is_dir() else []
        return found[0].parent if found else None

    def pid(self) -> int | None:
        queue = self.queue()
        try:
            pid = int((queue / "agent.pid").read_text()) if queue else None
        except (OSError, ValueError):
            return None
        return pid if pid and proc_cpu(pid) is not None else None

    def wait_logged(self, timeout: float = 600) -> None:
        """Until no entry waits or is being logged (the agent unlinks one once logged)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            queue = self.queue()
            if queue is None or not any(p.name[0].isdigit() for p in queue.iterdir()):
                return
            time.sleep(0.05)
        sys.exit("the tracking agent did not log the trial within "
                 f"{timeout:.0f} s; see {self.queue()}/agent.log")

    def stop(self) -> None:
        """End the agent this benchmark's trials started (by its pid)."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)


def become_subreaper() -> bool:
    """Processes our children leave behind are re-parented to this one (Linux)."""
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def children() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
                found.append(int(entry.name))
    return found


def reap_leftovers(keep: int | None) -> float:
    """Wait for every process left behind except ``keep`` (the agent); their CPU seconds."""
    cpu = 0.0
    for pid in children():
        if pid != keep:
            _, _, usage = os.wait4(pid, 0)
            cpu += usage.ru_utime + usage.ru_stime
    return cpu


def tracked(watch: AgentWatch, argv: list[str], cwd: Path) -> tuple[Cost, float]:
    """Run a trial with default tracking; its cost with the agent's CPU for it (and any
    process it left behind) added, and that extra CPU alone."""
    pid = watch.pid()
    before = proc_cpu(pid) if pid else 0.0
    cost, _ = run(argv, cwd)
    watch.wait_logged()
    now = watch.pid()
    if now != pid:  # an agent started by this trial: all of its CPU so far is this trial's
        before = 0.0
    extra = (proc_cpu(now) or 0.0) - (before or 0.0) if now else 0.0
    extra += reap_leftovers(keep=now)
    return Cost(cost.wall, cost.cpu + extra), extra


# -- the figures ---------------------------------------------------------------------------
def measure_trial_speed(repeats: int = 5, overrides: list[str] | None = None,
                        echo=print) -> dict:
    """Whole-process CPU of the bare export, a fresh trial with tracking (default) and
    without, and a cache hit with and without, in ``repeats`` interleaved turns after a
    warm-up.  Returns {"costs": {side: [Cost]}, "ratios": {...: [float]}, "agent_start_cpu",
    "seconds"}; each ratio list has one value per turn."""
    overrides = list(DEFAULT_OVERRIDES if overrides is None else overrides)
    model_args = [o[len("model."):] for o in overrides if o.startswith("model.")]
    t_start = time.perf_counter()
    if not become_subreaper():
        echo("cannot become the child subreaper: detached processes other than the tracking "
             "agent are not counted")
    with tempfile.TemporaryDirectory(prefix="trial_speed_") as tmp:
        cwd = Path(tmp)
        watch = AgentWatch(cwd)
        hit_cache = cwd / "cache_hit"

        def trial(tracking: list[str], turn: int, hit: bool = False) -> list[str]:
            cache = hit_cache if hit else cwd / f"cache_{turn}_{len(tracking)}"
            return tasnet(*overrides, *tracking, f"compiler.cache_dir={cache}",
                          f"hydra.run.dir={cwd}/run_{time.time_ns()}")

        def bare(turn: int) -> Cost:
            return run([sys.executable, "-c", BARE_EXPORT, str(cwd / "bare.onnx"),
                        str(ROOT / "tasnet_sweep/conf/model/convtasnet.yaml"), *model_args],
                       cwd)[0]

        sides = {
            "bare export": bare,
            "fresh": lambda turn: tracked(watch, trial([], turn), cwd)[0],
            "fresh tracking=none": lambda turn: run(trial(["tracking=none"], turn), cwd)[0],
            "hit": lambda turn: tracked(watch, trial([], turn, hit=True), cwd)[0],
            "hit tracking=none": lambda turn: run(trial(["tracking=none"], turn, hit=True),
                                                  cwd)[0],
        }
        try:
            # warm-up: bytecode, the hit's cache, the MLflow store; the agent's start measured
            bare(-1)
            run(trial(["tracking=none"], -1, hit=True), cwd)
            _, agent_start = tracked(watch, trial([], -1, hit=True), cwd)
            costs: dict[str, list[Cost]] = {name: [] for name in sides}
            names = list(sides)
            for turn in range(repeats):
                for name in (names if turn % 2 == 0 else names[::-1]):
                    costs[name].append(sides[name](turn))
                echo(f"  turn {turn + 1}/{repeats}: " + ", ".join(
                    f"{n} {costs[n][-1].cpu:.2f}" for n in names) + " s CPU")
        finally:
            agent = watch.pid()
            watch.stop()
            if agent in children():
                os.waitpid(agent, 0)

    def per_turn(a: str, b: str) -> list[float]:
        return [x.cpu / y.cpu for x, y in zip(costs[a], costs[b])]

    return {
        "costs": costs,
        "ratios": {
            "fresh/bare": per_turn("fresh", "bare export"),
            "fresh none/bare": per_turn("fresh tracking=none", "bare export"),
            "hit/fresh": per_turn("hit", "fresh"),
            "hit none/fresh none": per_turn("hit tracking=none", "fresh tracking=none"),
        },
        "tracking_s": [x.cpu - y.cpu for x, y in zip(costs["fresh"],
                                                       costs["fresh tracking=none"])],
        "tracking_hit_s": [x.cpu - y.cpu for x, y in zip(costs["hit"],
                                                           costs["hit tracking=none"])],
        "agent_start_cpu": agent_start,
        "seconds": time.perf_counter() - t_start,
    }


def report(fig: dict) -> list[str]:
    r, c = fig["ratios"], fig["costs"]
    pct = [100 * x for x in r["hit/fresh"]]
    return [
        f"fresh trial / bare export (CPU)            {spread(r['fresh/bare'])}  (goal <= 1.5x)",
        f"fresh trial tracking=none / bare export    {spread(r['fresh none/bare'])}",
        f"tracking over tracking=none, fresh, CPU s  {spread(fig['tracking_s'])}  "
        "(goal <= 0.3 s)",
        f"tracking over tracking=none, hit, CPU s    {spread(fig['tracking_hit_s'])}",
        f"cache hit / fresh trial (CPU %)            {spread(pct, '{:.1f}')}  (goal <= 10%)",
        f"cache hit / fresh, both tracking=none (%)  "
        f"{spread([100 * x for x in r['hit none/fresh none']], '{:.1f}')}",
        "  absolute CPU s: " + "; ".join(f"{name} {spread([x.cpu for x in costs])}"
                                         for name, costs in c.items()),
        f"  the tracking agent's start (MLflow import, store), once per idle spell: "
        f"{fig['agent_start_cpu']:.2f} s CPU",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="interleaved turns (default 5)")
    parser.add_argument("overrides", nargs="*", default=None,
                        help="config overrides for every trial (default: the paper model)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats {args.repeats}: expected a whole number >= 1")
    fig = measure_trial_speed(args.repeats, args.overrides or None)
    print(f"\nfigures over {args.repeats} interleaved turns (load average at the end: "
          f"{os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs)")
    print("\n".join(report(fig)))
    print(f"\nbenchmark run time {fig['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
