"""Faults survived: a compile that hangs, crashes or raises is a recorded failed trial and the
sweep goes on; a sweep killed with SIGKILL loses no finished trial and recompiles nothing; a
summary cut off mid-write is rebuilt from the per-trial results.

The compiler here is the hailo_sdk_client TEST DOUBLE (tests/doubles; not a compiler) behind the
real ``hailo_dfc`` backend, driven through the real CLI as a user would.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, SMALL, compose_cfg

DOUBLES = Path(__file__).resolve().parent / "doubles"
WIDTHS = (16, 24)  # two encoder configs per sweep: the first misbehaves, the second is fine
#: a budget no good compile of these tiny units comes near, even on a loaded machine
GENEROUS_TIMEOUT_S = 600
#: the hang case only: the double blocks in compile until it is killed, and this budget ends it
#: (reaching compile takes the double about a second on an idle machine)
HANG_TIMEOUT_S = 20
BASE = [*SMALL, "unit=encoder", "compiler=hailo_dfc", f"compiler.timeout_s={GENEROUS_TIMEOUT_S}",
        "compiler.calibration.count=2", "tracking=none"]


#: the sweep's log and errors on one pipe, read line by line while it runs
LOG_TO_STDOUT = {"stderr": subprocess.STDOUT}


def _env(tmp_path: Path, **double) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(DOUBLES)]),
           "HYDRA_FULL_ERROR": "0", "HAILO_DOUBLE_LOG": str(tmp_path / "calls.jsonl")}
    for var in ("MLFLOW_TRACKING_URI", "HAILO_DOUBLE_FAIL", "HAILO_DOUBLE_HANG",
                "HAILO_DOUBLE_CRASH", "HAILO_DOUBLE_ONLY_NETS", "HAILO_DOUBLE_HANG_FIFO"):
        env.pop(var, None)
    env.update(double)
    return env


def _cli(args, cwd, env, **kw):
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("stdout", subprocess.PIPE)
    return subprocess.Popen([sys.executable, "-m", "tasnet_sweep", *args], cwd=cwd, env=env,
                            text=True, **kw)


def _rows(summary: Path) -> list[dict]:
    with open(summary, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _net(width: int) -> str:
    from tasnet_sweep.trial import _net_name

    return _net_name(compose_cfg(*SMALL, "unit=encoder", f"model.n_filters={width}").run_tag)


def _wait_for_trials(proc: subprocess.Popen, n: int) -> list[str]:
    """Read the sweep's log until ``n`` trials have reported their one-line result (each is
    logged after its result.json is written); the lines read so far."""
    seen: list[str] = []
    for line in proc.stdout:
        seen.append(line)
        if sum(" -> " in ln and "evidence=" in ln for ln in seen) >= n:
            return seen
    raise AssertionError(f"the sweep ended before {n} trials: {''.join(seen)[-3000:]}")


def _calls(tmp_path: Path, method: str) -> list[dict]:
    log = tmp_path / "calls.jsonl"
    lines = log.read_text().splitlines() if log.exists() else []
    return [c for c in map(json.loads, lines) if c["method"] == method]


@pytest.mark.slow
@pytest.mark.parametrize("double,family,exception", [
    ({"HAILO_DOUBLE_HANG": "compile"}, "timeout", None),
    ({"HAILO_DOUBLE_CRASH": "optimize:segv"}, "crash", "SIGSEGV"),
    ({"HAILO_DOUBLE_CRASH": "compile:kill"}, "crash", "SIGKILL"),
    ({"HAILO_DOUBLE_FAIL": "compile:BackendAllocatorException:No successful assignments: "
                           "conv1 errors: Agent infeasible"},
     "allocator_infeasible", "BackendAllocatorException"),
], ids=["hang", "segfault", "oom_kill", "raises"])
def test_a_bad_compile_is_a_failed_trial_and_the_sweep_goes_on(tmp_path, double, family,
                                                               exception):
    env = _env(tmp_path, HAILO_DOUBLE_ONLY_NETS=_net(WIDTHS[0]), **double)
    sweep = tmp_path / "sweep"
    # the ladder sweeper runs the bad config, then the good one; only a hang gets a short budget
    bad_budget = HANG_TIMEOUT_S if "HAILO_DOUBLE_HANG" in double else GENEROUS_TIMEOUT_S
    rungs = (f'[["model.n_filters={WIDTHS[0]}","compiler.timeout_s={bad_budget}"],'
             f'["model.n_filters={WIDTHS[1]}"]]')
    proc = _cli(["-m", *BASE, "hydra/sweeper=ladder", f"hydra.sweeper.rungs={rungs}",
                 f"hydra.sweep.dir={sweep}", f"compiler.cache_dir={tmp_path / 'cache'}"],
                tmp_path, env)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    rows = {int(r["n_filters"]): r for r in _rows(sweep / "summary.tsv")}
    assert sorted(rows) == list(WIDTHS)
    bad, good = rows[WIDTHS[0]], rows[WIDTHS[1]]
    assert (bad["verdict"], bad["evidence"], bad["failure_family"]) == ("fail", "real", family)
    if exception:
        assert bad["exception_type"] == exception
    failure = json.loads((Path(bad["run_dir"]) / "compile_failure.json").read_text())
    assert failure["family"] == family
    assert (good["verdict"], good["failure_family"]) == ("pass", "")
    assert Path(good["hef_path"]).read_bytes().startswith(b"TEST-DOUBLE-HEF")
    if family == "timeout":  # the hung compiler and its grandchild are gone
        sleeper = _calls(tmp_path, "hang")[0]["args"]["sleeper_pid"]
        assert not Path(f"/proc/{sleeper}").exists() or \
            Path(f"/proc/{sleeper}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"


@pytest.mark.slow
def test_a_sweep_killed_with_sigkill_loses_no_trial_and_recompiles_nothing(tmp_path):
    widths = (16, 24, 32, 40, 48, 56)
    env = _env(tmp_path)
    cache = tmp_path / "cache"
    first = tmp_path / "first"
    args = ["-m", *BASE, f"model.n_filters={','.join(map(str, widths))}",
            f"compiler.cache_dir={cache}"]
    proc = _cli([*args, f"hydra.sweep.dir={first}"], tmp_path, env, **LOG_TO_STDOUT)
    _wait_for_trials(proc, 2)
    proc.send_signal(signal.SIGKILL)  # the sweep process, mid-way through the grid
    proc.communicate()
    finished = {json.loads(p.read_text())["knobs"]["n_filters"]
                for p in first.glob("*/result.json")}
    assert 2 <= len(finished) < len(widths), finished

    # no torn row: the summary (rebuilt or appended) has exactly the finished trials
    done = subprocess.run([sys.executable, "-m", "tasnet_sweep.commands.rebuild_summary",
                           str(first)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert {int(r["n_filters"]) for r in _rows(first / "summary.tsv")} == finished

    translated_before = {c["args"]["net_name"] for c in _calls(tmp_path, "translate_onnx_model")}
    second = tmp_path / "second"
    proc = _cli([*args, f"hydra.sweep.dir={second}"], tmp_path, env)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    rows = {int(r["n_filters"]): r for r in _rows(second / "summary.tsv")}
    assert sorted(rows) == list(widths)
    for w in finished:  # answered from the cache, not compiled again
        assert rows[w]["cache_hit"] == "true", (w, rows[w])
    per_net = {}
    for c in _calls(tmp_path, "translate_onnx_model"):
        per_net[c["args"]["net_name"]] = per_net.get(c["args"]["net_name"], 0) + 1
    for w in finished:
        assert per_net[_net(w)] == 1  # one compile of each finished trial, ever
    assert {_net(w) for w in widths} <= set(per_net)
    assert all(n == 1 for net, n in per_net.items() if net not in translated_before)


def test_rebuild_summary_drops_a_torn_row_and_a_half_written_result(tmp_path):
    from tasnet_sweep import trial

    sweep = tmp_path / "sweep"
    env = _env(tmp_path)
    summary = sweep / "summary.tsv"
    for job, width in enumerate(WIDTHS):  # two trials of one sweep, in this process
        cfg = compose_cfg(*SMALL, "unit=encoder", f"model.n_filters={width}", "tracking=none",
                          f"compiler.cache_dir={tmp_path / 'cache'}")
        trial.run(cfg, sweep / f"{job}_{cfg.run_tag}", summary)
    good = summary.read_text()
    # a torn last row (a writer cut off mid-line) and a trial cut off mid-result
    summary.write_text(good + "encoder\t2\t1")
    torn = sweep / "9_torn" / "result.json"
    torn.parent.mkdir()
    torn.write_text('{"schema": 1, "summary": {"run_tag": "torn"')
    done = subprocess.run([sys.executable, "-m", "tasnet_sweep.commands.rebuild_summary",
                           str(sweep)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "2 rows" in done.stdout
    assert summary.read_text() == good  # the same rows, nothing torn
    bad = subprocess.run([sys.executable, "-m", "tasnet_sweep.commands.rebuild_summary",
                          str(tmp_path / "nope")], env=env, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_frontier_search_killed_mid_way_resumes_without_recompiling(tmp_path):
    """The study keeps what was recorded; a trial that finished but was not recorded yet is
    answered from the trial cache; the killed worker's claims do not block the re-run."""
    import optuna

    from tasnet_sweep.search.study import open_storage

    env = _env(tmp_path)
    journal = tmp_path / "study.journal"
    args = ["-m", "hydra/sweeper=frontier", "search=encoder_width", "search.study_name=k",
            f"search.storage={journal}", "search.plot=false", "model.n_filters=64,128",
            "model.time_len=4000,8000,16000", "tracking=none",
            f"compiler.cache_dir={tmp_path / 'cache'}"]
    first = tmp_path / "first"
    proc = _cli([*args, f"hydra.sweep.dir={first}"], tmp_path, env, **LOG_TO_STDOUT)
    _wait_for_trials(proc, 1)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    finished = {(r["knobs"]["n_filters"], r["knobs"]["time_len"])
                for r in (json.loads(p.read_text()) for p in first.glob("*/result.json"))}
    assert finished

    second = tmp_path / "second"
    proc = _cli([*args, f"hydra.sweep.dir={second}"], tmp_path, env)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    for r in _rows(second / "summary.tsv") if (second / "summary.tsv").exists() else []:
        if (int(r["n_filters"]), int(r["time_len"])) in finished:
            assert r["cache_hit"] == "true", r  # finished before the kill: not compiled again
    study = optuna.load_study(study_name="k", storage=open_storage(str(journal)))
    answered = [t for t in study.get_trials() if "verdict" in t.user_attrs]  # answers
    compiled = [tuple(sorted(t.params.items())) for t in answered if t.user_attrs.get("compiled")]
    assert len(compiled) == len(set(compiled))  # nothing recorded twice
    assert len({tuple(sorted(t.params.items())) for t in answered}) == 6  # frontier answered


