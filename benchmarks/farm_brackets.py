"""The estimate's brackets vs its point verdict as the prior of a real frontier search, on the farm.

Issue M14, item 4: in a two-fidelity search (the estimate's answers as the prior, real
compiles deciding), the configs the estimate is unsure of (``verdict=uncertain``: their
deciding quantity lies inside a recorded bracket) are the first real compiles.  This compares
the real compiles and compile-hours needed to certify the frontier with that prior against
the estimate's point verdicts as the prior, on oracles whose true limit sits anywhere inside
the bracket.

THE ORACLES.  The deciding quantity of the estimate's ``conv`` family is the largest row
buffer of a conv / dw / deconv layer (compile/estimate/brackets.py ``deciding``; resources.py
``row_bytes``: one latent row, W x C bytes at 8 bits).  For the Hailo-friendly ConvTasNet it is
``frames(time_len) x max(n_src x n_filters, bn, hidden)`` with ``frames = (time_len - 16) / 8 +
1`` (encoder kernel 16, stride 8): checked against the ``estimate_report.tsv`` of every
compile of the cached single_context study (``check_quantity``).  On ``search=single_context``
(time_len up to 4000) no config reaches the hailo8 bracket: its widest row is 499 x 512 =
255,488 B, under the bracket's 262,144 B, so the two priors are the same there.  The lattice
here is therefore that search with longer inputs: n_blocks 1-8, bn 16-128, hidden 32-512 (as
single_context) and time_len 1000-16000 (``SPACE``).  The truth of an oracle with limit L: a
config passes iff its conv row buffer is <= L.  Nothing else fails in these oracles: the
single-context totals that fail most single_context configs are left out, since the estimate's
answers for inputs longer than 4000 samples are not cached (this keeps the benchmark free of
exports).  L takes ``POSITIONS`` evenly spaced points strictly inside the profile's bracket
(the middles of equal parts).

THE PRIORS.  point: the estimate's own verdict, pass iff the row buffer's memory units fit
the FITTED cap (hailo8: 2048 B x 128 units x 2 clusters x 0.75 = 384 KiB).  brackets: the
same, but UNCERTAIN where the row buffer lies strictly inside the bracket (FrontierSampler
compiles those first).  A diagnostic third, "unsure=unknown": the bracket's configs carry
no prior answer but are not compiled first (the sampler guesses them from the nearest known
answer like any unknown point).  All run the frontier sampler on the farm of farm.py (same duration
model, ``search.assume_running=auto``); "no prior" is the sampler without one.

    python benchmarks/farm.py --brackets [--quick]
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import farm
import numpy as np

from tasnet_sweep.compile.estimate.brackets import profile_brackets
from tasnet_sweep.compile.estimate.profile import load_profile
from tasnet_sweep.search.lattice import FAIL, PASS, UNCERTAIN, UNKNOWN, Lattice

SPACE = {"model.n_blocks": list(range(1, 9)), "model.bn": [16, 32, 64, 96, 128],
         "model.hidden": [32, 64, 128, 192, 256, 384, 512],
         "model.time_len": [1000, 2000, 3000, 4000, 6000, 8000, 12000, 16000]}
N_FILTERS, N_SRC, KERNEL, STRIDE = 64, 2, 16, 8  # model=hailo_convtasnet model.n_filters=64
POSITIONS = 5


def conv_row_bytes(values: dict) -> int:
    """The conv family's deciding quantity of one config (see the module docstring)."""
    frames = (values["model.time_len"] - KERNEL) // STRIDE + 1
    return frames * max(N_SRC * N_FILTERS, values["model.bn"], values["model.hidden"])


def quantity_grid(lattice: Lattice) -> np.ndarray:
    grid = np.zeros(lattice.shape, dtype=np.int64)
    for point in np.ndindex(*lattice.shape):
        grid[point] = conv_row_bytes(lattice.values(point))
    return grid


def priors(quantity: np.ndarray, hw) -> dict[str, np.ndarray | None]:
    """The estimate's point verdicts and the same with its bracket marked UNCERTAIN."""
    cap_units = hw.layer_max_clusters * hw.memory_units_per_cluster * \
        hw.single_context_utilization
    units = np.ceil(quantity / hw.memory_unit_bytes)
    point = np.where(units <= cap_units, PASS, FAIL).astype(np.int8)
    bracket = profile_brackets(hw)["conv"]
    inside = (quantity > bracket.pass_max) & (quantity < bracket.fail_min)
    return {"no prior": None, "point estimate": point,
            "brackets": np.where(inside, UNCERTAIN, point).astype(np.int8),
            "unsure=unknown": np.where(inside, UNKNOWN, point).astype(np.int8)}


