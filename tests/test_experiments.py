"""Experiments: ladder order and stopping, the next-knob rule, and reports that match their TSV."""

import csv
import re

import pytest
from helpers import compose_cfg, run_cli

from tasnet_sweep.experiments.ladder import LadderState, expand_ramp, ladder_rungs, problems
from tasnet_sweep.report.experiment import write_report
from tasnet_sweep.report.next_knob import next_knob
from tasnet_sweep.report.tsv import format_rows, read_rows


def test_ramp_walks_each_step_on_top_of_the_last_values():
    rungs = expand_ramp([{"model.truncate_k_blocks": [1, 2]},
                         {"model.truncate_k_blocks": [None, None], "model.n_blocks": [4, 8]},
                         {"model.n_repeats": [2]}])
    assert rungs == [
        ["model.truncate_k_blocks=1"], ["model.truncate_k_blocks=2"],
        ["model.truncate_k_blocks=null", "model.n_blocks=4"],
        ["model.truncate_k_blocks=null", "model.n_blocks=8"],
        ["model.truncate_k_blocks=null", "model.n_blocks=8", "model.n_repeats=2"]]


def test_explicit_rungs_come_first_and_bad_ladders_are_named():
    assert ladder_rungs([["unit=norm"]], [{"model.bn": [8]}]) == [["unit=norm"], ["model.bn=8"]]
    assert "stop_on='maybe'" in problems([["a=1"]], [], "maybe")[0]
    assert "ramp[0]" in problems([], [{"a": [1, 2], "b": [1]}], None)[0]
    assert "both empty" in problems([], [], None)[0]


@pytest.mark.parametrize("stop_on,verdicts,stopped", [
    ("pass", ["fail", "fail", "pass", "pass"], 2),
    ("fail", ["pass", "fail", "fail"], 1),
    (None, ["pass", "fail"], None),
])
def test_ladder_stops_at_the_first_matching_verdict(stop_on, verdicts, stopped):
    state = LadderState([[f"r{i}"] for i in range(len(verdicts))], stop_on)
    ran = 0
    for v in verdicts:
        ran += 1
        if state.record(v):
            break
    assert state.stopped_at == stopped
    assert ran == (len(verdicts) if stopped is None else stopped + 1)


def _row(**kw):
    base = {"unit": "full", "har_success": "true", "hef_success": "false", "tiling": "none",
            "latent_width": "1999", "time_len": "16000", "norm": "gLN", "skip_topology": "sum"}
    return {**base, **kw}


@pytest.mark.parametrize("row,expected", [
    (_row(failure_family="missing_sdk"), "compiler=estimate"),
    (_row(failure_family="unsupported_kernel"), "model.decoder=conv1x1_head"),
    (_row(failure_family="allocator_infeasible", first_failing_layer_family="deconv"),
     "model.decoder=conv1x1_head"),
    (_row(failure_family="parse_unsupported_op", first_failing_layer_family="norm"),
     "model.norm=affine"),
    (_row(failure_family="parse_unsupported_op", first_failing_layer_family="activation"),
     "model.activation=relu"),
    (_row(failure_family="quantization"), "model.norm=cLN"),
    (_row(failure_family="quantization", norm="cLN"), "model.norm=affine"),
    (_row(failure_family="quantization", norm="affine"), "model.activation=relu"),
    (_row(failure_family="calibration_shape"), "compiler.calibration.input_length_policy=pad"),
    (_row(failure_family="reshape_failed"), "model.skip_topology=project"),
    (_row(failure_family="allocator_infeasible"), "tiling=temporal"),
    (_row(failure_family="memory_capacity", tiling="temporal"), "tiling=blocked"),
    (_row(failure_family="allocator_infeasible", tiling="blocked", channel_block="64"),
     "tiling.channel_block=32"),
    (_row(failure_family="allocator_infeasible", tiling="blocked", channel_block="16",
          tile_width="256"), "tiling.tile_width=128"),
    (_row(failure_family="allocator_infeasible", latent_width="200", unit="norm"),
     "unit.width=100"),
    (_row(failure_family="allocator_timeout"), "compiler.allocator_timeout=60m"),
    (_row(failure_family="timeout"), "compiler.timeout_s=7200"),
    (_row(failure_family="deploy_limit", tiling="blocked", channel_block="32"),
     "tiling.channel_block=64"),
    (_row(failure_family="deploy_limit", tiling="temporal"), "tiling=none"),
    (_row(failure_family="unknown", unit="encoder"), "model.time_len=8000"),
    (_row(hef_success="true"), "model.time_len=32000"),
])
def test_next_knob_rule_gives_one_change_per_failure_family(row, expected):
    assert next_knob([row]).override == expected


