"""Ladders: an ordered list of rungs (override lists) run one at a time, maybe stopping early.

``rungs`` lists the rungs explicitly.  ``ramp`` builds a scale-up ladder from steps taken in
turn: within a step the listed knobs walk their values together (position by position), and
what earlier steps set stays at its last value, e.g.
``[{model.truncate_k_blocks: [1, 2]}, {model.truncate_k_blocks: [null, null], model.n_blocks:
[4, 8]}, {model.n_repeats: [2]}]`` gives k=1, k=2, X=4, X=8, then (X=8, R=2).  ``stop_on``
ends the ladder at the first rung whose verdict is ``pass`` (find the first thing that
compiles) or ``fail`` (find where scaling up breaks).
"""

from __future__ import annotations

from dataclasses import dataclass, field

STOP_RULES = (None, "pass", "fail")


def _value(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def expand_ramp(ramp: list[dict]) -> list[list[str]]:
    rungs: list[list[str]] = []
    held: dict[str, str] = {}
    for step in ramp:
        length = len(next(iter(step.values()), []))
        for i in range(length):
            held.update({key: _value(values[i]) for key, values in step.items()})
            rungs.append([f"{k}={x}" for k, x in held.items()])
    return rungs


def ladder_rungs(rungs: list | None, ramp: list | None) -> list[list[str]]:
    out = [list(r) if not isinstance(r, str) else r.split() for r in (rungs or [])]
    return out + expand_ramp(list(ramp or []))


def problems(rungs: list, ramp: list, stop_on) -> list[str]:
    found = []
    if stop_on not in STOP_RULES:
        found.append(f"hydra.sweeper.stop_on={stop_on!r} is invalid: expected null, pass or fail")
    for i, step in enumerate(ramp or []):
        lengths = {len(v) for v in step.values()} if hasattr(step, "values") else {-1}
        if len(lengths) != 1 or -1 in lengths:
            found.append(f"hydra.sweeper.ramp[{i}] is invalid: expected a mapping of keys to "
                         "value lists of one common length")
    if found:
        return found
    if not ladder_rungs(rungs, ramp):
        found.append("hydra.sweeper.rungs and hydra.sweeper.ramp are both empty: expected at "
                     "least one rung")
    return found


@dataclass
class LadderState:
    """Where a ladder is; written next to the summary so the report can say where it stopped."""

    rungs: list[list[str]]
    stop_on: str | None = None
    verdicts: list[str] = field(default_factory=list)
    stopped_at: int | None = None  # index of the rung that ended the ladder early

    def record(self, verdict: str) -> bool:
        """Add a rung's verdict; True when the ladder should stop here."""
        self.verdicts.append(verdict)
        if self.stop_on is not None and verdict == self.stop_on:
            self.stopped_at = len(self.verdicts) - 1
            return True
        return False

    def as_dict(self) -> dict:
        return {"rungs": self.rungs, "stop_on": self.stop_on, "verdicts": self.verdicts,
                "stopped_at": self.stopped_at, "completed": len(self.verdicts)}
