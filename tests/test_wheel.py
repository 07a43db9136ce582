"""The package as a stranger gets it: a wheel built from a copy of the sources, installed into a
fresh virtual environment outside the source tree, and run from an empty directory.

The new venv reuses this interpreter's installed dependencies (torch among them) through one
``.pth`` file, so nothing is downloaded.  A ``.pth`` line only adds a folder to ``sys.path``; the
``.pth`` files inside that folder are not run, so an editable install of tasnet_sweep there stays
invisible, and the test checks that every import comes from the wheel.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from helpers import REPO

pytestmark = pytest.mark.slow

#: what a clean clone does not have (generated files)
NOT_IN_A_CLONE = shutil.ignore_patterns(".git", "outputs", "multirun", "build", "dist",
                                        "*.egg-info", "__pycache__", ".pytest_cache", ".venv",
                                        "mlruns", "mlartifacts")
#: the commands the README shows, each of which must answer --help from the wheel
COMMANDS = ("agreement", "check_device", "compare", "doctor", "fit_profile", "gc",
            "quant_error", "rebuild_summary", "separate", "sync")


def _run(argv: list, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, f"{argv}: {done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


def _parent_site_dirs() -> list[str]:
    dirs = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"],
            *site.getsitepackages()]
    if site.ENABLE_USER_SITE and os.path.isdir(site.getusersitepackages()):
        dirs.append(site.getusersitepackages())
    return list(dict.fromkeys(dirs))


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")
            if "__pycache__" not in p.parts}


class Installed:
    def __init__(self, root: Path):
        self.root, self.venv = root, root / "venv"
        self.bin = self.venv / "bin"
        self.python = self.bin / "python"
        self.work = root / "work"  # the user's empty directory
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("PYTHONPATH", "PYTHONHOME", "MLFLOW_TRACKING_URI",
                                 "HYDRA_FULL_ERROR", "VIRTUAL_ENV")}
        self.env["PATH"] = f"{self.bin}{os.pathsep}{self.env.get('PATH', '')}"
        self.package: Path | None = None

    def run(self, *argv) -> subprocess.CompletedProcess:
        return _run(list(argv), self.work, self.env)

    def module(self, name: str, *args) -> subprocess.CompletedProcess:
        return self.run(self.python, "-m", name, *args)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    inst = Installed(tmp_path_factory.mktemp("stranger"))
    src = inst.root / "clone"
    shutil.copytree(REPO, src, symlinks=True, ignore=NOT_IN_A_CLONE)
    dist = inst.root / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "--wheel-dir", dist, src], inst.root)
    wheels = sorted(dist.glob("tasnet_sweep-*.whl"))
    assert len(wheels) == 1, wheels
    _run([sys.executable, "-m", "venv", "--without-pip", inst.venv], inst.root)
    site_dir = Path(_run([inst.python, "-c", "import sysconfig; "
                          "print(sysconfig.get_paths()['purelib'])"], inst.root).stdout.strip())
    (site_dir / "_reuse_test_env.pth").write_text("\n".join(_parent_site_dirs()) + "\n")
    # --no-index: every dependency the wheel declares must already be installed
    _run([inst.python, "-m", "pip", "install", "--no-index", wheels[0]], inst.root, inst.env)
    inst.package = site_dir / "tasnet_sweep"
    inst.work.mkdir()
    inst.before = _files(inst.package)
    return inst


def test_the_wheel_carries_its_configs_and_data_and_imports_from_the_venv(installed):
    where = installed.run(installed.python, "-c", "import tasnet_sweep, hydra_plugins.tasnet_sweep"
                          " as p; print(tasnet_sweep.__file__); print(p.__file__)").stdout.split()
    assert all(Path(w).resolve().is_relative_to(installed.venv.resolve()) for w in where), where
    pkg = installed.package
    assert (pkg / "conf" / "config.yaml").is_file() and not (pkg / "conf").is_symlink()
    for group in ("model", "unit", "tiling", "compiler", "hw", "runtime", "tracking", "search",
                  "experiment"):
        assert list((pkg / "conf" / group).glob("*.yaml")), group
    table = (pkg / "data" / "dfc_outcomes_public.tsv").read_text()
    assert table.startswith("# Real Hailo Dataflow Compiler (DFC) 3.33.0")


def _wait_for_tracking_agent(output: str) -> None:
    """A single run hands MLflow logging to the store's tracking agent, a detached process that
    leaves once its queue has been idle (TASNET_TRACKING_AGENT_IDLE_S, 5 s under the tests)."""
    import re
    import select

    found = re.search(r"logged by the tracking agent \((?:started, pid (\d+)|running)", output)
    assert found, output[-2000:]
    assert found.group(1), "an agent from an earlier run was still running: " + output[-2000:]
    try:
        pidfd = os.pidfd_open(int(found.group(1)))
    except ProcessLookupError:
        return  # already done
    try:
        assert select.select([pidfd], [], [], 600)[0], "the tracking agent did not leave"
    finally:
        os.close(pidfd)


def test_one_trial_from_an_empty_directory_writes_under_its_outputs(installed):
    done = installed.run(installed.bin / "tasnet-sweep", "unit=encoder", "model.n_filters=64")
    _wait_for_tracking_agent(done.stdout + done.stderr)
    results = list((installed.work / "outputs" / "runs").glob("*/*/result.json"))
    assert len(results) == 1
    run_dir = results[0].parent
    result = json.loads(results[0].read_text())
    assert result["summary"]["evidence"] == "estimate"
    assert (run_dir / "encoder.onnx").is_file() and (run_dir / "summary.tsv").is_file()
    assert (installed.work / "outputs" / "mlflow.db").is_file()  # the default store, beside them
    agent_logs = list((installed.work / "outputs" / ".mlflow_queue").glob("*/agent.log"))
    assert len(agent_logs) == 1
    assert f"logged {run_dir.resolve()} as run" in agent_logs[0].read_text()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{installed.work / 'outputs' / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [r.data.tags["run_dir"] for r in runs] == [str(run_dir.resolve())]


def test_a_three_job_grid(installed):
    installed.module("tasnet_sweep", "-m", "unit=encoder", "model.n_filters=32,64,128",
                     "tracking=none", "hydra.sweep.dir=grid")
    with open(installed.work / "grid" / "summary.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert sorted(int(r["n_filters"]) for r in rows) == [32, 64, 128]
    assert len(list((installed.work / "grid").glob("*/result.json"))) == 3


def test_a_six_trial_frontier_search(installed):
    installed.module("tasnet_sweep", "-m", "hydra/sweeper=frontier", "search=encoder_width",
                     "search.max_trials=6", "tracking=none", "hydra.sweep.dir=frontier")
    sweep = installed.work / "frontier"
    assert len(list(sweep.glob("*/result.json"))) == 6
    assert (sweep / "frontier.md").is_file() and (sweep / "optimization_results.yaml").is_file()
    assert (installed.work / "outputs" / "optuna" / "encoder_width.journal").is_file()


def test_agreement_on_the_shipped_public_table(installed):
    out = installed.module("tasnet_sweep.commands.agreement").stdout
    assert "hef_success agreement: 63/63" in out


def test_the_replay_example_replays_the_shipped_table(installed):
    installed.module("tasnet_sweep", "compiler=replay", "unit=encoder", "model.n_filters=256",
                     "tracking=none", "hydra.run.dir=replayed")
    summary = json.loads((installed.work / "replayed" / "result.json").read_text())["summary"]
    assert (summary["evidence"], summary["verdict"]) == ("replay", "fail")
    assert summary["exception_type"] == "BackendAllocatorException"


def test_a_users_own_config_folder_is_added_with_config_dir(installed):
    mine = installed.work / "my_conf" / "hw"
    mine.mkdir(parents=True)
    shutil.copy(installed.package / "conf" / "hw" / "hailo8.yaml", mine / "my_hailo8.yaml")
    installed.module("tasnet_sweep", "--config-dir", "my_conf", "hw=my_hailo8", "unit=encoder",
                     "model.n_filters=64", "tracking=none", "hydra.run.dir=mine")
    hydra_cfg = (installed.work / "mine" / ".hydra" / "hydra.yaml").read_text()
    assert "hw: my_hailo8" in hydra_cfg  # the choice Hydra recorded for the hw group


@pytest.mark.parametrize("command", ["tasnet-sweep", *COMMANDS])
def test_every_command_answers_help(installed, command):
    if command == "tasnet-sweep":
        out = installed.run(installed.bin / "tasnet-sweep", "--help").stdout
        assert "compiler: estimate, hailo_dfc, replay" in out
    else:  # as a module and as its console script
        script = installed.bin / f"tasnet-sweep-{command.replace('_', '-')}"
        for out in (installed.module(f"tasnet_sweep.commands.{command}", "--help").stdout,
                    installed.run(script, "--help").stdout):
            assert "usage:" in out or "== Config groups ==" in out or \
                "Configuration groups" in out, out


def test_nothing_was_written_inside_the_installed_package(installed):
    # runs last in this module: every command above ran from the user's directory
    assert _files(installed.package) == installed.before