def limits(hw, positions: int = POSITIONS) -> list[int]:
    """``positions`` limits evenly spaced strictly inside the conv bracket: the middles of
    ``positions`` equal parts of it."""
    b = profile_brackets(hw)["conv"]
    step = (b.fail_min - b.pass_max) / positions
    return [int(b.pass_max + step * (k + 0.5)) for k in range(positions)]


def check_quantity(runs_glob: str = "outputs/multirun/*/*/*/estimate_report.tsv") -> str:
    """The formula against the estimate's own reports of the single_context compiles, when
    they are on disk: how many agree."""
    import csv
    import glob

    from omegaconf import OmegaConf

    agree = total = 0
    for report in glob.glob(str(farm.ROOT / runs_glob)):
        cfg_path = report.rsplit("/", 1)[0] + "/config_resolved.yaml"
        try:
            m = OmegaConf.load(cfg_path).model
            with open(report, encoding="utf-8") as f:
                rows = [r for r in csv.DictReader(f, delimiter="\t")
                        if r["cap_rule"] == "layer_max_clusters"]
        except (OSError, KeyError, ValueError):
            continue
        if not rows or m.get("n_filters") != N_FILTERS:
            continue
        total += 1
        values = {"model.time_len": m.time_len, "model.bn": m.bn, "model.hidden": m.hidden}
        agree += max(int(r["row_bytes"]) for r in rows) == conv_row_bytes(values)
    return (f"deciding quantity formula agrees with {agree} of {total} estimate reports on "
            "disk" if total else "no estimate reports on disk to check the formula against")


def compare(workers: Sequence[int] = (1, 16), seeds: Sequence[int] = (0, 1, 2),
            positions: int = POSITIONS) -> list[tuple]:
    """One line per (limit, prior, workers): mean compiles and compile-hours over the seeds."""
    hw = load_profile("hailo8")
    lattice = Lattice.from_spec(SPACE)
    quantity = quantity_grid(lattice)
    grids = priors(quantity, hw)
    inside = int((grids["brackets"] == UNCERTAIN).sum())
    print(f"bracket oracles: {lattice.size} configs ({' x '.join(map(str, lattice.shape))}); "
          f"conv bracket {profile_brackets(hw)['conv'].bounds()} B; {inside} configs inside it "
          f"(uncertain); point-estimate cap {int((grids['point estimate'] == PASS).sum())} pass")
    print(f"  {check_quantity()}")
    print(f"  {'limit B':>8} {'pass':>5} {'point wrong':>11} {'prior':<15} {'workers':>7} "
          f"{'compiles':>8} {'compile h':>9} {'wall h':>7}")
    out, done = [], {}  # limits with the same truth give the same runs: made once
    for limit in limits(hw, positions):
        truth = np.where(quantity <= limit, PASS, FAIL).astype(np.int8)
        wrong = int((grids["point estimate"] != truth).sum())
        for name, prior in grids.items():
            for n in workers:
                key = (truth.tobytes(), name, n)
                if key not in done:
                    done[key] = [_run(lattice, truth, prior, n, seed) for seed in seeds]
                runs = done[key]
                line = (limit, int((truth == PASS).sum()), wrong, name, n,
                        float(np.mean([r.compiles for r in runs])),
                        float(np.mean([r.compile_h for r in runs])),
                        float(np.mean([r.wall_h for r in runs])))
                out.append(line)
                print(f"  {line[0]:>8,} {line[1]:>5} {line[2]:>11} {name:<15} {n:>7} "
                      f"{line[5]:8.1f} {line[6]:9.1f} {line[7]:7.2f}", flush=True)
    return out


def _run(lattice: Lattice, truth: np.ndarray, prior, workers: int, seed: int) -> farm.FarmRun:
    strategy = farm.FrontierStrategy(lattice, seed, prior=prior, assume_running="auto")
    run = farm.simulate(lattice, truth, farm.draw_durations(truth, seed), workers, strategy)
    if not (run.knowledge.status == truth).all():
        raise RuntimeError(f"{workers} workers, seed {seed}: wrong frontier")
    return run


def main(quick: bool = False) -> None:
    t0 = time.perf_counter()
    if quick:
        compare(workers=(1,), seeds=(0,), positions=3)
    else:
        compare()
    print(f"run time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    import sys

    main("--quick" in sys.argv)

