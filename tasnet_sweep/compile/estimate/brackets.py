"""Where the estimate is unsure: the recorded brackets around its row-buffer limits.

The estimate decides a layer's fate by one quantity against one limit per family of layers
(resources.py, allocator.py): the layer's row buffer in bytes (``row_bytes``) against

- ``conv``: what a conv, dw or deconv layer may use (``hw.layer_max_clusters`` clusters'
  memory units at the ceiling), and
- ``aux``: what a standalone activation, elementwise, norm or shape layer may use
  (``hw.aux_layer_memory_units``, a HYPOTHESIS).

Real outcomes bracket each limit: the largest row buffer of the family in a compile that
passed (every layer of it fitted) and the smallest in a compile that failed in the allocator
where no other family can have been the cause (``derive``).  The profile keeps them as
``hw.row_brackets`` ({family: [largest pass, smallest fail]}); the FITTED limit is one point
inside.  A config whose row buffer of some family falls strictly inside that family's bracket
is ``uncertain`` (``judge``): the recorded outcomes cannot tell, and neither can the point
inside -- unless something else fails outright.  Outside every bracket the estimate's own
verdict stands.  A bracket with an open end (no recorded pass, or no recorded fail) makes no
config uncertain: there the estimate's point verdict is all there is (for ``aux`` it is
flagged as resting on a HYPOTHESIS).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ...config import BRACKET_FAMILIES, bracket_items
from .allocator import Allocation, allocate
from .resources import LayerCost

#: the cap rule (resources.LayerCost.cap_rule) that decides each bracket family
RULE_OF_FAMILY = {"conv": "layer_max_clusters", "aux": "aux_layer_memory_units"}
FAMILY_OF_RULE = {rule: family for family, rule in RULE_OF_FAMILY.items()}
#: the deciding quantity, as reported with every bracket
QUANTITY = "row_bytes"


@dataclass(frozen=True)
class Bracket:
    """What the recorded outcomes say about one family's limit on the row buffer (bytes)."""

    family: str
    pass_max: int | None  # the largest row buffer recorded passing
    fail_min: int | None  # the smallest row buffer recorded failing

    @property
    def closed(self) -> bool:
        return self.pass_max is not None and self.fail_min is not None

    def contains(self, value: int) -> bool:
        """Strictly inside: at or below the largest pass fits, at or above the smallest fail
        does not (the limit is taken as monotone in the row buffer)."""
        return self.closed and self.pass_max < value < self.fail_min

    def bounds(self) -> list[int | None]:
        return [self.pass_max, self.fail_min]

    def text(self) -> str:
        low = "no recorded pass" if self.pass_max is None else f"{self.pass_max:,} B passed"
        high = "no recorded fail" if self.fail_min is None else f"{self.fail_min:,} B failed"
        return f"{self.family} row buffer: {low}, {high}"


def profile_brackets(hw) -> dict[str, Bracket]:
    """The profile's brackets by family (``hw.row_brackets``)."""
    return {family: Bracket(family, *bounds)
            for family, bounds in bracket_items(getattr(hw, "row_brackets", ()) or ())}


def family_of(cost: LayerCost) -> str | None:
    """The bracket family whose limit decides this layer (None for input/output layers)."""
    return FAMILY_OF_RULE.get(cost.cap_rule) if cost.control_units else None


def deciding(costs: list[LayerCost]) -> dict[str, LayerCost]:
    """Per family, the placed layer with the largest row buffer: the family's deciding layer."""
    out: dict[str, LayerCost] = {}
    for c in costs:
        family = family_of(c)
        if family is not None and (family not in out or c.row_bytes > out[family].row_bytes):
            out[family] = c
    return out


# -- the verdict --------------------------------------------------------------------------------

@dataclass
class Judgement:
    """The estimate's verdict with its brackets: ``alloc`` is the allocation to report (for
    ``uncertain``: the one where the layers inside a bracket fit), ``point`` the plain
    estimate's, ``bracket``/``cost`` the bracket and the layer that made it uncertain."""

    verdict: str  # pass | fail | uncertain
    alloc: Allocation
    point: Allocation
    bracket: Bracket | None = None
    cost: LayerCost | None = None

    def record(self) -> dict | None:
        """The bracket record of an uncertain verdict (``CompileOutcome.bracket``)."""
        if self.verdict != "uncertain":
            return None
        c, b = self.cost, self.bracket
        return {"family": b.family, "quantity": QUANTITY, "value": c.row_bytes,
                "pass_max": b.pass_max, "fail_min": b.fail_min, "layer": c.layer.name,
                "layer_family": c.layer.family, "point_verdict": self.point.verdict,
                "inside": list(self.alloc.uncertain)}


