"""MLflow tracking against a local SQLite store: a real 3-trial multirun in worker processes
(hydra/launcher=joblib), single runs, failure reporting, sync and compare."""

from __future__ import annotations

import csv
import json
import logging
import subprocess
from pathlib import Path

import pytest
from helpers import REPO, SMALL, compose_cfg, run_cli

from tasnet_sweep.checks import validate
from tasnet_sweep.results import TrialResult
from tasnet_sweep.tracking.flatten import MAX_PARAM_VALUE, chunks, flatten_config, trial_metrics

BNS = (16, 24, 32)
#: log a single run in this process (the CLI hands it to the tracking agent)
INLINE = "tracking.background=false"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """One real multirun of three trials, two at a time in joblib worker processes."""
    cwd = tmp_path_factory.mktemp("tracking")
    small = [s for s in SMALL if not s.startswith("model.bn=")]
    proc = run_cli(["-m", f"model.bn={','.join(map(str, BNS))}", *small,
                    "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                    "hydra.sweep.dir=sweep"], cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    uri = f"sqlite:///{cwd / 'outputs' / 'mlflow.db'}"
    return cwd, uri


def _runs(uri: str, experiment: str = "tasnet_sweep"):
    import mlflow

    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(experiment_names=[experiment], output_format="list")


def _summary_rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@pytest.mark.slow
def test_multirun_logs_one_parent_and_a_child_per_trial_from_worker_processes(sweep):
    cwd, uri = sweep
    assert (cwd / "outputs" / "mlflow.db").is_file()
    runs = _runs(uri)
    parents = [r for r in runs if r.data.tags.get("tasnet.kind") == "sweep"]
    children = [r for r in runs if r.data.tags.get("tasnet.kind") == "trial"]
    assert len(parents) == 1 and len(children) == 3
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert {c.data.params["model.bn"] for c in children} == {str(b) for b in BNS}

    rows = {r["run_dir"]: r for r in _summary_rows(cwd / "sweep" / "summary.tsv")}
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                          text=True)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    for child in children:
        tags, metrics, params = child.data.tags, child.data.metrics, child.data.params
        row = rows[tags["run_dir"]]  # every logged trial is a row of the local record
        assert metrics["params"] == float(row["params"]) and metrics["macs"] == float(row["macs"])
        assert tags["verdict"] == row["verdict"] and tags["evidence"] == row["evidence"]
        assert tags["backend"] == "estimate" and tags["hw_arch"] == "hailo8"
        assert tags["cache_hit"] in ("true", "false") and tags["compiler_version"]
        assert "mlflow.source.git.commit" not in tags  # once, on the parent
        assert tags["mlflow.user"] and tags["mlflow.source.name"]
        result = json.loads((Path(tags["run_dir"]) / "result.json").read_text())
        assert child.info.start_time == int(result["started_at"] * 1000)  # the trial's own time
        assert child.info.end_time == int((result["started_at"] + result["seconds"]) * 1000)
        assert metrics["hef_pass"] == (1.0 if row["verdict"] == "pass" else 0.0)
        for key in ("est_contexts", "est_fps", "util_compute", "util_memory", "util_control",
                    "parity_max_abs", "stage_compile_seconds", "stage_translate_seconds"):
            assert key in metrics, key
        assert params["model.n_filters"] == "32" and params["compiler.backend"] == "estimate"
        assert params["tracking.log_onnx"] == "false"
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"config_resolved.yaml", "result.json", "estimate_report.tsv"} <= artifacts
        assert any(a.endswith(".log") for a in artifacts)
        assert not any(a.startswith("onnx") for a in artifacts)  # log_onnx defaults to false
    assert "summary.tsv" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    if head.returncode == 0:
        assert parent.data.tags["mlflow.source.git.commit"] == head.stdout.strip()
    assert parent.data.metrics["trials"] == 3 and parent.data.metrics["passes"] == \
        sum(r["verdict"] == "pass" for r in rows.values())
    assert parent.data.params["sweep.compiler.backend"] == "estimate"
    assert "model.bn=16,24,32" in parent.data.params["sweep.overrides.task"]
    experiment = client.get_experiment_by_name("tasnet_sweep")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


@pytest.mark.slow
def test_sync_of_a_level_sweep_adds_nothing(sweep):
    from tasnet_sweep.commands.sync import sync

    cwd, uri = sweep
    done = sync(cwd / "sweep", uri)
    assert done["added"] == [] and done["present"] == 3
    assert len(_runs(uri)) == 4


