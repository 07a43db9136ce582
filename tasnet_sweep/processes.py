"""Processes: is one still alive, a sweep's job processes ending with the sweep, and a process
ending without the interpreter's teardown (``leave``; a loky worker: ``exit_without_teardown``).

Hydra's joblib launcher runs jobs in loky worker processes.  Those outlive a sweep killed with
SIGKILL (and idle on for minutes after a normal end), compiling for a sweep nobody waits for.
A job process that another process started watches that process and ends itself when it is
gone; a compile it started then ends too, through the compile's lifeline pipe.  A sweep that
ends normally ends its workers itself and waits for them (``end_pool_workers``).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import NoReturn

#: how often a job process looks for its parent (the cost is one getppid call)
POLL_S = 1.0
#: the exit status of a job process whose sweep is gone
EXIT_ORPHANED = 75
_watching = False
_leaving_fast = False


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
    multiprocessing = sys.modules.get("multiprocessing")  # a pool's worker has it loaded

    if _watching or multiprocessing is None or multiprocessing.parent_process() is None:
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


def exit_without_teardown() -> bool:
    """In a joblib (loky) worker: leave at exit without the interpreter's teardown, which for
    a worker that imported torch takes 0.5-1 s while the sweep waits (``end_pool_workers``).

    An ``atexit`` handler registered at the worker's first job: handlers registered after it,
    by what the jobs imported, still run first (atexit runs them last in, first out); then
    the standard streams are flushed and the worker leaves with status 0 (Hydra flushes each
    job's log when the job ends).  Loky reads a worker's status only when it died during a
    sweep, which it reports as a broken pool either way.  Returns whether this call
    registered it."""
    global _leaving_fast
    import atexit

    multiprocessing = sys.modules.get("multiprocessing")  # a loky worker has it loaded
    if _leaving_fast or multiprocessing is None \
            or not multiprocessing.current_process().name.startswith("LokyProcess"):
        return False
    atexit.register(_leave)
    _leaving_fast = True
    return True


def _leave() -> None:
    _flush_standard_streams()
    os._exit(0)


def _flush_standard_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed, or its reader is gone
            pass


def exit_status(code) -> int:
    """The status ``sys.exit(code)`` would end the process with (a message goes to stderr)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def leave(code=0) -> NoReturn:
    """End the process as the interpreter's own exit would, less its teardown.

    The interpreter's exit first waits for the threads that are not daemons (and runs what
    ``threading`` registered to let thread pools end), then runs the ``atexit`` handlers
    (logging's flush and close among them); both are done here, in that order, with
    ``threading``'s own shutdown function, the one the interpreter calls.  Then the
    standard streams are flushed and the process ends.  What is skipped is the teardown after
    that: freeing every module and collecting the heap, about a second in a sweep's process
    that imported MLflow, spent after the sweep has finished.  Objects still alive then do
    not get their ``__del__``; everything this package writes is closed (and renamed into
    place) when written, MLflow's SQLite store commits each call."""
    import atexit

    status = exit_status(code)
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is None:  # not CPython's threading: the ordinary exit
        sys.exit(status)
    shutdown()
    atexit._run_exitfuncs()
    _flush_standard_streams()
    os._exit(status)


def end_pool_workers() -> None:
    """End the joblib launcher's loky workers and the resource trackers (loky's, and the one
    ``multiprocessing`` starts), and wait for them.

    loky keeps its workers for the next ``Parallel`` call of this process; a sweep makes no
    other, and without this they idle on after it exits, as the trackers do for a moment.
    Nothing to do (and nothing imported) when no launcher loaded them."""
    executors = sys.modules.get("joblib.externals.loky.reusable_executor")
    executor = getattr(executors, "_executor", None)
    if executor is not None:  # joblib's terminate also drops its shared-memory folder
        getattr(executor, "terminate", executor.shutdown)()  # both wait for the workers
    for name in ("joblib.externals.loky.backend.resource_tracker",
                 "multiprocessing.resource_tracker"):
        tracker = getattr(sys.modules.get(name), "_resource_tracker", None)
        if getattr(tracker, "_pid", None) is not None and hasattr(tracker, "_stop"):
            tracker._stop()  # closes its pipe and waits for it to exit
