"""How well the offline estimate reproduces recorded compile outcomes.

``python -m tasnet_sweep.commands.agreement [--tsv PATH] [--hw NAME|PATH] [KEY=VALUE ...]``
rebuilds the graph of every recorded row, runs it through the estimate (the same graph reader,
costs and allocator as ``compiler=estimate``) and prints ``agreement: K/N (P%)`` for har_success and
hef_success, then every disagreement with its reason.

Every row of the table is evaluated, skipped (no observed outcome, or a prediction) or counted
and named as not mapped, with the reason; the three counts add up to the table's rows.

Rows come from an outcomes table of the public layout (``case, module, layers, in_chan,
out_chan, latent_width, time_len, model_config``; the shipped one, or a user's own) or from a
sweep's ``summary.tsv``.  A public-layout row maps by the first rule that fits:

1. ``layers`` naming a partial block, ``conv1x1 (C-channel partial block)``: one bare 1x1 conv
   ``in_chan -> out_chan`` at ``latent_width``, if ``in_chan`` is C, ``out_chan`` at most C and
   ``block_chan`` (when recorded) C (``source_projector_block``, ``decoder_pre_block``, ...);
2. ``layers`` exactly ``conv1x1``, or a bring-up slice name (``plain_conv1x1``, ``decoder``,
   ``source_projector_out<i>``, ``decoder_pre_half<i>``, ``decoder_head_src<i>``): that one
   bare 1x1 conv at the recorded shape;
3. a ``*_block`` module whose ``layers`` name no partial block: not mapped;
4. a unit of this project (``ls conf/unit``), or a runbook name for one (``encoder_conv_only``,
   ``hailo_convtasnet``, ``<unit>_only`` such as ``decoder_pre_only``): that unit, built from
   ``model_config``; ``encoder``/``norm``/``activation``/``conv1d_block``/``tdconvnet``/
   ``hailo_convtasnet`` rows as the public table records them, the other fine parts as
   ``+experiment=fine_parts`` builds them (``model=hailo_convtasnet`` and the recorded knobs);
   the built unit must take the recorded ``in_chan`` and ``latent_width``;
5. anything else: not mapped.

A ``summary.tsv`` row maps to its ONNX file while that still exists, else to its ``unit``
rebuilt from the knob columns (a unit this project has, an untiled trial, the recorded
``in_chan`` and ``latent_width``).  A rebuilt config that does not compose or validate is not
mapped either, so one bad row never stops the others.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..checks import validate
from ..compile.estimate.allocator import estimate_graph
from ..compile.estimate.backend import MODEL_VERSION
from ..compile.estimate.graph import ParseError, read_onnx
from ..compile.estimate.profile import load_profile, parse_overrides
from ..config import ConfigError, register_configs
from ..config_path import config_search_path
from ..model.catalog import UNIT_NAMES, WAVEFORM_UNITS
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
#: ``layers`` of a C-channel partial block of a 1x1 conv (the bring-up's blocked slices)
PARTIAL_BLOCK = re.compile(r"conv1x1 \((\d+)-channel partial block\)")
#: bring-up modules that are one 1x1 conv cut out of a bigger one (an output, half or source)
SLICE_MODULES = re.compile(r"plain_conv1x1|decoder|(source_projector_out|decoder_pre_half|"
                           r"decoder_head_src)\d+")
#: bring-up modules that are a partial block of a 1x1 conv
BLOCK_MODULES = re.compile(r"(source_projector|decoder_pre|decoder_head)_block")
#: runbook and public-table module names for a unit of this project other than its own name
#: (besides ``<unit>_only``: decoder_pre_only, masker_bottleneck_only, ...)
UNIT_ALIASES = {"encoder_conv_only": "encoder_only", "hailo_convtasnet": "full"}
#: ``model_config`` keys of public-layout tables -> the model knob each records
MODEL_KEYS = {"n_src": "n_src", "n_filters": "n_filters", "kernel_size": "kernel_size",
              "stride": "stride", "bn": "bn", "hid": "hidden", "hidden": "hidden",
              "skip": "skip", "conv_kernel": "conv_kernel", "n_blocks": "n_blocks",
              "n_repeats": "n_repeats", "norm": "norm", "activation": "activation",
              "mask_act": "mask_act", "skip_topology": "skip_topology", "mask_mul": "mask_mul",
              "decoder": "decoder", "truncate_k_blocks": "truncate_k_blocks"}
#: unit keys summary.tsv does not record that change a rebuilt unit's graph
UNRECORDED_UNIT_KEYS = {"tdconvnet": "unit.blocks", "conv1d_block": "unit.block"}
FINE_PART_NOTE = ("fine parts built as +experiment=fine_parts builds them: model=hailo_convtasnet "
                  "(cLN, relu) with the recorded knobs")
SLICE_NOTE = ("1x1-conv slices and partial blocks rebuilt as one bare 1x1 conv at the recorded "
              "in_chan -> out_chan and latent_width")


class InputError(Exception):
    """Bad input for these commands: printed as one line, exit code 2."""


class NotMapped(Exception):
    """Why a row has no graph (the reason printed with its case and module)."""


@dataclass(frozen=True)
class Spec:
    """How to rebuild a row's graph: a bare 1x1 conv, a project unit, or an existing ONNX file;
    ``expect`` is the (in_chan, latent_width) a rebuilt unit must take (None: not recorded)."""

    kind: str  # conv1x1 | unit | onnx
    args: tuple
    expect: tuple = ()


@dataclass(frozen=True)
class Unmapped:
    """A spec that could not be built into a graph, and why."""

    reason: str


@dataclass
class OutcomeRow:
    case: str
    har: bool | None
    hef: bool | None
    spec: Spec | None
    hw_arch: str = ""
    note: str = ""  # why a row is skipped, or what was assumed to build it
    exception: str = ""  # the recorded exception type of a failure, if any
    evidence: str = "real"  # real | replay | estimate | inferred (the public table: real)
    module: str = ""  # the row's module (public layout) or unit (summary)
    rule: str = ""  # which mapping rule built its spec
    unmapped: str = ""  # why the row has no graph (empty: it has one, or is only skipped)


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
    unmapped: list[OutcomeRow] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.verdicts) + len(self.skipped) + len(self.unmapped)

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


# -- mapping a public-layout row ------------------------------------------------------------

@dataclass
class PublicRow:
    """A public-layout row's recorded facts, parsed."""

    module: str
    layers: str
    cin: int
    cout: int
    width: int
    time_len: int
    kv: dict


