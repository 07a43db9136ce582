"""The compiled answers of a study, read incrementally.

A search looks at its study before every step, for what other workers compiled meanwhile.
Reading every trial each time made a step cost grow with the study (4,000 inferred trials and
more).  ``StudyAnswers`` keeps what it has read: a finished trial never changes (Optuna refuses
to update one), so each read looks only at trials it has not seen finished yet -- the new ones
by number, and claims that were still running.  The storages replay their own records
incrementally (a journal file from the last line read; an RDB storage through Optuna's cache,
from the last finished trial id), so the storage read is incremental too.
"""

from __future__ import annotations

from .lattice import Lattice

#: the verdicts that are evidence, and the one that is not (study.py says why)
ANSWERS = ("pass", "fail")
UNCERTAIN_VERDICT = "uncertain"


class StudyAnswers:
    """Compiled pass/fail answers (by trial number), their records by point, and the points
    whose compile answered ``uncertain``, as of the trials read so far."""

    def __init__(self, lattice: Lattice):
        self.lattice = lattice
        self.answers: dict[int, tuple[tuple[int, ...], bool]] = {}  # number -> (point, passed)
        self.records: dict = {}  # point -> user attrs + trial number (the latest trial's)
        self.uncertain: set = set()
        self._upto = 0  # every trial numbered below this is finished and read
        self._read: set[int] = set()  # trials numbered from _upto on that are finished and read

    def update(self, trials: list) -> list:
        """Take in ``trials`` (the study's trials in number order, as Optuna lists them) not
        read finished before; returns those newly read."""
        fresh = []
        for trial in trials[self._upto:]:
            if trial.number in self._read or not trial.state.is_finished():
                continue
            self._read.add(trial.number)
            self._take(trial)
            fresh.append(trial)
        # move past the finished run at the front (a trial number missing from the list,
        # one another process has not committed yet, stops it)
        while self._upto < len(trials) and trials[self._upto].number == self._upto \
                and self._upto in self._read:
            self._read.discard(self._upto)
            self._upto += 1
        return fresh

    def _take(self, trial) -> None:
        import optuna

        State = optuna.trial.TrialState
        attrs = trial.user_attrs
        if not attrs.get("compiled"):
            return  # an inferred answer, a lost or released claim
        point = self.lattice.point_of(trial.params)
        if point is None:  # a trial from another search space sharing the study name
            return
        verdict = attrs.get("verdict")
        if verdict == UNCERTAIN_VERDICT:
            self.uncertain.add(point)
        elif verdict in ANSWERS and trial.state in (State.COMPLETE, State.FAIL):
            self.answers[trial.number] = (point, verdict == "pass")
            kept = self.records.get(point)
            if kept is None or kept["trial"] < trial.number:
                self.records[point] = dict(attrs, trial=trial.number)
