"""Refit a hw profile's FITTED constants to recorded compile outcomes.

``python -m tasnet_sweep.commands.fit_profile --tsv PATH --out conf/hw/<name>.yaml [--base hailo8]``
evaluates the recorded rows (the public outcomes TSV, or a real sweep's summary.tsv) under
every combination of candidate values for the FITTED constants, keeps the combination that
agrees best on hef_success (then har_success; ties go to the values closest to the base
profile), and writes the base profile's yaml with those values and their provenance.
A constant that no row's verdict depends on keeps its base value and comment.

It also narrows the profile's ``row_brackets`` (compile/estimate/brackets.py): the largest row
buffer of each estimate family in a real compile that passed raises that family's largest
recorded pass, and an allocator failure that only one family can explain lowers its smallest
recorded fail; configs strictly between the two are ``verdict=uncertain``.  ``--brackets-only``
keeps the FITTED constants (no grid search); ``--fresh-brackets`` derives the brackets from
these rows alone instead of narrowing the base profile's (hailo8's were derived so, from the
public table).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import itertools
import math
import re
import sys
from pathlib import Path

from ..atomic import write_text
from ..compile.estimate.brackets import (
    SIZE_FAILURES,
    Derived,
    Observation,
    derive,
    profile_brackets,
)
from ..compile.estimate.graph import Graph
from ..compile.estimate.profile import (
    FITTED_FIELDS,
    HYPOTHESIS_FIELDS,
    load_profile,
    profile_from_node,
    profile_path,
)
from ..compile.estimate.resources import graph_costs
from ..compile.failures import classify
from ..config import BRACKET_FAMILIES, ConfigError
from ..outcome_table import TableError, read_table
from .agreement import (
    DEFAULT_TSV,
    EXIT_INPUT,
    Evaluation,
    InputError,
    build_graphs,
    evaluate,
    load_outcomes,
    pct,
    report_lines,
)

PROG = "tasnet_sweep.commands.fit_profile"
CANDIDATES = {
    "memory_unit_bytes": (256, 512, 1024, 1536, 2048, 3072, 4096, 6144, 8192, 12288, 16384),
    "layer_max_clusters": (1, 2, 3, 4, 6, 8),
    "aux_layer_memory_units": (8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512),
}


def _distance(values: dict, base: dict) -> float:
    return sum(abs(math.log2(values[k] / base[k])) for k in values)


def search(rows, graphs, base):
    """(best profile, its Evaluation, {field: constrained?}) over the candidate grid."""
    start = base.fitted()
    grids = [sorted(set(CANDIDATES[k]) | {start[k]}) for k in FITTED_FIELDS]
    best = None
    scores = {}
    for combo in itertools.product(*grids):
        values = dict(zip(FITTED_FIELDS, combo))
        if values["layer_max_clusters"] > base.clusters:
            continue
        ev = evaluate(rows, base.replace(**values), graphs)
        score = (ev.score("hef")[0], ev.score("har")[0])
        scores[combo] = score
        key = (*score, -_distance(values, start))
        if best is None or key > best[0]:
            best = (key, values, ev)
    _, values, ev = best
    constrained = {}
    for i, name in enumerate(FITTED_FIELDS):
        seen = {scores[c] for c in scores
                if all(c[j] == values[k] for j, k in enumerate(FITTED_FIELDS) if j != i)}
        constrained[name] = len(seen) > 1
    return base.replace(**values), ev, constrained


def profile_yaml(base_text: str, fitted: dict, constrained: dict, provenance: str) -> str:
    """The base profile's yaml with new FITTED values and comments (other lines untouched)."""
    text = base_text
    for name, value in fitted.items():
        if not constrained[name]:
            continue
        pattern = re.compile(rf"^{name}:[^\n]*$", re.M)
        what = "FITTED HYPOTHESIS" if name in HYPOTHESIS_FIELDS else "FITTED"
        line = f"{name + ':':<33}{value!s:<10} # {what} by {PROG} (see fitted_to)"
        text, n = pattern.subn(lambda _m, line=line: line, text)
        if n == 0:
            text = text.rstrip("\n") + "\n" + line + "\n"
    guessed_re = re.compile(r"^guessed:\s*\[([^\]]*)\][^\n]*$", re.M)
    m = guessed_re.search(text)
    if m:
        kept = [g.strip() for g in m.group(1).split(",")
                if g.strip() and not constrained.get(g.strip(), False)]
        text = guessed_re.sub(lambda _m: f"{'guessed:':<33}[{', '.join(kept)}]", text)
    fitted_line = f"{'fitted_to:':<33}\"{provenance}\""
    text, n = re.subn(r"^fitted_to:[^\n]*$", lambda _m: fitted_line, text, flags=re.M)
    if n == 0:
        text = text.rstrip("\n") + "\n" + fitted_line + "\n"
    return text


