"""A sweep's MLflow side in a process of its own: it opens the sweep's run, logs the trials
the jobs queue, attaches the sweep's files and finishes the run when the sweep says so.

The sweep's own process then never imports MLflow.  Its jobs (in that process with Hydra's
basic launcher, in workers with joblib) only leave their trials in the sweep's queue
(tracking/queue.py), so the seconds of CPU that MLflow and SQLite take run beside the
trials on another CPU instead of taking turns with them for one interpreter lock.

The process is started with ``spawn`` (a fresh interpreter: nothing of the sweep's threads or
locks is copied into it), watches the sweep's process and ends when that is gone (a killed
sweep leaves its run RUNNING, which the next sweep marks KILLED), and leaves without the
interpreter's teardown.  Its log lines go to stderr in Hydra's format.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from ..processes import end_with_parent, leave

#: Hydra's default log line, for the lines this process writes
LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"
#: what the sweep sends when its jobs are done
END = "end"


class SweepProcess:
    """The sweep's side: start the process, and at the sweep's end tell it and wait for it."""

    def __init__(self, process, conn):
        self.process, self.conn = process, conn

    @classmethod
    def start(cls, open_sweep: Callable, close_sweep: Callable, spec: dict[str, Any],
              earlier_link: dict | None, started_ms: int) -> SweepProcess:
        """``open_sweep(spec, earlier_link, started_ms)`` in the new process, then, once the
        sweep has ended, ``close_sweep(spec["sweep_dir"], spec["uri"])`` (module-level
        functions: the process is given their names)."""
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe()
        # daemon: should the sweep's process end without ``finish`` (a job's exception),
        # multiprocessing ends this one at exit; the queue left behind is for ``sync``
        process = ctx.Process(target=serve, name="tasnet-mlflow-sweep", daemon=True,
                              args=(open_sweep, close_sweep, spec, earlier_link, started_ms,
                                    theirs))
        process.start()
        theirs.close()
        return cls(process, ours)

    def finish(self) -> int | None:
        """Ask the process to log what is queued and finish the run; wait for it.  Returns
        its exit status."""
        try:
            self.conn.send(END)
        except OSError:  # it has ended already (and said why on stderr)
            pass
        self.process.join()
        self.conn.close()
        return self.process.exitcode


def serve(open_sweep: Callable, close_sweep: Callable, spec: dict[str, Any],
          earlier_link: dict | None, started_ms: int, conn) -> None:
    """The process's whole life (``SweepProcess.start``'s arguments, and its end of the pipe
    to the sweep)."""
    end_with_parent()
    _log_to_stderr()
    try:
        open_sweep(spec, earlier_link, started_ms)
        if _sweep_ended(conn):
            close_sweep(spec["sweep_dir"], spec["uri"])
    finally:
        conn.close()
    leave(0)


def _sweep_ended(conn) -> bool:
    """Wait for the sweep's word: True once its jobs are done, False when its process is gone
    without it (its run stays RUNNING; the next sweep's ``end_dead_sweeps`` ends it)."""
    try:
        return conn.recv() == END
    except EOFError:
        return False


def _log_to_stderr() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger = logging.getLogger("tasnet_sweep")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
