"""The estimate says where it is unsure: recorded brackets in the hw profile, verdict=uncertain
inside them (result.json, summary, MLflow, replay, reports), and fit_profile narrowing them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers import compose_cfg
from torch import nn

from tasnet_sweep import trial
from tasnet_sweep.commands import fit_profile
from tasnet_sweep.commands.agreement import DEFAULT_TSV, build_graphs, load_outcomes
from tasnet_sweep.compile.base import CompileOutcome, CompileRequest, Failure, StageResult
from tasnet_sweep.compile.estimate import EstimateBackend
from tasnet_sweep.compile.estimate.brackets import Bracket, derive, judge, profile_brackets
from tasnet_sweep.compile.estimate.graph import Layer
from tasnet_sweep.compile.estimate.profile import CONF_HW_DIR, load_profile, profile_from_node
from tasnet_sweep.compile.estimate.resources import graph_costs
from tasnet_sweep.compile.replay import outcome_from_row
from tasnet_sweep.config import ConfigError
from tasnet_sweep.export import export_unit
from tasnet_sweep.model.blocks import conv1x1
from tasnet_sweep.model.units import Unit
from tasnet_sweep.report.experiment import _rows_table, _status_lines
from tasnet_sweep.report.next_knob import next_knob
from tasnet_sweep.report.tsv import SUMMARY_COLUMNS, read_rows
from tasnet_sweep.results import read_result
from tasnet_sweep.tracking.flatten import trial_metrics, trial_tags

HW8 = load_profile("hailo8")
PASS_MAX, FAIL_MIN = 262_144, 511_744  # 256 x 1024 passed, 256 x 1999 failed (public table)


def _conv_chain(*convs: tuple[int, int, int]) -> list[Layer]:
    """Bare 1x1 convs (cin, cout, width) in a row, as the graph reader would give them."""
    cin, _, width = convs[0]
    layers = [Layer("n/input_layer1", "input_layer", "input", [], [], [], [(1, width, cin)])]
    for i, (ci, co, w) in enumerate(convs, 1):
        layers.append(Layer(f"n/conv{i}", "conv", "conv", [], [], [(1, w, ci)], [(1, w, co)],
                            kernel=(1, 1), weights=ci * co))
    return layers


def _judged(*convs, hw=HW8):
    return judge(graph_costs(_conv_chain(*convs), hw), hw)


# -- 1. the brackets in the profile --------------------------------------------------------------

def test_hailo8_brackets_are_the_public_tables_and_say_so():
    assert profile_brackets(HW8) == {"conv": Bracket("conv", PASS_MAX, FAIL_MIN),
                                     "aux": Bracket("aux", None, 131_072)}
    text = (CONF_HW_DIR / "hailo8.yaml").read_text()
    conv = next(line for line in text.splitlines() if line.strip().startswith("conv:"))
    assert "PUBLIC" in conv and "allocfix_temporal_source_out0_w1024" in conv and "encoder" in conv
    assert "dfc_outcomes_public.tsv" in next(line for line in text.splitlines()
                                             if line.startswith("row_brackets:"))
    # brackets are one arch's evidence: no default, and a profile without outcomes has none
    # (its empty mapping is not merged with another's)
    assert profile_from_node({}).row_brackets == ()
    assert load_profile("hailo8l").row_brackets == ()
    assert compose_cfg("hw=hailo8l").hw.row_brackets == {}
    hash(HW8)  # still a frozen, hashable profile


@pytest.mark.parametrize("brackets, words", [
    ({"conv": [600, 500]}, ["hw.row_brackets.conv=[600, 500]", "below"]),
    ({"dw": [1, 2]}, ["hw.row_brackets.dw", "conv, aux"]),
    ({"conv": [0, 5]}, ["hw.row_brackets.conv=[0, 5]", "whole number >= 1 or null"]),
])
def test_a_bad_bracket_is_one_line_naming_it(brackets, words):
    with pytest.raises(ConfigError) as exc:
        profile_from_node({"arch": "hailo8", "row_brackets": brackets})
    assert len(exc.value.problems) == 1 and all(w in exc.value.problems[0] for w in words)


@pytest.mark.slow
def test_deriving_from_the_public_table_gives_the_hailo8_brackets():
    rows = load_outcomes(DEFAULT_TSV)
    graphs = build_graphs([r.spec for r in rows if r.spec is not None])
    found = derive(fit_profile.observations(rows, graphs, HW8, DEFAULT_TSV))
    assert found.brackets == profile_brackets(HW8)
    assert found.pass_case["conv"] == "allocfix_temporal_source_out0_w1024"
    assert found.fail_case == {"conv": "encoder", "aux": "norm_affine"}
    # the full model fails with both families over what is known to fit: it bounds neither
    assert found.ambiguous == ["hailo_convtasnet_k1 (aux, conv)"] and not found.conflicts


# -- 2. the estimate's verdict -------------------------------------------------------------------

@pytest.mark.parametrize("width, verdict, point", [
    (1024, "pass", "pass"),  # 262,144 B: recorded passing
    (1100, "uncertain", "pass"),  # inside the bracket, under the FITTED cap
    (1600, "uncertain", "fail"),  # inside the bracket, over the FITTED cap
    (1999, "fail", "fail"),  # 511,744 B: recorded failing
])
def test_inside_the_bracket_is_uncertain_outside_the_point_verdict_stands(width, verdict, point):
    j = _judged((256, 256, width))
    assert (j.verdict, j.point.verdict) == (verdict, point)
    if verdict == "uncertain":
        rec = j.record()
        assert rec["family"] == "conv" and rec["value"] == 256 * width
        assert (rec["pass_max"], rec["fail_min"]) == (PASS_MAX, FAIL_MIN)
        assert rec["layer"] == "n/conv1" and rec["point_verdict"] == point
    else:
        assert j.record() is None and j.alloc is j.point


def test_without_brackets_the_estimate_is_the_point_estimate():
    bare = HW8.replace(row_brackets={})
    for width in (1100, 1600):
        j = _judged((256, 256, width), hw=bare)
        assert j.verdict == j.point.verdict != "uncertain"


def test_something_that_fails_outright_is_a_fail_named_by_that_layer():
    j = _judged((256, 256, 1600), (256, 512, 1600))  # 409,600 B inside, 819,200 B past it
    assert j.verdict == "fail" and j.point.layer == "n/conv1"
    assert j.alloc.layer == "n/conv2" and "Agent infeasible" in j.alloc.message


def test_verdicts_along_a_width_ladder_go_pass_then_uncertain_then_fail():
    order = {"pass": 0, "uncertain": 1, "fail": 2}
    seen = [order[_judged((256, 256, w)).verdict] for w in range(900, 2200, 50)]
    assert seen == sorted(seen) and set(seen) == {0, 1, 2}


@pytest.fixture(scope="module")
def inside_onnx(tmp_path_factory):
    """A bare 256 -> 256 1x1 conv at width 1500: 384,000 B, inside the conv bracket."""
    tmp = tmp_path_factory.mktemp("inside")
    unit = Unit("c", nn.Conv2d(256, 256, 1), [("input", [1, 256, 1, 1500])], ["output"], "c")
    export_unit(unit, tmp / "c.onnx")
    return unit, tmp / "c.onnx"


def test_the_backend_outcome_of_an_uncertain_config(inside_onnx, tmp_path):
    unit, path = inside_onnx
    out = EstimateBackend(None, HW8.as_dict()).compile(
        CompileRequest("c", "net", path, unit.inputs, unit.outputs, tmp_path))
    assert (out.verdict, out.evidence, out.failure) == ("uncertain", "estimate", None)
    assert out.har_success is True and out.hef_success is None  # no answer, not a fail
    assert out.bracket["value"] == 384_000 and out.bracket["point_verdict"] == "pass"
    log = out.stage("compile").log
    assert "UNCERTAIN" in log and "Successful Mapping" not in log
    assert all("[estimate]" in line for line in log.splitlines() if line.strip())
    report = Path(out.report_path).read_text()
    assert "\tUNCERTAIN\testimate" in report
    again = CompileOutcome.from_dict(json.loads(json.dumps(out.as_dict())))
    assert again.verdict == "uncertain" and again.as_dict()["verdict"] == "uncertain"


def test_a_trial_inside_a_bracket_says_so_in_result_summary_and_tracking(tmp_path):
    # the encoder's conv: 256 filters x 1124 frames = 287,744 B, inside the conv bracket
    cfg = compose_cfg("unit=encoder_only", "model.n_filters=256", "model.time_len=9000",
                      f"compiler.cache_dir={tmp_path / 'cache'}")
    result = trial.run(cfg, tmp_path / "run", tmp_path / "summary.tsv")
    assert result.verdict == "uncertain"
    stored = read_result(tmp_path / "run" / "result.json")
    assert stored.compile.verdict == "uncertain" and stored.compile.bracket["value"] == 287_744
    row = read_rows(tmp_path / "summary.tsv")[0]
    assert list(row) == list(SUMMARY_COLUMNS)
    assert (row["verdict"], row["evidence"], row["hef_success"]) == ("uncertain", "estimate", "")
    assert (row["est_bracket_family"], row["est_bracket_row_bytes"], row["est_bracket_pass_max"],
            row["est_bracket_fail_min"]) == ("conv", "287744", str(PASS_MAX), str(FAIL_MIN))
    assert row["est_point_verdict"] == "pass" and row["failure_family"] == ""
    assert "UNCERTAIN (evidence=estimate" in trial.one_line(result)
    tags, metrics = trial_tags(result, str(tmp_path / "run"), None), trial_metrics(result)
    assert tags["verdict"] == "uncertain" and tags["est_bracket_family"] == "conv"
    assert tags["est_point_verdict"] == "pass" and tags["evidence"] == "estimate"
    assert "hef_pass" not in metrics and metrics["est_bracket_row_bytes"] == 287_744
    assert metrics["est_bracket_fail_min"] == FAIL_MIN
    # the same trial again: from the caches, still uncertain
    assert trial.run(cfg, tmp_path / "again").verdict == "uncertain"


def _outcome(verdict: str, bracket: dict | None = None) -> dict:
    ok = {"pass": True, "fail": False}.get(verdict)
    failure = {"family": "allocator_infeasible", "stage": "compile"} if verdict == "fail" else None
    return CompileOutcome("estimate", "estimate",
                          [StageResult("translate", True), StageResult("optimize", True),
                           StageResult("compile", ok)],
                          failure and Failure(**failure), bracket=bracket).as_dict()


@pytest.mark.parametrize("verdicts, expected", [
    (["pass", "uncertain"], "uncertain"), (["uncertain", "fail"], "fail"),
    (["pass", "pass"], "pass")])
def test_a_tiled_plan_is_uncertain_when_a_unit_is_and_none_fails(verdicts, expected):
    bracket = {"family": "conv", "value": 300_000, "pass_max": PASS_MAX, "fail_min": FAIL_MIN}
    units = [{"unit": f"u{i}", "compile": _outcome(v, bracket if v == "uncertain" else None)}
             for i, v in enumerate(verdicts)]
    plan = {"units": units, "n_units": 2, "n_instances": 2, "parity_min_si_snr_db": 90.0,
            "host_share": {}}
    out = trial._tiled_outcome(EstimateBackend(), plan)
    assert out.verdict == expected
    if expected == "uncertain":
        assert out.bracket["unit"] == "u1" and out.hef_success is None


def test_replay_of_an_uncertain_summary_row_is_uncertain():
    row = {"run_tag": "t", "verdict": "uncertain", "evidence": "estimate", "har_success": "true",
           "hef_success": "", "est_bracket_family": "conv", "est_bracket_layer": "net/conv1",
           "est_bracket_row_bytes": "384000", "est_bracket_pass_max": str(PASS_MAX),
           "est_bracket_fail_min": str(FAIL_MIN), "est_point_verdict": "pass"}
    out = outcome_from_row(row, DEFAULT_TSV)
    assert (out.verdict, out.evidence, out.failure) == ("uncertain", "replay", None)
    assert out.bracket["value"] == 384_000 and out.metrics["replayed_evidence"] == "estimate"


def test_reports_show_uncertain_rows_as_neither_pass_nor_fail(tmp_path):
    rows = [{"unit": "a", "verdict": "pass", "har_success": "true", "hef_success": "true"},
            {"unit": "b", "verdict": "uncertain", "har_success": "true", "hef_success": "",
             "est_bracket_layer": "net/conv1", "est_bracket_row_bytes": "384000",
             "est_bracket_pass_max": str(PASS_MAX), "est_bracket_fail_min": str(FAIL_MIN)}]
    knob = next_knob(rows)
    assert knob.override == "compiler=hailo_dfc" and "384000" in knob.reason
    status = "\n".join(_status_lines(rows, tmp_path / "summary.tsv"))
    assert "UNCERTAIN: 1/2 compiled, no failure" in status and "FAIL" not in status
    assert "| uncertain |" in "\n".join(_rows_table(rows, []))
    failing = [*rows, {"unit": "c", "verdict": "fail", "hef_success": "false",
                       "failure_family": "allocator_infeasible", "latent_width": "2000"}]
    assert next_knob(failing).override == "tiling=temporal"  # the failure decides, as before


# -- 3. fit_profile narrows the brackets ---------------------------------------------------------

def _summary(tmp_path, rows) -> str:
    """A real sweep's summary.tsv of bare 1x1 convs 256 -> cout at width (ONNX files kept)."""
    lines = []
    for tag, cout, width, hef, family in rows:
        path = tmp_path / f"{tag}.onnx"
        export_unit(Unit("conv1x1", conv1x1(256, cout), [("input", [1, 256, 1, width])],
                         ["output"], "1x1"), path)
        exc = "BackendAllocatorException" if hef == "false" else ""
        lines.append(f"{tag}\tsource_projector\t256\t{width}\treal\ttrue\t{hef}\t{exc}\t"
                     f"{family}\t{path.name}")
    summary = tmp_path / "summary.tsv"
    summary.write_text("run_tag\tunit\tin_chan\tlatent_width\tevidence\thar_success\t"
                       "hef_success\texception_type\tfailure_family\tonnx_path\n"
                       + "\n".join(lines) + "\n")
    return str(summary)