@pytest.mark.slow
def test_compare_prints_the_trials_sorted_by_params_and_plots_them(sweep, capsys):
    from tasnet_sweep.commands.compare import main

    cwd, uri = sweep
    png = cwd / "compare.png"
    assert main(["--uri", uri, "--experiment", "tasnet_sweep", "--png", str(png)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["sweep", "run_tag", "unit", "params"]
    tags = [line.split()[1] for line in out[1:4]]
    assert tags == [compose_cfg(*SMALL, f"model.bn={b}").run_tag for b in BNS]  # params grow
    assert all(" pass " in line and " estimate " in line for line in out[1:4])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def store_uri(tmp_path_factory) -> str:
    """One SQLite MLflow store for this module's in-process tests (a schema takes seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"


@pytest.mark.slow
def test_compare_reads_single_trials_logged_in_process(store_uri, tmp_path, capsys):
    """The fast tier's compare: three plain trial runs, no sweep and no subprocess."""
    from tasnet_sweep import trial
    from tasnet_sweep.commands.compare import main
    from tasnet_sweep.tracking import log_trial

    small = [s for s in SMALL if not s.startswith("model.bn=")]
    for bn in reversed(BNS):
        cfg = compose_cfg(*small, f"model.bn={bn}", f"tracking.tracking_uri={store_uri}",
                          INLINE,
                          "tracking.experiment=compare_in_process",
                          f"compiler.cache_dir={tmp_path / 'cache'}")
        run_dir = tmp_path / f"bn{bn}"
        assert log_trial(cfg, trial.run(cfg, run_dir, run_dir / "summary.tsv"), run_dir)
    png = tmp_path / "compare.png"
    assert main(["--uri", store_uri, "--experiment", "compare_in_process", "--png",
                 str(png)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["sweep", "run_tag", "unit", "params"]
    want = [compose_cfg(*small, f"model.bn={b}").run_tag for b in BNS]  # params grow with bn
    assert [next(w for w in want if w in line) for line in out[1:4]] == want
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_single_run_is_a_plain_run_and_a_failure_is_reported_once_then_synced(store_uri,
                                                                               tmp_path, caplog):
    from tasnet_sweep import trial
    from tasnet_sweep.commands.sync import sync
    from tasnet_sweep.tracking import log_trial

    uri = store_uri
    cfg = compose_cfg(*SMALL, "unit=encoder", f"tracking.tracking_uri={uri}", INLINE,
                      f"compiler.cache_dir={tmp_path / 'cache'}")
    result = trial.run(cfg, tmp_path / "one", tmp_path / "one" / "summary.tsv")
    run_id = log_trial(cfg, result, tmp_path / "one")
    plain = [r for r in _runs(uri) if r.info.run_id == run_id]
    assert plain and "mlflow.parentRunId" not in plain[0].data.tags

    down = compose_cfg(*SMALL, "unit=encoder", "tracking.tracking_uri=http://127.0.0.1:9", INLINE,
                       f"compiler.cache_dir={tmp_path / 'cache'}")
    run_dir = tmp_path / "two"
    result = trial.run(down, run_dir, run_dir / "summary.tsv")
    with caplog.at_level(logging.WARNING, logger="tasnet_sweep.tracking"):
        assert log_trial(down, result, run_dir) is None
        assert log_trial(down, result, run_dir) is None
    assert len([r for r in caplog.records if "MLflow tracking failed" in r.message]) == 1
    assert "python -m tasnet_sweep.commands.sync" in (run_dir / "tracking_failed.txt").read_text()
    assert (run_dir / "result.json").is_file() and (run_dir / "summary.tsv").is_file()

    first, again = sync(run_dir, uri), sync(run_dir, uri)
    assert len(first["added"]) == 1 and again["added"] == [] and again["present"] == 1
    assert not (run_dir / "tracking_failed.txt").exists()
    synced = [r for r in _runs(uri) if r.data.tags.get("run_dir") == str(run_dir.resolve())]
    assert len(synced) == 1 and synced[0].data.tags["tasnet.complete"] == "true"


def test_tracking_none_makes_the_callback_a_no_op(tmp_path):
    from hydra import compose, initialize_config_dir

    from tasnet_sweep.cli import CONF_DIR
    from tasnet_sweep.config import register_configs
    from tasnet_sweep.tracking.callback import MlflowSweep

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", return_hydra_config=True,
                      overrides=["tracking=none", f"hydra.sweep.dir={tmp_path / 'sweep'}"])
    assert cfg.hydra.callbacks.mlflow._target_ == "tasnet_sweep.tracking.callback.MlflowSweep"
    MlflowSweep().on_multirun_start(cfg)
    MlflowSweep().on_multirun_end(cfg)
    assert not (tmp_path / "sweep").exists()


def test_params_put_knobs_first_and_respect_mlflow_limits():
    flat = flatten_config({"compiler": {"backend": "estimate", "calibration": {"count": 16}},
                           "model": {"name": "x", "bn": 64, "n_filters": 128,
                                     "truncate_k_blocks": None},
                           "tiling": {"host_ops": ["norm", "overlap_add"]},
                           "note": "y" * (MAX_PARAM_VALUE + 50)})
    keys = list(flat)
    assert keys[:3] == ["model.n_filters", "model.bn", "model.truncate_k_blocks"]
    assert flat["compiler.calibration.count"] == "16" and flat["model.truncate_k_blocks"] == "null"
    assert flat["tiling.host_ops"] == '["norm","overlap_add"]'
    assert len(flat["note"]) == MAX_PARAM_VALUE
    many = {f"p{i}": i for i in range(250)}
    batches = list(chunks(many, 100))
    assert [len(b) for b in batches] == [100, 100, 50]


def test_metrics_take_utilization_stages_and_si_snr_where_present():
    result = TrialResult.from_dict({
        "run_tag": "t", "knobs": {}, "unit": {"name": "encoder"}, "onnx_name": "encoder.onnx",
        "deploy": {}, "params": 10, "macs": 20, "seconds": 1.5,
        "export": {"parity_max_abs": 1e-7},
        "compile": {"backend": "estimate", "evidence": "estimate",
                    "stages": [{"name": "translate", "ok": True, "seconds": 0.2},
                               {"name": "compile", "ok": None, "seconds": 0.0}],
                    "metrics": {"util_memory": 0.5, "est_flow": "single", "est_contexts": 2}},
        "runtime": {"si_snr_db": 17.5}})  # added by another tool: kept, and its SI-SNR logged
    assert result.extra == {"runtime": {"si_snr_db": 17.5}}
    m = trial_metrics(result)
    assert m["params"] == 10 and m["util_memory"] == 0.5 and m["est_contexts"] == 2
    assert m["stage_translate_seconds"] == 0.2 and "stage_compile_seconds" not in m
    assert m["runtime.si_snr_db"] == 17.5 and "est_flow" not in m


@pytest.mark.parametrize("override, expected", [
    ("tracking.tracking_uri=./mlruns", "tracking.tracking_uri='./mlruns' is invalid"),
    ("tracking.backend=wandb", "tracking.backend='wandb' is invalid"),
])
def test_bad_tracking_settings_are_named(override, expected):
    problems = validate(compose_cfg(*SMALL, override))
    assert any(p.startswith(expected) for p in problems), problems


def test_experiment_is_named_after_the_study_or_experiment_else_a_fixed_default():
    from hydra import compose, initialize_config_dir

    from tasnet_sweep.cli import CONF_DIR
    from tasnet_sweep.tracking.mlflow_store import experiment_name

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        def name(*overrides):
            return experiment_name(compose(config_name="config", overrides=list(overrides),
                                           return_hydra_config=True))

        assert name() == "tasnet_sweep"
        assert name("+experiment=prefix_ramp") == "prefix_ramp"
        assert name("search=blocks_width") == "blocks_width"
        assert name("search=blocks_width", "tracking.experiment=mine") == "mine"


@pytest.mark.slow
def test_a_resumed_frontier_search_logs_into_its_first_parent(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["-m", "search=encoder_width", "search.plot=false", f"tracking.tracking_uri={uri}",
            f"compiler.cache_dir={tmp_path / 'cache'}"]
    for n, extra in enumerate((["search.max_trials=2"], [], [])):
        proc = run_cli([*args, *extra, f"hydra.sweep.dir=s{n}"], tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
    runs = _runs(uri, "encoder_width")
    parents = [r for r in runs if r.data.tags.get("tasnet.kind") == "sweep"]
    children = [r for r in runs if r.data.tags.get("tasnet.kind") == "trial"]
    assert len(parents) == 1, [p.data.tags.get("sweep_dir") for p in parents]
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.data.tags["tasnet.study"].endswith(
        "::encoder_width")
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert parent.data.params["sweep.search.knobs"].startswith('{"model.n_filters"')
    assert parent.data.metrics["frontier_exact"] == 1.0 and parent.data.metrics["compiles"] == 0
    assert parent.data.tags["sweep_dir"].endswith("s2")  # the last sweep that used it


def test_the_compare_plot_shows_pass_and_fail_at_one_size_and_parameter_free_units(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from tasnet_sweep.commands import compare

    rows = [{"sweep": "s", "params": 0, "verdict": "pass", "evidence": "estimate"},
            {"sweep": "s", "params": 0, "verdict": "fail", "evidence": "estimate"},
            {"sweep": "s", "params": 1024, "verdict": "pass", "evidence": "real"}]
    drawn = []
    original = plt.Axes.scatter

    def record(ax, x, y, **kw):
        drawn.append((x, y))
        return original(ax, x, y, **kw)

    plt.Axes.scatter = record
    try:
        png = compare.plot(rows, tmp_path / "compare.png")
    finally:
        plt.Axes.scatter = original
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(drawn) == 3 and drawn[0][0] == 0  # the parameter-free unit is on the plot
    assert drawn[0][1] != drawn[1][1]  # pass and fail of one size apart, both visible
