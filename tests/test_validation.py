"""Every config mistake is one line naming the key and what is accepted, exit 2, nothing written."""

import pytest

from tasnet_sweep.cli import main, preflight

BAD = {
    "model.bn=0": "model.bn=0",
    "model.n_filters=-4": "model.n_filters=-4",
    "model.hidden=abc": "model.hidden=abc",
    "model.skip=1.5": "model.skip=1.5",
    "model.n_src=0": "model.n_src=0",
    "model.kernel_size=4": "model.kernel_size=4 is smaller than model.stride=8",
    "model.norm=batch": "expected one of gLN, cLN, affine, identity",
    "model.activation=gelu": "expected one of prelu, relu",
    "model.mask_act=tanh": "expected one of sigmoid, relu",
    "model.skip_topology=concat": "expected one of sum, project",
    "model.mask_mul=maybe": "expected one of normal, bypass",
    "model.decoder=linear": "expected one of convtranspose, conv1x1_head",
    "model.time_len=8": "model.time_len=8 is too short",
    "model.conv_kernel=4": "expected an odd number",
    "model.truncate_k_blocks=99": "model.truncate_k_blocks=99",
    "model.nope=1": "model.nope is not a known key",
    "unit=nope": "unit=nope is not an option: expected one of",
    "hw=hailo9": "hw=hailo9 is not an option",
    "unit.width=12": "unit.width=12 does not apply to unit=full",
    "run_tag=../escape": "run_tag='../escape' is invalid",
    "export.opset=30": "export.opset=30",
    "tiling.mode=spiral": "expected one of none, temporal, blocked",
    "model.bn=16,32": "model.bn=16,32 sweeps over values: expected -m",
    "model.bn=range(16,33,16)": "model.bn=range(16,33,16) sweeps over values: expected -m",
}


@pytest.mark.parametrize("override,expected", BAD.items())
def test_bad_override_is_one_clear_line(override, expected):
    problems = preflight([override])
    assert len(problems) == 1, problems
    assert expected in problems[0]


def test_unit_specific_checks():
    assert "unit.op='swish'" in preflight(["unit=activation", "unit.op=swish"])[0]
    assert "unit.source=2" in preflight(["unit=source_projector", "unit.source=2"])[0]
    assert "no work when model.mask_mul=bypass" in preflight(
        ["unit=decoder_pre", "model.mask_mul=bypass"])[0]


def test_grid_is_checked_job_by_job_before_anything_runs():
    problems = preflight(["-m", "model.bn=32,0,64", "model.kernel_size=4,16"])
    assert len(problems) == 2
    assert any("model.bn=0" in p and "2 of 6 jobs" in p for p in problems)


def test_good_config_has_no_problems():
    assert preflight(["model.bn=32"]) == []
    assert preflight(["-m", "model.bn=32,48,64"]) == []


def test_main_exits_2_without_traceback_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["model.bn=0"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "tasnet_sweep: config error: model.bn=0 is invalid: expected a whole number >= 1"]
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_config_dir_adds_a_users_own_options_to_the_shipped_ones(tmp_path):
    from tasnet_sweep.resources import CONF_DIR

    (tmp_path / "hw").mkdir()
    mine = (CONF_DIR / "hw" / "hailo8.yaml").read_text().replace(
        "layer_max_clusters:              2", "layer_max_clusters:              4")
    (tmp_path / "hw" / "my_hailo8.yaml").write_text(mine)
    assert preflight(["--config-dir", str(tmp_path), "hw=my_hailo8"]) == []
    assert preflight(["--config-dir", str(tmp_path), "hw=hailo8l"]) == []  # shipped ones stay
    unknown = preflight(["--config-dir", str(tmp_path), "hw=nope"])
    assert len(unknown) == 1 and "my_hailo8" in unknown[0] and "hailo8l" in unknown[0]
    assert "my_hailo8" not in preflight(["hw=nope"])[0]  # only when the folder is added


def test_a_config_dir_that_is_not_a_folder_is_one_line(tmp_path):
    problems = preflight(["--config-dir", str(tmp_path / "missing")])
    assert len(problems) == 1 and "--config-dir" in problems[0] and "missing" in problems[0]


@pytest.mark.parametrize("arg", ["search=blocks_width", "+experiment=module_gate"])
def test_a_sweep_group_without_multirun_is_one_line(arg, capsys):
    assert main([arg]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{arg} describes a sweep: add -m" in err[0]


@pytest.mark.slow
def test_run_tags_are_unique_within_every_shipped_sweep():
    """A grid over the unit's own knobs, and every experiment's rungs, get one tag per job."""
    from helpers import compose_cfg
    from omegaconf import OmegaConf

    from tasnet_sweep.cli import job_override_lists
    from tasnet_sweep.experiments.ladder import ladder_rungs
    from tasnet_sweep.resources import group_options

    grid = job_override_lists(["unit=norm", "unit.op=affine,identity", "unit.width=256,1024"],
                              multirun=True)
    assert len({compose_cfg(*job).run_tag for job in grid}) == len(grid) == 4
    for name in group_options("experiment"):
        sweeper = compose_cfg(f"+experiment={name}", return_hydra_config=True).hydra.sweeper
        rungs = ladder_rungs(OmegaConf.to_container(sweeper.rungs),
                             OmegaConf.to_container(sweeper.ramp))
        tags = [compose_cfg(f"+experiment={name}", *rung).run_tag for rung in rungs]
        assert len(set(tags)) == len(tags), (name, tags)


#: str fields that pick one of a fixed set of words (checked by _one_of) or hold free text
CHOICE_OR_TEXT_FIELDS = {
    "model.name", "model.norm", "model.activation", "model.mask_act", "model.skip_topology",
    "model.mask_mul", "model.decoder", "model.encoder_activation", "unit.name", "unit.op",
    "tiling.mode", "compiler.backend", "compiler.compiler_optimization_level",
    "compiler.allocator_timeout", "compiler.context_switch", "compiler.replay_missing",
    "compiler.calibration.source", "compiler.calibration.input_length_policy", "hw.arch",
    "hw.fitted_to", "runtime.name", "runtime.hailort_api", "runtime.output_format",
    "runtime.weight_quant", "runtime.sdk_compare", "tracking.backend", "tracking.experiment",
    "search.sampler", "search.objective", "search.assume_running"}


def _str_fields(cls, prefix=""):
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        t = hints[f.name]
        inner = [a for a in typing.get_args(t) if a is not type(None)]
        base = inner[0] if inner and typing.get_origin(t) is typing.Union else t
        if dataclasses.is_dataclass(base):
            yield from _str_fields(base, f"{prefix}{f.name}.")
        elif base is str:
            yield prefix + f.name


def test_every_string_field_that_can_become_a_path_is_checked():
    """A new str field must be classified: a name confined to the tool's folders, a location
    the user chooses, or a choice/free text; names with a path in them are refused."""
    from tasnet_sweep.config import LOCATION_FIELDS, NAME_FIELDS, Config

    fields = set(_str_fields(Config))
    unclassified = fields - set(NAME_FIELDS) - set(LOCATION_FIELDS) - CHOICE_OR_TEXT_FIELDS
    assert unclassified == set(), f"classify these in tasnet_sweep/config.py: {unclassified}"
    for key in NAME_FIELDS:
        overrides = ["-m", "search=encoder_width"] if key.startswith("search.") else []
        for bad in ("../../evil",):  # tests/test_bad_input.py tries absolute paths too
            problems = preflight([*overrides, f"{key}={bad}"])
            assert any(p.startswith(f"{key}='{bad}' is invalid") for p in problems), (key, bad)
