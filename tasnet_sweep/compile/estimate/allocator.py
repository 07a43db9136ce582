"""Place costed layers onto a hardware profile the way the DFC's allocator is seen to.

1. A layer whose row buffer cannot fit even alone in the memory it may use (its cap, at the
   utilization ceiling) is infeasible: the compile fails there (``Agent infeasible``), as does a
   layer needing more units of a resource than a whole context offers (``memory_capacity``).
2. If every resource's total fits under the single-context ceiling (75%): single context.
3. Otherwise multi-context: every layer is checked again at the per-context ceiling (60%) and
   the layers are cut, in graph order, into consecutive contexts that each stay under it.

Utilization is reported in whole units (the 1/16, 1/64, 1/128 steps the DFC logs show per
cluster), for the busiest context.  FPS is an upper bound from MACs and the clock (see
``_context_cycles``); context switches and host transfers (unknown) are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...config import CONTEXT_SWITCH_MODES
from .graph import Graph
from .profile import HwProfile
from .resources import LayerCost, graph_costs

RESOURCES = ("control", "compute", "memory")


@dataclass
class Allocation:
    verdict: str  # pass | fail (the point estimate; brackets.judge adds uncertain)
    flow: str  # single | multi | none (failed before placement)
    contexts: int
    ceiling: float
    costs: list[LayerCost]
    totals: dict[str, int]
    used: dict[str, int] = field(default_factory=dict)  # busiest context, per resource
    context_of: dict[str, int] = field(default_factory=dict)  # layer name -> context (1-based)
    fps: float | None = None
    macs: int = 0
    failure_family: str | None = None
    exception_type: str = ""
    message: str = ""
    layer: str | None = None
    layer_family: str | None = None
    hypothesis: bool = False  # the verdict rests on a HYPOTHESIS constant
    #: layers whose row buffer lies inside their family's recorded bracket (brackets.judge)
    uncertain: tuple[str, ...] = ()

    def utilization(self, resource: str) -> float:
        return self.used.get(resource, 0) / self.totals[resource]

    def table(self) -> list[dict]:
        """One row per layer, for the per-layer report."""
        rows = []
        for c in self.costs:
            lay = c.layer
            cap = None if c.cap_units is None else c.cap_units * self.ceiling
            status = "ok" if lay.name in self.context_of else "not placed"
            if lay.name == self.layer:
                status = "INFEASIBLE"
            elif lay.name in self.uncertain:
                status = "UNCERTAIN"
            elif lay.family in ("input", "output"):
                status = "io"
            rows.append({
                "layer": lay.name, "kind": lay.kind, "family": lay.family,
                "fused_activation": lay.activation or "",
                "onnx_nodes": ",".join(lay.onnx_nodes),
                "in_nhwc": ";".join("x".join(map(str, s)) for s in lay.in_shapes),
                "out_nhwc": ";".join("x".join(map(str, s)) for s in lay.out_shapes),
                "row_bytes": c.row_bytes, "weight_bytes": c.weight_bytes, "macs": c.macs,
                "control_units": c.control_units, "compute_units": c.compute_units,
                "memory_units": c.memory_units, "row_units": c.row_units,
                "row_cap_units": "" if cap is None else f"{cap:.1f}",
                "cap_rule": c.cap_rule, "context": self.context_of.get(lay.name, ""),
                "status": status,
            })
        return rows


def _budget(hw: HwProfile, ceiling: float) -> dict[str, int]:
    return {r: int(ceiling * hw.total_units(r) + 1e-9) for r in RESOURCES}


def _infeasible(cost: LayerCost, hw: HwProfile, ceiling: float,
                budget: dict[str, int]) -> tuple[str, str] | None:
    """(family, message) when the layer cannot be placed even alone at ``ceiling``."""
    lay = cost.layer
    if cost.cap_units is not None and cost.row_units > cost.cap_units * ceiling:
        hypothesis = cost.cap_rule == "aux_layer_memory_units"
        why = (f"its one-row buffer of {cost.row_bytes:,} B needs {cost.row_units} memory units "
               f"of {hw.memory_unit_bytes} B, above the {cost.cap_units * ceiling:.0f} a layer "
               f"of family {lay.family} may use at {ceiling:.0%} (hw.{cost.cap_rule}="
               f"{getattr(hw, cost.cap_rule)}")
        why += ", a FITTED HYPOTHESIS)" if hypothesis else ", FITTED)"
        return "allocator_infeasible", (f"No successful assignments: {lay.short_name} errors: "
                                        f"Agent infeasible (estimate: {why})")
    for r in RESOURCES:
        if cost.units(r) > budget[r]:
            family = "memory_capacity" if r == "memory" else "allocator_infeasible"
            return family, (f"{r.capitalize()} units capacity exceeded (available: {budget[r]}, "
                            f"required: {cost.units(r)}) (estimate: layer {lay.short_name} alone "
                            f"at {ceiling:.0%})")
    return None


def _fail_first(costs, hw, ceiling, flow, totals) -> Allocation | None:
    budget = _budget(hw, ceiling)
    for cost in costs:
        found = _infeasible(cost, hw, ceiling, budget)
        if found:
            family, message = found
            return Allocation("fail", flow, 0, ceiling, costs, totals, failure_family=family,
                              exception_type="BackendAllocatorException", message=message,
                              layer=cost.layer.name, layer_family=cost.layer.family,
                              hypothesis=(family == "allocator_infeasible"
                                          and cost.cap_rule == "aux_layer_memory_units"))
    return None


def _context_cycles(costs: list[LayerCost], hw: HwProfile, ceiling: float) -> float:
    """A lower bound on one inference's clock cycles in a context: all its MACs on the
    compute units the ceiling allows, no layer on more than ``layer_max_clusters`` clusters'
    units, and no layer faster than one column per cycle."""
    if not costs:
        return 0.0
    mpc = hw.macs_per_unit_cycle
    budget = ceiling * hw.compute_units
    per_layer = min(budget, hw.layer_max_clusters * hw.compute_units_per_cluster)
    return max(sum(c.macs for c in costs) / (budget * mpc),
               max(c.macs for c in costs) / (per_layer * mpc),
               max(c.columns for c in costs))


def _fps(hw: HwProfile, ceiling: float, contexts: list[list[LayerCost]]) -> float | None:
    cycles = sum(_context_cycles(ctx, hw, ceiling) for ctx in contexts)
    return hw.clock_mhz * 1e6 / cycles if cycles > 0 else None


def allocate(costs: list[LayerCost], hw: HwProfile, max_utilization: float | None = None,
             context_switch: str = "allowed") -> Allocation:
    """The estimate's verdict for costed layers (see the module docstring): one context if
    it fits (unless context_switch=enabled), else contexts in order (unless disabled)."""
    if context_switch not in CONTEXT_SWITCH_MODES:
        raise ValueError(f"context_switch={context_switch!r}: expected one of "
                         f"{', '.join(CONTEXT_SWITCH_MODES)}")
    totals = {r: hw.total_units(r) for r in RESOURCES}
    placed = [c for c in costs if c.control_units]
    total_macs = sum(c.macs for c in placed)
    if context_switch != "enabled":
        single = _single_context(costs, placed, hw, max_utilization or
                                 hw.single_context_utilization, totals, total_macs,
                                 fall_back=context_switch != "disabled")
        if single is not None:
            return single
    return _multi_context(costs, placed, hw, max_utilization or hw.multi_context_utilization,
                          totals, total_macs)


def _single_context(costs, placed, hw, ceiling, totals, total_macs,
                    fall_back: bool) -> Allocation | None:
    """Everything in one context, a layer that fits nowhere, or (``fall_back``) None: try
    several contexts."""
    failed = _fail_first(placed, hw, ceiling, "single", totals)
    if failed:
        failed.costs, failed.macs = costs, total_macs
        return failed
    need = {r: sum(c.units(r) for c in placed) for r in RESOURCES}
    budget = _budget(hw, ceiling)
    if all(need[r] <= budget[r] for r in RESOURCES):
        return Allocation("pass", "single", 1, ceiling, costs, totals, used=need,
                          context_of={c.layer.name: 1 for c in placed},
                          fps=_fps(hw, ceiling, [placed]), macs=total_macs)
    if fall_back:
        return None
    over = ", ".join(f"{r} {need[r]}/{budget[r]}" for r in RESOURCES if need[r] > budget[r])
    return Allocation("fail", "single", 0, ceiling, costs, totals, used=need,
                      failure_family="allocator_infeasible",
                      exception_type="BackendAllocatorException",
                      message=("Compiler could not find a valid partition to contexts "
                               f"(estimate: one context needs {over} units and "
                               "context_switch_param(mode=disabled) forbids more)"),
                      macs=total_macs)


def _multi_context(costs, placed, hw, ceiling, totals, total_macs) -> Allocation:
    """Layers packed into contexts in graph order, a new context when the next one does not
    fit; the busiest context's use is reported."""
    failed = _fail_first(placed, hw, ceiling, "multi", totals)
    if failed:
        failed.costs, failed.macs = costs, total_macs
        return failed
    budget = _budget(hw, ceiling)
    contexts: list[dict[str, int]] = [dict.fromkeys(RESOURCES, 0)]
    members: list[list[LayerCost]] = [[]]
    context_of = {}
    for c in placed:
        cur = contexts[-1]
        if any(cur[r] + c.units(r) > budget[r] for r in RESOURCES):
            contexts.append(dict.fromkeys(RESOURCES, 0))
            members.append([])
            cur = contexts[-1]
        for r in RESOURCES:
            cur[r] += c.units(r)
        members[-1].append(c)
        context_of[c.layer.name] = len(contexts)
    busiest = {r: max(ctx[r] for ctx in contexts) for r in RESOURCES}
    return Allocation("pass", "multi", len(contexts), ceiling, costs, totals, used=busiest,
                      context_of=context_of, fps=_fps(hw, ceiling, members), macs=total_macs)


def estimate_graph(graph: Graph, hw: HwProfile, max_utilization: float | None = None,
                   context_switch: str = "allowed") -> Allocation:
    """Cost every layer of a parsed graph and place them: the whole estimate after parsing."""
    return allocate(graph_costs(graph.layers, hw), hw, max_utilization, context_switch)
