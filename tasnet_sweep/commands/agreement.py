"""How well the offline estimate reproduces recorded compile outcomes.

``python -m tasnet_sweep.commands.agreement [--tsv PATH] [--hw NAME|PATH] [KEY=VALUE ...]``
rebuilds the graph of every recorded row, runs it through the estimate (the same graph reader,
costs and allocator as ``compiler=estimate``) and prints ``agreement: K/N (P%)`` for har_success and
hef_success, then every disagreement with its reason.

Rows come from the public outcomes TSV (``module, in_chan, out_chan, latent_width, time_len,
model_config``) or from a sweep's ``summary.tsv`` (its ONNX file when it still exists, else the
unit and knob columns).  Each row is exported to ONNX from the project's own units (1x1-conv
rows from a bare 1x1 conv), so the estimate reads exactly what a trial would compile.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..checks import validate
from ..compile.estimate.allocator import estimate_graph
from ..compile.estimate.backend import MODEL_VERSION
from ..compile.estimate.graph import ParseError, read_onnx
from ..compile.estimate.profile import load_profile, parse_overrides
from ..config import ConfigError, register_configs
from ..config_path import config_search_path
from ..outcome_table import TableError, read_table
from ..report.tsv import KNOB_COLUMNS
from ..resources import PUBLIC_OUTCOMES

DEFAULT_TSV = PUBLIC_OUTCOMES
EXIT_INPUT = 2
TRUE, FALSE = {"true", "1", "yes"}, {"false", "0", "no"}
PUBLIC_COLUMNS = ("case", "module", "layers", "in_chan", "out_chan", "latent_width", "time_len",
                  "model_config", "har_success", "hef_success")
SUMMARY_COLUMNS = ("unit", "in_chan", "latent_width", "har_success", "hef_success")
#: summary rows whose outcome is itself a prediction: never calibrate the estimate on them
NOT_OBSERVED = {"estimate", "inferred"}


class InputError(Exception):
    """Bad input for these commands: printed as one line, exit code 2."""


@dataclass(frozen=True)
class Spec:
    """How to rebuild a row's graph: a bare 1x1 conv, a project unit, or an existing ONNX file."""

    kind: str  # conv1x1 | unit | onnx
    args: tuple


@dataclass
class OutcomeRow:
    case: str
    har: bool | None
    hef: bool | None
    spec: Spec | None
    hw_arch: str = ""
    note: str = ""  # why a row has no spec, or what was assumed to build it
    exception: str = ""  # the recorded exception type of a failure, if any
    evidence: str = "real"  # real | replay | estimate | inferred (the public table: real)


@dataclass
class Verdict:
    row: OutcomeRow
    har: bool | None
    hef: bool | None
    reason: str
    hypothesis: bool = False
    family: str | None = None


@dataclass
class Evaluation:
    verdicts: list[Verdict]
    skipped: list[OutcomeRow] = field(default_factory=list)

    def score(self, column: str) -> tuple[int, int]:
        pairs = [(getattr(v.row, column), getattr(v, column)) for v in self.verdicts
                 if getattr(v.row, column) is not None]
        return sum(t == p for t, p in pairs), len(pairs)

    def disagreements(self) -> list[tuple[str, Verdict]]:
        found = []
        for v in self.verdicts:
            for col in ("har", "hef"):
                truth = getattr(v.row, col)
                if truth is not None and truth != getattr(v, col):
                    found.append((col, v))
        return found


# -- reading outcome tables -----------------------------------------------------------------

def _bool(text: str | None) -> bool | None:
    text = (text or "").strip().lower()
    return True if text in TRUE else False if text in FALSE else None


def _read_tsv(path: Path) -> tuple[list[dict], str]:
    if not path.is_file():
        raise InputError(f"--tsv {str(path)!r}: no such file (expected the public outcomes TSV "
                         "or a sweep's summary.tsv)")

    try:
        rows, comments = read_table(path)
    except TableError as exc:
        raise InputError(f"--tsv: {exc}") from None
    if not rows:
        raise InputError(f"--tsv {str(path)!r} is empty: expected a header row and outcomes")
    return rows, " ".join(comments)


