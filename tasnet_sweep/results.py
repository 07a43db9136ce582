"""The records a trial leaves: ``TrialResult`` (its ``result.json``) and the job result a sweep
job hands back to its sweeper.  ``trial.py`` builds them; tracking, the summary TSV, the
frontier study, ``sync`` and ``gc`` read them through these types.  ``read_result`` and
``read_summary_row`` are the readers of a ``result.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .compile.base import CompileOutcome

RESULT_SCHEMA = 1


def read_summary_row(path: str | Path) -> dict | None:
    """Only the summary row a ``result.json`` carries (enough to rebuild a summary TSV, even
    from a record of an older shape); None for a file cut off or without a row."""
    try:
        row = json.loads(Path(path).read_text(encoding="utf-8"))["summary"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return row if isinstance(row, dict) and row.get("run_dir") else None


@dataclass(frozen=True)
class JobResult:
    """What a sweep job hands back to its sweeper, all from the trial's summary row; sent as
    ``as_dict()`` (plain and picklable, as Hydra job returns are) and stored on the study's
    trials as user attrs."""

    verdict: str | None
    evidence: str | None
    params: int | None
    macs: int | None
    failure_family: str | None
    cache_hit: bool
    run_dir: str | None
    #: the compile stages' seconds as recorded (a cache hit carries the original compile's)
    compile_seconds: float | None = None
    #: of those, spent by this trial (0 for a cache hit): what a search's compile-hours sum
    compile_seconds_spent: float | None = None

    @classmethod
    def from_summary(cls, summary: dict) -> JobResult:
        values = {key: summary.get(key) for key in JOB_RESULT_KEYS}
        values["cache_hit"] = bool(values["cache_hit"])
        return cls(**values)

    def as_dict(self) -> dict:
        return {key: getattr(self, key) for key in JOB_RESULT_KEYS}


#: the keys of a job's result: one definition, read by the sweepers and the study
JOB_RESULT_KEYS = tuple(f.name for f in fields(JobResult))


@dataclass(kw_only=True)
class TrialResult:
    """One trial's record.  The compile stages (translate, optimize, compile) are the
    ``StageResult`` records of ``compile``; ``summary`` is the trial's row of the summary TSV;
    ``extra`` keeps keys other tools added to the file (e.g. on-device validation)."""

    schema: int = RESULT_SCHEMA
    run_tag: str
    knobs: dict
    unit: dict  # name, description, layers, inputs, outputs, output shape, latent width
    params: int
    macs: int | None
    export: dict  # the ONNX export's record: path, nodes, parity, seconds
    onnx_name: str
    compile: CompileOutcome
    deploy: dict  # HEF count, configures and switches per second of audio
    status: str = "ok"  # ok | parity_fail
    seconds: float = 0.0
    started_at: float | None = None
    summary: dict = field(default_factory=dict)
    calibration: dict | None = None
    compile_key: str | None = None  # the compile-cache entry behind this trial
    tiling: dict | None = None  # the plan of a tiled trial
    extra: dict = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return self.compile.verdict

    def as_dict(self) -> dict:
        """The ``result.json`` form (plain JSON types; unset optional records left out)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if value is None and f.name in _OPTIONAL_RECORDS:
                continue
            out[f.name] = value.as_dict() if f.name == "compile" else value
        return {**self.extra, **out}

    @classmethod
    def from_dict(cls, d: dict) -> TrialResult:
        """The reverse of ``as_dict``; raises KeyError/TypeError/ValueError for a dict of
        another shape."""
        if not isinstance(d, dict):
            raise TypeError(f"a trial result is a JSON object, not {type(d).__name__}")
        names = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in d.items() if k in names}
        values["compile"] = CompileOutcome.from_dict(d["compile"])
        for required in _REQUIRED:
            values.setdefault(required, d[required])
        if not isinstance(values.get("summary", {}), dict):
            raise TypeError("a trial result's summary is an object")
        return cls(**values, extra={k: v for k, v in d.items() if k not in names})

    def job_result(self) -> JobResult:
        return JobResult.from_summary(self.summary)


_OPTIONAL_RECORDS = ("calibration", "compile_key", "tiling")
_REQUIRED = ("run_tag", "knobs", "unit", "params", "macs", "export", "onnx_name", "deploy")


def read_result(path: str | Path) -> TrialResult | None:
    """The trial record in a ``result.json``; None for a file cut off, unreadable, or holding
    something other than a trial's record."""
    try:
        return TrialResult.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
