"""Parallel workers: several processes on one frontier study record every configuration once,
and the compile cache's per-key claim lets exactly one of N processes compile a shared key."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from helpers import REPO

from tasnet_sweep.compile.base import STAGES, CompileOutcome, CompileRequest, StageResult
from tasnet_sweep.compile.cache import CompileCache
from tasnet_sweep.search.study import open_storage

pytestmark = pytest.mark.slow  # subprocess workers and servers: the CI tier

# a 2 x 3 lattice of encoder units (one Conv2d each, estimate backend)
KNOBS = ["model.n_filters=64,128", "model.time_len=4000,8000,16000"]


class SlowStandIn:
    """A stand-in backend (not a compiler): logs each call to a file, takes 0.5 s, passes."""

    name, evidence = "slow_stand_in", "estimate"

    def __init__(self, log: str):
        self.log = log

    def version(self) -> str:
        return "1"

    def cache_identity(self) -> dict:
        return {}

    def compile(self, request):
        with open(self.log, "a") as f:
            f.write(f"{os.getpid()} start {time.monotonic()}\n")
        time.sleep(0.5)
        with open(self.log, "a") as f:
            f.write(f"{os.getpid()} end {time.monotonic()}\n")
        return CompileOutcome(self.name, self.evidence,
                              [StageResult(s, True, 0.1) for s in STAGES])


def _compile_shared_key(root: str, onnx: str, log: str, work: str, go) -> None:
    Path(work).mkdir()
    go.wait()
    req = CompileRequest("unit", "net", Path(onnx), [("input", [1, 1, 1, 8])], ["output"],
                         Path(work))
    outcome, _ = CompileCache(root).compile(SlowStandIn(log), req, {"arch": "hailo8"})
    Path(work, "hit").write_text(json.dumps(outcome.cache_hit))


@pytest.mark.parametrize("n", [2, 4])
def test_n_processes_compiling_one_key_call_the_backend_once(tmp_path, n):
    onnx = tmp_path / "unit.onnx"
    onnx.write_bytes(b"the same graph bytes for every worker")
    log = tmp_path / "calls.log"
    ctx = multiprocessing.get_context("fork")
    go = ctx.Event()
    procs = [ctx.Process(target=_compile_shared_key,
                         args=(str(tmp_path / "cache"), str(onnx), str(log),
                               str(tmp_path / f"w{i}"), go)) for i in range(n)]
    for p in procs:
        p.start()
    go.set()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    starts = [ln for ln in log.read_text().splitlines() if " start " in ln]
    assert len(starts) == 1  # one compile; the others waited on the claim and read the entry
    hits = sorted(json.loads((tmp_path / f"w{i}" / "hit").read_text()) for i in range(n))
    assert hits == [False] + [True] * (n - 1)


def _worker(tmp_path: Path, journal: Path, i: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "0"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.Popen(
        [sys.executable, "-m", "tasnet_sweep", "-m", "hydra/sweeper=frontier",
         "search=encoder_width", "search.study_name=shared", f"search.storage={journal}",
         "search.plot=false", *KNOBS, "tracking=none", f"compiler.cache_dir={tmp_path / 'cache'}",
         f"hydra.sweep.dir={tmp_path / f'worker{i}'}"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("n", [2, 4])
def test_workers_on_one_journal_study_record_every_config_once(tmp_path, n):
    journal = tmp_path / "study.journal"
    procs = [_worker(tmp_path, journal, i) for i in range(n)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    study = optuna.load_study(study_name="shared", storage=open_storage(str(journal)))
    answered = [t for t in study.get_trials() if "verdict" in t.user_attrs]  # answers
    compiled = Counter(tuple(sorted(t.params.items())) for t in answered
                       if t.user_attrs.get("compiled"))
    every = Counter(tuple(sorted(t.params.items())) for t in answered)
    assert compiled and max(compiled.values()) == 1, compiled  # no config compiled twice
    assert len(every) == 6 and max(every.values()) == 1, every  # every config answered once


def _record_inferred_together(journal: str, go) -> None:
    from tasnet_sweep.search.lattice import Knowledge, Lattice
    from tasnet_sweep.search.study import FrontierStudy

    lat = Lattice.from_spec({"model.n_blocks": list(range(1, 11)), "model.bn": list(range(8, 28))})
    knowledge = Knowledge(lat)
    knowledge.record((4, 9), True)  # everything below it passes, by inference
    knowledge.record((5, 10), False)  # everything above it fails
    study = FrontierStudy(lat, "inferred", journal)
    go.wait()
    study.record_inferred(knowledge)


@pytest.mark.parametrize("n", [2, 4])
def test_workers_finishing_together_store_each_inferred_answer_once(tmp_path, n):
    journal = str(tmp_path / "inferred.journal")
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    procs = [ctx.Process(target=_record_inferred_together, args=(journal, go)) for _ in range(n)]
    for p in procs:
        p.start()
    go.set()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    study = optuna.load_study(study_name="inferred", storage=open_storage(journal))
    keys = Counter(tuple(sorted(t.params.items())) for t in study.get_trials())
    assert keys and max(keys.values()) == 1, keys.most_common(3)
