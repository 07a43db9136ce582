"""search.objective: sizes of uncompiled configs, the stop rule, the sampler mask, end to end."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from helpers import compose_cfg, run_cli
from test_search_lattice import SPACE, oracle_launcher, random_oracle

from tasnet_sweep.search import driver
from tasnet_sweep.search.lattice import PASS, UNKNOWN, Knowledge, Lattice, truth_grid
from tasnet_sweep.search.sampler import FrontierSampler
from tasnet_sweep.search.sizes import SizeError, cached_lattice_sizes, lattice_sizes, trial_size
from tasnet_sweep.search.study import FrontierStudy


@pytest.mark.parametrize("overrides", [
    ["unit=encoder", "model.n_filters=128", "model.time_len=4000"],
    ["model=hailo_convtasnet", "model.n_blocks=2", "model.n_repeats=1", "model.bn=32",
     "model.hidden=64", "model.n_filters=64", "model.time_len=4000"],
])
def test_untiled_sizes_are_what_the_export_counts(tmp_path, overrides):
    import torch

    from tasnet_sweep.export import export_unit
    from tasnet_sweep.model.units import build_unit, count_params

    cfg = compose_cfg(*overrides)
    torch.manual_seed(0)
    unit = build_unit(cfg.model, cfg.unit)
    exported = export_unit(unit, tmp_path / "u.onnx")
    assert trial_size(cfg, "params") == count_params(unit.module)
    assert trial_size(cfg, "macs") == exported.macs > 0


def test_tiled_sizes_are_the_whole_models_params_and_the_planners_macs():
    from tasnet_sweep.model.convtasnet import build_model
    from tasnet_sweep.model.units import count_params
    from tasnet_sweep.tiling.plan import build_plan

    cfg = compose_cfg("model=hailo_convtasnet", "tiling=temporal", "model.n_blocks=2",
                      "model.n_repeats=1", "model.bn=64", "model.hidden=128")
    assert trial_size(cfg, "params") == count_params(build_model(cfg.model))
    plan = build_plan(cfg.model, cfg.tiling)
    assert trial_size(cfg, "macs") == plan.host_share()["per_second_of_audio"]["untiled_macs"]


def test_lattice_sizes_set_each_points_knobs_and_grow_with_them():
    cfg = compose_cfg("model=hailo_convtasnet", "model.n_filters=64", "model.time_len=4000")
    lat = Lattice.from_spec({"model.n_blocks": [1, 2], "model.hidden": [64, 128],
                             "model.bn": [32, 64]})
    sizes = lattice_sizes(lat, cfg, "params")
    for axis in range(sizes.ndim):
        assert (np.diff(sizes, axis=axis) > 0).all()
    top = compose_cfg("model=hailo_convtasnet", "model.n_filters=64", "model.time_len=4000",
                      "model.n_blocks=2", "model.hidden=128", "model.bn=64")
    assert sizes[1, 1, 1] == trial_size(top, "params")


def test_sizes_are_counted_once_per_search_and_recounted_when_it_changes(tmp_path):
    cfg = compose_cfg("unit=encoder")
    lat = Lattice.from_spec({"model.n_filters": [64, 128], "model.time_len": [4000, 8000]})
    calls = []

    def counting(job, objective):
        calls.append(objective)
        return trial_size(job, objective)

    first = cached_lattice_sizes(lat, cfg, "macs", tmp_path, counting)
    n = len(calls)
    assert n > 0 and len(list(tmp_path.glob("sizes-macs-*.npy"))) == 1
    again = cached_lattice_sizes(lat, cfg, "macs", tmp_path, counting)
    assert len(calls) == n and (again == first).all()  # read back, not counted
    wider = Lattice.from_spec({"model.n_filters": [64, 256], "model.time_len": [4000, 8000]})
    other = cached_lattice_sizes(wider, cfg, "macs", tmp_path, counting)
    assert len(calls) > n and other[1, 0] > first[1, 0]


def test_a_knob_that_selects_a_config_group_has_no_size():
    cfg = compose_cfg()
    lat = Lattice.from_spec({"tiling": ["none", "temporal"]})
    with pytest.raises(SizeError, match="'tiling' selects a config group"):
        lattice_sizes(lat, cfg, "params")
    with pytest.raises(SizeError, match="search.objective='size'"):
        lattice_sizes(Lattice.from_spec({"model.bn": [32, 64]}), cfg, "size")


@pytest.mark.slow
def test_the_search_stops_once_the_largest_pass_by_the_objective_is_certified(tmp_path):
    lat = Lattice.from_spec(SPACE)
    oracle = random_oracle(lat, 3, generators=3)
    truth = truth_grid(lat, lambda v: oracle(lat.point_of(v)))
    weights = np.array([5, 3, 2, 1])
    objective = np.tensordot(weights, np.indices(lat.shape), axes=1) * 100 + 7

    launched: list = []
    path = str(tmp_path / "o.journal")
    state = driver.run(lat, FrontierStudy(lat, "o", path), oracle_launcher(lat, oracle, launched),
                       objective=objective)
    best = driver.best_pass(state.knowledge.status, objective)
    assert best[1] == objective[truth == PASS].max()  # the true largest pass
    assert truth[best[0]] == PASS and state.knowledge.outcome(best[0]) is True
    assert not driver.could_beat(state.knowledge.status, objective).any()
    assert not state.knowledge.complete  # stopped before the whole frontier was known

    full: list = []
    driver.run(lat, FrontierStudy(lat, "f", str(tmp_path / "f.journal")),
               oracle_launcher(lat, oracle, full))
    assert len(launched) < len(full)

    again = driver.run(lat, FrontierStudy(lat, "o", path), oracle_launcher(lat, oracle, launched),
                       objective=objective)
    assert again.compiled_now == 0  # resumed: already certified


def test_the_sampler_never_proposes_outside_the_allowed_mask():
    lat = Lattice.from_spec(SPACE)
    k = Knowledge(lat)
    k.record((1, 1, 1, 0), True)
    allowed = np.zeros(lat.shape, dtype=bool)
    allowed[4:, :, :, 1] = True
    allowed &= k.status == UNKNOWN
    batch = FrontierSampler(lat, seed=0).propose(k, 5, allowed=allowed)
    assert batch and all(allowed[p] for p in batch)
    assert FrontierSampler(lat).propose(k, 3, allowed=np.zeros(lat.shape, dtype=bool)) == []


@pytest.mark.slow
def test_frontier_sweep_on_the_macs_objective_end_to_end(tmp_path):
    args = ["-m", "hydra/sweeper=frontier", "search=encoder_width", "search.study_name=obj",
            "search.objective=macs", "model.n_filters=64,128,512", "model.time_len=4000,16000",
            "tracking=none"]
    proc = run_cli([*args, f"hydra.sweep.dir={tmp_path / 'a'}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = yaml.safe_load((tmp_path / "a" / "optimization_results.yaml").read_text())
    assert res["objective"] == "macs"
    # 128 filters fit 16000 samples and 512 do not (see test_frontier_sweeper.py)
    assert res["best_params"] == {"model.n_filters": 128, "model.time_len": 16000}
    cfg = compose_cfg("unit=encoder", "model.n_filters=128", "model.time_len=16000")
    assert res["best_value"] == trial_size(cfg, "macs")
    assert "certified largest passing by macs" in (tmp_path / "a" / "frontier.md").read_text()

    proc = run_cli([*args, f"hydra.sweep.dir={tmp_path / 'b'}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    again = yaml.safe_load((tmp_path / "b" / "optimization_results.yaml").read_text())
    assert again["compiles_this_run"] == 0 and again["best_params"] == res["best_params"]
