"""What a sweep job hands back to its sweeper: one definition, read by the sweepers and stored
on the study's trials as user attrs."""

from __future__ import annotations

#: the keys of a job's result, all from the trial's summary row
JOB_RESULT_KEYS = ("verdict", "evidence", "params", "macs", "failure_family", "cache_hit",
                   "run_dir")


def job_result(summary: dict) -> dict:
    """A trial's summary row as a job result (small and picklable)."""
    out = {key: summary.get(key) for key in JOB_RESULT_KEYS}
    out["cache_hit"] = bool(out["cache_hit"])
    return out
