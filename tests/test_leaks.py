"""Credentials in a tracking URI never reach a file, a log line, a param or a tag."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import REPO, SMALL

SECRET = "s3cr3t-pw"


def _cli(args, cwd, **env):
    run_env = {**os.environ, "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "0", **env}
    run_env.pop("MLFLOW_TRACKING_URI", None) if "MLFLOW_TRACKING_URI" not in env else None
    return subprocess.run([sys.executable, "-m", "tasnet_sweep", *args], cwd=cwd, env=run_env,
                          capture_output=True, text=True, timeout=600)


def _files_with(root, needle: str) -> list[str]:
    found = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            try:
                with open(path, "rb") as f:
                    if needle.encode() in f.read():
                        found.append(path)
            except OSError:
                pass
    return found


@pytest.mark.slow
def test_a_password_in_the_config_is_refused_without_echoing_it(tmp_path):
    done = _cli([f"tracking.tracking_uri=http://alice:{SECRET}@127.0.0.1:9"], tmp_path)
    assert done.returncode == 2 and SECRET not in done.stdout + done.stderr
    assert "MLFLOW_TRACKING_PASSWORD" in done.stderr and len(done.stderr.splitlines()) == 1
    assert not (tmp_path / "outputs").exists()


@pytest.mark.slow
def test_a_password_in_the_environment_is_redacted_everywhere(tmp_path):
    """The server is unreachable: the failure is reported (console, tracking_failed.txt) and
    sync is offered, all without the password; a sweep and a single run."""
    uri = f"http://alice:{SECRET}@127.0.0.1:9"
    sweep = _cli(["-m", *SMALL, "unit=encoder", "model.n_filters=16,24", "hydra.sweep.dir=s",
                  "tracking.background=false"], tmp_path, MLFLOW_TRACKING_URI=uri)
    single = _cli([*SMALL, "unit=encoder", "hydra.run.dir=one", "tracking.background=false"],
                  tmp_path, MLFLOW_TRACKING_URI=uri)
    for done in (sweep, single):
        assert done.returncode == 0, done.stderr[-2000:]
        assert SECRET not in done.stdout + done.stderr
        assert "MLflow tracking failed" in done.stdout + done.stderr
    assert (tmp_path / "s" / "tracking_failed.txt").is_file()
    assert "***@127.0.0.1:9" in (tmp_path / "s" / "tracking_failed.txt").read_text()
    sync = subprocess.run([sys.executable, "-m", "tasnet_sweep.commands.sync", "s"], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO), "MLFLOW_TRACKING_URI": uri},
                          capture_output=True, text=True, timeout=600)
    assert sync.returncode == 1 and SECRET not in sync.stdout + sync.stderr
    assert _files_with(tmp_path, SECRET) == []


@pytest.mark.slow
def test_sync_uploads_only_the_run_folders_own_files(tmp_path):
    import json

    from helpers import compose_cfg
    from mlflow.tracking import MlflowClient

    from tasnet_sweep import trial
    from tasnet_sweep.commands.sync import sync

    outside = tmp_path / "private.txt"
    outside.write_text("not for the tracking server")
    run = tmp_path / "run"
    result = trial.run(compose_cfg(*SMALL, "unit=encoder", "tracking=none",
                                   f"compiler.cache_dir={tmp_path / 'cache'}"), run)
    result.compile.report_path = str(outside)  # a result.json naming a foreign file
    (run / "result.json").write_text(json.dumps(result.as_dict()))
    (run / "linked.log").symlink_to(outside)  # and a link out of the folder
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    done = sync(run, uri)
    artifacts = {a.path for a in MlflowClient(uri).list_artifacts(done["added"][0])}
    assert "result.json" in artifacts
    assert "private.txt" not in artifacts and "linked.log" not in artifacts