def _public_row(r: dict, arch: str) -> OutcomeRow:
    module = (r.get("module") or "").strip()
    row = OutcomeRow(r["case"], _bool(r["har_success"]), _bool(r["hef_success"]), None, arch,
                     exception=(r.get("exception") or "").strip(), module=module)
    try:
        spec, rule, note = map_public(_parse_public(r))
    except NotMapped as exc:
        return replace(row, unmapped=str(exc))
    return replace(row, spec=spec, rule=rule, note=note)


def _parse_public(r: dict) -> PublicRow:
    sizes = []
    for column in ("in_chan", "out_chan", "latent_width", "time_len"):
        text = (r.get(column) or "").strip()
        if not text.isdecimal() or int(text) < 1:
            raise NotMapped(f"{column}={text!r} is not a whole number >= 1")
        sizes.append(int(text))
    return PublicRow((r.get("module") or "").strip(), " ".join((r.get("layers") or "").split()),
                     *sizes, _kv(r["model_config"]))


def map_public(row: PublicRow) -> tuple[Spec, str, str]:
    """(spec, rule, note) for a public-layout row by the module docstring's rules, in order;
    NotMapped says why none fits."""
    block = PARTIAL_BLOCK.fullmatch(row.layers)
    if block:
        return _partial_block(row, int(block.group(1)))
    if row.layers == "conv1x1" or SLICE_MODULES.fullmatch(row.module):
        return Spec("conv1x1", (row.cin, row.cout, row.width)), "1x1-conv slice", SLICE_NOTE
    if BLOCK_MODULES.fullmatch(row.module):
        raise NotMapped(f"a partial-block module whose layers {row.layers!r} name no "
                        "'conv1x1 (C-channel partial block)'")
    unit = unit_for(row.module)
    if unit is None:
        raise NotMapped("not a unit of this project (ls conf/unit), a runbook fine part or a "
                        f"1x1-conv slice, and layers {row.layers!r} are not one 1x1 conv")
    overrides, note = UNIT_RECIPES[unit](row, unit)
    built = next(o for o in overrides if o.startswith("unit="))
    return Spec("unit", overrides, (row.cin, row.width)), built, note


