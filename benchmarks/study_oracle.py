"""A finished frontier study as a benchmark oracle: the answers a real backend gave, replayed.

The analytic stand-ins in frontier_strategies.py are quick and can be re-seeded. A study that
ran to an exact frontier (every configuration compiled or inferred) holds the true answers
of whatever backend it ran on. For the estimate backend on the reference lattice:

    python -m tasnet_sweep -m search=reference_lattice tracking=none   # ~6 min, 2 cores
    python benchmarks/frontier_strategies.py --study reference_lattice

``estimate_study`` runs such a search itself when its study is missing or unfinished (the
benchmark's default estimate lattices: ``search=single_context``, about a minute each).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tasnet_sweep.search.lattice import Lattice  # noqa: E402
from tasnet_sweep.search.study import FrontierStudy, storage_location  # noqa: E402


def _fail(message: str):
    """A bad argument: one line on stderr and exit status 2, as argparse does."""
    print(message, file=sys.stderr)
    raise SystemExit(2)


def search_lattice(search: str) -> Lattice:
    """The lattice of ``conf/search/<search>.yaml`` (its ``search.knobs``)."""
    from omegaconf import OmegaConf

    path = ROOT / "conf" / "search" / f"{search}.yaml"
    if not path.exists():
        names = ", ".join(sorted(p.stem for p in path.parent.glob("*.yaml")))
        _fail(f"--search={search!r} is not in conf/search/: expected one of {names}")
    node = OmegaConf.load(path)
    return Lattice.from_spec(OmegaConf.to_container(node.search.knobs, resolve=True))


def study_location(study: str, storage: str | None = None) -> str:
    """Where ``study`` lives: ``storage`` as given, else outputs/optuna/<study>.journal of this
    checkout (where ``estimate_study`` searches it), whatever the working directory."""
    return storage if storage else str(ROOT / storage_location(None, study))


def cached_study(study: str, search: str) -> tuple[Lattice, np.ndarray] | None:
    """(lattice, status grid) of ``study`` when this checkout holds it finished, else None."""
    location = study_location(study)
    if not Path(location).exists():
        return None
    lattice = search_lattice(search)
    knowledge, _ = FrontierStudy(lattice, study, location).load()
    if knowledge.complete and not knowledge.conflicts:
        return lattice, knowledge.status.copy()
    return None


def estimate_study(study: str, search: str, overrides: list[str]) -> tuple[Lattice, np.ndarray]:
    """The answers of ``search`` on the estimate backend under ``overrides``, kept as study
    ``study`` in this checkout's outputs/optuna/: searched first (resuming) unless that study is
    finished."""
    cached = cached_study(study, search)
    if cached is not None:
        return cached
    command = [sys.executable, "-m", "tasnet_sweep", "-m", f"search={search}", "tracking=none",
               "compiler=estimate", f"search.study_name={study}", *overrides]
    print(f"searching {study} on the estimate backend first: {' '.join(command[2:])}",
          flush=True)
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    if done.returncode:
        last = done.stderr.strip().splitlines()[-1:] or ["no message"]
        _fail(f"the estimate search for {study} failed (exit {done.returncode}): {last[0]}")
    return study_truth(study, search)


def study_truth(study: str, search: str | None = None, storage: str | None = None,
                flag: str = "--study") -> tuple[Lattice, np.ndarray]:
    """(lattice, status grid) of a study whose frontier is exact; a clear exit otherwise."""
    lattice = search_lattice(search or study)
    location = study_location(study, storage)
    if "://" not in location and not Path(location).exists():
        _fail(f"{flag}={study!r}: no study storage at {location}; run the search "
                         f"first: python -m tasnet_sweep -m search={search or study}")
    knowledge, _ = FrontierStudy(lattice, study, location).load()
    if not knowledge.complete:
        _fail(f"{flag}={study!r} has {knowledge.unknown} of {lattice.size} "
                         "configurations unanswered: run the search to the end first")
    if knowledge.conflicts:
        _fail(f"{flag}={study!r} has {len(knowledge.conflicts)} answers that break "
                         "monotonicity: its grid is no exact oracle")
    return lattice, knowledge.status.copy()
