"""Scale-out on loopback: two "machines" (worker processes with their own working directories)
run one frontier study in a real PostgreSQL and log to one real ``mlflow server``.

PostgreSQL comes from Debian's ``postgresql`` package and the driver from PyPI's
``psycopg2-binary`` (.ci/run installs both); the test skips, saying why, only where they are
missing.  initdb refuses to run as root, so as root the cluster is owned by ``postgres``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import pytest
from helpers import REPO

pytestmark = pytest.mark.slow  # subprocess workers and servers: the CI tier
from test_tracking_server import Server  # noqa: E402

KNOBS = ["model.n_filters=64,128", "model.time_len=4000,8000,16000"]


@pytest.fixture
def mlflow_server(tmp_path):
    (tmp_path / "mlflow").mkdir()
    srv = Server(tmp_path / "mlflow")
    srv.start()
    yield srv
    srv.stop()


def test_two_machines_share_one_postgres_study_and_one_mlflow_server(tmp_path, postgres,
                                                                     mlflow_server):
    import mlflow
    import optuna

    procs = []
    for machine in ("a", "b"):
        cwd = tmp_path / machine  # each machine has its own disk: its own cache and outputs
        cwd.mkdir()
        env = {**os.environ, "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "0"}
        env.pop("MLFLOW_TRACKING_URI", None)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "tasnet_sweep", "-m", "hydra/sweeper=frontier",
             "search=encoder_width", "search.study_name=scale_out", f"search.storage={postgres}",
             "search.plot=false", *KNOBS, f"tracking.tracking_uri={mlflow_server.url}",
             "tracking.experiment=scale_out"],
            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=400)
        assert p.returncode == 0, err[-3000:]

    study = optuna.load_study(study_name="scale_out", storage=postgres)
    answered = [t for t in study.get_trials() if "verdict" in t.user_attrs]  # answers
    key = lambda t: tuple(sorted(t.params.items()))  # noqa: E731
    compiled = Counter(key(t) for t in answered if t.user_attrs.get("compiled"))
    assert compiled and max(compiled.values()) == 1, compiled  # no config compiled twice
    assert len({key(t) for t in answered}) == 6  # the whole 2 x 3 lattice is answered

    client = mlflow.MlflowClient(tracking_uri=mlflow_server.url)
    exp = client.get_experiment_by_name("scale_out")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    trials = [r for r in runs if r.data.tags.get("verdict")]
    assert len(trials) == sum(compiled.values())  # every compile logged once, from both
