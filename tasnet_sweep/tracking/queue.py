"""Trials waiting to be logged: a folder of small JSON entries, logged by a process that has
MLflow open already.

Importing MLflow costs a process about 2.4 s CPU and opening a SQLite store 1.4 s more (mlflow
3.17 on a 2-core machine); logging one trial into an open store about 0.05 s.  So a trial
process with no MLflow of its own leaves an entry here once its local record is written, and a
process that has paid logs it: a sweep's MLflow process (``<sweep dir>/.mlflow_queue``,
drained by a thread of the process that opened the parent run), or for single runs a detached
agent that stays for the next trial (``tracking/agent.py``).  An entry is claimed by renaming
it, so two drainers never log one trial twice; a claim left by a process that died is taken
again.  The run dirs stay the record: ``commands.sync`` pushes from them whatever never
arrived.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ..atomic import write_json
from ..processes import pid_alive

QUEUE_NAME = ".mlflow_queue"
AGENT_LOCK = "agent.lock"
AGENT_PID = "agent.pid"
AGENT_LOG = "agent.log"
LOG_LIMIT = 1 << 20
#: how often a drainer looks for new entries
POLL_S = 0.25
_TAKEN = ".taken-"
#: set on an entry that a process now gone had claimed: it may have been logged already
RECLAIMED = "reclaimed"


def enqueue(queue: Path, entry: dict) -> Path:
    """Leave ``entry`` for the drainer (written then renamed: never seen half-written)."""
    name = f"{time.time_ns():020d}-{os.getpid()}-{os.urandom(3).hex()}.json"
    return write_json(Path(queue) / name, entry)


def pending(queue: Path) -> bool:
    return any(_waiting(Path(queue)))


def _waiting(queue: Path) -> Iterator[Path]:
    """Entries nobody holds: new ones, and claims of processes that are gone."""
    if not queue.is_dir():
        return
    for path in sorted(queue.iterdir()):
        if path.name.endswith(".json") and not path.name.startswith("."):
            yield path
        elif _TAKEN in path.name:
            pid = path.name.rsplit(_TAKEN, 1)[1]
            if pid.isdigit() and not pid_alive(int(pid)):
                yield path


def claim(queue: Path) -> Iterator[tuple[Path, dict | None]]:
    """(claimed file, entry) for each waiting entry; unlink the file once it is logged.  An
    entry that is not JSON comes as None (a disk that lost it: sync still has the run dir).
    An entry taken over from a process that died holding it has ``RECLAIMED`` set."""
    for path in _waiting(Path(queue)):
        taken = path.with_name(f"{path.name.split(_TAKEN)[0]}{_TAKEN}{os.getpid()}")
        try:
            os.rename(path, taken)
        except FileNotFoundError:  # another drainer took it
            continue
        try:
            entry = json.loads(taken.read_text())
        except (OSError, ValueError):
            entry = None
        if not isinstance(entry, dict):
            entry = None
        elif _TAKEN in path.name:
            entry[RECLAIMED] = True
        yield taken, entry


def drain(queue: Path, log_one: Callable[[dict], None]) -> int:
    """Log every waiting entry with ``log_one`` (which must not raise); returns how many."""
    done = 0
    for taken, entry in claim(queue):
        try:
            if entry is not None:
                log_one(entry)
                done += 1
        finally:
            taken.unlink(missing_ok=True)
    return done


class Drainer:
    """A thread that drains ``queue`` every POLL_S until ``stop()``, which drains once more."""

    def __init__(self, queue: Path, log_one: Callable[[dict], None]):
        self.queue, self.log_one = Path(queue), log_one
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tasnet-mlflow-drain",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            drain(self.queue, self.log_one)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return drain(self.queue, self.log_one)


# -- single runs: the agent ---------------------------------------------------------------
def agent_queue(uri: str) -> Path:
    """The queue of single runs for one store: beside a SQLite file, else in the user's cache
    folder; named by a digest of the URI (which may hold credentials: never written here)."""
    key = hashlib.sha256(uri.encode()).hexdigest()[:16]
    if uri.startswith("sqlite:///") and uri != "sqlite:///:memory:":
        return Path(uri[len("sqlite:///"):]).parent / QUEUE_NAME / key
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "tasnet_sweep" / "mlflow_queue" / key


def try_lock(fh) -> bool:
    import fcntl

    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def hand_over(uri: str, entry: dict) -> int | None:
    """Queue a single run's trial for the store's agent and start one unless it runs; returns
    the pid of an agent started here.  The agent takes the URI from its environment.

    The queue's lock is taken here and handed to the new agent as an open file (``flock``
    belongs to the open file, which the child shares), so a second run handing over while
    the first agent is still starting sees it running and starts no other."""
    queue = agent_queue(uri)
    enqueue(queue, entry)
    with open(queue / AGENT_LOCK, "a") as lock:
        if not try_lock(lock):
            return None  # an agent has it; one that is leaving looks again after letting go
        log_path = queue / AGENT_LOG
        keep = log_path.is_file() and log_path.stat().st_size < LOG_LIMIT
        with open(log_path, "ab" if keep else "wb") as out:  # a new agent starts a long log anew
            proc = subprocess.Popen(
                [sys.executable, "-m", "tasnet_sweep.tracking.agent", "--lock-fd",
                 str(lock.fileno()), str(queue)],
                env={**os.environ, "MLFLOW_TRACKING_URI": uri}, stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                pass_fds=(lock.fileno(),))
    return proc.pid
