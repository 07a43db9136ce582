"""The tracking agent: a detached process that logs single runs' trials to one MLflow store.

``python -m tasnet_sweep.tracking.agent [--lock-fd N] <queue dir>`` with the store's URI in
``$MLFLOW_TRACKING_URI``.  A single run (``tracking.background=true``, the default) queues its
trial and starts an agent unless one is running (tracking/queue.py); the agent imports MLflow
and opens the store once, logs what arrives, and leaves after ``$TASNET_TRACKING_AGENT_IDLE_S``
seconds (default 300) with nothing to do, so trials run one after another pay the import
once.  While idle it looks at the queue less and less often (every 2 s at most), so waiting
costs next to nothing.  One agent per queue: it holds an flock on ``agent.lock`` while it
runs, taken for it by the run that starts it (``--lock-fd``).  A trial it cannot log gets
``tracking_failed.txt`` in its run dir, as inline logging does.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sys
import time
from pathlib import Path

from ..atomic import write_text
from ..results import read_result
from . import mlflow_store as store
from .queue import AGENT_LOCK, AGENT_PID, POLL_S, RECLAIMED, drain, pending, try_lock

log = logging.getLogger("tasnet_sweep.tracking")
IDLE_S = 300.0
#: the longest pause between two looks at the queue while idle
MAX_POLL_S = 2.0


def idle_seconds() -> float:
    try:
        return float(os.environ.get("TASNET_TRACKING_AGENT_IDLE_S", IDLE_S))
    except ValueError:
        return IDLE_S


class Agent:
    def __init__(self, uri: str):
        self.uri = uri
        self.client = None

    def log_one(self, entry: dict) -> None:
        """One single run's trial as a plain run; a failure is the run dir's to report."""
        run_dir = Path(entry.get("run_dir", ""))
        try:
            result = read_result(run_dir / "result.json")
            if result is None:
                log.warning("%s: no trial record; not logged", run_dir)
                return
            if self.client is None:
                self.client = store.client_for(self.uri)
            experiment_id = store.ensure_experiment(self.client, entry["experiment"], self.uri)
            # only an agent that died holding the entry can have logged it: search then only
            if entry.get(RECLAIMED) and store.already_logged(self.client, experiment_id,
                                                             run_dir):
                log.info("%s: logged already (by an agent that did not clear its claim)",
                         run_dir)
                return
            run_id = store.log_trial_run(self.client, experiment_id, result, run_dir,
                                         entry["config"])
            log.info("logged %s as run %s", run_dir, run_id)
        except Exception as exc:
            store.report_failure_once(run_dir, exc, self.uri)


def _lock_file(queue: Path, lock_fd: int | None):
    if lock_fd is not None:
        return os.fdopen(lock_fd, "a")
    return open(queue / AGENT_LOCK, "a")  # noqa: SIM115 (serve's with closes it)


def serve(queue: Path, idle_s: float, lock_fd: int | None = None) -> int:
    """Log the queue's entries until it has been empty for ``idle_s``; 0 when another agent
    holds the queue.  ``lock_fd``: the queue's lock, open and taken by the process that
    started this one (queue.hand_over)."""
    queue.mkdir(parents=True, exist_ok=True)
    agent = Agent(store.resolve_uri(None, create=False))
    with _lock_file(queue, lock_fd) as lock:
        if not try_lock(lock):
            return 0
        write_text(queue / AGENT_PID, f"{os.getpid()}\n")
        last, pause = time.monotonic(), POLL_S
        while True:
            if drain(queue, agent.log_one):
                last, pause = time.monotonic(), POLL_S
                continue
            if time.monotonic() - last < idle_s:
                time.sleep(pause)
                pause = min(MAX_POLL_S, pause * 1.5)
                continue
            fcntl.flock(lock, fcntl.LOCK_UN)  # leaving: a trial from now on starts an agent
            if not pending(queue) or not try_lock(lock):
                return 0  # nothing came, or a new agent has it
            last = time.monotonic()  # an entry came while letting go: serve it


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    lock_fd = None
    if len(args) == 3 and args[0] == "--lock-fd" and args[1].isdigit():
        lock_fd, args = int(args[1]), args[2:]
    if len(args) != 1:
        print("usage: python -m tasnet_sweep.tracking.agent [--lock-fd N] <queue dir>",
              file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(levelname)s] %(message)s")
    return serve(Path(args[0]), idle_seconds(), lock_fd)


if __name__ == "__main__":
    sys.exit(main())
