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
from pathlib import Path

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


class _FreedAtTeardown:
    def __init__(self, path: Path):
        self.path = path

    def __del__(self):
        self.path.touch()


def _job_leaving_markers(folder: str, fast: bool) -> int:
    """A loky worker's job: an ``atexit`` handler registered after the fast exit (it must
    run) and a module global freed only by the interpreter's teardown (skipped when fast)."""
    import atexit

    from tasnet_sweep.processes import exit_without_teardown

    if fast:
        assert exit_without_teardown()
    pid = os.getpid()
    atexit.register(Path(folder, f"atexit-{pid}").touch)
    globals()["_FREED"] = _FreedAtTeardown(Path(folder, f"teardown-{pid}"))
    return pid


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "default"])
def test_a_worker_leaves_without_teardown_yet_runs_later_atexit_handlers(tmp_path, fast):
    from joblib import Parallel, delayed

    from tasnet_sweep.processes import end_pool_workers

    end_pool_workers()  # workers of earlier tests in this process are not these
    pids = set(Parallel(n_jobs=2, backend="loky")(
        delayed(_job_leaving_markers)(str(tmp_path), fast) for _ in range(2)))
    end_pool_workers()  # waits for them
    assert {p.name for p in tmp_path.glob("atexit-*")} == {f"atexit-{p}" for p in pids}
    torn_down = {p.name for p in tmp_path.glob("teardown-*")}
    assert torn_down == (set() if fast else {f"teardown-{p}" for p in pids})


#: a process that leaves through ``processes.leave`` (or ``sys.exit``): a thread still
#: working, an idle thread pool never shut down, an ``atexit`` handler, text still in
#: stdout's buffer, and a module global that only the interpreter's teardown frees
LEAVER = r"""
import atexit, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tasnet_sweep.processes import leave

folder = Path(sys.argv[1])

class FreedAtTeardown:
    def __del__(self):
        (folder / "teardown").touch()

def late_writer():
    time.sleep(0.3)
    (folder / "thread").touch()

kept = FreedAtTeardown()
threading.Thread(target=late_writer).start()
ThreadPoolExecutor(max_workers=1).submit(int).result()
atexit.register((folder / "atexit").touch)
sys.stdout.write("buffered, no newline")
leave(int(sys.argv[3])) if sys.argv[2] == "leave" else sys.exit(int(sys.argv[3]))
"""


@pytest.mark.parametrize("how", ["leave", "sys.exit"])
def test_leave_ends_as_exit_does_but_skips_the_teardown(tmp_path, how):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", LEAVER, str(tmp_path), how, "3"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    assert done.stdout == "buffered, no newline"
    assert (tmp_path / "thread").exists()  # waited for, as the interpreter waits
    assert (tmp_path / "atexit").exists()
    assert (tmp_path / "teardown").exists() == (how == "sys.exit")


def test_leave_takes_what_sys_exit_takes(capsys):
    from tasnet_sweep.processes import exit_status

    assert (exit_status(None), exit_status(0), exit_status(2)) == (0, 0, 2)
    assert exit_status("tasnet_sweep: error: bad") == 1
    assert capsys.readouterr().err == "tasnet_sweep: error: bad\n"
