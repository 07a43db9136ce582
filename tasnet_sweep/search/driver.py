"""The search loop, independent of Hydra: propose -> claim -> launch a batch -> record -> repeat.

One step serves every proposer (proposers.py: the frontier sampler, Optuna's samplers, or any
object with the protocol): its proposals are claimed in the study, so workers sharing a study
never compile one point twice, and launched under the claims' heartbeat.  ``launch(points)``
compiles a batch and returns one job result per point (the dict ``tasnet_sweep.app`` returns, or
None when the job crashed).  Points the study already answers are never launched: a resumed
search starts from the study's compiled trials, and monotone inference is recorded as
``evidence=inferred``, never as a compile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..progress import bar as progress_bar
from .lattice import PASS, UNCERTAIN, UNKNOWN, Knowledge, Lattice
from .proposers import Proposer, assume_running, make_proposer
from .study import (
    CLAIM_TTL_S,
    FrontierStudy,
    is_uncertain,
    job_outcome,
    open_storage,
    storage_location,
)

log = logging.getLogger(__name__)
CLAIM_POLL_S = 1.0  # how often a worker looks again when every proposal is held by others
Launch = Callable[[list[tuple[int, ...]]], list[dict | None]]


@dataclass
class SearchRun:
    knowledge: Knowledge
    records: dict
    compiled_before: int  # compiles already in the study when this run started
    compiled_now: int = 0  # compiles launched by this run
    errors: list = field(default_factory=list)  # points whose job said nothing about size
    #: points the estimate answered ``uncertain``: no evidence, and not asked again
    uncertain: list = field(default_factory=list)
    inferred_recorded: int = 0
    objective: np.ndarray | None = None  # search.objective of every point (sizes.py), or None
    assume_running: str = "auto"  # search.assume_running: auto | fail | block
    running_plan_told: bool | None = None  # the running-compile plan last logged

    @property
    def worth_compiling(self) -> np.ndarray | None:
        """Unknown points that could still beat the best known pass on the objective."""
        return None if self.objective is None else could_beat(self.knowledge.status,
                                                              self.objective)

    @property
    def done(self) -> bool:
        """The frontier is exact, or (with an objective) its largest pass is certified."""
        if self.knowledge.complete:
            return True
        return self.objective is not None and not self.worth_compiling.any()


def best_pass(status: np.ndarray, objective: np.ndarray):
    """(point, value) of the known passing config (compiled or inferred) largest on the
    objective; None when nothing is known to pass."""
    passing = status == PASS
    if not passing.any():
        return None
    flat = int(np.argmax(np.where(passing, objective, -1)))
    point = tuple(int(i) for i in np.unravel_index(flat, status.shape))
    return point, int(objective[point])


def could_beat(status: np.ndarray, objective: np.ndarray) -> np.ndarray:
    """Unknown points whose objective exceeds every known pass's: only they can change the
    answer to "which is the largest config that compiles"."""
    best = best_pass(status, objective)
    unknown = status == UNKNOWN
    return unknown if best is None else unknown & (objective > best[1])


def run(lattice: Lattice, study: FrontierStudy, launch: Launch,
        sampler: str | Proposer = "frontier", batch_size: int = 1, max_trials: int | None = None,
        seed: int = 0, record_inferred: bool = True, prior=None, objective=None,
        assume_running: str = "auto", budget_from: int | None = None) -> SearchRun:
    """Search until the frontier is exact (or ``max_trials`` compiles); ``sampler``: a
    ``search.sampler`` name (``proposers.PROPOSERS``; the config check holds it and
    ``batch_size`` to valid values) or a ``Proposer``; ``prior``: a status grid ordering the
    frontier sampler's queries (see FrontierSampler); ``objective``: the params or MACs of
    every point -- then stop once the largest passing point by it is certified, and compile
    only points that could still beat it; ``assume_running``: ``search.assume_running``, how
    the frontier sampler plans around other workers' running compiles; ``budget_from``
    (search workers): ``max_trials`` counts the whole study's compiles, every worker's,
    running or done, beyond the ``budget_from`` it had when the sweep started."""
    proposer = make_proposer(sampler, lattice, study, prior=prior, seed=seed) \
        if isinstance(sampler, str) else sampler
    knowledge, records = study.load()
    state = SearchRun(knowledge, records, compiled_before=len(knowledge.observed),
                      objective=objective, uncertain=sorted(study.uncertain_points()),
                      assume_running=assume_running)
    log.info("study %s: %d compiled, %d of %d configurations answered", study.study_name,
             state.compiled_before, lattice.size - knowledge.unknown, lattice.size)
    asks = 0
    with progress_bar(lattice.size, f"search {study.study_name}", unit="config") as shown:
        _show(shown, state, lattice)
        while not state.done:
            room = batch_size if max_trials is None else \
                min(batch_size, max_trials - _spent(state, study, budget_from))
            if room <= 0 or asks > 20 * lattice.size:
                break
            budget = None if max_trials is None or budget_from is None else \
                (max_trials, budget_from)
            launched = _step(state, study, proposer, launch, room, budget)
            asks += max(launched, 1)
            _show(shown, state, lattice)
            if launched < 0:
                break
    if record_inferred:
        state.inferred_recorded = study.record_inferred(knowledge)
    return state


def _show(shown, state: SearchRun, lattice: Lattice) -> None:
    """The bar: answered of N, with compiled / inferred / unknown and the best pass so far."""
    k = state.knowledge
    answered = lattice.size - k.unknown
    passes = [(r.get("params") or 0, p) for p, r in state.records.items()
              if r.get("verdict") == "pass"]
    best = max(passes)[1] if passes else None
    shown.set_postfix_str(
        f"compiled {state.compiled_before + state.compiled_now}, inferred "
        f"{answered - len(k.observed)}, unknown {k.unknown}"
        + (f", best pass {' '.join(f'{n}={v}' for n, v in lattice.values(best).items())}"
           if best is not None else ""), refresh=False)
    shown.update(answered - shown.n)  # redraws the bar with the figures above


def prior_from_study(lattice: Lattice, study_name: str, storage: str | None = None):
    """The knowledge of another study over the same knobs, as a prior status grid: PASS and
    FAIL where it answered (compiled or inferred), UNCERTAIN where its estimate was unsure
    (the frontier sampler compiles those first), UNKNOWN elsewhere."""
    import optuna

    location = storage_location(storage, study_name)
    missing = ValueError(f"search.prior_study={study_name!r} is not in {location}: expected "
                         "the name of a study run before (search.prior_storage for another "
                         "storage)")
    if "://" not in location and not Path(location).exists():
        raise missing
    try:
        optuna.load_study(study_name=study_name, storage=open_storage(location))
    except KeyError:
        raise missing from None
    prior_study = FrontierStudy(lattice, study_name, location)
    knowledge, _ = prior_study.load()
    uncertain = prior_study.uncertain_points()
    if not knowledge.observed and not uncertain:
        raise ValueError(f"search.prior_study={study_name!r} has no compiled configurations of "
                         "this search space: expected a study run over the same knobs")
    status = knowledge.status.copy()
    for point in uncertain:  # the estimate was unsure there: a real compile decides first
        if status[point] == UNKNOWN:
            status[point] = UNCERTAIN
    return status


def _refresh(state: SearchRun, study: FrontierStudy) -> None:
    """Take in what other workers on the same study compiled since this run last looked (the
    study reads only trials it has not seen finished: answers.py)."""
    records, uncertain = study.answers()
    for point, record in records.items():
        if point not in state.knowledge.observed:
            state.knowledge.record(point, record.get("verdict") == "pass")
            state.records[point] = dict(record)
    state.uncertain += sorted(uncertain - set(state.uncertain))


def compiled_answers(knowledge: Knowledge, uncertain) -> int:
    """How many configs a compile answered: pass, fail, or the estimate unsure."""
    return len(knowledge.observed) + len(set(uncertain))


def _spent(state: SearchRun, study: FrontierStudy, budget_from: int | None) -> int:
    """Compiles counted against ``max_trials``: this run's, or with ``budget_from`` the
    study's since then, the other workers' running ones included."""
    if budget_from is None:
        return state.compiled_now
    _refresh(state, study)
    return compiled_answers(state.knowledge, state.uncertain) - budget_from + \
        len(study.live_claims(CLAIM_TTL_S))


def _within_budget(state: SearchRun, study: FrontierStudy, claimed: list,
                   budget: tuple[int, int]) -> list:
    """The claims of ``claimed`` the study-wide ``max_trials`` leaves room for; the rest are
    withdrawn.  Workers that claimed together all see the same live claims, and the lowest
    trial numbers keep theirs, so the budget is not overrun by workers racing for its last
    compiles."""
    max_trials, budget_from = budget
    _refresh(state, study)
    room = max_trials - (compiled_answers(state.knowledge, state.uncertain) - budget_from)
    keep = {t.number for t in study.live_claims(CLAIM_TTL_S)[:max(room, 0)]}
    kept = []
    for point, claim in claimed:
        if claim.number in keep:
            kept.append((point, claim))
        else:
            study.withdraw_claim(claim, f"search.max_trials={max_trials} reached by the "
                                        "study's workers")
    return kept


def _step(state: SearchRun, study: FrontierStudy, proposer: Proposer, launch: Launch,
          room: int, budget: tuple[int, int] | None = None) -> int:
    """Propose, claim (other workers may be on the same study), launch what was claimed,
    record.  Returns how many points were launched: 0 when none this time, -1 when the run
    cannot go on.  ``budget``: (max_trials, budget_from) when it counts the whole study."""
    _refresh(state, study)
    if state.done:
        return 0
    claimed = _claim_proposals(state, study, proposer, room)
    if isinstance(claimed, int):
        return claimed
    if budget is not None:
        claimed = _within_budget(state, study, claimed, budget)
        if not claimed:
            return 0
    points = [p for p, _ in claimed]
    with study.heartbeat([c for _, c in claimed]):
        results = launch(points)
    state.compiled_now += len(points)
    for (point, claim), result in zip(claimed, results):
        study.record_claimed(claim, point, result)
        _record_known(state, study, point, result)
    return len(points)


def _claim_proposals(state: SearchRun, study: FrontierStudy, proposer: Proposer,
                     room: int) -> list | int:
    """[(point, claim)] of the proposals this worker claimed, or, with none claimed, what the
    step returns: 0 (ask again) or -1 (nothing left to propose).  Points another worker holds
    are proposed around; when nothing is left to propose but other workers' running compiles
    (or every proposal is held), wait for their answers: they may leave more to compile."""
    held: list = []  # points found claimed when this worker tried to claim them
    collisions = 0
    while collisions < 50:
        running = running_claims(study)
        _plan_running(state, proposer, running)
        batch = proposer.propose(state.knowledge, room,
                                 pending=[*state.errors, *state.uncertain, *held],
                                 allowed=state.worth_compiling, running=running)
        if not batch:
            # an exhaustive proposer has nothing left but what others run: wait for them
            if not held and not (running and proposer.exhaustive):
                return -1 if proposer.exhaustive else 0
            time.sleep(CLAIM_POLL_S)  # wait for the other workers' answers
            _refresh(state, study)
            if state.done:
                return 0
            held = []
            continue
        claims = [(p, study.claim(p)) for p in batch]
        held += [p for p, c in claims if c is None]
        claimed = [(p, c) for p, c in claims if c is not None]
        if claimed:
            return claimed
        collisions += 1
    return -1


def running_claims(study: FrontierStudy) -> list:
    """The points other workers hold live claims on right now (claimed, being compiled).
    This worker holds none while it proposes: its launches return before it proposes again."""
    points = (study.lattice.point_of(t.params) for t in study.live_claims(CLAIM_TTL_S))
    return [p for p in points if p is not None]


def _plan_running(state: SearchRun, proposer: Proposer, running: list) -> None:
    """Tell a proposer that plans around running compiles (``assume_running``, the frontier
    sampler) whether to assume they fail, by ``search.assume_running`` and the times so far;
    logged when ``auto`` has turned it on or off while other workers' compiles run (a lone
    worker never has any, so it is not told)."""
    if not hasattr(proposer, "assume_running"):
        return
    if state.running_plan_told is None:
        state.running_plan_told = proposer.assume_running
    now = assume_running(state.assume_running, state.knowledge, state.records)
    if running and now != state.running_plan_told and state.assume_running == "auto":
        log.info("search.assume_running=auto: other workers' running compiles are %s",
                 "assumed to fail" if now else "blocked (recorded fails do not take clearly "
                 "longer than passes)")
        state.running_plan_told = now
    proposer.assume_running = now


def _record_known(state: SearchRun, study: FrontierStudy, point, result) -> bool | None:
    """Take in a job's answer, whose trial ``record_claimed`` completed (or released)."""
    passed = job_outcome(result)
    if is_uncertain(result):
        state.uncertain.append(point)
        log.info("%s: the estimate is unsure (inside a recorded bracket); no evidence either "
                 "way, left to a real compile", study.lattice.values(point))
        return None
    if passed is None:
        state.errors.append(point)
        log.warning("job for %s said nothing about size (%s); not used as evidence",
                    study.lattice.values(point), (result or {}).get("failure_family", "crashed"))
        return None
    state.knowledge.record(point, passed)
    state.records[point] = dict(result)
    return passed