def judge(costs: list[LayerCost], hw, max_utilization: float | None = None,
          context_switch: str = "allowed", point: Allocation | None = None) -> Judgement:
    """The verdict with the profile's brackets (see the module docstring).

    Layers whose row buffer lies inside their family's bracket are let through (no cap); if
    the allocation still fails, the failure lies elsewhere and the verdict is ``fail``;
    otherwise it is ``uncertain``.  ``point``: the plain estimate, when already computed."""
    point = point or allocate(costs, hw, max_utilization, context_switch)
    brackets = profile_brackets(hw)
    inside = {c.layer.name: (c, brackets[f]) for c in costs
              if (f := family_of(c)) in brackets and brackets[f].contains(c.row_bytes)}
    if not inside:
        return Judgement(point.verdict, point, point)
    free = [dataclasses.replace(c, cap_units=None) if c.layer.name in inside else c
            for c in costs]
    best = allocate(free, hw, max_utilization, context_switch)
    best.costs = costs  # report the layers' own caps
    if best.verdict == "fail":  # something else fails outright
        shown = best if point.verdict == "pass" or point.layer in inside else point
        return Judgement("fail", shown, point)
    best.uncertain = tuple(inside)
    cost, bracket = max(inside.values(), key=lambda cb: _depth(cb[0].row_bytes, cb[1]))
    return Judgement("uncertain", best, point, bracket, cost)


def _depth(value: int, b: Bracket) -> float:
    """How far into its bracket a row buffer lies: 0 at the largest pass, 1 at the smallest
    fail."""
    return (value - b.pass_max) / (b.fail_min - b.pass_max)


# -- deriving brackets from real outcomes -------------------------------------------------------

#: failure families a row buffer over its limit shows as in the allocator
SIZE_FAILURES = frozenset({"allocator_infeasible"})


@dataclass
class Observation:
    """One real compile: its case name, whether it passed, whether a failure was the
    allocator refusing (``SIZE_FAILURES``), and the costs of its graph."""

    case: str
    passed: bool
    size_failure: bool
    costs: list[LayerCost]


@dataclass
class Derived:
    """Brackets read off observations: the bounds, which case set each, and what could not
    be used (a failure with several possible families, or none)."""

    brackets: dict[str, Bracket]
    pass_case: dict[str, str] = dataclasses.field(default_factory=dict)
    fail_case: dict[str, str] = dataclasses.field(default_factory=dict)
    ambiguous: list[str] = dataclasses.field(default_factory=list)
    unexplained: list[str] = dataclasses.field(default_factory=list)
    conflicts: list[str] = dataclasses.field(default_factory=list)


def derive(observations: list[Observation], start: dict[str, Bracket] | None = None
           ) -> Derived:
    """Brackets from real outcomes, narrowing ``start`` (a profile's brackets): the largest
    pass can only grow, the smallest fail only shrink.

    A passing compile raises every family's largest pass to its deciding row buffer.  A
    failing one (in the allocator) lowers the smallest fail of the one family whose deciding
    row buffer is above that family's largest pass -- the families at or below it are known
    to fit; with several such families the failure is ambiguous and bounds none.  A family
    whose bounds cross (a pass at or above a fail) has no consistent monotone limit: it is
    listed in ``conflicts`` and keeps ``start``'s bracket (none when it had none)."""
    start = start or {}
    lo = {f: b.pass_max for f, b in start.items() if b.pass_max is not None}
    hi = {f: b.fail_min for f, b in start.items() if b.fail_min is not None}
    out = Derived({})
    for ob in observations:
        if ob.passed:
            _raise_passes(ob, lo, out)
    for ob in observations:
        if not ob.passed and ob.size_failure:
            _lower_fails(ob, lo, hi, out)
    for family in BRACKET_FAMILIES:
        low, high = lo.get(family), hi.get(family)
        if low is not None and high is not None and low >= high:
            out.conflicts.append(
                f"{family}: {low:,} B passed ({out.pass_case.get(family, 'the profile')}) but "
                f"{high:,} B failed ({out.fail_case.get(family, 'the profile')})")
            base = start.get(family)
            low, high = (base.pass_max, base.fail_min) if base else (None, None)
        if low is not None or high is not None:
            out.brackets[family] = Bracket(family, low, high)
    return out


def _raise_passes(ob: Observation, lo: dict, out: Derived) -> None:
    """A passing compile: every family's deciding row buffer fitted."""
    for family, c in deciding(ob.costs).items():
        if c.row_bytes > lo.get(family, 0):
            lo[family], out.pass_case[family] = c.row_bytes, ob.case


def _lower_fails(ob: Observation, lo: dict, hi: dict, out: Derived) -> None:
    """An allocator failure: it bounds the one family not known to fit, if only one is left."""
    suspects = {f: c for f, c in deciding(ob.costs).items() if c.row_bytes > lo.get(f, 0)}
    if len(suspects) > 1:
        out.ambiguous.append(f"{ob.case} ({', '.join(sorted(suspects))})")
    elif not suspects:
        out.unexplained.append(ob.case)
    else:
        (family, c), = suspects.items()
        if family not in hi or c.row_bytes < hi[family]:
            hi[family], out.fail_case[family] = c.row_bytes, ob.case
