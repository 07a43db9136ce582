"""Refit a hw profile's FITTED constants to recorded compile outcomes.

``python -m tasnet_sweep.commands.fit_profile --tsv PATH --out conf/hw/<name>.yaml [--base hailo8]``
evaluates the recorded rows (the public outcomes TSV, or a real sweep's summary.tsv) under
every combination of candidate values for the FITTED constants, keeps the combination that
agrees best on hef_success (then har_success; ties go to the values closest to the base
profile), and writes the base profile's yaml with those values and their provenance.
A constant that no row's verdict depends on keeps its base value and comment.
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
from ..compile.estimate.profile import (
    FITTED_FIELDS,
    HYPOTHESIS_FIELDS,
    load_profile,
    profile_from_node,
    profile_path,
)
from ..config import ConfigError
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
    best, after, constrained = search(rows, graphs, base)
    return _Fit(base, base_text, usable, before, best, after, constrained)


def _profile_text(args, fit: _Fit) -> str:
    k, n = fit.after.score("hef")
    provenance = (f"{Path(args.tsv).name}, {n} rows, hef agreement {k}/{n}, base "
                  f"{fit.base.arch}, {_dt.date.today().isoformat()}")
    if any(fit.constrained[h] for h in HYPOTHESIS_FIELDS):
        provenance += "; " + ", ".join(HYPOTHESIS_FIELDS) + " remains a HYPOTHESIS"
    return profile_yaml(fit.base_text, fit.best.fitted(), fit.constrained, provenance)


def _print_report(args, fit: _Fit) -> None:
    base, best, before, after = fit.base, fit.best, fit.before, fit.after
    archs = sorted({r.hw_arch for r in fit.usable if r.hw_arch and r.hw_arch != base.arch})
    if archs:
        print(f"{PROG}: warning: rows were recorded on {', '.join(archs)}, the base profile "
              f"is {base.arch}")
    print(f"{PROG}: {args.tsv} ({len(after.verdicts)} rows evaluated, "
          f"{len(after.skipped)} skipped), base profile {args.base} (evidence=estimate)")
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
    for line in report_lines(after)[2:]:
        print(line)


if __name__ == "__main__":
    sys.exit(main())