def main(argv: list[str] | None = None) -> int:
    from omegaconf import OmegaConf

    args = _parser().parse_args(argv)
    out = Path(args.out)
    try:
        fit = _fit(args, out)
    except (InputError, ConfigError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_INPUT
    text = _profile_text(args, fit)
    try:
        profile_from_node(OmegaConf.create(text))  # what we write must load as a valid profile
    except ConfigError as exc:  # pragma: no cover - a bug here, not bad input
        print(f"{PROG}: the refitted profile does not validate: {exc}", file=sys.stderr)
        return 1
    write_text(out, text)
    _print_report(args, fit)
    print(f"wrote {out} (load it with hw={out.stem} when it sits in conf/hw)")
    return 0


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=f"python -m {PROG}",
                                 description="Refit a hw profile's FITTED constants to recorded "
                                             "compile outcomes and write a new profile.")
    ap.add_argument("--tsv", default=str(DEFAULT_TSV),
                    help="a real sweep's summary.tsv or the public outcomes TSV (default: the "
                         "real DFC 3.33.0 / hailo8 outcomes shipped in the package)")
    ap.add_argument("--out", required=True,
                    help="the profile to write, e.g. conf/hw/hailo8_cal.yaml")
    ap.add_argument("--base", default="hailo8", help="profile to start from (name or yaml path)")
    ap.add_argument("--brackets-only", action="store_true",
                    help="only narrow the row brackets; keep the FITTED constants")
    ap.add_argument("--fresh-brackets", action="store_true",
                    help="derive the row brackets from these rows alone, not narrowing the "
                         "base profile's (e.g. rows from another DFC version)")
    return ap


@dataclasses.dataclass
class _Fit:
    base: object  # the HwProfile started from
    base_text: str
    usable: list
    before: Evaluation
    best: object  # the refitted HwProfile
    after: Evaluation
    constrained: dict
    derived: Derived | None = None  # the row brackets after these rows


def _fit(args, out: Path) -> _Fit:
    """Read the outcomes, keep the real ones, refit; InputError names what is wrong."""
    if out.suffix not in (".yaml", ".yml"):
        raise InputError(f"--out {args.out!r} is invalid: expected a .yaml path such as "
                         "conf/hw/hailo8_cal.yaml")
    base = load_profile(args.base)
    base_text = profile_path(args.base).read_text()
    rows = load_outcomes(args.tsv)
    if not any(r.evidence == "real" for r in rows):
        kinds = sorted({r.evidence or "unknown" for r in rows})
        raise InputError(f"--tsv {args.tsv!r} has no real outcome (evidence: "
                         f"{', '.join(kinds) or 'no rows'}): only real compiles "
                         "(compiler=hailo_dfc, evidence=real) or the public table can refit "
                         "the profile; an estimate or replay would only fit itself")
    rows = [r if r.evidence == "real" or r.spec is None else dataclasses.replace(
        r, spec=None, note=f"evidence={r.evidence}: only real outcomes are fitted")
        for r in rows]
    usable = [r for r in rows if r.spec is not None and r.hef is not None]
    if not usable:
        raise InputError(f"--tsv {args.tsv!r} has no row with an observed hef_success that "
                         "can be rebuilt as a graph")
    graphs = build_graphs([r.spec for r in usable])
    before = evaluate(rows, base, graphs)
    if args.brackets_only:
        best, after, constrained = base, before, dict.fromkeys(FITTED_FIELDS, False)
    else:
        best, after, constrained = search(rows, graphs, base)
    derived = derive(observations(rows, graphs, base, args.tsv),
                     None if args.fresh_brackets else profile_brackets(base))
    return _Fit(base, base_text, usable, before, best, after, constrained, derived)


def observations(rows, graphs: dict, hw, tsv) -> list[Observation]:
    """The real outcomes with a graph, as the brackets' evidence (``brackets.derive``)."""
    sized = _size_failures(tsv, rows)
    out = []
    for row, size_failure in zip(rows, sized):
        graph = graphs.get(row.spec) if row.spec is not None else None
        if row.evidence != "real" or row.hef is None or not isinstance(graph, Graph):
            continue
        out.append(Observation(row.case, bool(row.hef), size_failure and row.har is not False,
                               graph_costs(graph.layers, hw)))
    return out


def _size_failures(tsv, rows) -> list[bool]:
    """Per outcome row: did the allocator refuse it for want of room (``SIZE_FAILURES``)?  From
    the table's ``failure_family``, else its exception and ``failure_head`` classified as a
    compile failure (an allocator timeout or a reshape says nothing about a row's size)."""
    try:
        table, _ = read_table(Path(tsv))
    except (OSError, TableError):
        table = []
    if len(table) != len(rows):  # one outcome row per table row: else only the exception
        table = [{"exception": r.exception} for r in rows]
    found = []
    for r in table:
        family = (r.get("failure_family") or "").strip()
        exc = (r.get("exception_type") or r.get("exception") or "").strip()
        if not family and exc:
            family = classify(exc, r.get("failure_head") or "", "compile").family
        found.append(family in SIZE_FAILURES)
    return found


