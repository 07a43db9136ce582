"""The ``estimate`` compile backend: the offline allocator model behind the CompileBackend face.

translate = the ONNX graph reads as Hailo layers (or the parser would reject an op);
optimize  = not estimated (assumed to succeed, and the log says so);
compile   = the allocator model's verdict, with a per-layer report: pass or fail, or uncertain
            where a layer's row buffer lies inside its family's recorded bracket
            (brackets.py; the compile stage then has no answer and ``bracket`` says why).
Nothing here runs Hailo code or writes a .hef; every verdict carries ``evidence=estimate``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from ... import __version__
from ...atomic import write_text
from ...config import ConfigError, allocator_setting_problems
from ..base import CompileBackend, CompileOutcome, CompileRequest, Failure, StageResult
from .profile import profile_from_node

if TYPE_CHECKING:
    from .allocator import Allocation
    from .brackets import Judgement
    from .graph import Graph

#: bump whenever a rule or a formula changes, so cached estimates are recomputed
MODEL_VERSION = "estimate-model-2"  # 2: verdict uncertain inside the recorded brackets
TAG = "[estimate]"
REPORT_NAME = "estimate_report.tsv"
#: one boundary row (W x C bytes) must stay under this: a HailoRT firmware field, as public
#: reports give it (not found in HailoRT's source)
BOUNDARY_ROW_LIMIT = 64 * 1024


def _get(node, key, default=None):
    if node is None:
        return default
    try:
        value = node.get(key, default)
    except AttributeError:
        value = getattr(node, key, default)
    return default if value is None else value


class EstimateBackend(CompileBackend):
    name = "estimate"
    evidence = "estimate"

    def __init__(self, compiler_cfg=None, hw_cfg=None):
        self.profile = profile_from_node(hw_cfg if hw_cfg is not None else {})
        self.max_utilization = _get(compiler_cfg, "max_utilization")
        self.context_switch = str(_get(compiler_cfg, "context_switch", "allowed"))
        problems = allocator_setting_problems(self.max_utilization, self.context_switch)
        if problems:
            raise ConfigError(problems)

    def version(self) -> str:
        return f"{MODEL_VERSION} (tasnet_sweep {__version__})"

    def cache_identity(self) -> dict:
        return {"model": MODEL_VERSION, "hw": self.profile.as_dict(),
                "max_utilization": self.max_utilization, "context_switch": self.context_switch}

    # -- the three stages -------------------------------------------------------------------

    def compile(self, request: CompileRequest) -> CompileOutcome:
        # the model is imported here: a cache hit builds this backend for its identity only
        from .allocator import estimate_graph
        from .brackets import judge
        from .graph import ParseError, read_onnx

        t0 = time.perf_counter()
        notes = self._profile_notes()
        try:
            graph = read_onnx(request.onnx_path, request.net_name)
        except ParseError as exc:
            log = "\n".join([*notes, f"{TAG} translate: the parser would reject this graph: "
                             f"{exc}"])
            failure = Failure(exc.family, "translate", exc.exception_type,
                              f"{exc} [evidence=estimate]", layer=exc.node)
            stages = [StageResult("translate", False, time.perf_counter() - t0, log=log),
                      StageResult.skipped("optimize"), StageResult.skipped("compile")]
            return CompileOutcome(self.name, self.evidence, stages, failure,
                                  {"est_model": MODEL_VERSION}, tool_version=self.version())
        t1 = time.perf_counter()
        translate = StageResult("translate", True, t1 - t0, log="\n".join([
            *notes, f"{TAG} translate: the ONNX graph ({graph.onnx_nodes} nodes) reads as "
            f"{len(graph.layers)} Hailo layers: " + ", ".join(
                f"{k} {v}" for k, v in sorted(graph.families().items()))
            + f" (estimate: the DFC parser was not run; names like {request.net_name}/conv1 "
            "follow its pattern)"]))
        optimize = StageResult("optimize", True, 0.0, log=self._optimize_log(graph))
        point = estimate_graph(graph, self.profile, self.max_utilization, self.context_switch)
        judged = judge(point.costs, self.profile, self.max_utilization, self.context_switch,
                       point=point)
        alloc = judged.alloc
        report = Path(request.work_dir) / REPORT_NAME
        write_text(report, _report_tsv(alloc))
        t2 = time.perf_counter()
        # uncertain: the compile stage has no answer (ok None); the bracket says why
        compile_stage = StageResult("compile", {"pass": True, "fail": False}.get(judged.verdict),
                                    t2 - t1, log="\n".join(self._compile_log(judged)))
        failure = None
        if judged.verdict == "fail":
            failure = Failure(alloc.failure_family, "compile", alloc.exception_type,
                              f"{alloc.message} [evidence=estimate]", layer=alloc.layer,
                              layer_family=alloc.layer_family)
        metrics = self._metrics(graph, alloc, t2 - t0)
        metrics["est_point_verdict"] = point.verdict
        return CompileOutcome(self.name, self.evidence, [translate, optimize, compile_stage],
                              failure, metrics, tool_version=self.version(),
                              report_path=str(report), bracket=judged.record())

    # -- logs and metrics --------------------------------------------------------------------

    def _profile_notes(self) -> list[str]:
        hw = self.profile
        notes = [f"{TAG} offline estimate {MODEL_VERSION} for hw={hw.arch} (evidence=estimate: "
                 "no Hailo tool ran)"]
        if hw.guessed:
            notes.append(f"{TAG} hw profile {hw.arch}: GUESSED constants: "
                         f"{', '.join(hw.guessed)}")
        return notes

    def _optimize_log(self, graph: Graph) -> str:
        lines = [f"{TAG} optimize: quantization is not estimated; assumed to succeed"]
        if any(layer.kind == "reduce_mean" for layer in graph.layers):
            lines.append(f"{TAG} note: the graph has reduce_mean norm layers; public reports saw "
                         "gLN's decomposition fail quantization (NegativeSlopeExponentNonFixable)"
                         ", which this estimate does not model")
        return "\n".join(lines)

    def _compile_log(self, judged: Judgement) -> list[str]:
        from .allocator import RESOURCES

        hw, alloc = self.profile, judged.alloc
        lines = []
        if self.context_switch != "enabled":
            single = self.max_utilization or hw.single_context_utilization
            lines.append(f"{TAG} Trying to compile the network in a single context "
                         f"(ceiling {single:.0%})")
        if alloc.verdict == "fail":
            lines.append(f"{TAG} {alloc.message}")
            if alloc.hypothesis:
                lines.append(f"{TAG} this failure rests on a HYPOTHESIS (hw.aux_layer_memory_units"
                             ", FITTED to standalone norm/identity/sigmoid rows that size alone "
                             "does not explain); treat it as likely, not known")
            return lines
        if alloc.flow == "single":
            lines.append(f"{TAG} Using Single-context flow")
        else:
            lines += [f"{TAG} Using Multi-context flow (ceiling {alloc.ceiling:.0%} per context)",
                      f"{TAG} Found valid partition to {alloc.contexts} contexts"]
        lines.append(f"{TAG} utilization of the busiest context: " + " | ".join(
            f"{r.capitalize()} {alloc.used[r]}/{alloc.totals[r]} units "
            f"({alloc.utilization(r):.1%})" for r in RESOURCES))
        if alloc.fps:
            lines.append(f"{TAG} throughput bound: {alloc.fps:,.1f} FPS ({alloc.macs:,} MACs at "
                         f"{alloc.ceiling:.0%} of {hw.peak_tops:g} TOPS, at most one output column"
                         f" per cycle at {hw.clock_mhz:g} MHz); context switches and host "
                         "transfers not counted")
        if judged.verdict == "uncertain":
            return lines + _uncertain_lines(judged)
        lines.append(f"{TAG} Successful Mapping (estimate; no .hef is written)")
        return lines

    def _metrics(self, graph: Graph, alloc: Allocation, seconds: float) -> dict:
        from .allocator import RESOURCES

        placed = [c for c in alloc.costs if c.control_units]
        biggest = max(placed, key=lambda c: c.row_bytes, default=None)
        boundary = [c for c in alloc.costs if c.layer.family in ("input", "output")]
        boundary_row = max((c.row_bytes for c in boundary), default=0)
        m = {
            "est_model": MODEL_VERSION,
            "est_flow": alloc.flow,
            "est_contexts": alloc.contexts if alloc.verdict == "pass" else None,
            "est_fps": round(alloc.fps, 2) if alloc.fps else None,
            "est_macs": alloc.macs,
            "est_weight_bytes": sum(c.weight_bytes for c in alloc.costs),
            "est_layers": len(placed),
            "est_ceiling": alloc.ceiling,
            "est_max_row_bytes": biggest.row_bytes if biggest else 0,
            "est_max_row_layer": biggest.layer.name if biggest else None,
            "est_hypothesis": alloc.hypothesis,
            "est_boundary_row_bytes": boundary_row,
            "est_boundary_row_over_64kib": boundary_row >= BOUNDARY_ROW_LIMIT,
            "est_seconds": round(seconds, 4),
            "hw_guessed": ",".join(self.profile.guessed),
        }
        for r in RESOURCES:
            m[f"util_{r}"] = round(alloc.utilization(r), 4) if alloc.used else None
            m[f"units_{r}"] = alloc.used.get(r) if alloc.used else None
            m[f"units_{r}_total"] = alloc.totals[r]
        return m


def _uncertain_lines(judged: Judgement) -> list[str]:
    """Why the verdict is ``uncertain``: the layer, its row buffer and the recorded bracket."""
    rec = judged.record()
    lay = judged.cost.layer
    lines = [f"{TAG} UNCERTAIN: {lay.short_name} ({lay.family}) buffers a one-row "
             f"{rec['value']:,} B, inside the recorded bracket of family {rec['family']}: "
             f"{rec['pass_max']:,} B passed and {rec['fail_min']:,} B failed in real compiles "
             f"(hw.row_brackets); the estimate's point verdict ({rec['point_verdict']}) is one "
             "guess inside it"]
    others = [name for name in rec["inside"] if name != lay.name]
    if others:
        lines.append(f"{TAG} also inside a bracket: {', '.join(others)}")
    lines.append(f"{TAG} the figures above hold if these layers fit and nothing else fails; "
                 "only a real compile (compiler=hailo_dfc) can tell (verdict=uncertain, "
                 "evidence=estimate; no .hef is written)")
    return lines


REPORT_COLUMNS = ("layer", "kind", "family", "fused_activation", "onnx_nodes", "in_nhwc",
                  "out_nhwc", "row_bytes", "weight_bytes", "macs", "control_units",
                  "compute_units", "memory_units", "row_units", "row_cap_units", "cap_rule",
                  "context", "status", "evidence")


def _report_tsv(alloc: Allocation) -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n")
    w.writerow(REPORT_COLUMNS)
    for row in alloc.table():
        row["evidence"] = "estimate"
        w.writerow([row[c] for c in REPORT_COLUMNS])
    return buf.getvalue()