def load_outcomes(path: str | Path) -> list[OutcomeRow]:
    """Outcome rows from the public TSV or a summary.tsv; InputError names what is missing."""
    path = Path(path)
    rows, comments = _read_tsv(path)
    header = set(rows[0].keys()) if rows else set()
    if {"module", "model_config"} <= header:
        missing = [c for c in PUBLIC_COLUMNS if c not in header]
        if missing:
            raise InputError(f"--tsv {str(path)!r} lacks columns {', '.join(missing)}: expected "
                             f"the public outcomes layout ({', '.join(PUBLIC_COLUMNS)})")
        arch = "hailo8" if "hailo8" in comments and "hw_arch=hailo8" in comments else ""
        return [_public_row(r, arch) for r in rows]
    missing = [c for c in SUMMARY_COLUMNS if c not in header]
    if missing:
        raise InputError(f"--tsv {str(path)!r} lacks columns {', '.join(missing)}: expected a "
                         f"sweep summary.tsv ({', '.join(SUMMARY_COLUMNS)}, knob columns, "
                         "onnx_path) or the public outcomes TSV (module, model_config, ...)")
    return [_summary_row(r, path.parent) for r in rows]


def _kv(text: str) -> dict[str, str]:
    return dict(p.split("=", 1) for p in (text or "").split() if "=" in p)


def _public_row(r: dict, arch: str) -> OutcomeRow:
    case, module, layers = r["case"], r["module"], r.get("layers", "")
    cin, cout = int(r["in_chan"]), int(r["out_chan"])
    w, t = int(r["latent_width"]), int(r["time_len"])
    kv = _kv(r["model_config"])
    har, hef = _bool(r["har_success"]), _bool(r["hef_success"])
    spec, note = None, ""
    if module == "encoder":
        spec = Spec("unit", ("unit=encoder_only", f"model.n_filters={cout}",
                             f"model.kernel_size={kv.get('kernel', 16)}",
                             f"model.stride={kv.get('stride', 8)}", f"model.time_len={t}"))
    elif module == "norm":
        spec = Spec("unit", ("unit=norm", f"unit.op={kv.get('norm_mode', 'gLN')}",
                             f"unit.channels={cin}", f"unit.width={w}"))
    elif module == "activation":
        spec = Spec("unit", ("unit=activation", f"unit.op={kv.get('mask_act', 'sigmoid')}",
                             f"unit.channels={cin}", f"unit.width={w}"))
    elif module == "conv1d_block":
        spec = Spec("unit", ("unit=conv1d_block", f"model.bn={cin}",
                             f"model.hidden={kv.get('hid_chan', 512)}",
                             "model.skip_topology=project",
                             f"model.conv_kernel={kv.get('kernel', 3)}", f"unit.width={w}"))
        note = "norm not recorded: built with model.norm=gLN (the paper's)"
    elif module == "tdconvnet":
        spec = Spec("unit", ("unit=tdconvnet", "unit.blocks=1", f"model.n_filters={cin}",
                             f"model.n_src={kv.get('n_src', 2)}", f"model.bn={kv.get('bn', 128)}",
                             f"model.hidden={kv.get('hid', 512)}",
                             f"model.skip={kv.get('skip', 128)}",
                             f"model.n_blocks={kv.get('n_blocks', 1)}",
                             f"model.n_repeats={kv.get('n_repeats', 1)}", f"unit.width={w}"))
        note = "norm and skip topology not recorded: built with gLN and the paper's skip sum"
    elif module == "hailo_convtasnet":
        spec = Spec("unit", ("model=hailo_convtasnet", "unit=full",
                             *(f"model.{k}={kv[k0]}" for k, k0 in (
                                 ("n_src", "n_src"), ("n_filters", "n_filters"), ("bn", "bn"),
                                 ("hidden", "hid"), ("skip", "skip"), ("n_blocks", "n_blocks"),
                                 ("n_repeats", "n_repeats"), ("skip_topology", "skip_topology"),
                                 ("decoder", "decoder"), ("mask_mul", "mask_mul")) if k0 in kv),
                             f"model.time_len={t}"))
        note = "norm/activation not recorded: built with model=hailo_convtasnet's cLN and relu"
    elif layers.startswith("conv1x1") or module == "decoder":
        spec = Spec("conv1x1", (cin, cout, w))  # projector/head/decoder slices: one 1x1 conv
    else:
        note = f"module {module!r} ({layers}) has no mapping to a graph"
    return OutcomeRow(case, har, hef, spec, arch, note, (r.get("exception") or "").strip())


