"""The trial record: built by trial.run, written as result.json, read back by one reader."""

from __future__ import annotations

import json

import pytest
from helpers import SMALL, compose_cfg

from tasnet_sweep import trial
from tasnet_sweep.results import JOB_RESULT_KEYS, JobResult, TrialResult, read_result


@pytest.fixture(scope="module")
def tiny_trial(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    cfg = compose_cfg(*SMALL, "unit=encoder", "tracking=none",
                      f"compiler.cache_dir={root / 'cache'}")
    return trial.run(cfg, root / "sweep" / "0_run", root / "sweep" / "summary.tsv"), root


def test_result_json_reads_back_as_the_record_the_trial_returned(tiny_trial):
    result, root = tiny_trial
    assert isinstance(result, TrialResult) and result.compile.stages
    saved = read_result(root / "sweep" / "0_run" / "result.json")
    assert saved == result  # every field, the compile stages included
    assert json.loads((root / "sweep" / "0_run" / "result.json").read_text())["schema"] == 1


def test_the_job_result_is_the_summary_rows_job_keys(tiny_trial):
    result, _ = tiny_trial
    job = trial.sweep_return(result)
    assert tuple(job) == JOB_RESULT_KEYS == tuple(JobResult.__dataclass_fields__)
    assert job == {k: result.summary[k] for k in JOB_RESULT_KEYS}
    assert job["verdict"] in ("pass", "fail") and job["cache_hit"] is False


@pytest.mark.parametrize("text", ['{"summary": {"run_dir": "x"}', "[1, 2]",
                                  '{"summary": {"run_dir": "x"}}', "\x00\x01"])
def test_a_result_json_cut_off_or_of_another_shape_reads_as_none(tmp_path, text, tiny_trial):
    path = tmp_path / "result.json"
    path.write_text(text)
    assert read_result(path) is None
    assert read_result(tmp_path / "missing.json") is None


@pytest.mark.slow
def test_sync_logs_the_trials_and_names_a_result_json_cut_off(tiny_trial, tmp_path, caplog):
    from tasnet_sweep.commands.sync import sync

    result, root = tiny_trial
    cut = root / "sweep" / "1_cut"
    cut.mkdir(exist_ok=True)
    (cut / "result.json").write_text('{"schema": 1, "run_tag": "cut')  # the disk filled up
    with caplog.at_level("WARNING", logger="tasnet_sweep.commands.sync"):
        done = sync(root / "sweep", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert len(done["added"]) == 1 and done["parent_run_id"]
    assert any(str(cut) in r.getMessage() and "cut off" in r.getMessage()
               for r in caplog.records)
