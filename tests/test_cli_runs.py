"""The command line as a user runs it: a real multirun into a temporary directory."""

import json
from pathlib import Path

import pytest
from helpers import SMALL, run_cli

from tasnet_sweep.report.tsv import read_rows


@pytest.mark.slow
def test_multirun_over_bn_writes_three_rows_with_params(tmp_path):
    proc = run_cli(["-m", "model.bn=32,48,64", *[s for s in SMALL if "model.bn" not in s],
                    "hydra.sweep.dir=sweep"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = read_rows(tmp_path / "sweep" / "summary.tsv")
    assert [r["bn"] for r in rows] == ["32", "48", "64"]
    params = [int(r["params"]) for r in rows]
    assert params[0] < params[1] < params[2]
    for r in rows:
        result = json.loads((tmp_path / "sweep" / r["run_dir"].split("/sweep/")[1] /
                             "result.json").read_text())
        assert result["params"] == int(r["params"])
        assert r["onnx_path"].endswith(".onnx") and Path(r["onnx_path"]).is_file()
        assert float(r["parity_max_abs"]) < 1e-4


def test_cfg_job_prints_the_composed_config(tmp_path):
    proc = run_cli(["--cfg", "job", "model.bn=48"], tmp_path)
    assert proc.returncode == 0
    assert "bn: 48" in proc.stdout and "unit:" in proc.stdout
    assert not (tmp_path / "outputs").exists()


def test_bad_override_exits_2_with_one_line_and_no_run_dir(tmp_path):
    proc = run_cli(["model.norm=batch"], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "model.norm" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "outputs").exists()


def test_sweeps_started_in_the_same_second_get_their_own_folders():
    """The default sweep folder carries microseconds: workers started together do not share
    one (they overwrote each other's frontier files)."""
    import re

    from helpers import compose_cfg

    cfg = compose_cfg(return_hydra_config=True)
    assert re.search(r"/\d\d-\d\d-\d\d\.\d{6}$", str(cfg.hydra.sweep.dir)), cfg.hydra.sweep.dir
