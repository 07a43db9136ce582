"""MLflow tracking against a real ``mlflow server`` on loopback: a sweep logs live; a sweep whose
server dies after its first trial loses nothing, reports the failure once, and ``sync`` brings
the restarted server level with the summary TSV."""

from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from helpers import SMALL, run_cli

from tasnet_sweep.commands.sync import main as sync_main
from tasnet_sweep.commands.sync import sync

BNS = (16, 24, 32)
STARTUP_S = 150  # a loaded 2-core machine has taken ~50 s to bring the server up
#: what the server prints once it accepts connections (uvicorn; gunicorn in older MLflow)
READY_WORDS = ("Uvicorn running on", "Listening at")

#: a Hydra callback the sweep loads from its cwd: it stops the server once job 0 has ended and
#: waits for the server process itself to exit (a pidfd becomes readable when it does)
STOP_HOOK = '''
import json, os, select, signal, time
from pathlib import Path
from hydra.experimental.callback import Callback

class StopServerAfterFirstJob(Callback):
    def on_job_start(self, config, **kwargs):  # the server dies once the sweep's run exists
        link = Path(config.hydra.sweep.dir) / ".mlflow_sweep.json"
        deadline = time.monotonic() + 300
        while not json.loads(link.read_text()).get("parent_run_id"):
            assert time.monotonic() < deadline, "the sweep's MLflow run never opened"
            time.sleep(0.05)

    def on_job_end(self, config, job_return, **kwargs):
        if config.hydra.job.num != 0:
            return
        # job 0's trial is logged first (from the queue, by the sweep's MLflow process)
        sweep = Path(config.hydra.sweep.dir)
        queue = sweep / json.loads((sweep / ".mlflow_sweep.json").read_text())["queue"]
        deadline = time.monotonic() + 300
        while any(queue.iterdir()):
            assert time.monotonic() < deadline, "job 0's trial was never logged"
            time.sleep(0.05)
        pidfd = os.pidfd_open({pgid})
        os.killpg({pgid}, signal.SIGTERM)
        select.select([pidfd], [], [], 120)
        os.close(pidfd)
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``mlflow server`` on 127.0.0.1 with a SQLite store and proxied artifacts in ``root``."""

    def __init__(self, root: Path):
        self.root = root
        self.proc = None
        self.port = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server and wait on its own output until it says it is listening."""
        self.port = _free_port()
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", "1",
             "--backend-store-uri", f"sqlite:///{self.root / 'server.db'}",
             "--artifacts-destination", str(self.root / "artifacts")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
            start_new_session=True)
        ready, log_path = threading.Event(), self.root / f"server_{self.port}.log"

        def copy_log() -> None:  # keeps draining the pipe for the server's whole life
            with open(log_path, "w") as log:
                for line in self.proc.stdout:
                    log.write(line)
                    log.flush()
                    if f"127.0.0.1:{self.port}" in line and any(w in line for w in READY_WORDS):
                        ready.set()
            ready.set()  # the server exited: stop waiting

        threading.Thread(target=copy_log, daemon=True).start()
        if not ready.wait(STARTUP_S):
            self.stop()
            pytest.skip(f"mlflow server did not listen on {self.url} within {STARTUP_S} s")
        if self.proc.poll() is not None:
            pytest.skip(f"mlflow server exited with {self.proc.returncode} at start: "
                        f"{log_path.read_text()[-500:]}")
        urllib.request.urlopen(f"{self.url}/health", timeout=STARTUP_S).read()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path)
    srv.start()
    yield srv
    srv.stop()


def _sweep(cwd: Path, sweep_dir: str, uri: str, *extra: str):
    small = [s for s in SMALL if not s.startswith("model.bn=")]
    return run_cli(["-m", f"model.bn={','.join(map(str, BNS))}", *small,
                    f"tracking.tracking_uri={uri}", f"hydra.sweep.dir={sweep_dir}", *extra], cwd)


def _sweep_runs(uri: str, sweep_dir: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("tasnet_sweep")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("sweep_dir") == str(sweep_dir.resolve())]
    assert len(parents) == 1, [r.data.tags for r in runs]
    parent = parents[0]
    children = [r for r in runs
                if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    return client, parent, children


@pytest.mark.slow
def test_sweeps_log_to_a_server_and_sync_recovers_a_server_stopped_mid_sweep(server, tmp_path,
                                                                             capsys):
    # 1. the server is up for the whole sweep: everything is logged live
    proc = _sweep(tmp_path, "live", server.url)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client, parent, children = _sweep_runs(server.url, tmp_path / "live")
    assert parent.info.status == "FINISHED" and len(children) == 3
    assert {c.data.params["model.bn"] for c in children} == {str(b) for b in BNS}
    for c in children:
        assert c.data.tags["verdict"] in ("pass", "fail") and c.data.tags["evidence"]
        assert c.data.metrics["params"] > 0 and "est_fps" in c.data.metrics
        assert "result.json" in {a.path for a in client.list_artifacts(c.info.run_id)}
    assert not (tmp_path / "outputs" / "mlflow.db").exists()  # nothing went to the default

    # 2. the server dies once job 0 has ended; the sweep still finishes every trial
    (tmp_path / "stop_server_hook.py").write_text(
        STOP_HOOK.format(pgid=server.proc.pid, port=server.port))
    proc = _sweep(tmp_path, "cut", server.url,
                  "+hydra.callbacks.stop_server._target_=stop_server_hook.StopServerAfterFirstJob")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert server.proc.wait(timeout=120) is not None
    cut = tmp_path / "cut"
    with open(cut / "summary.tsv", newline="") as fh:
        assert len(list(csv.DictReader(fh, delimiter="\t"))) == 3
    output = proc.stdout + proc.stderr
    assert output.count("MLflow tracking failed") == 1, output[-3000:]
    assert (cut / "tracking_failed.txt").is_file()

    # 3. the server comes back (same store, new port): sync pushes the two missing trials
    server.start()
    _, parent, children = _sweep_runs(server.url, cut)
    assert len(children) == 1 and parent.info.status == "RUNNING"
    assert sync_main([str(cut), "--uri", server.url]) == 0
    assert "2 trial(s) added, 1 already" in capsys.readouterr().out
    client, parent, children = _sweep_runs(server.url, cut)
    assert parent.info.status == "FINISHED" and len(children) == 3
    assert {c.data.params["model.bn"] for c in children} == {str(b) for b in BNS}
    assert all(c.data.tags["tasnet.complete"] == "true" for c in children)
    assert not (cut / "tracking_failed.txt").exists()

    again = sync(cut, server.url)  # idempotent: nothing is added twice
    assert again["added"] == [] and again["present"] == 3
    assert len(_sweep_runs(server.url, cut)[2]) == 3