def test_next_knob_follows_the_first_failing_row_in_run_order():
    rows = [_row(hef_success="true"), _row(failure_family="quantization"),
            _row(failure_family="timeout")]
    assert next_knob(rows).override == "model.norm=cLN"


def _write_summary(path, rows):
    path.write_text(format_rows(rows))


def test_report_statements_match_the_tsv(tmp_path):
    rows = [_row(unit="norm", hef_success="true", evidence="estimate", bn="8"),
            _row(unit="encoder", hef_success="false", evidence="estimate", bn="16",
                 failure_family="allocator_infeasible", first_failing_layer="conv1",
                 first_failing_layer_family="conv"),
            _row(unit="decoder", har_success="false", hef_success="false", evidence="estimate",
                 bn="32", failure_family="parse_unsupported_op")]
    _write_summary(tmp_path / "s.tsv", rows)
    text = write_report(tmp_path, "s.tsv", "gate").read_text()
    assert text.splitlines()[2].startswith("**Evidence:** estimate")
    assert "FAIL: 2/3 parsed" in text
    assert "FAIL: 1/3 compiled. First failing layer family: **conv**" in text
    assert "`tiling=temporal`" in text  # encoder is the first failure: width 1999 > 256
    table = [ln for ln in text.splitlines() if re.match(r"\| \d+ \|", ln)]
    assert len(table) == 3
    assert (tmp_path / "report.png").stat().st_size > 1000


def test_report_names_the_replay_source(tmp_path):
    _write_summary(tmp_path / "s.tsv", [_row(hef_success="true", evidence="replay")])
    text = write_report(tmp_path, "s.tsv", "gate",
                        {"backend": "replay", "replay_tsv": "/data/real.tsv"}).read_text()
    assert "replay: recorded outcomes played back" in text and "/data/real.tsv" in text
    assert "PASS: 1/1 compiled" in text


def test_the_report_callback_writes_the_report_when_the_multirun_ends(tmp_path, caplog):
    from tasnet_sweep.report.callback import ExperimentReport

    cfg = compose_cfg("+experiment=module_gate", f"hydra.sweep.dir={tmp_path}",
                      return_hydra_config=True)
    report = ExperimentReport("module_gate")
    report.on_multirun_end(cfg)  # nothing ran: no summary, no report, one warning
    assert not (tmp_path / "report.md").exists()
    assert any("no report written" in r.message for r in caplog.records)
    _write_summary(tmp_path / cfg.summary_name, [_row(hef_success="true", evidence="estimate")])
    report.on_multirun_end(cfg)
    assert "PASS: 1/1 compiled" in (tmp_path / "report.md").read_text()


@pytest.mark.slow
def test_ladder_experiment_stops_at_the_first_failure_and_reports_it(tmp_path):
    """prefix_ramp over replayed outcomes: rung 3 fails, so rungs 4-7 never run."""
    recorded = tmp_path / "recorded.tsv"
    cols = ["unit", "in_chan", "latent_width", "n_blocks", "n_repeats", "truncate_k_blocks",
            "har_success", "hef_success", "exception_type", "failure_head"]
    table = [["full", 1, 127, 8, 1, 1, "true", "true", "", ""],
             ["full", 1, 127, 8, 1, 2, "true", "true", "", ""],
             ["full", 1, 127, 4, 1, "", "true", "false", "BackendAllocatorException",
              "No successful assignments: dw3 errors: Agent infeasible"]]
    with open(recorded, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(cols)
        w.writerows(table)
    proc = run_cli(["-m", "+experiment=prefix_ramp", "compiler=replay",
                    f"compiler.replay_tsv={recorded}", "hydra.sweep.dir=sweep",
                    "model.n_filters=32", "model.bn=16", "model.hidden=32", "model.skip=16"],
                   tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_rows(tmp_path / "sweep" / "prefix_ramp_hef_summary.tsv")
    assert [r["hef_success"] for r in rows] == ["true", "true", "false"]
    report = (tmp_path / "sweep" / "report.md").read_text()
    assert "stopped at rung 3 of 7 (first fail)" in report
    assert "replay" in report.splitlines()[2]
    assert "First failing layer family: **dw**" in report


def test_a_bad_rung_stops_the_ladder_before_anything_runs(tmp_path):
    proc = run_cli(["-m", "+experiment=module_gate", "hydra.sweep.dir=sweep",
                    "model.bn=0"], tmp_path)
    assert proc.returncode == 2
    assert "model.bn=0" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "sweep").exists()