def _summary_row(r: dict, base: Path) -> OutcomeRow:
    """A summary.tsv row as an outcome: its ONNX file when it is still there, else the unit
    rebuilt from its knob columns; estimates are kept as predictions, not outcomes."""
    case = r.get("run_tag") or r.get("run_dir") or "row"
    har, hef = _bool(r.get("har_success")), _bool(r.get("hef_success"))
    evidence = (r.get("evidence") or "").strip()
    if evidence in NOT_OBSERVED:
        return OutcomeRow(case, None, None, None, r.get("hw_arch", ""),
                          f"evidence={evidence} is a prediction, not an observed outcome",
                          evidence=evidence)
    exception = (r.get("exception_type") or "").strip()
    onnx = (r.get("onnx_path") or "").strip()
    if onnx:
        path = Path(onnx) if Path(onnx).is_absolute() else base / onnx
        if path.is_file():
            return OutcomeRow(case, har, hef, Spec("onnx", (str(path),)), r.get("hw_arch", ""),
                              exception=exception, evidence=evidence or "real")
    return OutcomeRow(case, har, hef, Spec("unit", _unit_overrides(r)), r.get("hw_arch", ""),
                      "ONNX file gone: rebuilt from the unit and knob columns",
                      exception, evidence or "real")


def _unit_overrides(r: dict) -> tuple[str, ...]:
    """The overrides that rebuild a summary row's unit from its knob columns."""
    from ..model.units import WAVEFORM_UNITS

    unit = r["unit"]
    overrides = [f"unit={unit}"]
    overrides += [f"model.{k}={(r.get(k) or '').strip()}" for k in KNOB_COLUMNS
                  if (r.get(k) or "").strip()]
    if unit not in WAVEFORM_UNITS and r.get("latent_width"):
        overrides.append(f"unit.width={r['latent_width']}")
    if unit in ("norm", "activation"):
        overrides.append(f"unit.channels={r['in_chan']}")
        if (r.get("unit_op") or "").strip():
            overrides.append(f"unit.op={r['unit_op'].strip()}")
    return tuple(overrides)


# -- building graphs ------------------------------------------------------------------------

_GRAPHS: dict[Spec, object] = {}


def build_graphs(specs, net_name: str = "net") -> dict:
    """Spec -> parsed Graph (or the ParseError), exporting each new spec once per process."""
    todo = [s for s in dict.fromkeys(specs) if s not in _GRAPHS]
    units = [s for s in todo if s.kind == "unit"]
    cfgs = _compose_all([s.args for s in units]) if units else []
    with tempfile.TemporaryDirectory(prefix="tasnet_agreement_") as tmp:
        for i, spec in enumerate(todo):
            if spec.kind == "onnx":
                path = Path(spec.args[0])
            else:
                path = Path(tmp) / f"spec{i}.onnx"
                _export(spec, cfgs[units.index(spec)] if spec.kind == "unit" else None, path)
            try:
                _GRAPHS[spec] = read_onnx(path, net_name)
            except ParseError as exc:
                _GRAPHS[spec] = exc
    return {s: _GRAPHS[s] for s in specs}


