"""The answer of a search: maximal passing and minimal failing configurations, and its reports.

``frontier.tsv`` lists the certificate (one row per maximal passing / minimal failing config),
``frontier.md`` says it in words (largest passing config by params and by MACs, the failure
family at the boundary, the knob that crosses the boundary most often), ``frontier.png`` shows
pass / fail / inferred over each pair of knobs.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import write_bytes, write_text
from .lattice import FAIL, PASS, UNKNOWN, Knowledge, Lattice, boundary_masks


@dataclass
class Frontier:
    lattice: Lattice
    knowledge: Knowledge
    records: dict = field(default_factory=dict)  # point -> what the compile job returned
    maximal_passing: list = field(default_factory=list)
    minimal_failing: list = field(default_factory=list)
    objective: str | None = None  # search.objective the run stopped on, if any
    best: tuple | None = None  # (point, value): the certified largest pass by it

    @property
    def complete(self) -> bool:
        return self.knowledge.complete

    @property
    def compiles(self) -> int:
        return len(self.knowledge.observed)

    def row(self, point, role: str) -> dict:
        rec = self.records.get(point, {})
        return {"role": role, **self.lattice.values(point),
                "evidence": rec.get("evidence", self.knowledge.evidence(point)),
                "params": rec.get("params"), "macs": rec.get("macs"),
                "failure_family": rec.get("failure_family"), "run_dir": rec.get("run_dir")}

    def rows(self) -> list[dict]:
        return ([self.row(p, "maximal_passing") for p in self.maximal_passing]
                + [self.row(p, "minimal_failing") for p in self.minimal_failing])

    def largest_passing(self, by: str) -> tuple | None:
        """The compiled passing config with the most ``by`` (params or macs)."""
        found = [(rec.get(by), p) for p, rec in self.records.items()
                 if self.knowledge.observed.get(p) is True and rec.get(by) is not None]
        return max(found)[1] if found else None

    def boundary_families(self) -> Counter:
        return Counter(self.records.get(p, {}).get("failure_family") or "unknown"
                       for p in self.minimal_failing)

    def crossing_knobs(self) -> Counter:
        """How often one step up a knob leads from a pass to a minimal failure."""
        counts: Counter = Counter()
        status = self.knowledge.status
        for p in self.minimal_failing:
            for axis, name in enumerate(self.lattice.names):
                if p[axis] > 0:
                    below = p[:axis] + (p[axis] - 1,) + p[axis + 1:]
                    if status[below] == PASS:
                        counts[name] += 1
        return counts


def summarize(lattice: Lattice, knowledge: Knowledge, records: dict | None = None,
              objective: str | None = None, best: tuple | None = None) -> Frontier:
    """The certificate as far as it is known (exact once no point is unknown); ``objective``
    and ``best``: a search that stopped once its largest pass by the objective was certain."""
    maximal, minimal = boundary_masks(knowledge.status)
    pts = lambda m: [tuple(int(i) for i in p) for p in np.argwhere(m)]  # noqa: E731
    return Frontier(lattice, knowledge, dict(records or {}), pts(maximal), pts(minimal),
                    objective, best)


def frontier_tsv(frontier: Frontier) -> str:
    cols = ["role", *frontier.lattice.names, "evidence", "params", "macs", "failure_family",
            "run_dir"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, delimiter="\t", lineterminator="\n")
    w.writeheader()
    for r in frontier.rows():
        w.writerow({k: "" if v is None else v for k, v in r.items()})
    return buf.getvalue()


def _config_text(frontier: Frontier, point) -> str:
    return " ".join(f"{k}={v}" for k, v in frontier.lattice.values(point).items())


def next_knob_advice(frontier: Frontier) -> str | None:
    """The runbook's next-knob rule (tasnet_sweep.report.next_knob) applied to the compiled
    minimal failure with the largest params, read from its run's result.json."""
    import json

    failing = [p for p in frontier.minimal_failing
               if frontier.records.get(p, {}).get("run_dir")]
    if not failing:
        return None
    worst = max(failing, key=lambda p: frontier.records[p].get("params") or 0)
    path = Path(frontier.records[worst]["run_dir"]) / "result.json"
    try:
        row = json.loads(path.read_text())["summary"]
        from ..report.next_knob import next_knob

        nk = next_knob([row])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return f"`{nk.override}` for `{_config_text(frontier, worst)}` ({nk.reason})"


