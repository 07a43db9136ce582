"""The study's bulk writes (inferred answers in one write) and incremental reads: what Optuna
clients read back is what ``Study.add_trials`` would have written, and a reader sees every
answer once, including claims that finish after it first looked."""

from __future__ import annotations

import types

import optuna
import pytest

from tasnet_sweep.search import bulk
from tasnet_sweep.search.answers import StudyAnswers
from tasnet_sweep.search.lattice import Knowledge, Lattice
from tasnet_sweep.search.study import FrontierStudy, open_storage

SPACE = {"model.n_blocks": list(range(1, 9)), "model.bn": [16, 32, 64, 128],
         "model.hidden": [32, 64, 128, 256, 512]}
State = optuna.trial.TrialState


def _storages(tmp_path):
    return {"journal": str(tmp_path / "s.journal"), "sqlite": f"sqlite:///{tmp_path}/s.db"}


def _trials(n: int) -> list:
    """Finished trials of every kind a frontier study writes: PRUNED without a value, COMPLETE
    with one, FAIL; user attrs, a constraint (a system attr) and the legacy list."""
    dist = {"a": optuna.distributions.CategoricalDistribution([1, 2, 3, 4]),
            "b": optuna.distributions.CategoricalDistribution(["x", "y"])}
    states = [(State.PRUNED, None), (State.COMPLETE, 0.25), (State.FAIL, None)]
    out = []
    for i in range(n):
        state, value = states[i % 3]
        out.append(optuna.trial.create_trial(
            state=state, value=value, params={"a": 1 + i % 4, "b": "xy"[i % 2]},
            distributions=dist, user_attrs={"evidence": "inferred", "i": i, "ok": i % 2 == 0},
            constraints={"compile_fails": float(i % 2)}, system_attrs={"constraints": [i % 2]}))
    return out


def _seen(trial) -> tuple:
    return (trial.number, trial.state, trial.value, trial.params, trial.distributions,
            trial.user_attrs, trial.system_attrs, trial.datetime_start is not None,
            trial.datetime_complete is not None)


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_bulk_trials_read_back_as_add_trials_writes_them(tmp_path, kind):
    where = _storages(tmp_path)[kind]
    studies = {how: optuna.create_study(study_name=how, storage=open_storage(where),
                                        direction="maximize") for how in ("one", "bulk")}
    for study in studies.values():  # a trial already there: numbers carry on after it
        study.add_trial(_trials(1)[0])
    trials = _trials(40)
    studies["one"].add_trials(trials)
    bulk.add_trials(studies["bulk"], trials)
    for study in studies.values():  # and a trial added the usual way after them
        study.add_trial(_trials(2)[1])
    # read back by a fresh client, as optuna-dashboard or a resumed search would
    reread = {how: optuna.load_study(study_name=how, storage=open_storage(where)).get_trials()
              for how in studies}
    assert len(reread["bulk"]) == 42
    assert [_seen(t) for t in reread["bulk"]] == [_seen(t) for t in reread["one"]]
    assert reread["bulk"][5].system_attrs["constraints:compile_fails"] == 0.0


def test_bulk_falls_back_to_add_trials_on_other_storages():
    study = optuna.create_study(direction="maximize")  # in memory
    bulk.add_trials(study, _trials(5))
    assert [t.number for t in study.get_trials()] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_inferred_answers_are_stored_once_and_read_back_by_a_resumed_study(tmp_path, kind):
    where = _storages(tmp_path)[kind]
    lat = Lattice.from_spec(SPACE)
    knowledge = Knowledge(lat)
    knowledge.record((3, 1, 2), True)
    knowledge.record((5, 2, 3), False)
    study = FrontierStudy(lat, "inf", where)
    stored = study.record_inferred(knowledge)
    assert stored == lat.size - knowledge.unknown - 2  # the two observed are not inferred
    assert len(study.study.get_trials()) == stored  # the writing client reads them too
    again = FrontierStudy(lat, "inf", where)
    assert again.record_inferred(knowledge) == 0
    trials = again.study.get_trials()
    assert len(trials) == stored
    assert all(t.state == State.PRUNED and t.user_attrs["evidence"] == "inferred"
               and t.user_attrs["compiled"] is False for t in trials)
    passes = {lat.point_of(t.params) for t in trials if t.user_attrs["verdict"] == "pass"}
    assert passes == {p for p in lat.points() if knowledge.outcome(p) and p != (3, 1, 2)}
    # a new compile after them is read as one
    answer = lambda p: {"verdict": "pass", "evidence": "estimate", "params": 1}  # noqa: E731
    claim = again.claim((0, 0, 0))
    again.record_claimed(claim, (0, 0, 0), answer((0, 0, 0)))
    assert set(FrontierStudy(lat, "inf", where).load()[1]) == {(0, 0, 0)}


def test_a_reader_sees_each_answer_once_and_claims_when_they_finish(tmp_path):
    journal = str(tmp_path / "w.journal")
    lat = Lattice.from_spec(SPACE)
    mine, other = FrontierStudy(lat, "w", journal), FrontierStudy(lat, "w", journal)
    assert mine.answers() == ({}, set())
    running = other.claim((1, 1, 1))
    done = other.claim((2, 2, 2))
    other.record_claimed(done, (2, 2, 2), {"verdict": "fail", "evidence": "estimate"})
    records, uncertain = mine.answers()
    assert set(records) == {(2, 2, 2)} and records[(2, 2, 2)]["verdict"] == "fail"
    other.record_claimed(running, (1, 1, 1), {"verdict": "pass", "evidence": "estimate"})
    unsure = other.claim((0, 3, 4))
    other.record_claimed(unsure, (0, 3, 4), {"verdict": "uncertain", "evidence": "estimate"})
    records, uncertain = mine.answers()
    assert set(records) == {(1, 1, 1), (2, 2, 2)} and uncertain == {(0, 3, 4)}
    knowledge, _ = mine.load()
    assert knowledge.observed == {(2, 2, 2): False, (1, 1, 1): True}
    assert mine._answers.update(mine.study.get_trials(deepcopy=False)) == []  # nothing re-read


def _trial(number: int, state=State.COMPLETE, point=(0, 0, 0)):
    lat = Lattice.from_spec(SPACE)
    return types.SimpleNamespace(number=number, state=state, params=lat.values(point),
                                 user_attrs={"compiled": True, "verdict": "pass"})


def test_a_trial_number_another_process_has_not_committed_yet_is_read_when_it_comes():
    answers = StudyAnswers(Lattice.from_spec(SPACE))
    late = _trial(1, point=(1, 0, 0))
    assert len(answers.update([_trial(0), _trial(2, point=(2, 0, 0))])) == 2
    assert len(answers.update([_trial(0), late, _trial(2, point=(2, 0, 0))])) == 1
    assert set(answers.records) == {(0, 0, 0), (1, 0, 0), (2, 0, 0)}
    assert answers.update([_trial(0), late, _trial(2), _trial(3, State.RUNNING)]) == []
    assert answers._upto == 3  # the front is read; the running claim is looked at again