def _compose_all(override_lists):
    from hydra import compose

    register_configs()
    out = []
    with config_search_path(None, None):
        for overrides in override_lists:
            cfg = compose(config_name="config", overrides=list(overrides))
            problems = validate(cfg)
            if problems:
                raise InputError(f"row rebuilt as {' '.join(overrides)} is not a valid config: "
                                 f"{problems[0]}")
            out.append(cfg)
    return out


def _export(spec: Spec, cfg, path: Path) -> None:
    import torch

    from ..export import export_unit
    from ..model.blocks import conv1x1
    from ..model.units import Unit, build_unit

    torch.manual_seed(0)
    if spec.kind == "conv1x1":
        cin, cout, w = spec.args
        unit = Unit("conv1x1", conv1x1(cin, cout), [("input", [1, cin, 1, w])], ["output"],
                    f"1x1 conv {cin}->{cout}")
    else:
        unit = build_unit(cfg.model, cfg.unit)
    export_unit(unit, path)


# -- evaluating -----------------------------------------------------------------------------

def evaluate(rows: list[OutcomeRow], profile, graphs: dict | None = None,
             max_utilization: float | None = None, context_switch: str = "allowed"
             ) -> Evaluation:
    """The estimate's verdict for every row that has a graph (rows without one are skipped)."""
    usable = [r for r in rows if r.spec is not None and (r.har is not None or r.hef is not None)]
    graphs = graphs if graphs is not None else build_graphs([r.spec for r in usable])
    by_spec: dict[Spec, Verdict] = {}
    verdicts = []
    for row in usable:
        if row.spec not in by_spec:
            g = graphs[row.spec]
            if isinstance(g, ParseError):
                v = Verdict(row, False, False, f"parse: {g}", family=g.family)
            else:
                a = estimate_graph(g, profile, max_utilization, context_switch)
                v = Verdict(row, True, a.verdict == "pass", _reason(a), a.hypothesis,
                            a.failure_family)
            by_spec[row.spec] = v
        v = by_spec[row.spec]
        verdicts.append(Verdict(row, v.har, v.hef, v.reason, v.hypothesis, v.family))
    used = {id(r) for r in usable}
    skipped = [r for r in rows if id(r) not in used]
    return Evaluation(verdicts, skipped)


def _reason(alloc) -> str:
    if alloc.verdict == "fail":
        return alloc.message
    placed = [c for c in alloc.costs if c.control_units]
    big = max(placed, key=lambda c: c.row_units / (c.cap_units or 1), default=None)
    where = (f"; tightest row: {big.layer.short_name} {big.row_bytes:,} B = {big.row_units} of "
             f"{big.cap_units * alloc.ceiling:.0f} units ({big.cap_rule})") if big else ""
    return f"{alloc.flow}-context pass, {alloc.contexts} context(s){where}"


def pct(k: int, n: int) -> str:
    return f"{k}/{n} ({100.0 * k / n:.1f}%)" if n else "0/0 (n/a)"


def without_hypothesis(profile):
    """The profile with the HYPOTHESIS rule switched off: aux layers capped like convs."""
    return profile.replace(aux_layer_memory_units=profile.layer_max_clusters
                           * profile.memory_units_per_cluster)