def unit_for(module: str) -> str | None:
    """The project unit a module name stands for: its own name, an alias, ``<unit>_only``."""
    if module in UNIT_ALIASES:
        return UNIT_ALIASES[module]
    stem = module if module in UNIT_NAMES else module.removesuffix("_only")
    return stem if stem in UNIT_NAMES else None


def _partial_block(row: PublicRow, chan: int) -> tuple[Spec, str, str]:
    recorded = row.kv.get("block_chan", str(chan))
    if row.cin != chan or row.cout > chan or recorded != str(chan):
        raise NotMapped(f"layers name a {chan}-channel partial block but the row records "
                        f"in_chan={row.cin} out_chan={row.cout} block_chan={recorded}")
    return Spec("conv1x1", (row.cin, row.cout, row.width)), "partial block", SLICE_NOTE


def _model_knobs(kv: dict) -> tuple[str, ...]:
    knobs = {knob: kv[key] for key, knob in MODEL_KEYS.items() if key in kv}
    return tuple(f"model.{knob}={value}" for knob, value in knobs.items())


def _encoder(row: PublicRow, unit: str) -> tuple[tuple, str]:
    unit = "encoder" if unit == "encoder" and "relu" in row.layers.lower() else "encoder_only"
    return (f"unit={unit}", f"model.n_filters={row.cout}",
            f"model.kernel_size={row.kv.get('kernel', row.kv.get('kernel_size', 16))}",
            f"model.stride={row.kv.get('stride', 8)}", f"model.time_len={row.time_len}"), ""


def _norm(row: PublicRow, unit: str) -> tuple[tuple, str]:
    return ("unit=norm", f"unit.op={row.kv.get('norm_mode', 'gLN')}",
            f"unit.channels={row.cin}", f"unit.width={row.width}"), ""


def _activation(row: PublicRow, unit: str) -> tuple[tuple, str]:
    return ("unit=activation", f"unit.op={row.kv.get('mask_act', 'sigmoid')}",
            f"unit.channels={row.cin}", f"unit.width={row.width}"), ""


def _conv1d_block(row: PublicRow, unit: str) -> tuple[tuple, str]:
    kv = row.kv
    return (("unit=conv1d_block", f"model.bn={row.cin}", f"model.hidden={kv.get('hid_chan', 512)}",
             "model.skip_topology=project", f"model.conv_kernel={kv.get('kernel', 3)}",
             f"unit.width={row.width}"),
            "norm not recorded: built with model.norm=gLN (the paper's)")


def _tdconvnet(row: PublicRow, unit: str) -> tuple[tuple, str]:
    kv = row.kv
    return (("unit=tdconvnet", "unit.blocks=1", f"model.n_filters={row.cin}",
             f"model.n_src={kv.get('n_src', 2)}", f"model.bn={kv.get('bn', 128)}",
             f"model.hidden={kv.get('hid', 512)}", f"model.skip={kv.get('skip', 128)}",
             f"model.n_blocks={kv.get('n_blocks', 1)}",
             f"model.n_repeats={kv.get('n_repeats', 1)}", f"unit.width={row.width}"),
            "norm and skip topology not recorded: built with gLN and the paper's skip sum")


def _full(row: PublicRow, unit: str) -> tuple[tuple, str]:
    return (("model=hailo_convtasnet", "unit=full", *_model_knobs(row.kv),
             f"model.time_len={row.time_len}"),
            "norm/activation not recorded: built with model=hailo_convtasnet's cLN and relu")


def _fine_part(row: PublicRow, unit: str) -> tuple[tuple, str]:
    return (("model=hailo_convtasnet", f"unit={unit}", *_model_knobs(row.kv),
             f"model.time_len={row.time_len}", f"unit.width={row.width}"), FINE_PART_NOTE)


#: project unit -> how a public-layout row of it is rebuilt: (overrides, note)
UNIT_RECIPES = {"encoder": _encoder, "encoder_only": _encoder, "norm": _norm,
                "activation": _activation, "conv1d_block": _conv1d_block,
                "tdconvnet": _tdconvnet, "full": _full,
                **dict.fromkeys(("masker_only", "masker_bottleneck", "masker_tcn_block0",
                                 "masker_mask_head", "source_projector", "decoder_pre",
                                 "decoder", "decoder_head"), _fine_part)}


