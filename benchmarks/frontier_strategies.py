"""How many compiles each search strategy needs to pin down the EXACT frontier (prints figures).

The reference lattice is answered by the estimate backend: ``search=single_context``, 4,200
untiled configurations (n_blocks 1-8 x n_repeats 1-3 x 5 bottlenecks x 7 hidden widths x 5 input
lengths), each one Hailo-8 context, so every knob matters.  Its answers are searched once
(about a minute) and kept as studies in outputs/optuna/.  The same lattice at utilization
ceilings 0.6 and 0.9 stands for a real compiler that is stricter or looser than the estimate
assumes, with the default 0.75 as the partly wrong prior.  Analytic stand-ins follow on a
lattice of the same shape (tile width for input length): quick, re-seedable, monotone by
construction (checked below).  The lower bound is the certificate: maximal passing + minimal
failing configurations, each of which any strategy has to compile.

    python benchmarks/frontier_strategies.py [--seeds 3] [--tpe-cap 800] [--tpe-seeds 1]
        [--no-estimate] [--no-stand-ins]
        [--study NAME]   (replay a finished study's real answers instead: see study_oracle.py)
    python benchmarks/frontier_strategies.py --quick   (a few minutes: see QUICK)

The full mode (the defaults) takes much longer (``FULL_MODE`` says how long): three seeds,
TPE on every lattice, and three estimate studies searched first when missing.
``main(argv)`` returns the run's wall-clock seconds, for a benchmark that times this one.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]  # the package, and study_oracle beside this file

from tasnet_sweep.search.lattice import (  # noqa: E402
    PASS,
    Knowledge,
    Lattice,
    certificate,
    is_monotone,
    truth_grid,
)
from tasnet_sweep.search.sampler import FrontierSampler, run_search  # noqa: E402

SPACE = {
    "model.n_blocks": list(range(1, 9)),
    "model.n_repeats": [1, 2, 3],
    "model.bn": [32, 64, 96, 128, 192],
    "model.hidden": [64, 128, 192, 256, 384, 512, 768],
    "tiling.tile_width": [64, 128, 256, 512, 1024],
}


def allocator_stand_in(v: dict, contexts: int = 1, buffer_kib: int = 512) -> bool:
    """Pass when the blocks' compute units fit the contexts and the widest tile buffer fits."""
    x, r, b, h, t = (v["model.n_blocks"], v["model.n_repeats"], v["model.bn"],
                     v["model.hidden"], v["tiling.tile_width"])
    per_block = 2 * math.ceil(b * h / 16384) + math.ceil(h / 256)  # two 1x1 convs + depthwise
    return x * r * per_block <= 16 * contexts and h * t * 2 <= buffer_kib * 1024


def smooth_stand_in(v: dict, budget: float = 50) -> bool:
    """A second shape of frontier: a continuous cost with no plateaus."""
    x, r, b, h, t = (v["model.n_blocks"], v["model.n_repeats"], v["model.bn"],
                     v["model.hidden"], v["tiling.tile_width"])
    return x * r * (b * h / 4096 + h * t / 32768) + t * b / 16384 <= budget


