"""A joblib sweep leaves no process behind: its loky workers and the resource trackers have
ended, and been waited for, when ``python -m tasnet_sweep`` exits (processes.end_pool_workers).
Left to themselves, the trackers end only after the sweep has exited, and loky's workers idle
on for the next sweep of the same process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from helpers import REPO, SMALL

#: runs the sweep as the child of a process that adopts whatever the sweep leaves running
#: (Linux PR_SET_CHILD_SUBREAPER), lists those left at the moment the sweep exits, then waits
#: for them (at most 120 s) and lists those still running
ADOPTER = r"""
import ctypes, json, os, signal, subprocess, sys
from pathlib import Path

ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)

def children():
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if entry.name.isdigit() and int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
            found.append(int(entry.name))
    return found

left = children()
named = {pid: Path(f"/proc/{pid}/stat").read_text()[:80] for pid in left}
signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(TimeoutError()))
signal.alarm(120)
try:
    while True:
        os.wait()
except (ChildProcessError, TimeoutError):
    pass
print(json.dumps({"rc": done.returncode, "stderr": done.stderr[-3000:], "left": left,
                  "named": named, "still": children()}))
"""


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="adopting orphans is Linux's prctl")
def test_a_joblib_sweep_leaves_no_worker_behind(tmp_path):
    # each job's log line names the process that ran it
    sweep = [sys.executable, "-m", "tasnet_sweep", "-m", "model.bn=16,24", "model.hidden=32,48",
             *[s for s in SMALL if not s.startswith(("model.bn", "model.hidden"))],
             "tracking=none", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
             "hydra.sweep.dir=sweep", "compiler.cache_dir=cache",
             "hydra.job_logging.formatters.simple.format='pid=%(process)d %(message)s'"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "0"}
    done = subprocess.run([sys.executable, "-c", ADOPTER, *sweep], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    got = json.loads(done.stdout)
    assert got["rc"] == 0, got["stderr"]
    workers = {int(pid) for log in (tmp_path / "sweep").glob("*/*.log")
               for pid in re.findall(r"^pid=(\d+) ", log.read_text(), re.M)}
    assert len(workers) == 2  # two worker processes ran the four jobs
    assert not workers & set(got["left"])  # ended before the sweep exited
    assert got["left"] == [], got["named"]  # nor anything else the sweep started, not even
    assert got["still"] == []              # a process that had ended but was not waited for
