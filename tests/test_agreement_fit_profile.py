"""Agreement of the estimate with the public DFC outcomes, and the fit_profile round trip."""

import re
from pathlib import Path

import pytest

from tasnet_sweep.commands import agreement, fit_profile
from tasnet_sweep.commands.agreement import DEFAULT_TSV, evaluate, load_outcomes
from tasnet_sweep.compile.estimate.profile import CONF_HW_DIR, FITTED_FIELDS, load_profile
from tasnet_sweep.export import export_unit
from tasnet_sweep.model.blocks import conv1x1
from tasnet_sweep.model.units import Unit


def test_the_public_table_ships_in_the_package_with_its_provenance():
    from tasnet_sweep.resources import PACKAGE_DIR

    assert DEFAULT_TSV.is_relative_to(PACKAGE_DIR / "data")
    header = [ln for ln in DEFAULT_TSV.read_text().splitlines() if ln.startswith("#")]
    provenance = " ".join(header)
    for fact in ("3.33.0", "hw_arch=hailo8", "public ConvTasNet-to-Hailo-8 bring-up", "Feb 2026"):
        assert fact in provenance
    assert len(load_outcomes(DEFAULT_TSV)) == 63


def _scores(text: str) -> dict[str, tuple[int, int]]:
    found = {col: (int(k), int(n)) for col, k, n in
                 re.findall(r"^(har|hef)_success agreement: (\d+)/(\d+)", text, re.M)}
    assert set(found) == {"har", "hef"}, text
    return found


@pytest.mark.slow
def test_agreement_on_the_public_tsv_is_at_least_95_percent(capsys):
    assert agreement.main([]) == 0
    out = capsys.readouterr().out
    scores = _scores(out)
    k, n = scores["hef"]
    rows = [r for r in load_outcomes(DEFAULT_TSV) if r.hef is not None]
    assert n == len(rows) >= 60  # every recorded row is evaluated, none skipped
    assert k / n >= 0.95
    assert scores["har"][0] / scores["har"][1] >= 0.95
    dis = re.search(r"^disagreements: (\d+)", out, re.M)
    assert int(dis.group(1)) == (n - k) + (scores["har"][1] - scores["har"][0])
    # the fitted rule for unexplained failures is announced as a hypothesis, with its rows
    assert "HYPOTHESIS" in out and "norm_identity" in out and "activation_sigmoid" in out
    assert re.search(r"without the hypothesis.*: \d+/\d+", out)


@pytest.mark.slow
def test_every_disagreement_is_listed_with_truth_estimate_and_reason(capsys):
    assert agreement.main(["memory_unit_bytes=16384"]) == 0
    out = capsys.readouterr().out
    k, n = _scores(out)["hef"]
    assert k < n  # the perturbed profile lets too much pass
    listed = [line for line in out.splitlines() if line.startswith("  ")
              and "\thef_success\t" in line]
    assert len(listed) == n - k
    for line in listed:
        case, _, truth, est, reason = line.strip().split("\t", 4)
        assert truth == "truth=false" and est == "estimate=true" and reason.startswith("reason:")