def _profile_text(args, fit: _Fit) -> str:
    k, n = fit.after.score("hef")
    provenance = (f"{Path(args.tsv).name}, {n} rows, hef agreement {k}/{n}, base "
                  f"{fit.base.arch}, {_dt.date.today().isoformat()}")
    if any(fit.constrained[h] for h in HYPOTHESIS_FIELDS):
        provenance += "; " + ", ".join(HYPOTHESIS_FIELDS) + " remains a HYPOTHESIS"
    text = fit.base_text if args.brackets_only else profile_yaml(
        fit.base_text, fit.best.fitted(), fit.constrained, provenance)
    return brackets_yaml(text, fit.derived, Path(args.tsv).name) if fit.derived else text


ROW_BRACKETS_BLOCK = re.compile(r"^row_brackets:[^\n]*\n?(?:[ \t]+[^\n]*\n?)*", re.M)


def brackets_yaml(text: str, derived: Derived, source: str) -> str:
    """``text`` with its ``row_brackets`` block (or none) replaced by ``derived``'s, each
    bound labelled with the case that set it (or the base profile)."""
    head = (f"{'row_brackets:':<44}# RECORDED by {PROG} from {source} (real outcomes): row "
            "buffer bytes [largest pass, smallest fail] per estimate family")
    lines = []
    for family in BRACKET_FAMILIES:
        b = derived.brackets.get(family)
        if b is None:
            continue
        bounds = _bounds_text(b)
        low = _bound_text(b.pass_max, derived.pass_case.get(family), "pass")
        high = _bound_text(b.fail_min, derived.fail_case.get(family), "fail")
        lines.append(f"  {family + ':':<6}{bounds:<36}# RECORDED: {low}; {high}")
    block = "\n".join([head, *lines]) if lines else \
        f"{'row_brackets:':<33}{{}}{'':<9}# RECORDED by {PROG} from {source}: no bracket"
    if ROW_BRACKETS_BLOCK.search(text):
        return ROW_BRACKETS_BLOCK.sub(lambda _m: block + "\n", text, count=1)
    return text.rstrip("\n") + "\n" + block + "\n"


def _bounds_text(bracket) -> str:
    if bracket is None:
        return "none"
    return "[" + ", ".join("null" if v is None else str(v) for v in bracket.bounds()) + "]"


def _bound_text(value, case: str | None, kind: str) -> str:
    if value is None:
        return f"no recorded {kind}"
    return f"{kind} {value:,} B ({case or 'kept from the base profile'})"


def _print_report(args, fit: _Fit) -> None:
    base, best, before, after = fit.base, fit.best, fit.before, fit.after
    archs = sorted({r.hw_arch for r in fit.usable if r.hw_arch and r.hw_arch != base.arch})
    if archs:
        print(f"{PROG}: warning: rows were recorded on {', '.join(archs)}, the base profile "
              f"is {base.arch}")
    print(f"{PROG}: {args.tsv} ({len(after.verdicts)} rows evaluated, "
          f"{len(after.skipped)} skipped, {len(after.unmapped)} not mapped), base profile "
          f"{args.base} (evidence=estimate)")
    print(f"before: hef_success agreement: {pct(*before.score('hef'))}; "
          f"har_success agreement: {pct(*before.score('har'))}")
    print(f"after:  hef_success agreement: {pct(*after.score('hef'))}; "
          f"har_success agreement: {pct(*after.score('har'))}")
    for name in FITTED_FIELDS:
        old, new = getattr(base, name), getattr(best, name)
        status = "FITTED" if fit.constrained[name] else "not constrained by these rows: kept"
        if name in HYPOTHESIS_FIELDS and fit.constrained[name]:
            status += " (a HYPOTHESIS)"
        print(f"  {name}: {old} -> {new} ({status})")
    _print_brackets(fit)
    for line in report_lines(after)[2:]:
        print(line)


def _print_brackets(fit: _Fit) -> None:
    if fit.derived is None:
        return
    old, new = profile_brackets(fit.base), fit.derived.brackets
    print("row brackets (row buffer bytes [largest recorded pass, smallest recorded fail]; a "
          "config strictly between is verdict=uncertain):")
    for family in BRACKET_FAMILIES:
        before, after = _bounds_text(old.get(family)), _bounds_text(new.get(family))
        if before == after == "none":
            continue
        print(f"  {family}: {after} ({'kept' if before == after else f'was {before}'})")
    for what, items in (("ambiguous failures (more than one family could be the cause)",
                         fit.derived.ambiguous),
                        ("failures no family explains", fit.derived.unexplained),
                        ("conflicts (a pass at or above a fail: kept the base bracket)",
                         fit.derived.conflicts)):
        if items:
            print(f"  {what}: {', '.join(items)}")


if __name__ == "__main__":
    sys.exit(main())
