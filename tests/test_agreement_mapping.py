"""Which recorded rows agreement can rebuild as a graph: the public table, the runbook's fine
parts, a user's own summary.tsv; a row it cannot map is counted and named, never dropped."""

import csv
import re
from collections import Counter
from pathlib import Path

import pytest
from helpers import SMALL, run_cli

from tasnet_sweep.commands import agreement
from tasnet_sweep.commands.agreement import (
    DEFAULT_TSV,
    UNIT_RECIPES,
    NotMapped,
    PublicRow,
    evaluate,
    load_outcomes,
    map_public,
    unit_for,
)
from tasnet_sweep.compile.estimate.profile import load_profile
from tasnet_sweep.model.catalog import UNIT_NAMES
from tasnet_sweep.outcome_table import read_table

HEADER = ("case", "module", "layers", "in_chan", "out_chan", "latent_width", "time_len",
          "model_config", "har_success", "hef_success")
#: the bring-up's knobs at a small size (N=32, B=16, H=32, Sc=16; 800 samples -> 99 frames)
SMALL_KNOBS = ("n_src=2 n_filters=32 bn=16 hid=32 skip=16 n_blocks=1 n_repeats=1 "
               "skip_topology=project decoder=conv1x1_head")
#: one row of each kind of fine part: (case, module, layers, in, out, width, time_len, extra
#: model_config, the mapping rule expected)
FINE_PARTS = [
    ("enc", "encoder_conv_only", "conv 1->32 kernel 16 stride 8", 1, 32, 99, 800,
     "kernel=16 stride=8", "unit=encoder_only"),
    ("masker", "masker_only", "masker", 32, 64, 99, 800, "", "unit=masker_only"),
    ("bottleneck", "masker_bottleneck", "norm, conv1x1", 32, 16, 99, 800, "",
     "unit=masker_bottleneck"),
    ("bottleneck_only", "masker_bottleneck_only", "norm, conv1x1", 32, 16, 99, 800, "",
     "unit=masker_bottleneck"),
    ("block0", "masker_tcn_block0", "conv1d block", 16, 16, 99, 800, "",
     "unit=masker_tcn_block0"),
    ("mask_head", "masker_mask_head", "act, conv1x1, sigmoid", 16, 64, 99, 800, "",
     "unit=masker_mask_head"),
    ("projector", "source_projector", "act, conv1x1, sigmoid", 16, 32, 99, 800, "",
     "unit=source_projector"),
    ("pre_mul", "decoder_pre_only", "mask multiply", 32, 32, 99, 800, "", "unit=decoder_pre"),
    ("pre_conv", "decoder_pre_only", "conv1x1", 64, 64, 99, 800, "", "1x1-conv slice"),
    ("head", "decoder_head", "conv1x1_head", 32, 16, 99, 800, "", "unit=decoder_head"),
    ("full", "hailo_convtasnet", "full model", 1, 2, 99, 800, "mask_mul=bypass", "unit=full"),
    ("plain", "plain_conv1x1", "conv1x1", 16, 16, 64, 64, "", "1x1-conv slice"),
    ("out1", "source_projector_out1", "conv1x1", 16, 32, 99, 800, "", "1x1-conv slice"),
    ("half0", "decoder_pre_half0", "conv1x1", 64, 32, 99, 800, "", "1x1-conv slice"),
    ("src1", "decoder_head_src1", "conv1x1", 64, 1, 99, 800, "", "1x1-conv slice"),
    ("sp_block", "source_projector_block", "conv1x1 (16-channel partial block)", 16, 16, 99,
     800, "block_chan=16", "partial block"),
    ("pre_block", "decoder_pre_block", "conv1x1 (16-channel partial block)", 16, 16, 99, 800,
     "block_chan=16", "partial block"),
    ("head_block", "decoder_head_block", "conv1x1 (16-channel partial block)", 16, 1, 99, 800,
     "block_chan=16", "partial block"),
]


