"""hydra/sweeper=frontier end to end: real jobs on the estimate backend, run as a user would."""

from __future__ import annotations

import csv

import optuna
import pytest
import yaml
from helpers import REPO, run_cli

from tasnet_sweep.search.lattice import Lattice
from tasnet_sweep.search.study import open_storage

# a 2 x 2 lattice of encoder units (each job exports one Conv2d): the sweep overrides replace
# the knobs of conf/search/encoder_width.yaml; 128 filters fit 16000 samples, 512 do not.
ARGS = ["-m", "hydra/sweeper=frontier", "search=encoder_width", "search.study_name=e2e",
        "model.n_filters=128,512", "model.time_len=4000,16000", "tracking=none"]


def _results(sweep_dir):
    return yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())


def _job_dirs(sweep_dir):
    return sorted(p for p in sweep_dir.iterdir() if p.is_dir() and p.name[0].isdigit())


@pytest.mark.slow
def test_frontier_sweep_finds_the_frontier_then_resumes_with_zero_compiles(tmp_path):
    first = tmp_path / "first"
    proc = run_cli([*ARGS, f"hydra.sweep.dir={first}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = _results(first)
    assert res["exact"] is True and res["unknown"] == 0
    jobs = _job_dirs(first)
    assert res["compiles_this_run"] == len(jobs) and 1 <= len(jobs) < 4

    # what the jobs themselves said, from the sweep's summary.tsv
    with open(first / "summary.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    verdict = {(int(r["n_filters"]), int(r["time_len"])): r["verdict"] for r in rows}
    assert len(verdict) == len(jobs) and {r["evidence"] for r in rows} == {"estimate"}
    maximal = {(c["model.n_filters"], c["model.time_len"]) for c in res["maximal_passing"]}
    minimal = {(c["model.n_filters"], c["model.time_len"]) for c in res["minimal_failing"]}
    assert maximal and minimal
    assert all(verdict[p] == "pass" for p in maximal)  # the certificate was compiled
    assert all(verdict[p] == "fail" for p in minimal)
    tsv = (first / "frontier.tsv").read_text().splitlines()
    assert len(tsv) == 1 + len(maximal) + len(minimal)
    assert "largest passing by params" in (first / "frontier.md").read_text()
    assert (first / "frontier.png").read_bytes()[:4] == b"\x89PNG"

    # the same command again: every config is answered from the study, nothing is launched
    second = tmp_path / "second"
    proc = run_cli([*ARGS, f"hydra.sweep.dir={second}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    again = _results(second)
    assert again["compiles_this_run"] == 0 and again["compiles_before"] == len(jobs)
    assert again["maximal_passing"] == res["maximal_passing"] and not _job_dirs(second)

    # the study is a plain Optuna study in the journal file it named
    journal = tmp_path / "outputs" / "optuna" / "e2e.journal"
    assert res["storage"] == "outputs/optuna/e2e.journal" and journal.exists()
    study = optuna.load_study(study_name="e2e", storage=open_storage(str(journal)))
    compiled = [t for t in study.trials if t.user_attrs.get("compiled")]
    inferred = [t for t in study.trials if t.user_attrs.get("evidence") == "inferred"]
    assert len(compiled) == len(jobs) and len(compiled) + len(inferred) == 4
    assert all(t.user_attrs["evidence"] == "estimate" for t in compiled)


@pytest.mark.parametrize("override, words", [
    pytest.param("search.sampler=bogus", ["search.sampler='bogus'", "frontier, tpe, random, grid"],
                 marks=pytest.mark.slow),
    pytest.param("model.n_filters=512,128", ["model.n_filters", "not ordered"],
                 marks=pytest.mark.slow),
    ("search.objective=size", ["search.objective='size'", "params, macs"]),
    pytest.param("search.workers=-1", ["search.workers=-1", "whole number >= 0"],
                 marks=pytest.mark.slow),
    pytest.param("search.grace_s=30", ["search.grace_s=30", "greater than search.heartbeat_s"],
                 marks=pytest.mark.slow),
    pytest.param("search.worker=0", ["search.worker=0", "expected it unset"],
                 marks=pytest.mark.slow),
    pytest.param("search.assume_running=never",
                 ["search.assume_running='never'", "auto, fail, block"], marks=pytest.mark.slow),
])
def test_bad_search_settings_stop_with_one_line(tmp_path, override, words):
    args = [a for a in ARGS if not a.startswith("model.n_filters")] + [override]
    proc = run_cli([*args, f"hydra.sweep.dir={tmp_path / 's'}"], cwd=tmp_path)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and all(w in errors[0] for w in words), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "outputs" / "optuna").exists()


@pytest.mark.slow
def test_frontier_sweeper_needs_a_search_space(tmp_path):
    proc = run_cli(["-m", "hydra/sweeper=frontier", f"hydra.sweep.dir={tmp_path / 's'}"],
                   cwd=tmp_path)
    assert proc.returncode == 2
    assert "search=<name>" in proc.stderr and "encoder_width" in proc.stderr


SEARCH_SPACES = sorted(p.stem for p in (REPO / "conf" / "search").glob("*.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize("name", SEARCH_SPACES)
def test_every_shipped_search_space_runs_a_compile(tmp_path, name):
    """Knob names, values and fixed overrides of each conf/search/ file are valid: one real job
    on the estimate backend runs with them, and the lattice is the one the file lists."""
    sweep = tmp_path / "s"
    proc = run_cli(["-m", f"search={name}", "search.max_trials=1", "tracking=none",
                    f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = _results(sweep)
    assert res["compiles_this_run"] == 1 and len(_job_dirs(sweep)) == 1
    listed = yaml.safe_load((REPO / "conf" / "search" / f"{name}.yaml").read_text())
    lattice = Lattice.from_spec(listed["search"]["knobs"])
    answered = res["compiles_this_run"] + res["inferred_recorded"]
    assert answered + res["unknown"] == lattice.size
