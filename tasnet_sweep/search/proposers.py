"""What the search loop asks for the next configurations to compile: one protocol, ``Proposer``,
with the frontier sampler (sampler.py) and Optuna's samplers (tpe / random / grid, asked through
the study) behind it, and ``PROPOSERS``, the one registry of ``search.sampler`` names.

driver.run takes a name from the registry or any object with the protocol's two members; its
one step claims every proposed point in the study, compiles it and records the answer, whichever
proposer made the proposal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .cost import seconds_of
from .lattice import Knowledge, Lattice
from .sampler import FrontierSampler

if TYPE_CHECKING:
    from .study import FrontierStudy

Point = tuple[int, ...]


class Proposer(Protocol):
    """Proposes the next unknown configurations to compile (``FrontierSampler``,
    ``OptunaProposer``, or any object with these two members)."""

    #: True: an empty proposal means no point is left to propose, and the run stops (or waits
    #: for the points other workers hold); False: a round may come back empty because every
    #: point it drew was answered at once, and the run asks again (within its ask budget)
    exhaustive: bool

    def propose(self, knowledge: Knowledge, room: int, pending: Sequence[Point] = (),
                allowed: np.ndarray | None = None,
                running: Sequence[Point] = ()) -> list[Point]:
        """Up to ``room`` unknown points to compile next, none of them in ``pending``
        (errored, or held by another worker) or ``running`` (claimed and being compiled right
        now, by this or other workers); ``allowed``: a boolean grid of the points worth
        compiling (None: every point), which a proposer may use to skip the others."""
        ...


class OptunaProposer:
    """``search.sampler=tpe|random|grid``: the study's own Optuna sampler behind the protocol.

    Each round asks the sampler ``room`` times (``FrontierStudy.ask``).  An ask the knowledge
    already answers is told at once, never compiled (evidence ``inferred``, or ``repeat`` for
    a compiled point); an ask of a point drawn earlier in the round, or ``pending``, is pruned;
    the rest are proposed, and each asked trial becomes the claim on its point
    (``FrontierStudy.claim``), so the answer lands in the trial the sampler made.  ``allowed``
    and ``running`` are not used: the sampler draws from the whole grid, and a draw of a
    running point loses its claim (``FrontierStudy.claim``) and is proposed around.
    """

    exhaustive = False

    def __init__(self, study: FrontierStudy):
        self.study = study

    def propose(self, knowledge: Knowledge, room: int, pending: Sequence[Point] = (),
                allowed: np.ndarray | None = None,
                running: Sequence[Point] = ()) -> list[Point]:
        chosen: list[Point] = []
        for _ in range(room):
            trial, point = self.study.ask()
            known = knowledge.outcome(point)
            if known is not None:
                evidence = "inferred" if knowledge.evidence(point) == "inferred" else "repeat"
                self.study.tell(trial, point, known, {"verdict": "pass" if known else "fail",
                                                      "evidence": evidence, "compiled": False})
            elif point in chosen or point in pending:
                self.study.prune(trial)
            else:
                chosen.append(point)
        return chosen


def _frontier(lattice: Lattice, study: FrontierStudy, prior, seed: int) -> Proposer:
    return FrontierSampler(lattice, prior=prior, seed=seed)


def _optuna(lattice: Lattice, study: FrontierStudy, prior, seed: int) -> Proposer:
    """The study was opened with the sampler's name (``FrontierStudy(sampler=...)``), which
    chose its Optuna sampler and seed."""
    return OptunaProposer(study)


#: ``search.sampler`` -> the factory ``(lattice, study, prior, seed)`` of its proposer; the
#: names are ``config.SEARCH_SAMPLERS``, which the config check holds a sampler to
PROPOSERS: dict[str, Callable[..., Proposer]] = {
    "frontier": _frontier, "tpe": _optuna, "random": _optuna, "grid": _optuna}


#: ``search.assume_running=auto`` plans running compiles as failed until the study's timed
#: compiles tell otherwise: with at least MIN_TIMED timed compiles of each verdict, it keeps
#: doing so only while fails take at least FAILS_LONGER x as long as passes (median against
#: median).  benchmarks/farm.md: assuming fails pays from 2x on; with fails as quick as passes
#: it costs compile-hours, except at the start, before any answer (so the start assumes them).
FAILS_LONGER, MIN_TIMED = 2.0, 3


def timed(knowledge: Knowledge, records: dict) -> dict[bool, list[float]]:
    """The recorded compile times (``compile_seconds``) of the compiled points, by outcome
    (True: passed)."""
    times: dict[bool, list[float]] = {True: [], False: []}
    for point, passed in knowledge.observed.items():
        seconds = seconds_of((records.get(point) or {}).get("compile_seconds"))
        if seconds is not None:
            times[passed].append(seconds)
    return times


def fails_take_longer(knowledge: Knowledge, records: dict) -> bool | None:
    """Whether the recorded compile times show fails clearly longer than passes (see
    FAILS_LONGER); None while fewer than MIN_TIMED of either verdict are timed."""
    times = timed(knowledge, records)
    if min(len(t) for t in times.values()) < MIN_TIMED:
        return None
    return float(np.median(times[False])) >= FAILS_LONGER * float(np.median(times[True]))


def assume_running(setting: str, knowledge: Knowledge, records: dict) -> bool:
    """``search.assume_running`` now: fail -> True, block -> False, auto -> what the
    recorded times say (``fails_take_longer``), True until they can tell."""
    if setting == "auto":
        return fails_take_longer(knowledge, records) is not False
    return setting == "fail"


def make_proposer(name: str, lattice: Lattice, study: FrontierStudy, prior=None,
                  seed: int = 0) -> Proposer:
    """The proposer ``search.sampler=name`` runs; ``prior`` orders the frontier sampler's
    queries (see FrontierSampler)."""
    return PROPOSERS[name](lattice, study, prior, seed)