def frontier_markdown(frontier: Frontier, title: str = "Frontier") -> str:
    k = frontier.knowledge
    lat = frontier.lattice
    lines = [f"# {title}", ""]
    state = ("exact: every configuration is answered" if frontier.complete else
             f"NOT exact yet: {k.unknown} of {lat.size} configurations unknown")
    if frontier.best is not None and not frontier.complete:
        state = (f"stopped on search.objective={frontier.objective}: only the largest passing "
                 f"config by {frontier.objective} is certified, not the frontier "
                 f"({k.unknown} of {lat.size} configurations unknown)")
    inferred = lat.size - k.unknown - frontier.compiles
    lines += [f"- status: {state}",
              f"- {frontier.compiles} compiled, {inferred} inferred by monotonicity, "
              f"lattice of {lat.size} ({' x '.join(map(str, lat.shape))})",
              f"- certificate: {len(frontier.maximal_passing)} maximal passing + "
              f"{len(frontier.minimal_failing)} minimal failing"]
    if k.conflicts:
        lines.append(f"- WARNING: {len(k.conflicts)} outcomes contradict monotonicity "
                     "(a larger config passed where a smaller one failed); see frontier.tsv")
    lines.append("")
    if frontier.best is not None:
        point, value = frontier.best
        lines.append(f"- certified largest passing by {frontier.objective}: "
                     f"`{_config_text(frontier, point)}` ({value:,} {frontier.objective}, "
                     f"{frontier.knowledge.evidence(point)}); no configuration left unknown "
                     f"has more")
    for by in ("params", "macs"):
        p = frontier.largest_passing(by)
        if p is not None:
            lines.append(f"- largest passing by {by}: `{_config_text(frontier, p)}` "
                         f"({frontier.records[p][by]:,} {by})")
    families = frontier.boundary_families()
    if families:
        fam = ", ".join(f"{f} ({n})" for f, n in families.most_common())
        lines.append(f"- failure family at the boundary: {fam}")
    crossing = frontier.crossing_knobs()
    if crossing:
        knobs = ", ".join(f"`{k}` ({n})" for k, n in crossing.most_common())
        lines.append(f"- knobs whose one step up crosses from pass to a minimal failure: {knobs}")
    advice = next_knob_advice(frontier)
    if advice:
        lines.append(f"- next knob to change: {advice}")
    lines += ["", "| role | " + " | ".join(lat.names) + " | evidence | params | macs | family |",
              "|---" * (len(lat.names) + 5) + "|"]
    for r in frontier.rows():
        cells = [r["role"], *(str(r[n]) for n in lat.names), str(r["evidence"] or ""),
                 f"{r['params']:,}" if r["params"] is not None else "",
                 f"{r['macs']:,}" if r["macs"] is not None else "", r["failure_family"] or ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def frontier_png(frontier: Frontier) -> bytes:
    """Pass / fail / inferred over each pair of knobs (share of configs per cell, others pooled)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..report.plots import png_bytes

    lat, k = frontier.lattice, frontier.knowledge
    status = k.status
    observed = np.zeros(lat.shape, dtype=np.int8)
    for p, ok in k.observed.items():
        observed[p] = PASS if ok else FAIL
    pairs = [(i, j) for i in range(len(lat.names)) for j in range(i + 1, len(lat.names))]
    if not pairs:
        pairs = [(0, 0)]
    cols = min(3, len(pairs))
    rows = -(-len(pairs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False)
    for ax, (i, j) in zip(axes.flat, pairs):
        others = tuple(a for a in range(status.ndim) if a not in (i, j))
        score = (status == PASS) + 0.5 * (status == UNKNOWN)  # unknown: the middle (yellow)
        share = score.mean(axis=others) if others else score * 1.0
        if i == j:
            share = share.reshape(-1, 1)
        ax.imshow(np.atleast_2d(share).T, origin="lower", cmap="RdYlGn", vmin=0, vmax=1,
                  aspect="auto")
        comp_pass = (observed == PASS).sum(axis=others) if others else observed == PASS
        comp_fail = (observed == FAIL).sum(axis=others) if others else observed == FAIL
        unknown = (status == UNKNOWN).sum(axis=others) if others else status == UNKNOWN
        for a in range(lat.shape[i]):
            for b in range(lat.shape[j] if i != j else 1):
                idx = (a, b) if i != j else (a,)
                text = f"{int(np.asarray(comp_pass)[idx])}/{int(np.asarray(comp_fail)[idx])}"
                if np.asarray(unknown)[idx]:
                    text += f"\n?{int(np.asarray(unknown)[idx])}"
                ax.text(a, b, text, ha="center", va="center", fontsize=6)
        ax.set_xticks(range(lat.shape[i]), [str(v) for v in lat.knobs[i].values], fontsize=7)
        ax.set_xlabel(lat.names[i], fontsize=8)
        if i != j:
            ax.set_yticks(range(lat.shape[j]), [str(v) for v in lat.knobs[j].values], fontsize=7)
            ax.set_ylabel(lat.names[j], fontsize=8)
    for ax in list(axes.flat)[len(pairs):]:
        ax.axis("off")
    fig.suptitle("colour: share passing (compiled + inferred; unknown counts half)\n"
                 "text: compiled pass/fail, ?unknown", fontsize=8)
    fig.tight_layout()
    return png_bytes(fig)


def write_reports(frontier: Frontier, out_dir: str | Path, title: str = "Frontier",
                  png: bool = True) -> list[Path]:
    out_dir = Path(out_dir)
    written = [write_text(out_dir / "frontier.tsv", frontier_tsv(frontier)),
               write_text(out_dir / "frontier.md", frontier_markdown(frontier, title))]
    if png:
        written.append(write_bytes(out_dir / "frontier.png", frontier_png(frontier)))
    return written
