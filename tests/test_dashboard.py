"""A frontier study as optuna-dashboard 0.21 reads it: constraints on every compiled trial, and no
failing configuration called the best trial (the dashboard takes a single-objective study's best
from ``storage.get_best_trial``, which ignores constraints)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import urllib.request

import pytest
from test_search_lattice import SPACE, oracle_launcher, random_oracle

from tasnet_sweep.search import driver
from tasnet_sweep.search.lattice import Lattice
from tasnet_sweep.search.study import FrontierStudy

pytestmark = pytest.mark.slow
STARTUP_S = 120


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dashboard(tmp_path):
    """A small frontier search in a journal file, and optuna-dashboard serving it."""
    exe = shutil.which("optuna-dashboard")
    if exe is None:
        pytest.skip("optuna-dashboard is not installed (pip install -e '.[test]')")
    lat = Lattice.from_spec(SPACE)
    journal = tmp_path / "s.journal"
    state = driver.run(lat, FrontierStudy(lat, "dash", str(journal)),
                       oracle_launcher(lat, random_oracle(lat, 5, generators=3), []))
    assert state.knowledge.complete
    port = _free_port()
    proc = subprocess.Popen([exe, str(journal), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ready = threading.Event()

    def watch() -> None:  # the server's own output says when it listens
        for line in proc.stdout:
            if f":{port}" in line or "Listening" in line:
                ready.set()
        ready.set()

    threading.Thread(target=watch, daemon=True).start()
    try:
        assert ready.wait(STARTUP_S) and proc.poll() is None, "optuna-dashboard did not start"
        yield f"http://127.0.0.1:{port}", state
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=60) as r:
        return json.loads(r.read())


def test_the_dashboard_sees_constraints_and_only_passing_best_trials(dashboard):
    url, state = dashboard
    studies = _get(f"{url}/api/studies")["study_summaries"]
    study_id = next(s["study_id"] for s in studies if s["study_name"] == "dash")
    detail = _get(f"{url}/api/studies/{study_id}")
    trials = detail["trials"]
    compiled = [t for t in trials if any(a["key"] == "compiled" and a["value"] == "True"
                                         for a in t["user_attrs"])]
    assert len(compiled) == state.compiled_now > 0
    assert all(t["constraints"] in ([0.0], [1.0]) for t in compiled)
    assert {t["state"] for t in compiled} <= {"Complete", "Fail"}
    inferred = [t for t in trials if t not in compiled]
    assert inferred and all(t["state"] == "Pruned" for t in inferred)
    best = detail["best_trials"]
    assert best and all(t["constraints"] == [0.0] for t in best)
    attrs = {a["key"]: a["value"] for a in best[0]["user_attrs"]}
    assert attrs["verdict"] == "pass"
    assert detail["objective_names"] == ["params"]  # the axis the dashboard labels
