"""``python -m tasnet_sweep --help`` from the config folder (tasnet_sweep/help.py): every group
with its options and the default Hydra composes, every command, and no Hydra import."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

from helpers import REPO, compose_cfg

from tasnet_sweep import commands
from tasnet_sweep.cli import main
from tasnet_sweep.help import defaults, help_text, wants_own_help
from tasnet_sweep.resources import group_options


def test_help_lists_every_group_with_its_options_and_the_default_hydra_composes(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    choices = compose_cfg(return_hydra_config=True).hydra.runtime.choices
    for group, (default, _) in defaults().items():
        if group == "base_config":
            continue
        assert str(choices[group]) == ("None" if default == "null" else default), group
    for group in ("compiler", "hw", "unit", "search", "experiment", "tracking"):
        line = f"{group}: {', '.join(group_options(group))}"
        assert " ".join(out.split()).count(line) == 1, line  # long lists wrap
    assert "compiler: estimate, hailo_dfc, replay\n    [estimate]" in out
    assert "search: " in out and "[none] a frontier search space" in out
    assert "--cfg job" in out and "--hydra-help" in out


def test_help_names_every_command_of_the_package():
    listed = {line.split()[0] for line in help_text([]).split("== Other commands ==")[1]
              .splitlines()[2:]}
    assert listed == {m.name for m in pkgutil.iter_modules(commands.__path__)}


def test_help_adds_the_groups_of_a_users_config_dir(tmp_path):
    (tmp_path / "hw").mkdir()
    (tmp_path / "hw" / "my_board.yaml").write_text("arch: hailo8\n")
    (tmp_path / "dataset").mkdir()
    (tmp_path / "dataset" / "wsj.yaml").write_text("x: 1\n")
    for argv in (["--help", "--config-dir", str(tmp_path)], [f"--config-dir={tmp_path}", "-h"]):
        out = help_text(argv)
        assert "my_board" in out.split("hw: ")[1].splitlines()[0]
        assert "dataset: wsj\n    [none]" in out
    assert "my_board" not in help_text(["--help"])


def test_hydra_answers_its_own_help_and_a_config_of_the_users():
    assert wants_own_help(["--help"]) and wants_own_help(["-m", "-h", "model.bn=32"])
    assert not wants_own_help(["--hydra-help"])
    assert not wants_own_help(["--help", "--config-name", "other"])
    assert not wants_own_help(["model.bn=32"])


def test_help_loads_no_hydra():
    code = ("import sys; from tasnet_sweep.cli import main; main(['--help']); "
            "print('loaded:', [m for m in ('hydra', 'omegaconf', 'torch') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=300)
    assert done.returncode == 0 and "loaded: []" in done.stdout, done.stdout + done.stderr
