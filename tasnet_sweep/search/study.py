"""The search's memory: an Optuna study in a storage URL, resumable and shareable.

Every answered configuration is one trial whose params are the knob values, written so that any
Optuna client reads it right (``study.best_trials``, optuna-dashboard, the CLI):

- a compiled config that passes is COMPLETE; its value is the config's size (``params``, or
  ``macs`` with ``search.objective=macs``), the study's metric name says which;
- a compiled config that fails is FAIL: it has no size to maximize, and no client can call it
  the best trial;
- a config answered by monotone inference, never compiled, is PRUNED;
- a config the estimate answered ``uncertain`` (inside a recorded bracket: docs/backends.md)
  is neither a pass nor a fail: closed like a job that said nothing about size (FAIL, no
  constraint; PRUNED when an Optuna sampler asked for it), with its user attrs, so it is no
  evidence here and ``driver.prior_from_study`` hands it to a real-compile search as a point
  to compile first;
- every one carries ``user_attrs.evidence`` (estimate / real / replay, or inferred),
  ``compiled`` and ``verdict``, and the feasibility constraint ``compile_fails`` (<= 0: it
  compiles) in both forms Optuna has used: the system attr ``constraints:compile_fails`` that
  Optuna 5's ``set_constraint`` writes, and the list ``constraints`` of Optuna < 5, the one
  optuna-dashboard 0.21 reads (``optuna_dashboard/_serializer.py``).  Optuna 5 reads both
  (``optuna/study/_constrained_optimization.py``).  optuna-dashboard 0.21 takes a
  single-objective study's best trial from ``storage.get_best_trial``, which ignores
  constraints; only the states above keep a failing config from being shown as the best.

With ``search.sampler=tpe|random|grid`` (baselines for the benchmark) every answer stays
COMPLETE with the lattice rank as its value (mean position on each knob, 0..1), since TPE learns
constraints only from COMPLETE trials; the metric name says so.

Storage: a path (``*.journal``) opens a JournalStorage file (safe for several processes on
one machine); anything with ``://`` is handed to Optuna as an RDB URL (sqlite, postgresql...).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import warnings
from pathlib import Path

from ..processes import pid_alive
from ..results import JOB_RESULT_KEYS
from . import bulk
from .answers import ANSWERS, UNCERTAIN_VERDICT, StudyAnswers
from .lattice import Knowledge, Lattice

log = logging.getLogger(__name__)
CONSTRAINT = "compile_fails"
#: the pre-Optuna-5 list form of the constraints (optuna-dashboard 0.21 reads only this)
LEGACY_CONSTRAINTS = "constraints"
#: what the user attrs of a job's result keep
RESULT_ATTRS = JOB_RESULT_KEYS
DEFAULT_ROOT = Path("outputs/optuna")
#: failure families that say nothing about the config's size: not monotone evidence
NOT_EVIDENCE = frozenset({"crash", "timeout", "missing_sdk", "script_error"})
# answers.py: ANSWERS, the verdicts that are evidence, and UNCERTAIN_VERDICT (an estimate
# inside a recorded bracket), which is not
#: a claim's worker beats this often while it compiles, and a claim whose last beat is older
#: than the grace period is taken as left behind by a killed worker, so its config goes to
#: another worker within minutes.  On an RDB storage the beat is Optuna's own heartbeat and
#: stale claims are failed by ``optuna.storages.fail_stale_trials``; Optuna's JournalStorage has
#: no heartbeat, so on a journal file the beat is the claim's ``claim_beat`` system attr (epoch
#: seconds: the machines sharing a journal need clocks that agree to well within the grace)
HEARTBEAT_S, GRACE_S = 60, 180
#: the claim attr a journal file's heartbeat writes
BEAT_ATTR = "claim_beat"
#: a journal claim written before claims had beats: taken as left behind after this long
CLAIM_TTL_S = 6 * 3600.0


def storage_location(storage: str | None, study_name: str) -> str:
    """The storage URL or journal path a study lives in (default outputs/optuna/<name>.journal)."""
    return storage or str(DEFAULT_ROOT / f"{study_name}.journal")


def open_storage(location: str, heartbeat_s: float | None = None,
                 grace_s: float | None = None):
    """An Optuna storage for ``location``: a journal file, or an RDB URL; with ``heartbeat_s``
    an ``RDBStorage`` that records heartbeats (journal files have none in Optuna 5)."""
    import optuna

    if "://" in location:
        if heartbeat_s is None:
            return location
        with warnings.catch_warnings():  # heartbeats are experimental since Optuna 2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(location, heartbeat_interval=int(heartbeat_s),
                                              grace_period=int(grace_s or 3 * heartbeat_s))
    from optuna.storages.journal import JournalFileBackend

    path = Path(location)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FlockJournalLock(path)
    repair_journal(path, lock)
    return optuna.storages.JournalStorage(JournalFileBackend(str(path), lock_obj=lock))


class JournalDamaged(ValueError):
    """A journal with a bad record before its last line: not repaired automatically."""


class StudyInconsistent(JournalDamaged):
    """Compiled trials that do not match their own records (a journal line removed or edited):
    the frontier they would give cannot be certified."""


#: a compiled trial's own check (user attr): a digest of its number, knob values and verdict,
#: written with it, so a storage line removed or edited later shows as a mismatch
RECORD_ATTR = "record"
#: study user attr: every compiled trial of this study carries its record
RECORDS_KEPT = "records_kept"


def record_digest(number: int, params: dict, verdict) -> str:
    import hashlib
    import json

    text = json.dumps([number, sorted(params.items()), verdict], default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def repair_journal(path: Path, lock) -> None:
    """A journal whose last record was cut off (a full disk, a kill mid-write) is copied to
    ``<name>.torn-<time>`` and cut back to its last complete record, under the writers' lock,
    so no writer appends after garbage; a bad record earlier is refused with how to recover."""
    import json
    import shutil
    import time

    if not path.is_file() or path.stat().st_size == 0:
        return
    lock.acquire()
    try:
        data = path.read_bytes()
        lines = data.split(b"\n")
        complete = lines[:-1]  # the part after the last newline is torn (or empty)
        keep = len(data) - len(lines[-1])
        for n, line in enumerate(complete):
            try:
                json.loads(line)
            except ValueError:
                if n == len(complete) - 1:  # the last record, ended by a stray newline
                    keep -= len(line) + 1
                    break
                raise JournalDamaged(
                    f"{path} has a damaged record on line {n + 1} of {len(complete)}: "
                    f"restore it from a copy, or keep lines 1-{n} (head -n {n}) "
                    "and run again") from None
        if keep == len(data):
            return
        copy = path.with_name(f"{path.name}.torn-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.copyfile(path, copy)
        with open(path, "r+b") as f:
            f.truncate(keep)
        log.warning("%s ended in a torn record (kept in %s): cut back to its last complete "
                    "record", path, copy)
    finally:
        lock.release()


class FlockJournalLock:
    """The journal file's writer lock for Optuna's ``JournalFileBackend(lock_obj=...)`` (its
    acquire/release interface), held through ``filelock``, an ``flock`` on POSIX: the kernel
    drops it when its holder dies, so a worker killed with SIGKILL never leaves a stale lock
    behind (Optuna's default symlink lock then makes every other worker wait out a 30 s grace
    period)."""

    def __init__(self, journal: Path):
        from filelock import FileLock

        self.path = journal.with_name(f".{journal.name}.flock")
        self._lock = FileLock(self.path)

    def acquire(self) -> bool:
        self._lock.acquire()
        return True

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release()


def _create_study(storage: str, attempts: int = 5, heartbeat: tuple | None = None, **kwargs):
    """``optuna.create_study``, retried when workers starting together on an empty database
    race to create Optuna's schema (PostgreSQL: duplicate type/table errors from SQLAlchemy)."""
    import time

    import optuna

    for attempt in range(attempts):
        try:
            return optuna.create_study(storage=open_storage(storage, *(heartbeat or ())),
                                       **kwargs)
        except Exception as exc:  # noqa: BLE001 - only database races are retried
            racing = type(exc).__module__.startswith("sqlalchemy") or isinstance(
                exc, (optuna.exceptions.StorageInternalError,
                      optuna.exceptions.DuplicatedStudyError))
            if not racing or attempt == attempts - 1:
                raise
            log.info("study storage busy (%s); retrying", type(exc).__name__)
            time.sleep(0.5 * (attempt + 1))