def product_constraints_stand_in(seed: int, loosen: float = 1.0):
    """A held-out family (not used to pick the strategy): pass when each of 2-3 random
    constraints holds, a constraint being a product of 2-4 knobs rounded up to random units
    (``prod ceil(value / unit)``) under a cap that passes 35-80 % of the grid.  ``loosen``
    scales the caps (the wrong prior)."""
    rng = np.random.default_rng(1000 + seed)
    lattice = Lattice.from_spec(SPACE)
    names = lattice.names
    constraints = []
    for _ in range(int(rng.integers(2, 4))):
        knobs = rng.choice(len(names), int(rng.integers(2, 5)), replace=False)
        units = [float(rng.choice(lattice.knobs[a].values[:max(1, lattice.shape[a] // 2)]))
                 for a in knobs]
        constraints.append(list(zip((names[a] for a in knobs), units)))

    def cost(v, terms):
        return math.prod(math.ceil(v[name] / unit) for name, unit in terms)

    every = [lattice.values(p) for p in lattice.points()]
    caps = []
    for terms in constraints:
        costs = sorted(cost(v, terms) for v in every)
        caps.append(costs[int(rng.uniform(0.35, 0.8) * len(costs))])
    return lambda v: all(cost(v, t) <= loosen * cap for t, cap in zip(constraints, caps))


def grid_order(lattice, truth) -> int:
    """Every point in grid order, skipping what inference already answers."""
    k = Knowledge(lattice)
    calls = 0
    for p in lattice.points():
        if k.outcome(p) is None:
            k.record(p, truth[p] == PASS)
            calls += 1
    return calls


def random_order(lattice, truth, seed) -> int:
    k = Knowledge(lattice)
    rng = np.random.default_rng(seed)
    calls = 0
    for flat in rng.permutation(lattice.size):
        p = tuple(int(i) for i in np.unravel_index(int(flat), lattice.shape))
        if k.outcome(p) is None:
            k.record(p, truth[p] == PASS)
            calls += 1
    return calls


def optuna_tpe(lattice, truth, seed, cap: int) -> tuple[int, int]:
    """TPE with feasibility as an Optuna constraint; asks that land on an answered point are
    told the known answer without a compile.  Returns (compiles, unknown left at the cap)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from optuna.distributions import CategoricalDistribution

    dists = {k.name: CategoricalDistribution(list(k.values)) for k in lattice.knobs}
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    k = Knowledge(lattice)
    calls = asks = 0
    while not k.complete and calls < cap and asks < 4 * cap:
        trial = study.ask(dists)
        asks += 1
        p = lattice.point_of(trial.params)
        known = k.outcome(p)
        if known is None:
            known = bool(truth[p] == PASS)
            k.record(p, known)
            calls += 1
        trial.set_constraint("compile_fails", 0.0 if known else 1.0)
        study.tell(trial, lattice.rank(p))
    return calls, k.unknown


def ours(lattice, truth, seed, prior=None) -> int:
    k, calls = run_search(lattice, lambda p: bool(truth[p] == PASS),
                          FrontierSampler(lattice, prior=prior, seed=seed))
    assert (k.status == truth).all(), "the frontier sampler stopped before the exact frontier"
    return calls


def params_stand_in(lattice) -> np.ndarray:
    """Parameters of the 1x1 and depthwise convs of the separator blocks, per point."""
    v = {k.name: np.array(k.values, dtype=float)[idx]
         for k, idx in zip(lattice.knobs, np.indices(lattice.shape))}
    x, r, b, h = (v["model.n_blocks"], v["model.n_repeats"], v["model.bn"], v["model.hidden"])
    return (x * r * (2 * b * h + 3 * h)).astype(np.int64)


def ours_objective(lattice, truth, seed, objective) -> int:
    """Compiles until the largest pass by ``objective`` is certified (search.objective)."""
    from tasnet_sweep.search.driver import best_pass, could_beat

    k = Knowledge(lattice)
    sampler = FrontierSampler(lattice, seed=seed)
    calls = 0
    while (worth := could_beat(k.status, objective)).any():
        for p in sampler.propose(k, 1, allowed=worth):
            k.record(p, bool(truth[p] == PASS))
            calls += 1
    assert best_pass(k.status, objective)[1] == objective[truth == PASS].max()
    return calls


#: the full mode's run time (benchmarks/frontier_strategies.md: how it was measured)
FULL_MODE = ("The full mode (the defaults) takes about 20 min on a busy 2-core machine, plus "
             "about 10 min to search each of the three estimate studies outputs/optuna/ does "
             "not hold yet (measured: 39 min with two of them to search).")
#: --quick: one seed, no TPE, the plateau stand-in and one held-out function, and the estimate
#: lattice only when this checkout already holds its study (never searched in quick mode)
QUICK = {"seeds": 1, "tpe_seeds": 0, "held_out": 1}


@contextlib.contextmanager
def timed(what: str):
    """Print how long a section took, wall clock and this process's CPU (the same on an idle
    machine; the wall clock alone misleads on a busy one)."""
    t0, c0 = time.perf_counter(), time.process_time()
    yield
    print(f"  [{what}: {time.perf_counter() - t0:.0f} s, {time.process_time() - c0:.0f} s CPU]",
          flush=True)


def report(name: str, counts, bound: int, note: str = "") -> None:
    mean = float(np.mean(counts))
    print(f"  {name:<34} {mean:8.1f}  {mean / bound:5.2f}x  {list(counts)} {note}")


def bench(title: str, passes, seeds: int, tpe_cap: int, tpe_seeds: int,
          wrong_prior) -> None:
    lattice = Lattice.from_spec(SPACE)
    truth = truth_grid(lattice, passes)
    if not is_monotone(truth):
        raise SystemExit(f"{title}: the oracle is not monotone")
    with timed(title):
        bench_grid(title, lattice, truth, seeds, tpe_cap, tpe_seeds,
                   truth_grid(lattice, wrong_prior))


def bench_grid(title: str, lattice, truth, seeds: int, tpe_cap: int, tpe_seeds: int,
               prior=None) -> None:
    """Every strategy on one answer grid; ``prior``: a partly wrong grid for the prior line."""
    maximal, minimal = certificate(lattice, truth)
    bound = len(maximal) + len(minimal)
    print(f"\n{title}: {lattice.size} configs, {int((truth == PASS).sum())} pass; certificate "
          f"{bound} = {len(maximal)} maximal passing + {len(minimal)} minimal failing")
    print(f"  {'strategy':<34} {'compiles':>8}  ratio  per seed")
    report("grid, no inference (basic sweeper)", [lattice.size], bound)
    report("grid order + inference", [grid_order(lattice, truth)], bound)
    report("random order + inference", [random_order(lattice, truth, s) for s in range(seeds)],
           bound)
    t0 = time.perf_counter()
    tpe = [optuna_tpe(lattice, truth, s, tpe_cap) for s in range(tpe_seeds)]
    for compiles, left in tpe:
        if left:
            print(f"  {'optuna TPE + constraint':<34} {'>' + str(compiles):>8}  "
                  f">{compiles / bound:4.2f}x  stopped with {left} configs unknown "
                  f"({4 * tpe_cap} asks)")
        else:
            report("optuna TPE + constraint", [compiles], bound)
    print(f"  ({time.perf_counter() - t0:.0f}s for TPE)")
    t0 = time.perf_counter()
    report("frontier sampler (ours)", [ours(lattice, truth, s) for s in range(seeds)], bound,
           f"({time.perf_counter() - t0:.1f}s)")
    report("ours, exact prior", [ours(lattice, truth, s, prior=truth) for s in range(seeds)],
           bound)
    if "model.hidden" in lattice.names and "model.bn" in lattice.names and \
            "model.n_blocks" in lattice.names and "model.n_repeats" in lattice.names:
        report("ours, search.objective=params", [ours_objective(lattice, truth, s,
                                                                params_stand_in(lattice))
                                                 for s in range(seeds)], bound,
               "(certifies the largest config only)")
    if prior is None:
        return
    wrong = int((prior != truth).sum())
    report("ours, prior wrong in places", [ours(lattice, truth, s, prior=prior)
                                           for s in range(seeds)], bound,
           f"(prior wrong on {wrong} configs; frontier exact)")


# (study name, overrides) of the estimate-backend reference lattice: the estimate as it is, and
# at a stricter and a looser utilization ceiling (a real compiler the estimate is wrong about)
ESTIMATE_SEARCH = "single_context"
ESTIMATE_STUDIES = {"default": ("single_context", []),
                    "strict": ("single_context_u0.6", ["compiler.max_utilization=0.6"]),
                    "loose": ("single_context_u0.9", ["compiler.max_utilization=0.9"])}


def bench_estimate(args) -> None:
    """The estimate backend's reference lattice; then the estimate (ceiling 0.75) as the prior
    of a compiler whose ceiling is 0.6 or 0.9.  Quick mode: the first alone, and only when
    this checkout already holds its study."""
    from study_oracle import cached_study, estimate_study

    if args.quick:
        name = ESTIMATE_STUDIES["default"][0]
        grids = {"default": cached_study(name, ESTIMATE_SEARCH)}
        if grids["default"] is None:
            print(f"\n(quick mode: the estimate lattice is skipped, its study {name} is not in "
                  "outputs/optuna/ yet; the full mode searches it first)")
            return
    else:
        with timed("estimate studies (searched when missing)"):
            grids = {key: estimate_study(name, ESTIMATE_SEARCH, overrides)
                     for key, (name, overrides) in ESTIMATE_STUDIES.items()}
    lattice, estimate = grids["default"]
    title = "estimate backend, search=single_context (reference lattice)"
    with timed(title):
        bench_grid(title, lattice, estimate, args.seeds, args.tpe_cap, args.tpe_seeds)
    for key, ceiling in (("strict", "0.6"), ("loose", "0.9")):
        if key not in grids:
            continue
        title = f"compiler at ceiling {ceiling}, estimate at 0.75 as the prior"
        with timed(title):
            bench_grid(title, lattice, grids[key][1], args.seeds, args.tpe_cap, 0,
                       prior=estimate)


def main(argv: list[str] | None = None) -> float:
    """Run the benchmark (``argv``: its command line); returns its wall-clock seconds."""
    t0, c0 = time.perf_counter(), time.process_time()
    args = parse_args(argv)
    run(args)
    took = time.perf_counter() - t0
    mode = "quick mode" if args.quick else "this run"
    cpu = time.process_time() - c0
    print(f"\n{mode} took {took:.0f} s ({cpu:.0f} s CPU). {FULL_MODE}")
    return took


def parse_args(argv: list[str] | None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--tpe-cap", type=int, default=800, help="stop TPE after this many compiles")
    ap.add_argument("--tpe-seeds", type=int, default=1, help="TPE runs (slow: minutes each)")
    ap.add_argument("--held-out", type=int, default=3,
                    help="functions of the held-out product-constraint family to run")
    ap.add_argument("--study", help="replay a finished frontier study's answers instead of the "
                    "stand-ins, e.g. reference_lattice after "
                    "`python -m tasnet_sweep -m search=reference_lattice`")
    ap.add_argument("--search", help="the conf/search/ config the study ran (default: --study)")
    ap.add_argument("--storage",
                    help="the study's storage (default: outputs/optuna/<study>.journal)")
    ap.add_argument("--prior-study", help="with --study: another finished study over the same "
                    "knobs (e.g. the estimate at another utilization ceiling) as the partly "
                    "wrong prior")
    ap.add_argument("--no-estimate", action="store_true",
                    help="skip the estimate backend's reference lattice")
    ap.add_argument("--no-stand-ins", action="store_true", help="skip the analytic stand-ins")
    ap.add_argument("--quick", action="store_true",
                    help="a few minutes: 1 seed, no TPE, the plateau stand-in and held-out #0, "
                    "and the estimate lattice only if its study is already here (never "
                    "searched); sets --seeds, --tpe-seeds and --held-out")
    args = ap.parse_args(argv)
    if args.prior_study and not args.study:
        ap.error("--prior-study needs --study: the study whose answers it is the prior of")
    if args.quick:
        vars(args).update(QUICK)
    return args


def run(args) -> None:
    if args.study:
        from study_oracle import study_truth

        lattice, truth = study_truth(args.study, args.search, args.storage)
        prior = None
        if args.prior_study:
            _, prior = study_truth(args.prior_study, args.search or args.study,
                                   flag="--prior-study")
        title = f"study {args.study} (replayed)" + (
            f", prior: study {args.prior_study}" if prior is not None else "")
        bench_grid(title, lattice, truth, args.seeds, args.tpe_cap, args.tpe_seeds, prior)
        return
    if not args.no_estimate:
        bench_estimate(args)
    if args.no_stand_ins:
        return
    bench("allocator stand-in (plateaus)", allocator_stand_in, args.seeds, args.tpe_cap,
          args.tpe_seeds,
          lambda v: allocator_stand_in(v, buffer_kib=768))
    if not args.quick:  # the slowest lattice (its certificate is 437 configurations)
        bench("smooth stand-in", smooth_stand_in, args.seeds, args.tpe_cap, args.tpe_seeds,
              lambda v: smooth_stand_in(v, budget=45))
    for seed in range(args.held_out):
        bench(f"held-out product constraints #{seed}", product_constraints_stand_in(seed),
              args.seeds, args.tpe_cap, args.tpe_seeds,
              product_constraints_stand_in(seed, loosen=1.25))


if __name__ == "__main__":
    main()
