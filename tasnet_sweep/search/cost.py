"""What a search's compiles cost: compile-hours spent, compile-hours saved by inference, and
the wall clock they took.

Every compiled trial keeps its compile time (``compile_seconds``, the stages' sum as recorded)
and what it spent now (``compile_seconds_spent``: 0 for a cache hit).  The hours *spent* are the
sum of the latter over the study's compiled configs.  An inferred config was never compiled, so
its time is priced from the compiles around it (``PRICING_RULE``): the recorded time of a
compile is the cost of one, whether this trial paid it or a cache hit carried it over.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .lattice import PASS, UNKNOWN, Knowledge, Lattice

PRICING_RULE = ("each inferred config is priced at the median recorded compile time of the "
                "compiled configs with the same verdict nearest to it in the lattice (fewest "
                "knob steps); with no timed compile of that verdict, of the nearest timed "
                "compiles of either verdict")
#: inferred points priced per block (a block's distance table is block x compiled points)
BLOCK = 2048


def seconds_of(value) -> float | None:
    """A recorded duration in seconds, or None for a missing or nonsensical one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


@dataclass(frozen=True)
class CompileCost:
    compiled: int  # the study's compiled configs
    timed: int  # of them, with a recorded compile time (studies older than it have none)
    cache_hits: int  # of them, answered from the compile cache: spent 0
    spent_s: float  # seconds spent compiling them
    inferred: int  # configs answered by inference
    priced: int  # of them, priced from a timed compile
    saved_s: float  # their price
    wall_clock_s: float | None = None  # this run, start to end
    evidence: tuple[str, ...] = ()  # what the compiled configs' answers are (estimate, real, ...)

    def results(self) -> dict:
        """The figures as optimization_results.yaml and the MLflow parent run give them."""
        return {
            "compile_hours_spent": _hours(self.spent_s),
            "compile_hours_saved_by_inference": _hours(self.saved_s),
            "wall_clock_hours": None if self.wall_clock_s is None else _hours(self.wall_clock_s),
            "compile_cost": {"compiled": self.compiled, "timed": self.timed,
                             "cache_hits": self.cache_hits, "inferred": self.inferred,
                             "priced": self.priced, "evidence": list(self.evidence),
                             "note": self.label(), "saved_rule": PRICING_RULE},
        }

    def label(self) -> str:
        """What the hours are, by the evidence behind them."""
        if not self.evidence:
            return "no compiles yet"
        if set(self.evidence) == {"estimate"}:
            return ("ESTIMATE: evidence=estimate, so these are the offline estimate's own run "
                    "times, not Hailo DFC compile times")
        if "replay" in self.evidence:
            return ("evidence=replay: the durations the replayed rows recorded (waited x "
                    "compiler.replay_time_scale), not compiling done on this machine")
        return f"evidence={', '.join(self.evidence)}: measured compile times"

    def markdown(self) -> list[str]:
        """frontier.md's lines on it."""
        hits = f", {self.cache_hits} cache hits counted as 0" if self.cache_hits else ""
        untimed = self.compiled - self.timed
        if untimed:
            hits += f", {untimed} compiled before times were recorded not counted"
        wall = ("not measured" if self.wall_clock_s is None
                else f"{_hours(self.wall_clock_s):.4g} h ({_span(self.wall_clock_s)}) this run")
        return [f"- compile cost ({self.label()}): {_hours(self.spent_s):.4g} compile-hours "
                f"spent ({_span(self.spent_s)}) on {self.compiled} compiles{hits}; "
                f"{_hours(self.saved_s):.4g} compile-hours saved by inference "
                f"({_span(self.saved_s)}, {self.priced} of {self.inferred} inferred configs "
                f"priced); wall clock {wall}",
                f"- compile-hours saved: {PRICING_RULE}"]


def compile_cost(lattice: Lattice, knowledge: Knowledge, records: dict,
                 wall_clock_s: float | None = None) -> CompileCost:
    """The cost of the compiles behind ``knowledge`` (``records``: point -> what its compile
    job returned, as the study keeps it) and the price of what was inferred instead."""
    compiled = [records.get(p, {}) for p in knowledge.observed]
    spent = [s for s in (seconds_of(r.get("compile_seconds_spent")) for r in compiled)
             if s is not None]
    timed = {p: s for p in knowledge.observed
             if (s := seconds_of(records.get(p, {}).get("compile_seconds"))) is not None}
    inferred = (knowledge.status != UNKNOWN)
    for p in knowledge.observed:
        inferred[p] = False
    prices = price_inferred(np.argwhere(inferred), knowledge, timed)
    return CompileCost(
        compiled=len(compiled), timed=len(spent),
        cache_hits=sum(bool(r.get("cache_hit")) for r in compiled), spent_s=float(sum(spent)),
        inferred=int(inferred.sum()), priced=int(np.isfinite(prices).sum()),
        saved_s=float(np.nansum(prices)), wall_clock_s=wall_clock_s,
        evidence=tuple(sorted({str(r["evidence"]) for r in compiled if r.get("evidence")})))


def price_inferred(points: np.ndarray, knowledge: Knowledge, timed: dict) -> np.ndarray:
    """Seconds for each of ``points`` (rows of lattice indices) by ``PRICING_RULE``; nan
    where no compile is timed."""
    prices = np.full(len(points), np.nan)
    if not len(points) or not timed:
        return prices
    passed = knowledge.status[tuple(points.T)] == PASS
    every = list(timed)
    for verdict in (True, False):
        rows = np.flatnonzero(passed == verdict)
        same = [p for p in every if knowledge.observed[p] == verdict] or every
        where = np.array(same)
        seconds = np.array([timed[p] for p in same])
        for start in range(0, len(rows), BLOCK):
            block = rows[start:start + BLOCK]
            steps = np.abs(points[block, None, :] - where[None, :, :]).sum(axis=2)
            nearest = steps == steps.min(axis=1, keepdims=True)
            prices[block] = np.nanmedian(np.where(nearest, seconds, np.nan), axis=1)
    return prices


def _hours(seconds: float) -> float:
    return float(f"{seconds / 3600:.6g}")


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 7200:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"
