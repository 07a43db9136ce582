"""Ordered knobs, dominance and monotone inference over a grid of configurations.

A search space is a few knobs, each with values ordered small -> large.  A configuration is a
point of the grid (one index per knob).  Point ``a`` dominates ``b`` when every index of ``a`` is
at least that of ``b``.  Compiling is assumed monotone: if ``b`` fails, every ``a`` dominating it
fails too; if ``a`` passes, every ``b`` it dominates passes.  Knowledge keeps the status of every
point in a numpy grid, so a down-set is a slice ``[:i0+1, :i1+1, ...]`` and recording an outcome
costs one slice assignment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

UNKNOWN, PASS, FAIL = 0, 1, -1
#: only in a prior grid (driver.prior_from_study), never in Knowledge: the estimate answered
#: ``uncertain`` (inside a recorded bracket), neither a pass nor a fail
UNCERTAIN = 2


class SearchSpaceError(ValueError):
    """A bad search space: the message is one line naming the knob and what is accepted."""


@dataclass(frozen=True)
class Knob:
    name: str
    values: tuple  # ordered small -> large

    def index(self, value) -> int | None:
        for i, v in enumerate(self.values):
            if v == value or (isinstance(v, (int, float)) and _same_number(v, value)):
                return i
        return None


def _same_number(a, b) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def _knob_values(name: str, spec) -> tuple:
    """Values of one knob from a list of choices or a ``{low, high, step}`` range."""
    if isinstance(spec, Mapping):
        if "values" in spec:
            return _knob_values(name, spec["values"])
        unknown = set(spec) - {"low", "high", "step"}
        if unknown or "low" not in spec or "high" not in spec:
            raise SearchSpaceError(
                f"search.knobs.{name}={dict(spec)!r} is invalid: expected a list of values "
                "or {low: int, high: int, step: int}")
        low, high, step = spec["low"], spec["high"], spec.get("step", 1)
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in (low, high, step)) \
                or step < 1 or high < low:
            raise SearchSpaceError(
                f"search.knobs.{name}={dict(spec)!r} is invalid: expected whole numbers with "
                "low <= high and step >= 1")
        return tuple(range(low, high + 1, step))
    if isinstance(spec, (str, bytes)) or not isinstance(spec, Iterable):
        raise SearchSpaceError(f"search.knobs.{name}={spec!r} is invalid: expected a list of "
                               "values ordered small -> large, or {low, high, step}")
    values = tuple(spec)
    if not values:
        raise SearchSpaceError(f"search.knobs.{name} is empty: expected at least one value")
    if len(set(map(repr, values))) != len(values):
        raise SearchSpaceError(f"search.knobs.{name}={list(values)!r} repeats a value: "
                               "expected distinct values")
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if numeric and list(values) != sorted(values):
        raise SearchSpaceError(f"search.knobs.{name}={list(values)!r} is not ordered: expected "
                               "values from small to large (the order is what dominance uses)")
    return values


def knobs_from_spec(spec: Mapping) -> list[Knob]:
    """``{"model.bn": [32, 64], "model.n_blocks": {low: 1, high: 8}}`` -> ordered knobs."""
    if not isinstance(spec, Mapping) or not spec:
        raise SearchSpaceError(f"search.knobs={spec!r} is invalid: expected a mapping of "
                               "config keys to ordered values, e.g. {model.bn: [32, 64, 128]}")
    return [Knob(str(name), _knob_values(str(name), values)) for name, values in spec.items()]


class Lattice:
    """The grid of configurations spanned by ordered knobs."""

    def __init__(self, knobs: list[Knob]):
        self.knobs = list(knobs)
        self.names = [k.name for k in self.knobs]
        self.shape = tuple(len(k.values) for k in self.knobs)
        self.size = int(np.prod(self.shape))

    @classmethod
    def from_spec(cls, spec: Mapping) -> Lattice:
        return cls(knobs_from_spec(spec))

    def points(self) -> Iterable[tuple[int, ...]]:
        return np.ndindex(*self.shape)

    def values(self, point) -> dict:
        """The knob values of a point, as {config key: value}."""
        return {k.name: k.values[i] for k, i in zip(self.knobs, point)}

    def point_of(self, values: Mapping) -> tuple[int, ...] | None:
        """The point with these knob values, or None when one is not on the grid."""
        found = []
        for k in self.knobs:
            if k.name not in values:
                return None
            i = k.index(values[k.name])
            if i is None:
                return None
            found.append(i)
        return tuple(found)

    def rank(self, point) -> float:
        """Size along the order in [0, 1]: the mean position of the point on each knob."""
        return float(np.mean([i / max(n - 1, 1) for i, n in zip(point, self.shape)]))

    @staticmethod
    def dominates(a, b) -> bool:
        """True when ``a`` is at least ``b`` on every knob (a config dominates itself)."""
        return all(x >= y for x, y in zip(a, b))

    def down(self, point) -> tuple[slice, ...]:
        return tuple(slice(0, i + 1) for i in point)

    def up(self, point) -> tuple[slice, ...]:
        return tuple(slice(i, None) for i in point)


class Knowledge:
    """What is known about each point: observed outcomes plus what monotonicity implies.

    Observed outcomes always win; an observation that contradicts an earlier one (a passing
    config above a failing one) is kept in ``conflicts`` and inference does not overwrite it.
    """

    def __init__(self, lattice: Lattice):
        self.lattice = lattice
        self.status = np.zeros(lattice.shape, dtype=np.int8)
        self.observed: dict[tuple[int, ...], bool] = {}
        self.conflicts: list[tuple[tuple[int, ...], tuple[int, ...]]] = []

    def record(self, point, passed: bool) -> None:
        point = tuple(int(i) for i in point)
        self.observed[point] = bool(passed)
        region = self.lattice.down(point) if passed else self.lattice.up(point)
        block = self.status[region]
        against = FAIL if passed else PASS
        if (block == against).any():
            for other, ok in self.observed.items():
                if ok != passed and other != point and (
                        self.lattice.dominates(point, other) if passed
                        else self.lattice.dominates(other, point)):
                    self.conflicts.append((point, other))
        block[block == UNKNOWN] = PASS if passed else FAIL
        self.status[point] = PASS if passed else FAIL

    def outcome(self, point) -> bool | None:
        s = self.status[tuple(point)]
        return None if s == UNKNOWN else bool(s == PASS)

    def evidence(self, point) -> str | None:
        point = tuple(point)
        if point in self.observed:
            return "observed"
        return None if self.status[point] == UNKNOWN else "inferred"

    @property
    def unknown(self) -> int:
        return int((self.status == UNKNOWN).sum())

    @property
    def complete(self) -> bool:
        return self.unknown == 0


def boundary_masks(status: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(maximal passing, minimal failing) masks of a status grid.

    A passing point is maximal when every one-step-larger neighbour on the grid fails (or does
    not exist); a failing point is minimal when every one-step-smaller neighbour passes.
    Unknown neighbours disqualify, so on a complete grid these are exactly the certificate.
    """
    passing, failing = status == PASS, status == FAIL
    maximal, minimal = passing.copy(), failing.copy()
    for axis in range(status.ndim):
        n = status.shape[axis]
        if n < 2:
            continue
        lo = [slice(None)] * status.ndim
        hi = [slice(None)] * status.ndim
        lo[axis], hi[axis] = slice(0, n - 1), slice(1, n)
        maximal[tuple(lo)] &= failing[tuple(hi)]
        minimal[tuple(hi)] &= passing[tuple(lo)]
    return maximal, minimal


def certificate(lattice: Lattice, status: np.ndarray):
    """(maximal passing points, minimal failing points) of a status grid, as index tuples."""
    maximal, minimal = boundary_masks(status)
    as_points = lambda m: [tuple(int(i) for i in p) for p in np.argwhere(m)]  # noqa: E731
    return as_points(maximal), as_points(minimal)


def truth_grid(lattice: Lattice, passes) -> np.ndarray:
    """The status grid of an oracle ``passes(values: dict) -> bool`` (benchmarks, tests)."""
    grid = np.zeros(lattice.shape, dtype=np.int8)
    for p in lattice.points():
        grid[p] = PASS if passes(lattice.values(p)) else FAIL
    return grid


def is_monotone(status: np.ndarray) -> bool:
    """True when no passing point sits one step above a failing one on any knob."""
    for axis in range(status.ndim):
        n = status.shape[axis]
        lo = [slice(None)] * status.ndim
        hi = [slice(None)] * status.ndim
        lo[axis], hi[axis] = slice(0, n - 1), slice(1, n)
        if ((status[tuple(lo)] == FAIL) & (status[tuple(hi)] == PASS)).any():
            return False
    return True