def test_agreement_rejects_a_bad_override_in_one_line(capsys):
    assert agreement.main(["no_such_key=3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no_such_key=3" in err[0]


@pytest.mark.slow
def test_fit_profile_round_trip_recovers_agreement_and_writes_a_valid_profile(tmp_path, capsys):
    base = (CONF_HW_DIR / "hailo8.yaml").read_text()
    perturbed = re.sub(r"^memory_unit_bytes:.*$", "memory_unit_bytes: 16384  # perturbed",
                       base, flags=re.M)
    pert = tmp_path / "hailo8_perturbed.yaml"
    pert.write_text(perturbed)
    rows = load_outcomes(DEFAULT_TSV)
    before = evaluate(rows, load_profile(pert)).score("hef")

    out_yaml = tmp_path / "hw" / "hailo8_cal.yaml"
    assert fit_profile.main(["--tsv", str(DEFAULT_TSV), "--out", str(out_yaml),
                           "--base", str(pert)]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"^before: hef_success agreement: {}/{}".format(*before), printed, re.M)
    fitted = load_profile(out_yaml)  # structured schema + validate: a valid hw profile
    after = evaluate(rows, fitted).score("hef")
    assert after[0] > before[0] and after[0] / after[1] >= 0.95
    assert re.search(r"^after:  hef_success agreement: {}/{}".format(*after), printed, re.M)
    assert fitted.memory_unit_bytes != 16384
    text = out_yaml.read_text()
    assert re.search(r"^memory_unit_bytes:.*# FITTED by tasnet_sweep.commands.fit_profile", text,
                     re.M)
    assert "HYPOTHESIS" in text  # the aux rule stays labelled as one
    # everything but the fitted constants is the base profile's
    for key in ("clusters", "clock_mhz", "peak_tops", "arch"):
        assert getattr(fitted, key) == getattr(load_profile(pert), key)
    assert set(fitted.fitted()) == set(FITTED_FIELDS)


def test_fit_profile_on_a_sweep_summary_uses_its_onnx_and_skips_estimates(tmp_path, capsys):
    rows = []
    for cout, width, hef in ((64, 256, "true"), (256, 2000, "false"), (128, 700, "true")):
        path = tmp_path / f"c{cout}_{width}.onnx"
        export_unit(Unit("conv1x1", conv1x1(256, cout), [("input", [1, 256, 1, width])],
                         ["output"], "1x1"), path)
        rows.append(f"r{cout}\tsource_projector\t256\t{width}\treal\ttrue\t{hef}\t{path.name}")
    rows.append("est\tsource_projector\t256\t9999\testimate\ttrue\ttrue\tgone.onnx")
    summary = tmp_path / "summary.tsv"
    summary.write_text("run_tag\tunit\tin_chan\tlatent_width\tevidence\thar_success\t"
                       "hef_success\tonnx_path\n" + "\n".join(rows) + "\n")
    loaded = load_outcomes(summary)
    assert [r.spec.kind if r.spec else None for r in loaded] == ["onnx", "onnx", "onnx", None]
    out_yaml = tmp_path / "cal.yaml"
    assert fit_profile.main(["--tsv", str(summary), "--out", str(out_yaml)]) == 0
    printed = capsys.readouterr().out
    assert "after:  hef_success agreement: 3/3" in printed
    assert "skipped: est: evidence=estimate is a prediction" in printed
    # rows without a standalone activation/norm layer cannot constrain the hypothesis
    assert "aux_layer_memory_units: 64 -> 64 (not constrained" in printed
    load_profile(out_yaml)


@pytest.mark.parametrize("content, expected", [
    (None, "no such file"),
    ("a\tb\n1\t2\n", "lacks columns"),
    ("case\tmodule\tmodel_config\nx\tnorm\tin_chan=1\n", "lacks columns"),
])
def test_fit_profile_bad_input_is_one_line_and_exit_2(tmp_path, capsys, content, expected):
    tsv = tmp_path / "in.tsv"
    if content is not None:
        tsv.write_text(content)
    assert fit_profile.main(["--tsv", str(tsv), "--out", str(tmp_path / "o.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0]
    assert not (tmp_path / "o.yaml").exists()


def test_fit_profile_rejects_an_out_path_that_is_not_yaml(tmp_path, capsys):
    assert fit_profile.main(["--out", str(tmp_path / "o.txt")]) == 2
    assert "--out" in capsys.readouterr().err
    assert not Path(tmp_path / "o.txt").exists()


def test_fit_profile_needs_real_outcomes(tmp_path, capsys):
    summary = tmp_path / "summary.tsv"
    summary.write_text("run_tag\tunit\tin_chan\tlatent_width\tevidence\thar_success\t"
                       "hef_success\tonnx_path\n"
                       "a\tencoder\t1\t1999\testimate\ttrue\tfalse\t\n"
                       "b\tencoder\t1\t999\treplay\ttrue\ttrue\t\n")
    assert fit_profile.main(["--tsv", str(summary), "--out", str(tmp_path / "o.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no real outcome (evidence: estimate, replay)" in err[0]
    assert "only real compiles" in err[0] and not (tmp_path / "o.yaml").exists()