# -- mapping a summary.tsv row --------------------------------------------------------------

def _summary_row(r: dict, base: Path) -> OutcomeRow:
    """A summary.tsv row as an outcome: its ONNX file when it is still there, else the unit
    rebuilt from its knob columns; estimates are kept as predictions, not outcomes."""
    evidence = (r.get("evidence") or "").strip()
    row = OutcomeRow(r.get("run_tag") or r.get("run_dir") or "row",
                     _bool(r.get("har_success")), _bool(r.get("hef_success")), None,
                     r.get("hw_arch", ""), exception=(r.get("exception_type") or "").strip(),
                     evidence=evidence or "real", module=(r.get("unit") or "").strip())
    if evidence in NOT_OBSERVED:
        return replace(row, har=None, hef=None,
                       note=f"evidence={evidence} is a prediction, not an observed outcome")
    onnx = (r.get("onnx_path") or "").strip()
    if onnx:
        path = Path(onnx) if Path(onnx).is_absolute() else base / onnx
        if path.is_file():
            return replace(row, spec=Spec("onnx", (str(path),)), rule="ONNX file")
    try:
        spec = Spec("unit", _unit_overrides(r), (_size(r, "in_chan"), _size(r, "latent_width")))
    except NotMapped as exc:
        return replace(row, unmapped=str(exc))
    unrecorded = UNRECORDED_UNIT_KEYS.get(row.module)
    return replace(row, spec=spec, rule=f"unit={row.module}",
                   note="ONNX file gone: rebuilt from the unit and knob columns"
                   + (f" ({unrecorded} not in summary.tsv: its default)" if unrecorded else ""))


def _size(r: dict, column: str) -> int | None:
    text = (r.get(column) or "").strip()
    return int(text) if text.isdecimal() else None


def _unit_overrides(r: dict) -> tuple[str, ...]:
    """The overrides that rebuild a summary row's unit from its knob columns."""
    unit = (r.get("unit") or "").strip()
    if unit not in UNIT_NAMES:
        raise NotMapped(f"unit {unit!r} is not a unit of this project (ls conf/unit)")
    tiling = (r.get("tiling") or "").strip()
    if tiling not in ("", "none"):
        raise NotMapped(f"a tiled trial (tiling={tiling}): its outcome is that of its plan's "
                        "unit graphs, not of one graph")
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
    """Spec -> parsed Graph, the ParseError, or Unmapped (the config does not compose or
    validate, or the unit does not take the recorded shape); each spec is built once."""
    todo = [s for s in dict.fromkeys(specs) if s not in _GRAPHS]
    cfgs = _compose_all([s for s in todo if s.kind == "unit"])
    with tempfile.TemporaryDirectory(prefix="tasnet_agreement_") as tmp:
        for i, spec in enumerate(todo):
            _GRAPHS[spec] = _build(spec, cfgs.get(spec), Path(tmp) / f"spec{i}.onnx", net_name)
    return {s: _GRAPHS[s] for s in specs}


def _build(spec: Spec, cfg, path: Path, net_name: str):
    if isinstance(cfg, Unmapped):
        return cfg
    if spec.kind == "onnx":
        path = Path(spec.args[0])
    else:
        wrong = _export(spec, cfg, path)
        if wrong:
            return Unmapped(wrong)
    try:
        return read_onnx(path, net_name)
    except ParseError as exc:
        return exc


def _compose_all(specs) -> dict:
    """Spec -> its composed, valid config, or Unmapped with the first problem."""
    if not specs:
        return {}
    from hydra import compose
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    register_configs()
    out = {}
    with config_search_path(None, None):
        for spec in specs:
            rebuilt = _rebuilt(spec)
            try:
                cfg = compose(config_name="config", overrides=list(spec.args))
            except (HydraException, OmegaConfBaseException) as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                out[spec] = Unmapped(f"{rebuilt}: the config does not compose: {first}")
                continue
            problems = validate(cfg)
            out[spec] = Unmapped(f"{rebuilt}: {problems[0]}") if problems else cfg
    return out


