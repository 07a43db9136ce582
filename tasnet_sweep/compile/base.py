"""The backend interface and the records of one compile: stages, failure, metrics.

A backend answers one question for one ONNX unit: does it go through translate (ONNX -> HAR),
optimize (calibrate + quantize) and compile (-> HEF) for this hardware, and if not, where and
why.  ``evidence`` says what kind of answer it is: ``real`` (the Hailo DFC ran), ``estimate``
(the offline allocator model), ``replay`` (a recorded outcome), ``inferred`` (search only).
The verdict is ``pass`` or ``fail``, or, from the estimate alone, ``uncertain``: the recorded
real outcomes bracket the deciding quantity and cannot tell (``CompileOutcome.bracket``).
"""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STAGES = ("translate", "optimize", "compile")
FAILURE_FAMILIES = (
    "parse_unsupported_op", "quantization", "calibration_shape", "allocator_infeasible",
    "allocator_timeout", "memory_capacity", "reshape_failed", "unsupported_kernel",
    "crash", "timeout", "missing_sdk", "script_error", "deploy_limit", "unknown",
)


@dataclass
class StageResult:
    name: str  # one of STAGES
    ok: bool | None  # None: the stage did not run
    seconds: float = 0.0
    artifact: str | None = None  # HAR or HEF path (only the real compiler writes these)
    log: str = ""  # the tail of the stage's log

    @classmethod
    def skipped(cls, name: str) -> StageResult:
        return cls(name, None)


@dataclass
class Failure:
    family: str  # one of FAILURE_FAMILIES
    stage: str
    exception_type: str = ""
    message: str = ""
    layer: str | None = None  # first failing layer, as the compiler names it
    layer_family: str | None = None  # conv, dw, deconv, norm, activation, elementwise, ...

    @property
    def head(self) -> str:
        """The failure's one-line summary, as the runbook's ``failure_head`` column shows it."""
        for line in self.message.splitlines():
            if line.strip():
                return line.strip()[:200]
        return ""


@dataclass
class CompileRequest:
    unit_name: str
    net_name: str
    onnx_path: Path
    inputs: list[tuple[str, list[int]]]  # ONNX input names and NCHW shapes
    outputs: list[str]
    work_dir: Path  # where this trial's artifacts go
    knobs: dict[str, Any] = field(default_factory=dict)  # model knobs, for replay matching


@dataclass
class CompileOutcome:
    backend: str
    evidence: str
    stages: list[StageResult]
    failure: Failure | None = None
    metrics: dict[str, Any] = field(default_factory=dict)  # contexts, fps, utilization, ...
    tool_version: str = ""
    cache_hit: bool = False
    report_path: str | None = None  # per-layer report written by the backend, if any
    #: the estimate's own doubt: set when a layer's row buffer lies inside its family's
    #: recorded bracket (family, quantity, value, pass_max, fail_min, layer, layer_family,
    #: point_verdict, inside); the verdict is then ``uncertain`` and the compile stage has no
    #: answer (ok None) -- unless a failure is recorded as well
    bracket: dict[str, Any] | None = None

    def stage(self, name: str) -> StageResult:
        for s in self.stages:
            if s.name == name:
                return s
        return StageResult.skipped(name)

    @property
    def har_success(self) -> bool | None:
        return self.stage("translate").ok

    @property
    def hef_success(self) -> bool | None:
        return self.stage("compile").ok

    @property
    def verdict(self) -> str:
        """pass | fail | uncertain (only an estimate: see ``bracket``; neither a pass nor a
        fail, so never evidence of either)."""
        if self.bracket is not None and self.failure is None:
            return "uncertain"
        return "pass" if self.hef_success else "fail"

    def as_dict(self) -> dict:
        d = asdict(self)
        d["verdict"] = self.verdict
        d["har_success"] = self.har_success
        d["hef_success"] = self.hef_success
        if self.failure is not None:
            d["failure"]["head"] = self.failure.head
        return d

    @classmethod
    def from_dict(cls, d: dict) -> CompileOutcome:
        failure = d.get("failure")
        if failure is not None:
            failure = Failure(**{k: v for k, v in failure.items() if k != "head"})
        return cls(backend=d["backend"], evidence=d["evidence"],
                   stages=[StageResult(**s) for s in d["stages"]], failure=failure,
                   metrics=d.get("metrics", {}), tool_version=d.get("tool_version", ""),
                   cache_hit=d.get("cache_hit", False), report_path=d.get("report_path"),
                   bracket=d.get("bracket"))


class CompileBackend(abc.ABC):
    name: str = ""
    evidence: str = ""
    #: the compile stage writes a deployable ``.hef`` (only the real compiler does)
    writes_hef: bool = False

    @abc.abstractmethod
    def version(self) -> str:
        """The tool version that produced the answers (part of the cache key)."""

    @abc.abstractmethod
    def cache_identity(self) -> dict:
        """Every setting that can change the answer for the same ONNX bytes."""

    @abc.abstractmethod
    def compile(self, request: CompileRequest) -> CompileOutcome:
        """Run the three stages for one unit.  Compiler failures are returned, not raised."""
