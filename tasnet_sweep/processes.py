"""Processes: is one still alive, and a sweep's job processes ending with the sweep.

Hydra's joblib launcher runs jobs in loky worker processes.  Those outlive a sweep killed with
SIGKILL (and idle on for minutes after a normal end), compiling for a sweep nobody waits for.
A job process that another process started watches that process and ends itself when it is
gone; a compile it started then ends too, through the compile's lifeline pipe.
"""

from __future__ import annotations

import os
import threading
import time

#: how often a job process looks for its parent (the cost is one getppid call)
POLL_S = 1.0
#: the exit status of a job process whose sweep is gone
EXIT_ORPHANED = 75
_watching = False


def pid_alive(pid: int) -> bool:
    """Whether a process of this host with ``pid`` exists (another user's counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def end_with_parent() -> bool:
    """In a process started by another one (a launcher's worker): start the watch, once.
    Returns whether a watch was started by this call."""
    global _watching
    import multiprocessing

    if _watching or multiprocessing.parent_process() is None:
        return False
    parent = os.getppid()
    if parent == 1:  # already orphaned, or a container's init: nothing to watch
        return False

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(POLL_S)
        os._exit(EXIT_ORPHANED)

    threading.Thread(target=watch, name="tasnet-parent-watch", daemon=True).start()
    _watching = True
    return True