def _export(spec: Spec, cfg, path: Path) -> str:
    """Export the spec's graph to ``path``; what is wrong when the unit does not take the
    recorded shape (then nothing is exported)."""
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
        wrong = _shape_mismatch(unit, spec)
        if wrong:
            return wrong
    export_unit(unit, path)
    return ""


def _shape_mismatch(unit, spec: Spec) -> str:
    cin, width = spec.expect or (None, None)
    found = [f"{name} {got} where the row records {want}"
             for name, got, want in (("in_chan", unit.in_chan, cin),
                                     ("latent_width", unit.latent_width, width))
             if want is not None and got != want]
    return f"{_rebuilt(spec)}: the unit takes {' and '.join(found)}" if found else ""


def _rebuilt(spec: Spec) -> str:
    """The start of a reason: the unit (and model preset) a row was rebuilt as."""
    return "rebuilt as " + " ".join(a for a in spec.args if a.startswith(("unit=", "model=")))


# -- evaluating -----------------------------------------------------------------------------

def evaluate(rows: list[OutcomeRow], profile, graphs: dict | None = None,
             max_utilization: float | None = None, context_switch: str = "allowed"
             ) -> Evaluation:
    """The estimate's verdict for every row that has a graph and an observed outcome; the
    others are skipped (no observed outcome) or not mapped (no graph), never dropped."""
    usable = [r.spec for r in rows if r.spec is not None and _observed(r)]
    graphs = graphs or {}
    missing = [s for s in usable if s not in graphs]
    graphs = {**graphs, **build_graphs(missing)} if missing else graphs
    by_spec: dict[Spec, Verdict] = {}
    ev = Evaluation([])
    for row in rows:
        if row.spec is None or not _observed(row):
            (ev.unmapped if row.unmapped else ev.skipped).append(row)
            continue
        g = graphs[row.spec]
        if isinstance(g, Unmapped):
            ev.unmapped.append(replace(row, unmapped=g.reason))
            continue
        if row.spec not in by_spec:
            by_spec[row.spec] = _verdict(row, g, profile, max_utilization, context_switch)
        v = by_spec[row.spec]
        ev.verdicts.append(Verdict(row, v.har, v.hef, v.reason, v.hypothesis, v.family))
    return ev


def _observed(row: OutcomeRow) -> bool:
    return row.har is not None or row.hef is not None


def _verdict(row, g, profile, max_utilization, context_switch) -> Verdict:
    if isinstance(g, ParseError):
        return Verdict(row, False, False, f"parse: {g}", family=g.family)
    a = estimate_graph(g, profile, max_utilization, context_switch)
    return Verdict(row, True, a.verdict == "pass", _reason(a), a.hypothesis, a.failure_family)


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
    lines += [f"skipped: {r.case}: {_skip_reason(r)}" for r in ev.skipped]
    lines += mapping_lines(ev)
    if every_row:
        lines.append("every row (case, truth har/hef, estimate har/hef, reason):")
        lines += [f"  {v.row.case}\t{_tf(v.row.har)}/{_tf(v.row.hef)}\t{_tf(v.har)}/{_tf(v.hef)}"
                  f"\t{v.reason}" for v in ev.verdicts]
    return lines


def _skip_reason(row: OutcomeRow) -> str:
    """A mapped row is skipped for want of an outcome; an unbuilt one says why (a prediction)."""
    return row.note if row.spec is None and row.note else "no recorded outcome"


def mapping_lines(ev: Evaluation) -> list[str]:
    """How the evaluated rows were mapped, rule by rule, then every row not mapped, named."""
    rules = Counter(v.row.rule or "as given" for v in ev.verdicts)
    lines = ["evaluated rows by mapping rule: "
             + (", ".join(f"{rule} {n}" for rule, n in sorted(rules.items())) or "none")]
    n = len(ev.unmapped)
    named = ", ".join(f"{r.case} (module {r.module or '-'}: {r.unmapped})" for r in ev.unmapped)
    lines.append(f"{n} row{'' if n == 1 else 's'} not mapped" + (f": {named}" if n else ""))
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
          + f": {len(ev.verdicts)} rows evaluated, {len(ev.skipped)} skipped, "
            f"{len(ev.unmapped)} not mapped (of {ev.total} rows)")
    for line in report_lines(ev, ev_plain, every_row=args.rows):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
