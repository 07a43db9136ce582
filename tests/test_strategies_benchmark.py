"""benchmarks/frontier_strategies.py: its quick mode's settings, and the estimate studies it
finds in this checkout from any working directory (study_oracle.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import frontier_strategies as fs  # noqa: E402
import study_oracle  # noqa: E402

from tasnet_sweep.search.lattice import Knowledge  # noqa: E402
from tasnet_sweep.search.study import FrontierStudy  # noqa: E402


def test_quick_mode_runs_one_seed_without_tpe_whatever_else_is_asked():
    args = fs.parse_args(["--quick", "--seeds", "5", "--tpe-seeds", "2"])
    assert (args.seeds, args.tpe_seeds, args.held_out) == (1, 0, 1)
    full = fs.parse_args([])
    assert (full.seeds, full.tpe_seeds, full.held_out, full.quick) == (3, 1, 3, False)


def test_the_estimate_studies_are_found_in_the_checkout_from_any_directory(tmp_path,
                                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    where = Path(study_oracle.study_location("single_context"))
    assert where == study_oracle.ROOT / "outputs" / "optuna" / "single_context.journal"
    assert study_oracle.study_location("x", "elsewhere.journal") == "elsewhere.journal"


def test_a_cached_study_is_used_only_when_its_frontier_is_exact(tmp_path, monkeypatch):
    lattice = study_oracle.search_lattice("blocks_width")
    journal = tmp_path / "b.journal"
    monkeypatch.setattr(study_oracle, "study_location", lambda study, storage=None: str(journal))
    assert study_oracle.cached_study("b", "blocks_width") is None  # no storage yet
    study = FrontierStudy(lattice, "b", str(journal))
    top = tuple(n - 1 for n in lattice.shape)
    claim = study.claim(top)
    study.record_claimed(claim, top, {"verdict": "fail", "evidence": "estimate"})
    assert study_oracle.cached_study("b", "blocks_width") is None  # unfinished: searched again
    knowledge = Knowledge(lattice)
    knowledge.record(top, False)
    for point in reversed(list(lattice.points())):  # largest first: a few passes answer all
        if knowledge.outcome(point) is None:
            claim = study.claim(point)
            study.record_claimed(claim, point, {"verdict": "pass", "evidence": "estimate"})
            knowledge.record(point, True)
    cached = study_oracle.cached_study("b", "blocks_width")
    assert cached is not None and np.array_equal(cached[1], knowledge.status)


@pytest.mark.parametrize("flag", ["--seeds", "--held-out"])
def test_a_bad_count_is_one_line(flag, capsys):
    with pytest.raises(SystemExit) as stop:
        fs.parse_args([flag, "many"])
    assert stop.value.code == 2 and "invalid int value" in capsys.readouterr().err
