"""Many finished trials written to an Optuna study at once (a search's inferred answers).

``Study.add_trials`` adds one trial at a time: on a journal file each trial is one append under
the file lock with its own fsync, on an RDB storage one transaction (sqlite: about 70 ms each),
so the ~4,100 inferred answers of ``search=single_context`` took 10-30 s on a journal and
minutes on sqlite.  Here a journal gets every trial's create record in one append (the record
is Optuna's journal file format, which later Optuna versions keep reading), and an RDB storage
gets them in a few transactions of rows built with its own table models.  Any other storage,
or an Optuna whose internals moved, falls back to ``add_trials``.  Readers see the same trials
either way: states, params, values, user and system attrs.
"""

from __future__ import annotations

import uuid
from datetime import timezone

#: trials per RDB transaction: each holds the study's row lock while it writes
RDB_CHUNK = 500


def add_trials(study, trials: list) -> None:
    """Add finished ``trials`` (``optuna.trial.create_trial``) to ``study``, in order."""
    if not trials:
        return
    storage = study._storage
    writer = _journal_writer(storage) or _rdb_writer(storage)
    if writer is None or any(t.intermediate_values for t in trials):  # never in a frontier study
        study.add_trials(trials)
        return
    writer(study._study_id, trials)


def _journal_writer(storage):
    """One append of every trial's create record, or None when ``storage`` is no journal."""
    from optuna.storages import JournalStorage

    backend = getattr(storage, "_backend", None)
    if not isinstance(storage, JournalStorage) or not hasattr(backend, "append_logs"):
        return None

    def write(study_id: int, trials: list) -> None:
        worker = f"tasnet-sweep-bulk-{uuid.uuid4()}"  # not this storage's worker: plain replay
        backend.append_logs([_create_record(study_id, t, worker) for t in trials])

    return write


def _create_record(study_id: int, trial, worker_id: str) -> dict:
    """The journal record ``JournalStorage.create_new_trial(template_trial=trial)`` writes."""
    from optuna.distributions import distribution_to_json
    from optuna.storages.journal._storage import JournalOperation

    def stamp(when):
        return None if when is None else \
            when.astimezone(timezone.utc).isoformat(timespec="microseconds")

    many = trial.values is not None and len(trial.values) > 1
    record = {
        "op_code": int(JournalOperation.CREATE_TRIAL), "worker_id": worker_id,
        "study_id": study_id, "state": int(trial.state),
        "value": None if many else trial.value, "values": trial.values if many else None,
        "datetime_start": stamp(trial.datetime_start),
        "distributions": {k: distribution_to_json(d) for k, d in trial.distributions.items()},
        "params": {k: trial.distributions[k].to_internal_repr(v)
                   for k, v in trial.params.items()},
        "user_attrs": trial.user_attrs, "system_attrs": trial.system_attrs,
        "intermediate_values": trial.intermediate_values,
    }
    if trial.datetime_complete is not None:
        record["datetime_complete"] = stamp(trial.datetime_complete)
    return record


def _rdb_writer(storage):
    """Trials inserted in transactions of ``RDB_CHUNK``, rows built with the RDB storage's own
    table models (one flush for the trials, one for their params, values and attrs, where
    Optuna's per-trial path makes about 20 queries each); None when ``storage`` is no RDB
    storage or its models are not where Optuna 5 has them."""
    import json

    from optuna.distributions import distribution_to_json
    from optuna.storages import RDBStorage

    rdb = getattr(storage, "_backend", storage)
    if not isinstance(rdb, RDBStorage):
        return None
    try:
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        sessions = rdb.scoped_session
        Trial, Param, Value = models.TrialModel, models.TrialParamModel, models.TrialValueModel
        UserAttr, SystemAttr = models.TrialUserAttributeModel, models.TrialSystemAttributeModel
        find_study, stored = models.StudyModel.find_or_raise_by_id, Value.value_to_stored_repr
    except (ImportError, AttributeError):
        return None

    def rows(row, trial) -> list:
        out = [Param(trial_id=row.trial_id, param_name=k, param_value=d.to_internal_repr(
            trial.params[k]), distribution_json=distribution_to_json(d))
            for k, d in trial.distributions.items()]
        for objective, value in enumerate(trial.values or ()):
            value, kind = stored(value)
            out.append(Value(trial_id=row.trial_id, objective=objective, value=value,
                             value_type=kind))
        for model, attrs in ((UserAttr, trial.user_attrs), (SystemAttr, trial.system_attrs)):
            out += [model(trial_id=row.trial_id, key=k, value_json=json.dumps(v))
                    for k, v in attrs.items()]
        return out

    def write(study_id: int, trials: list) -> None:
        for start in range(0, len(trials), RDB_CHUNK):
            chunk = trials[start:start + RDB_CHUNK]
            with _create_scoped_session(sessions) as session:
                # the lock under which Optuna numbers a new trial, once per transaction
                find_study(study_id, session, for_update=True)
                first = session.query(Trial).filter(Trial.study_id == study_id).count()
                made = [Trial(study_id=study_id, number=first + i, state=t.state,
                              datetime_start=t.datetime_start,
                              datetime_complete=t.datetime_complete)
                        for i, t in enumerate(chunk)]
                session.add_all(made)
                session.flush()  # the trial ids their rows point at
                session.add_all([r for row, t in zip(made, chunk) for r in rows(row, t)])

    return write