@pytest.mark.slow
@pytest.mark.parametrize("sig, launcher", [
    (signal.SIGKILL, []), (signal.SIGTERM, []),
    (signal.SIGKILL, ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]),
], ids=["sigkill", "sigterm", "sigkill_joblib"])
def test_a_killed_sweep_takes_its_compile_and_everything_it_started_with_it(tmp_path, sig,
                                                                            launcher):
    """The compile runs in its own process group (so a timeout can end it); when the sweep
    itself is killed, the compile and its grandchild must end too, not run on as orphans; so
    must the joblib launcher's worker that ran the job."""
    import select

    fifo = tmp_path / "hanging"
    os.mkfifo(fifo)
    env = _env(tmp_path, HAILO_DOUBLE_HANG="compile", HAILO_DOUBLE_HANG_FIFO=str(fifo))
    proc = _cli(["-m", *BASE, "model.n_filters=16,24", f"hydra.sweep.dir={tmp_path / 's'}",
                 f"compiler.cache_dir={tmp_path / 'cache'}", *launcher], tmp_path, env,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(fifo) as f:  # blocks until the compile child has begun its hang
        compiler, sleeper = map(int, f.readline().split())
    fds = [os.pidfd_open(compiler), os.pidfd_open(sleeper)]
    job_process = int(Path(f"/proc/{compiler}/stat").read_text().rsplit(")", 1)[1].split()[1])
    if launcher:  # the job ran in a loky worker, not in the sweep's own process
        assert job_process != proc.pid
        fds.append(os.pidfd_open(job_process))
    proc.send_signal(sig)
    proc.communicate()
    for fd in fds:  # each ends by itself (a pidfd turns readable when its process exits)
        assert select.select([fd], [], [], 120)[0], "a compile outlived the sweep"
        os.close(fd)
