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
                allowed: np.ndarray | None = None) -> list[Point]:
        """Up to ``room`` unknown points to compile next, none of them in ``pending``
        (errored, or held by another worker); ``allowed``: a boolean grid of the points worth
        compiling (None: every point), which a proposer may use to skip the others."""
        ...


class OptunaProposer:
    """``search.sampler=tpe|random|grid``: the study's own Optuna sampler behind the protocol.

    Each round asks the sampler ``room`` times (``FrontierStudy.ask``).  An ask the knowledge
    already answers is told at once, never compiled (evidence ``inferred``, or ``repeat`` for
    a compiled point); an ask of a point drawn earlier in the round, or ``pending``, is pruned;
    the rest are proposed, and each asked trial becomes the claim on its point
    (``FrontierStudy.claim``), so the answer lands in the trial the sampler made.  ``allowed``
    is not used: the sampler draws from the whole grid.
    """

    exhaustive = False

    def __init__(self, study: FrontierStudy):
        self.study = study

    def propose(self, knowledge: Knowledge, room: int, pending: Sequence[Point] = (),
                allowed: np.ndarray | None = None) -> list[Point]:
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


def make_proposer(name: str, lattice: Lattice, study: FrontierStudy, prior=None,
                  seed: int = 0) -> Proposer:
    """The proposer ``search.sampler=name`` runs; ``prior`` orders the frontier sampler's
    queries (see FrontierSampler)."""
    return PROPOSERS[name](lattice, study, prior, seed)