def test_fit_profile_on_a_real_sweep_narrows_the_brackets_and_writes_them(tmp_path, capsys):
    summary = _summary(tmp_path, [
        ("small", 256, 600, "true", ""),  # 153,600 B: below the known pass, no news
        ("pass1100", 256, 1100, "true", ""),  # 281,600 B passed: the pass bound grows
        ("fail1800", 256, 1800, "false", "allocator_infeasible"),  # 460,800 B: fail shrinks
        ("slow1500", 256, 1500, "false", "allocator_timeout"),  # says nothing about size
    ])
    out_yaml = tmp_path / "cal.yaml"
    assert fit_profile.main(["--tsv", summary, "--out", str(out_yaml), "--brackets-only"]) == 0
    printed = capsys.readouterr().out
    assert f"conv: [281600, 460800] (was [{PASS_MAX}, {FAIL_MIN}])" in printed
    assert "aux: [null, 131072] (kept)" in printed
    cal = load_profile(out_yaml)
    assert profile_brackets(cal)["conv"] == Bracket("conv", 281_600, 460_800)
    assert cal.fitted() == HW8.fitted()  # --brackets-only keeps the FITTED constants
    text = out_yaml.read_text()
    assert re.search(r"^  conv: \[281600, 460800\] +# RECORDED: pass 281,600 B \(pass1100\); "
                     r"fail 460,800 B \(fail1800\)$", text, re.M)
    assert "kept from the base profile" in text  # aux's fail bound came from the base
    assert _judged((256, 256, 1100), hw=cal).verdict == "pass"
    assert _judged((256, 256, 1800), hw=cal).verdict == "fail"
    assert _judged((256, 256, 1400), hw=cal).verdict == "uncertain"


def test_rows_that_cross_the_base_bracket_keep_it_and_are_reported(tmp_path, capsys):
    summary = _summary(tmp_path, [("big", 256, 2100, "true", "")])  # 537,600 B passed
    out_yaml = tmp_path / "cal.yaml"
    assert fit_profile.main(["--tsv", summary, "--out", str(out_yaml), "--brackets-only"]) == 0
    assert "conflicts (a pass at or above a fail" in capsys.readouterr().out
    assert profile_brackets(load_profile(out_yaml))["conv"] == Bracket("conv", PASS_MAX, FAIL_MIN)
    fresh = tmp_path / "fresh.yaml"
    assert fit_profile.main(["--tsv", summary, "--out", str(fresh), "--brackets-only",
                             "--fresh-brackets"]) == 0
    assert profile_brackets(load_profile(fresh)) == {"conv": Bracket("conv", 537_600, None)}