def report_lines(ev: Evaluation, ev_plain: Evaluation | None = None,
                 every_row: bool = False) -> list[str]:
    """The agreement lines, then every disagreement, the hypothesis count and skipped rows;
    ``ev_plain`` is the same rows evaluated without the hypothesis rule."""
    lines = [f"har_success agreement: {pct(*ev.score('har'))}",
             f"hef_success agreement: {pct(*ev.score('hef'))}"]
    lines += _hypothesis_lines(ev, ev_plain)
    lines += _family_lines(ev)
    dis = ev.disagreements()
    lines.append(f"disagreements: {len(dis)}" + (" (none)" if not dis else ""))
    for col, v in dis:
        truth, pred = getattr(v.row, col), getattr(v, col)
        lines.append(f"  {v.row.case}\t{col}_success\ttruth={str(truth).lower()}\t"
                     f"estimate={str(pred).lower()}\treason: {v.reason}")
    lines += [f"row mapping note: {note}"
              for note in sorted({v.row.note for v in ev.verdicts if v.row.note})]
    lines += [f"skipped: {r.case}: {r.note or 'no recorded outcome'}" for r in ev.skipped]
    if every_row:
        lines.append("every row (case, truth har/hef, estimate har/hef, reason):")
        lines += [f"  {v.row.case}\t{_tf(v.row.har)}/{_tf(v.row.hef)}\t{_tf(v.har)}/{_tf(v.hef)}"
                  f"\t{v.reason}" for v in ev.verdicts]
    return lines


def _hypothesis_lines(ev: Evaluation, ev_plain: Evaluation | None) -> list[str]:
    """Which verdicts rest on the fitted aux-layer limit, and the score without it."""
    lines = []
    hyp = [v for v in ev.verdicts if v.hypothesis]
    if hyp:
        agree = sum(v.hef == v.row.hef for v in hyp)
        lines.append(f"HYPOTHESIS: {len(hyp)} hef verdicts rest on hw.aux_layer_memory_units, a "
                     "FITTED limit for standalone activation/elementwise/norm/shape layers that "
                     "size alone does not explain (fitted to these very rows, not a known "
                     f"hardware limit); {agree} of them agree: "
                     + ", ".join(v.row.case for v in hyp))
    if ev_plain is not None:
        lines.append("hef_success agreement without the hypothesis (size rule alone): "
                     f"{pct(*ev_plain.score('hef'))}")
    return lines


def _family_lines(ev: Evaluation) -> list[str]:
    alloc_fails = [v for v in ev.verdicts if v.row.hef is False
                   and v.row.exception == "BackendAllocatorException" and v.hef is False]
    if not alloc_fails:
        return []
    same = sum(v.family == "allocator_infeasible" for v in alloc_fails)
    return [f"failure family: {same}/{len(alloc_fails)} of the recorded "
            "BackendAllocatorException failures that the estimate also fails are "
            "predicted as allocator_infeasible"]


def _tf(value: bool | None) -> str:
    return "-" if value is None else str(value).lower()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tasnet_sweep.commands.agreement",
                                 description="Agreement of the offline estimate with recorded "
                                             "compile outcomes.")
    ap.add_argument("--tsv", default=str(DEFAULT_TSV),
                    help="a sweep's summary.tsv or the public outcomes TSV (default: the real "
                         "DFC 3.33.0 / hailo8 outcomes shipped in the package)")
    ap.add_argument("--hw", default="hailo8", help="hw profile name in conf/hw or a yaml path")
    ap.add_argument("--rows", action="store_true", help="also list every row's verdict")
    ap.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                    help="hw profile overrides, e.g. memory_unit_bytes=4096")
    args = ap.parse_args(argv)
    try:
        profile = parse_overrides(load_profile(args.hw), args.overrides)
        rows = load_outcomes(args.tsv)
        ev = evaluate(rows, profile)
        ev_plain = evaluate(rows, without_hypothesis(profile))
    except (InputError, ConfigError) as exc:
        print(f"agreement: {exc}", file=sys.stderr)
        return EXIT_INPUT
    print(f"estimate {MODEL_VERSION} (evidence=estimate) vs {args.tsv} on hw={profile.arch}"
          + (f" with {' '.join(args.overrides)}" if args.overrides else "")
          + f": {len(ev.verdicts)} rows evaluated, {len(ev.skipped)} skipped")
    for line in report_lines(ev, ev_plain, every_row=args.rows):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