def _table(path: Path, rows) -> Path:
    lines = ["\t".join(HEADER)]
    lines += ["\t".join(str(c) for c in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _counts(out: str) -> tuple[int, int, int, int]:
    """(evaluated, skipped, not mapped, rows) from agreement's first line."""
    m = re.search(r"(\d+) rows evaluated, (\d+) skipped, (\d+) not mapped \(of (\d+) rows\)",
                  out)
    assert m, out
    return tuple(int(g) for g in m.groups())


def _not_mapped_line(out: str) -> str:
    (line,) = [ln for ln in out.splitlines() if re.match(r"\d+ rows? not mapped", ln)]
    return line


def test_every_row_of_the_public_table_maps_by_a_named_rule():
    rows = load_outcomes(DEFAULT_TSV)
    table, _ = read_table(DEFAULT_TSV)
    assert len(rows) == len(table) == 63
    assert [r.unmapped for r in rows if r.unmapped] == []
    assert all(r.spec is not None and r.rule for r in rows)
    by_case = {r.case: r for r in rows}
    # the 64-channel partial blocks: a 64 -> 64 (a head: 64 -> 1) 1x1 conv at their width
    blocks = [r for r, t in zip(rows, table) if "64-channel partial block" in t["layers"]]
    assert len(blocks) == 38 and {r.rule for r in blocks} == {"partial block"}
    assert by_case["allocfix_block_dechead_s0_i0_w256"].spec.args == (64, 1, 256)
    # bring-up slices: the recorded 1x1 conv
    assert by_case["micro_decoder_pre_half0"].spec.args == (512, 256, 1999)
    assert by_case["micro_decoder_pre_half0"].rule == "1x1-conv slice"
    # units, with the recorded shape to check the rebuilt unit against
    assert by_case["hailo_convtasnet_k1"].rule == "unit=full"
    assert by_case["encoder"].rule == "unit=encoder_only"
    assert by_case["tdconvnet_k1"].spec.expect == (128, 1024)
    assert Counter(r.rule for r in rows) == {"partial block": 38, "1x1-conv slice": 18,
                                             "unit=norm": 2, "unit=activation": 1,
                                             "unit=conv1d_block": 1, "unit=tdconvnet": 1,
                                             "unit=encoder_only": 1, "unit=full": 1}


def test_every_unit_name_and_runbook_alias_maps_to_a_unit():
    assert unit_for("decoder_pre_only") == "decoder_pre"
    assert unit_for("encoder_conv_only") == "encoder_only"
    assert unit_for("masker_only") == "masker_only"
    assert unit_for("hailo_convtasnet") == "full"
    assert unit_for("lstm_only") is None and unit_for("source_projector_block") is None
    assert set(UNIT_RECIPES) == set(UNIT_NAMES)
    for name in UNIT_NAMES:
        spec, rule, _ = map_public(PublicRow(name, "some layers", 16, 16, 99, 800,
                                             {"n_filters": "32"}))
        assert spec.kind == ("conv1x1" if name == "decoder" else "unit"), name
        assert rule.startswith("unit=") or name == "decoder"


@pytest.mark.parametrize("module, layers, cin, cout, kv, reason", [
    ("lstm_layer", "lstm", 16, 16, {}, "not a unit of this project"),
    ("decoder_head_block", "conv1x1 (64-channel partial block)", 128, 1, {},
     "in_chan=128"),
    ("source_projector_block", "conv1x1 (64-channel partial block)", 64, 64,
     {"block_chan": "32"}, "block_chan=32"),
    ("decoder_pre_block", "conv1x1 then relu", 64, 64, {}, "name no 'conv1x1 (C-channel"),
])
def test_a_row_no_rule_fits_says_why(module, layers, cin, cout, kv, reason):
    with pytest.raises(NotMapped, match=re.escape(reason)):
        map_public(PublicRow(module, layers, cin, cout, 256, 2048, kv))


@pytest.mark.slow
def test_agreement_on_the_public_table_maps_every_row(capsys):
    assert agreement.main([]) == 0
    out = capsys.readouterr().out
    evaluated, skipped, unmapped, total = _counts(out)
    assert (evaluated, skipped, unmapped, total) == (63, 0, 0, 63)
    assert _not_mapped_line(out) == "0 rows not mapped"
    assert "partial block 38" in out and "1x1-conv slice 18" in out


@pytest.mark.slow
def test_a_table_with_one_fine_part_of_each_kind_maps(tmp_path, capsys):
    rows = [(case, module, layers, cin, cout, w, t, f"{SMALL_KNOBS} {extra}".strip(),
             "true", "true") for case, module, layers, cin, cout, w, t, extra, _ in FINE_PARTS]
    tsv = _table(tmp_path / "fine.tsv", rows)
    ev = evaluate(load_outcomes(tsv), load_profile("hailo8"))
    assert [(r.case, r.unmapped) for r in ev.unmapped] == []
    assert ev.skipped == []
    assert {v.row.case: v.row.rule for v in ev.verdicts} == {
        case: rule for case, *_, rule in FINE_PARTS}
    assert all(v.har for v in ev.verdicts)  # every rebuilt graph parses
    assert agreement.main(["--tsv", str(tsv)]) == 0
    out = capsys.readouterr().out
    assert _counts(out) == (len(FINE_PARTS), 0, 0, len(FINE_PARTS))
    assert _not_mapped_line(out) == "0 rows not mapped"


def test_rows_that_cannot_be_mapped_are_counted_and_named(tmp_path, capsys):
    tsv = _table(tmp_path / "mixed.tsv", [
        ("quiet", "plain_conv1x1", "conv1x1", 16, 16, 64, 64, "", "", ""),
        ("lstm", "lstm_layer", "lstm 16", 16, 16, 64, 64, "", "true", "true"),
        ("torn", "norm", "norm", "abc", 16, 64, 64, "norm_mode=gLN", "true", "false"),
        ("block", "decoder_head_block", "conv1x1 (64-channel partial block)", 128, 1, 64,
         64, "", "true", "true"),
    ])
    assert agreement.main(["--tsv", str(tsv)]) == 0
    out = capsys.readouterr().out
    assert _counts(out) == (0, 1, 3, 4)
    line = _not_mapped_line(out)
    assert line.startswith("3 rows not mapped: lstm (module lstm_layer: not a unit of this "
                           "project")
    names = re.findall(r"(?:: |, )(\w+) \(module (\w+): ", line)
    assert names == [("lstm", "lstm_layer"), ("torn", "norm"), ("block", "decoder_head_block")]
    assert "torn (module norm: in_chan='abc' is not a whole number >= 1)" in line
    assert "block_chan=64" in line.split("block (module", 1)[1]
    assert "skipped: quiet: no recorded outcome" in out


@pytest.mark.slow
def test_rows_whose_rebuilt_unit_is_invalid_or_misfits_are_named(tmp_path, capsys):
    tsv = _table(tmp_path / "mixed.tsv", [
        ("ok", "plain_conv1x1", "conv1x1", 16, 16, 64, 64, "", "true", "true"),
        ("badop", "norm", "norm", 16, 16, 64, 64, "norm_mode=batch", "true", "false"),
        ("badknob", "masker_only", "masker", 32, 64, 99, 800, "n_filters=32 bn=abc", "true",
         "false"),
        ("narrow", "masker_only", "masker", 16, 64, 99, 800, SMALL_KNOBS, "true", "false"),
    ])
    assert agreement.main(["--tsv", str(tsv)]) == 0  # one bad row never stops the others
    out = capsys.readouterr().out
    assert _counts(out) == (1, 0, 3, 4)
    line = _not_mapped_line(out)
    assert line.startswith("3 rows not mapped: badop (module norm: rebuilt as unit=norm: "
                           "unit.op='batch' is invalid")
    assert ("badknob (module masker_only: rebuilt as model=hailo_convtasnet unit=masker_only: "
            "the config does not compose: Error merging override model.bn=abc)") in line
    assert "narrow (module masker_only: rebuilt as model=hailo_convtasnet unit=masker_only: " \
           "the unit takes in_chan 32 where the row records 16)" in line


def test_summary_rows_of_another_project_or_a_tiled_trial_are_named(tmp_path, capsys):
    summary = tmp_path / "summary.tsv"
    summary.write_text("run_tag\tunit\ttiling\tn_filters\tbn\tin_chan\tlatent_width\t"
                       "evidence\thar_success\thef_success\tonnx_path\n"
                       "alien\tlstm\tnone\t32\t16\t32\t99\treal\ttrue\ttrue\t\n"
                       "tiled\tmasker_only\tblocked\t32\t16\t32\t99\treal\ttrue\ttrue\tunits\n"
                       "norm\tnorm\tnone\t32\t16\t16\t99\testimate\ttrue\tfalse\tgone.onnx\n")
    assert agreement.main(["--tsv", str(summary)]) == 0
    out = capsys.readouterr().out
    assert _counts(out) == (0, 1, 2, 3)
    line = _not_mapped_line(out)
    assert line.startswith("2 rows not mapped: alien (module lstm: unit 'lstm' is not a unit")
    assert "tiled (module masker_only: a tiled trial (tiling=blocked)" in line
    assert "skipped: norm: evidence=estimate is a prediction" in out


@pytest.mark.slow
def test_a_tiny_sweeps_summary_maps_every_row(tmp_path, capsys):
    units = "encoder,masker_only,norm,decoder_head,source_projector,conv1d_block"
    proc = run_cli(["-m", f"unit={units}", *SMALL, "hydra.sweep.dir=sweep", "tracking=none"],
                   tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = tmp_path / "sweep" / "summary.tsv"
    assert agreement.main(["--tsv", str(summary)]) == 0
    out = capsys.readouterr().out
    assert _counts(out) == (0, 6, 0, 6)  # the estimate's own rows are predictions
    assert out.count("evidence=estimate is a prediction") == 6

    # the same rows as if a real compiler had answered, three of their ONNX files gone
    with open(summary, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for i, row in enumerate(rows):
        row["evidence"] = "real"
        if i % 2:
            Path(row["onnx_path"]).unlink()
    real = tmp_path / "real.tsv"
    with open(real, "w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]), delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    assert agreement.main(["--tsv", str(real)]) == 0
    out = capsys.readouterr().out
    assert _counts(out) == (6, 0, 0, 6)
    assert _not_mapped_line(out) == "0 rows not mapped"
    assert "ONNX file 3" in out and "unit=masker_only 1" in out
    # rebuilt from the knob columns, each graph is the one the trial estimated
    assert "hef_success agreement: 6/6" in out and "har_success agreement: 6/6" in out


@pytest.mark.slow
def test_rows_with_only_a_har_verdict_are_built_even_when_graphs_are_passed_in(tmp_path):
    """fit_profile builds graphs for rows with a hef verdict; a HAR-only row is built too."""
    tsv = _table(tmp_path / "t.tsv", [
        ("both", "plain_conv1x1", "conv1x1", 16, 16, 64, 64, "", "true", "true"),
        ("har_only", "plain_conv1x1", "conv1x1", 16, 8, 64, 64, "", "true", ""),
    ])
    rows = load_outcomes(tsv)
    graphs = agreement.build_graphs([rows[0].spec])
    ev = evaluate(rows, load_profile("hailo8"), graphs)
    assert [v.row.case for v in ev.verdicts] == ["both", "har_only"]
    assert ev.score("har") == (2, 2) and ev.score("hef") == (1, 1)
