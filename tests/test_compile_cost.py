"""Compile cost as a figure: each trial's compile seconds (recorded, and spent now), the
compile-hours a search spent and saved by inference, and replay that waits recorded durations
scaled by ``compiler.replay_time_scale``."""

from __future__ import annotations

import time

import numpy as np
import optuna
import pytest
import yaml
from helpers import SMALL, compose_cfg, run_cli

from tasnet_sweep import trial
from tasnet_sweep.checks import validate
from tasnet_sweep.report.tsv import format_rows, read_rows
from tasnet_sweep.search import driver
from tasnet_sweep.search.cost import PRICING_RULE, compile_cost
from tasnet_sweep.search.frontier import frontier_markdown, summarize
from tasnet_sweep.search.lattice import Knowledge, Lattice
from tasnet_sweep.search.study import FrontierStudy, open_storage
from tasnet_sweep.tracking.mlflow_store import sweep_cost_tags, sweep_metrics


def _run(tmp_path, name, *overrides, summary="summary.tsv"):
    cfg = compose_cfg(*SMALL, "tracking=none", f"compiler.cache_dir={tmp_path / 'cache'}",
                      *overrides)
    return trial.run(cfg, tmp_path / name, tmp_path / summary)


# -- a trial's compile time ------------------------------------------------------------------
def test_a_trial_records_its_compile_seconds_and_a_cache_hit_spends_none(tmp_path):
    first = _run(tmp_path, "a", "unit=encoder")
    second = _run(tmp_path, "b", "unit=encoder")
    recorded = round(sum(s.seconds for s in first.compile.stages), 4)
    assert first.summary["compile_seconds"] == recorded > 0
    assert first.summary["compile_seconds_spent"] == recorded
    assert second.summary["cache_hit"]
    assert second.summary["compile_seconds"] == recorded  # the original compile's time
    assert second.summary["compile_seconds_spent"] == 0
    job = second.job_result().as_dict()
    assert (job["compile_seconds"], job["compile_seconds_spent"]) == (recorded, 0)
    rows = read_rows(tmp_path / "summary.tsv")
    assert [float(r["compile_seconds_spent"]) for r in rows] == [recorded, 0]


# -- replay: recorded durations, waited scaled ---------------------------------------------
def _recorded_summary(tmp_path, **cells) -> str:
    """A summary.tsv of one masker_bottleneck trial, its cells set to ``cells`` (a column set
    to None is dropped, as in a summary written before it existed)."""
    _run(tmp_path, "rec", "unit=masker_bottleneck", summary="recorded.tsv")
    rows = read_rows(tmp_path / "recorded.tsv")
    columns = [c for c in rows[0] if cells.get(c, "") is not None]
    for row in rows:
        row.update({k: v for k, v in cells.items() if v is not None})
    path = tmp_path / "replayed_from.tsv"
    path.write_text(format_rows(rows, columns))
    return str(path)


def _replay(tmp_path, tsv, scale):
    t0 = time.perf_counter()
    result = _run(tmp_path, f"replay{scale}", "unit=masker_bottleneck", "compiler=replay",
                  f"compiler.replay_tsv={tsv}", "compiler.cache=false",
                  f"compiler.replay_time_scale={scale}")
    return result, time.perf_counter() - t0


def test_replay_waits_the_recorded_duration_scaled_and_records_it_unscaled(tmp_path):
    tsv = _recorded_summary(tmp_path, compile_seconds="20")
    result, wall = _replay(tmp_path, tsv, 0.05)
    assert result.summary["evidence"] == "replay"
    assert sum(s.seconds for s in result.compile.stages) == pytest.approx(20)
    assert result.summary["compile_seconds"] == result.summary["compile_seconds_spent"] == 20
    assert wall >= 20 * 0.05  # no upper bound: the machine is busy


def test_replay_falls_back_to_the_trial_seconds_and_waits_nothing_by_default(tmp_path):
    tsv = _recorded_summary(tmp_path, compile_seconds=None, seconds="7.5")
    result, _ = _replay(tmp_path, tsv, 0)
    assert result.summary["compile_seconds"] == pytest.approx(7.5)
    public = _run(tmp_path, "public", "compiler=replay", "compiler.replay_time_scale=0.5",
                  "compiler.cache=false", "unit=source_projector", "model.n_filters=64",
                  "model.skip=64", "unit.width=256")
    assert public.summary["compile_seconds"] == 0  # the public table records no durations


@pytest.mark.parametrize("value", ["-1", "2", "nan", "inf"])
def test_a_bad_replay_time_scale_is_one_problem_naming_the_value_and_the_range(value):
    problems = validate(compose_cfg("compiler=replay", f"compiler.replay_time_scale={value}"))
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"compiler.replay_time_scale={float(value)!r} is invalid")
    assert "(0, 1]" in problems[0]


def test_a_bad_replay_time_scale_stops_the_cli_with_one_line(tmp_path):
    proc = run_cli(["compiler=replay", "compiler.replay_time_scale=-1"], cwd=tmp_path)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "compiler.replay_time_scale=-1.0" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr


# -- a search's compile-hours ----------------------------------------------------------------
def test_inferred_configs_are_priced_at_the_nearest_compiles_of_their_verdict():
    lat = Lattice.from_spec({"model.bn": [8, 16, 32], "model.hidden": [8, 16, 32]})
    k = Knowledge(lat)
    k.record((0, 2), True)
    k.record((2, 0), True)
    k.record((2, 2), False)
    records = {(0, 2): {"compile_seconds": 10.0, "compile_seconds_spent": 10.0,
                        "evidence": "real"},
               (2, 0): {"compile_seconds": 30.0, "compile_seconds_spent": 0.0,
                        "cache_hit": True, "evidence": "real"},
               (2, 2): {"compile_seconds": 500.0, "compile_seconds_spent": 500.0,
                        "evidence": "real"}}
    cost = compile_cost(lat, k, records, wall_clock_s=60.0)
    # (0,1) nearest (0,2): 10; (1,0) nearest (2,0): 30; (0,0) ties both: median 20; nothing
    # fails by inference, (1,1), (1,2), (2,1) stay unknown
    assert (cost.inferred, cost.priced, cost.saved_s) == (3, 3, 60.0)
    assert (cost.spent_s, cost.cache_hits, cost.compiled) == (510.0, 1, 3)
    res = cost.results()
    assert res["compile_hours_spent"] == pytest.approx(510 / 3600, rel=1e-5)
    assert res["compile_hours_saved_by_inference"] == pytest.approx(60 / 3600, rel=1e-5)
    assert res["wall_clock_hours"] == pytest.approx(60 / 3600, rel=1e-5)
    assert res["compile_cost"]["saved_rule"] == PRICING_RULE


def _timed_launcher(lat, passes, seconds):
    def launch(points):
        return [{"verdict": "pass" if passes(p) else "fail", "evidence": "estimate",
                 "params": 1000 + sum(p), "macs": 5000 + sum(p), "cache_hit": False,
                 "failure_family": None if passes(p) else "allocator_infeasible",
                 "run_dir": None, "compile_seconds": seconds(p),
                 "compile_seconds_spent": seconds(p)} for p in points]
    return launch


def test_a_search_reports_the_hours_its_study_spent_and_saved(tmp_path):
    lat = Lattice.from_spec({"model.n_blocks": [1, 2, 3, 4], "model.bn": [8, 16, 32, 64]})
    study = FrontierStudy(lat, "c", str(tmp_path / "c.journal"))
    state = driver.run(lat, study, _timed_launcher(lat, lambda p: sum(p) <= 3,
                                                   lambda p: 60.0 * (1 + sum(p))))
    fr = summarize(lat, state.knowledge, state.records, wall_clock_s=5.0)
    cost = fr.cost
    stored = optuna.load_study(study_name="c", storage=open_storage(str(tmp_path / "c.journal")))
    compiled = [t for t in stored.trials if t.user_attrs.get("compiled")]
    assert cost.compiled == len(compiled) < lat.size
    assert cost.spent_s == pytest.approx(sum(t.user_attrs["compile_seconds_spent"]
                                             for t in compiled))
    assert cost.inferred == lat.size - len(compiled) and cost.saved_s > 0
    md = frontier_markdown(fr)
    assert "compile-hours spent" in md and "saved by inference" in md and PRICING_RULE in md
    assert "ESTIMATE" in md  # the estimate's run times are labelled as such


def test_the_mlflow_parent_gets_the_compile_hours(tmp_path):
    (tmp_path / "summary.tsv").write_text(format_rows([
        {"run_dir": "a", "verdict": "pass", "compile_seconds_spent": 1800},
        {"run_dir": "b", "verdict": "fail", "compile_seconds_spent": 0}]))
    assert sweep_metrics(tmp_path)["compile_hours_spent"] == pytest.approx(0.5)
    (tmp_path / "optimization_results.yaml").write_text(yaml.safe_dump({
        "exact": True, "compile_hours_spent": 2.0, "compile_hours_saved_by_inference": 3.5,
        "wall_clock_hours": 0.25,
        "compile_cost": {"note": "evidence=real: measured", "saved_rule": PRICING_RULE}}))
    metrics = sweep_metrics(tmp_path)
    assert (metrics["compile_hours_spent"], metrics["compile_hours_saved_by_inference"],
            metrics["wall_clock_hours"]) == (2.0, 3.5, 0.25)  # the study's, over the summary's
    assert metrics["compile_hours_spent_this_run"] == pytest.approx(0.5)
    assert sweep_cost_tags(tmp_path)["compile_cost.saved_rule"] == PRICING_RULE


@pytest.mark.slow
def test_a_frontier_search_reports_spent_saved_and_wall_clock_hours(tmp_path):
    sweep = tmp_path / "s"
    proc = run_cli(["-m", "hydra/sweeper=frontier", "search=encoder_width",
                    "search.study_name=cost", "model.n_filters=128,512",
                    "model.time_len=4000,16000", "tracking=none", "search.plot=false",
                    f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    journal = tmp_path / "outputs" / "optuna" / "cost.journal"
    study = optuna.load_study(study_name="cost", storage=open_storage(str(journal)))
    compiled = [t for t in study.trials if t.user_attrs.get("compiled")]
    spent = sum(t.user_attrs["compile_seconds_spent"] for t in compiled)
    assert spent > 0
    assert res["compile_hours_spent"] == pytest.approx(spent / 3600, rel=1e-4)
    assert res["inferred_recorded"] > 0 and res["compile_hours_saved_by_inference"] > 0
    assert res["wall_clock_hours"] > 0 and "estimate" in res["compile_cost"]["note"]
    md = (sweep / "frontier.md").read_text()
    assert "compile-hours spent" in md and "compile-hours saved" in md
    assert not np.isnan(res["compile_hours_saved_by_inference"])