def make_optuna_sampler(name: str, lattice: Lattice, seed: int):
    """The Optuna sampler that asks for configs (the frontier sampler bypasses ask/tell)."""
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "grid":
        return optuna.samplers.GridSampler({k.name: list(k.values) for k in lattice.knobs},
                                           seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


class FrontierStudy:
    """One Optuna study over one lattice; rebuilds the knowledge from its trials."""

    def __init__(self, lattice: Lattice, study_name: str, storage: str | None = None,
                 sampler: str = "frontier", seed: int = 0, objective: str | None = None,
                 heartbeat_s: float = HEARTBEAT_S, grace_s: float = GRACE_S):
        import optuna

        self.lattice = lattice
        self.study_name = study_name
        self.location = storage_location(storage, study_name)
        #: frontier: COMPLETE / FAIL / PRUNED by answer; Optuna's samplers: COMPLETE + rank
        self.by_state = sampler == "frontier"
        self.value_key = objective or "params"
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.beat_s, self.grace_s = float(heartbeat_s), float(grace_s)
        #: Optuna's own heartbeat (RDB storages); None on a journal file
        self.heartbeat_s = heartbeat_s if "://" in self.location else None
        self.study = _create_study(
            study_name=study_name, storage=self.location, direction="maximize",
            heartbeat=(self.heartbeat_s, grace_s) if self.heartbeat_s else None,
            sampler=make_optuna_sampler(sampler, lattice, seed), load_if_exists=True)
        self.study.set_user_attr("knobs", {k.name: list(k.values) for k in lattice.knobs})
        if RECORDS_KEPT not in self.study.user_attrs and not any(
                t.user_attrs.get("compiled") for t in self.study.get_trials(deepcopy=False)):
            self.study.set_user_attr(RECORDS_KEPT, True)  # older studies are read unchecked
        self.check_records()
        if not self.study.metric_names:
            if self.study.get_trials(deepcopy=False):  # written before metric names: ranks
                self.by_state = False
            with warnings.catch_warnings():  # experimental since Optuna 3.2, stable in use
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                self.study.set_metric_names(
                    [self.value_key if self.by_state else "lattice_rank"])
        elif self.study.metric_names != [self.value_key]:
            self.by_state = False  # a rank study (Optuna's samplers, or an older one)
        from optuna.distributions import CategoricalDistribution

        self.distributions = {k.name: CategoricalDistribution(list(k.values))
                              for k in lattice.knobs}
        self._asked: dict[int, tuple] = {}  # trial id -> (point, trial): asked, not yet claimed
        self._asked_claims: set[int] = set()  # claims that are asked trials (see ``claim``)
        self._answers = StudyAnswers(lattice)

    def answers(self) -> tuple[dict, set]:
        """(record by point of every compiled pass / fail, points answered ``uncertain``) as the
        study holds them now, read incrementally (answers.py).  The study's own: not copies."""
        self._answers.update(self.study.get_trials(deepcopy=False))
        return self._answers.records, self._answers.uncertain

    def load(self) -> tuple[Knowledge, dict]:
        """Knowledge from the compiled trials (in trial order) and their records by point."""
        records, _ = self.answers()
        knowledge = Knowledge(self.lattice)
        for number in sorted(self._answers.answers):
            knowledge.record(*self._answers.answers[number])
        return knowledge, {point: dict(record) for point, record in records.items()}

    def uncertain_points(self) -> set:
        """Points whose compile job answered ``uncertain`` (an estimate inside a recorded
        bracket): not evidence of pass or fail, kept so a later search can compile them first
        (``driver.prior_from_study``) and a resumed one does not ask again."""
        return set(self.answers()[1])

    def check_records(self) -> None:
        """Refuse a study whose compiled trials do not match their records: a line removed from
        a journal moves the lines after it to other trials, or drops a verdict or a param, and
        the frontier would be certified from answers nobody gave.  (Inferred answers are not
        checked: the frontier is rebuilt from the compiled ones alone.)"""
        import optuna

        State = optuna.trial.TrialState
        kept = bool(self.study.user_attrs.get(RECORDS_KEPT))
        bad = []
        for t in self.study.get_trials(deepcopy=False, states=(State.COMPLETE, State.FAIL)):
            attrs = t.user_attrs
            if not attrs.get("compiled") and RECORD_ATTR not in attrs:
                continue  # an inferred answer
            if RECORD_ATTR not in attrs and not kept:
                continue  # written before records were kept
            if attrs.get(RECORD_ATTR) != record_digest(t.number, t.params, attrs.get("verdict")) \
                    or not attrs.get("compiled"):
                bad.append(t.number)
        if bad:
            shown = ", ".join(map(str, bad[:10])) + (" ..." if len(bad) > 10 else "")
            raise StudyInconsistent(
                f"study {self.study_name!r} in {self.location} is inconsistent: {len(bad)} "
                f"compiled trial(s) do not match their own records (trial {shown}); a line of "
                "its storage was removed or edited. Restore it from a copy, or start a new "
                "study (search.study_name=...); compiles already made are cache hits")

    def answered_points(self) -> set:
        return {self.lattice.point_of(t.params) for t in self.study.get_trials(deepcopy=False)}

    def _state_and_value(self, point, passed: bool, user_attrs: dict):
        """The trial state and value an answer is stored with (see the module docstring)."""
        import optuna

        State = optuna.trial.TrialState
        if not self.by_state:
            return State.COMPLETE, self.lattice.rank(point)
        if not user_attrs.get("compiled"):
            return State.PRUNED, None
        if not passed:
            return State.FAIL, None
        return State.COMPLETE, float(user_attrs.get(self.value_key) or 0)

    def _trial(self, point, passed: bool, user_attrs: dict):
        import optuna

        state, value = self._state_and_value(point, passed, user_attrs)
        feasible = 0.0 if passed else 1.0
        return optuna.trial.create_trial(
            state=state, params=self.lattice.values(point), distributions=self.distributions,
            value=value, user_attrs=user_attrs, constraints={CONSTRAINT: feasible},
            system_attrs={LEGACY_CONSTRAINTS: [feasible]})

    def claim(self, point, ttl_s: float = CLAIM_TTL_S):
        """Reserve ``point`` for this worker, or None when another worker has it.

        A claim is a RUNNING trial with the point's params: the trial this worker has just
        asked the study's Optuna sampler for (``ask``), so the answer lands in the trial the
        sampler made, else a new one.  Trial numbers are handed out atomically by every Optuna
        storage (journal file or RDB), so among live claims of one point the lowest number wins
        and every other claimant backs off (its claim is marked FAIL).  A claim whose worker
        stopped beating (see ``HEARTBEAT_S``), or whose worker on this host is gone, is taken
        as left by a killed worker and ignored; ``ttl_s`` retires journal claims without beats.
        """
        import optuna

        State = optuna.trial.TrialState
        storage = self.study._storage
        if self.heartbeat_s:  # claims whose worker stopped beating are failed now
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(self.study)
        asked = self._take_ask(point)
        trial_id = asked._trial_id if asked is not None else self._new_claim(point)
        self._beat(storage, trial_id)  # a claim without a beat would never go stale
        storage.set_trial_system_attr(trial_id, "claim_by", [_HOST, os.getpid()])
        winner, stale = self._claim_winner(storage.get_trial(trial_id), ttl_s)
        if winner is not None:
            self._asked_claims.discard(trial_id)
            storage.set_trial_system_attr(trial_id, "claim_lost_to", winner)
            storage.set_trial_state_values(trial_id, State.FAIL)
            return None
        self._retire(stale, trial_id)
        return asked if asked is not None else optuna.trial.Trial(self.study, trial_id)

    def live_claims(self, ttl_s: float = CLAIM_TTL_S) -> list:
        """The RUNNING trials that are live claims right now, by trial number: claimed (not a
        bare ask), their worker still beats and, on this host, is alive (``claim``'s rule).
        On an RDB storage Optuna first fails the claims whose worker stopped beating."""
        import datetime

        import optuna

        if self.heartbeat_s:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(self.study)
        now = datetime.datetime.now()
        running = self.study.get_trials(deepcopy=False,
                                        states=(optuna.trial.TrialState.RUNNING,))
        return sorted((t for t in running if "claim_by" in t.system_attrs
                       and self._beating(t, now, ttl_s) and _claimant_alive(t)),
                      key=lambda t: t.number)

    def withdraw_claim(self, trial, reason: str) -> None:
        """Give up a claim before its compile starts (FAIL, with ``reason`` as a system attr
        naming why), as a claim that lost its point to another worker is given up."""
        import optuna

        storage = self.study._storage
        self._asked_claims.discard(trial._trial_id)
        storage.set_trial_system_attr(trial._trial_id, "claim_withdrawn", reason)
        storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)

    def _retire(self, stale, successor: int) -> None:
        """Fail the claims killed workers left on a point this worker now holds, so no client
        shows them running for ever (a journal file has no ``fail_stale_trials``)."""
        import optuna

        storage = self.study._storage
        for left in stale:
            try:
                storage.set_trial_system_attr(left._trial_id, "claim_expired_for", successor)
                storage.set_trial_state_values(left._trial_id, optuna.trial.TrialState.FAIL)
            except RuntimeError:  # optuna.exceptions.UpdateFinishedTrialError
                pass  # another worker retired it first

    def _take_ask(self, point):
        """The trial asked for ``point`` and not told yet (see ``ask``), as a claim; or None."""
        for trial_id, (asked, trial) in self._asked.items():
            if asked == point:
                del self._asked[trial_id]
                self._asked_claims.add(trial_id)
                return trial
        return None

    def _new_claim(self, point) -> int:
        """A RUNNING trial for ``point`` created with its claimant (and, on a journal, its
        first beat) in one storage write, so no other worker sees it as a bare ask."""
        import optuna

        attrs = {"claim_by": [_HOST, os.getpid()]}
        if not self.heartbeat_s:
            attrs[BEAT_ATTR] = time.time()
        frozen = optuna.trial.create_trial(state=optuna.trial.TrialState.RUNNING,
                                           params=self.lattice.values(point),
                                           distributions=self.distributions,
                                           system_attrs=attrs)
        return self.study._storage.create_new_trial(self.study._study_id, template_trial=frozen)

    def _claim_winner(self, mine, ttl_s: float):
        """(the number of a trial that answered ``mine``'s point, or holds it live with a lower
        number, or None when ``mine`` is the point's claim; the point's claims left behind by
        workers that stopped beating or are gone)."""
        import datetime

        import optuna

        State = optuna.trial.TrialState
        now = datetime.datetime.now()
        states = (State.COMPLETE, State.FAIL, State.RUNNING)
        stale = []
        for t in self.study.get_trials(deepcopy=False, states=states):
            if t.number == mine.number or t.params != mine.params:
                continue
            answered = t.state in (State.COMPLETE, State.FAIL) and t.user_attrs.get("compiled")
            live = t.state == State.RUNNING and self._beating(t, now, ttl_s) and \
                _claimant_alive(t)
            if answered or (live and t.number < mine.number):
                return t.number, []
            if t.state == State.RUNNING and not live:
                stale.append(t)
        return None, stale

    def _beat(self, storage, trial_id: int) -> None:
        if self.heartbeat_s:
            storage.record_heartbeat(trial_id)
        else:
            storage.set_trial_system_attr(trial_id, BEAT_ATTR, time.time())

    def _beating(self, claim, now, ttl_s: float) -> bool:
        """Whether ``claim``'s worker beat within the grace period (on an RDB storage Optuna
        fails stale claims itself, so a RUNNING one there is live)."""
        if self.heartbeat_s:
            return True
        beat = claim.system_attrs.get(BEAT_ATTR)
        if isinstance(beat, (int, float)):
            return time.time() - beat < self.grace_s
        return (now - claim.datetime_start).total_seconds() < ttl_s  # a claim from before beats

    @contextlib.contextmanager
    def heartbeat(self, trials):
        """Beat for ``trials`` (held claims) every ``HEARTBEAT_S`` while the body runs; a
        SIGKILLed worker stops beating and its claims go stale after the grace period."""
        if not trials:
            yield
            return
        storage, stop = self.study._storage, threading.Event()

        def beat() -> None:
            while True:
                for trial in trials:
                    self._beat(storage, trial._trial_id)
                if stop.wait(self.beat_s):
                    return

        thread = threading.Thread(target=beat, name="tasnet-claim-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def record_claimed(self, trial, point, result) -> None:
        """Complete a claim with a job's answer, or release it when it says nothing (FAIL; an
        asked trial, PRUNED)."""
        import optuna

        passed = job_outcome(result)
        if passed is None:  # an asked trial is pruned: Optuna's samplers learn from PRUNED
            asked = trial._trial_id in self._asked_claims
            self._forget(trial)
            if is_uncertain(result):  # kept as an answer without a size: no constraint
                self._keep_uncertain(trial, point, result)
            State = optuna.trial.TrialState
            self.study.tell(trial, state=State.PRUNED if asked else State.FAIL)
            return
        attrs = {k: result.get(k) for k in RESULT_ATTRS}
        self.tell(trial, point, passed, {**attrs, "compiled": True})

    def _keep_uncertain(self, trial, point, result: dict) -> None:
        """An ``uncertain`` answer's user attrs (compiled, with its record), on a trial closed
        like a job that said nothing about size: FAIL, or PRUNED when Optuna asked for it."""
        attrs = {**{k: result.get(k) for k in RESULT_ATTRS}, "compiled": True}
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        trial.set_user_attr(RECORD_ATTR, record_digest(
            trial.number, self.lattice.values(point), UNCERTAIN_VERDICT))

    def _inference_lock(self):
        """Workers finishing together must not both store the same inferred answers: on a
        journal file they take turns on a lock beside it (an RDB storage has no file to lock;
        there the points are read again just before writing, which narrows the window)."""
        if "://" in self.location:
            return contextlib.nullcontext()
        from filelock import FileLock

        path = Path(self.location)
        return FileLock(path.with_name(f".{path.name}.inferred.lock"))

    def record_inferred(self, knowledge: Knowledge) -> int:
        """Store every inferred answer not in the study yet (evidence=inferred, compiled=False),
        all in one write."""
        with self._inference_lock():
            return self._record_inferred(knowledge)

    def _record_inferred(self, knowledge: Knowledge) -> int:
        have = self.answered_points()
        new = []
        for point in self.lattice.points():
            point = tuple(int(i) for i in point)
            if point in have or knowledge.evidence(point) != "inferred":
                continue
            passed = bool(knowledge.outcome(point))
            new.append(self._trial(point, passed, {
                "verdict": "pass" if passed else "fail", "evidence": "inferred",
                "compiled": False}))
        bulk.add_trials(self.study, new)  # one write, not one per trial (bulk.py)
        return len(new)

    def ask(self):
        """(trial, point) from the study's own Optuna sampler (tpe / random / grid).  Until it
        is told or pruned, the trial is this worker's ask of the point: ``claim(point)`` makes
        it the point's claim."""
        trial = self.study.ask(self.distributions)
        point = self.lattice.point_of(trial.params)
        self._asked[trial._trial_id] = (point, trial)
        return trial, point

    def prune(self, trial) -> None:
        """An asked trial that will not be compiled (drawn twice, pending, errored): PRUNED."""
        import optuna

        self._forget(trial)
        self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)

    def _forget(self, trial) -> None:
        self._asked.pop(trial._trial_id, None)
        self._asked_claims.discard(trial._trial_id)

    def tell(self, trial, point, passed: bool, user_attrs: dict) -> None:
        self._forget(trial)
        for k, v in user_attrs.items():
            trial.set_user_attr(k, v)
        if user_attrs.get("compiled"):
            trial.set_user_attr(RECORD_ATTR, record_digest(
                trial.number, self.lattice.values(point), user_attrs.get("verdict")))
        feasible = 0.0 if passed else 1.0
        trial.set_constraint(CONSTRAINT, feasible)
        trial.storage.set_trial_system_attr(trial._trial_id, LEGACY_CONSTRAINTS, [feasible])
        state, value = self._state_and_value(point, passed, user_attrs)
        self.study.tell(trial, value, state=state)


_HOST = socket.gethostname()


def _claimant_alive(trial) -> bool:
    """False for a claim whose worker ran on this host and is gone (killed, crashed)."""
    host, pid = (trial.system_attrs.get("claim_by") or [None, None])[:2]
    if host != _HOST or not isinstance(pid, int):
        return True  # another machine's worker: only the claim's age can retire it
    return pid_alive(pid)


def is_uncertain(result) -> bool:
    """The job's estimate was unsure (``verdict=uncertain``): no evidence of pass or fail."""
    return isinstance(result, dict) and result.get("verdict") == UNCERTAIN_VERDICT


def job_outcome(result) -> bool | None:
    """pass -> True, fail -> False; None when the job says nothing about size (crash, ...,
    and an estimate's ``uncertain``: neither a pass nor a fail)."""
    if not isinstance(result, dict) or result.get("verdict") not in ANSWERS:
        return None
    if result["verdict"] == "fail" and result.get("failure_family") in NOT_EVIDENCE:
        return None
    return result["verdict"] == "pass"
