"""The answer of a search: maximal passing and minimal failing configurations, and its reports.

``frontier.tsv`` lists the certificate (one row per maximal passing / minimal failing config),
``frontier.md`` says it in words (largest passing config by params and by MACs, the failure
family at the boundary, the knob that crosses the boundary most often, the compile-hours spent
and saved by inference: cost.py), ``frontier.png`` shows pass / fail / inferred over each pair
of knobs.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import write_bytes, write_text
from ..report.next_knob import next_knob
from ..report.plots import png_bytes
from ..results import read_result
from .cost import CompileCost, compile_cost
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
    wall_clock_s: float | None = None  # the search run's start to end, when it was measured
    #: points the estimate answered ``uncertain`` (inside a recorded bracket): neither pass nor
    #: fail, left to a real compile
    uncertain: list = field(default_factory=list)

    @property
    def cost(self) -> CompileCost:
        """Compile-hours spent, saved by inference, and the wall clock (cost.py)."""
        return compile_cost(self.lattice, self.knowledge, self.records, self.wall_clock_s)

    @property
    def open_uncertain(self) -> list:
        """The uncertain points nothing else answered (no inference reached them)."""
        return [p for p in self.uncertain if self.knowledge.status[p] == UNKNOWN]

    @property
    def unknown(self) -> int:
        """Points no backend answered, uncertain ones not counted."""
        return self.knowledge.unknown - len(self.open_uncertain)

    @property
    def complete(self) -> bool:
        """Every config answered: pass or fail (compiled or inferred), or uncertain."""
        return self.unknown == 0

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
                + [self.row(p, "minimal_failing") for p in self.minimal_failing]
                + [self.row(p, "uncertain") for p in self.open_uncertain])

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
              objective: str | None = None, best: tuple | None = None,
              wall_clock_s: float | None = None, uncertain=()) -> Frontier:
    """The certificate as far as it is known (exact once no point is unknown); ``objective``
    and ``best``: a search that stopped once its largest pass by the objective was certain;
    ``wall_clock_s``: how long the search run took; ``uncertain``: points the estimate left
    to a real compile."""
    maximal, minimal = boundary_masks(knowledge.status)
    pts = lambda m: [tuple(int(i) for i in p) for p in np.argwhere(m)]  # noqa: E731
    return Frontier(lattice, knowledge, dict(records or {}), pts(maximal), pts(minimal),
                    objective, best, wall_clock_s, sorted(set(uncertain)))


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
    failing = [p for p in frontier.minimal_failing
               if frontier.records.get(p, {}).get("run_dir")]
    if not failing:
        return None
    worst = max(failing, key=lambda p: frontier.records[p].get("params") or 0)
    result = read_result(Path(frontier.records[worst]["run_dir"]) / "result.json")
    if result is None:
        return None

    try:
        nk = next_knob([result.summary])
    except (ValueError, KeyError, TypeError):  # a summary row of another shape
        return None
    return f"`{nk.override}` for `{_config_text(frontier, worst)}` ({nk.reason})"


def _status(frontier: Frontier) -> str:
    """Exact or not, what the objective certified, and the configs left uncertain."""
    size = frontier.lattice.size
    state = ("exact: every configuration is answered" if frontier.complete else
             f"NOT exact yet: {frontier.unknown} of {size} configurations unknown")
    if frontier.best is not None and not frontier.complete:
        state = (f"stopped on search.objective={frontier.objective}: only the largest passing "
                 f"config by {frontier.objective} is certified, not the frontier "
                 f"({frontier.unknown} of {size} configurations unknown)")
    unsure = frontier.open_uncertain
    if unsure:
        state += (f"; {len(unsure)} uncertain (ESTIMATE: inside a recorded bracket, neither "
                  "pass nor fail; a real compile decides them): "
                  + ", ".join(f"`{_config_text(frontier, p)}`" for p in unsure[:8])
                  + (" ..." if len(unsure) > 8 else ""))
    return state


def frontier_markdown(frontier: Frontier, title: str = "Frontier") -> str:
    k = frontier.knowledge
    lat = frontier.lattice
    lines = [f"# {title}", ""]
    state = _status(frontier)
    inferred = lat.size - k.unknown - frontier.compiles
    lines += [f"- status: {state}",
              f"- {frontier.compiles} compiled, {inferred} inferred by monotonicity, "
              f"lattice of {lat.size} ({' x '.join(map(str, lat.shape))})",
              f"- certificate: {len(frontier.maximal_passing)} maximal passing + "
              f"{len(frontier.minimal_failing)} minimal failing"]
    lines += frontier.cost.markdown()
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


def knobs_that_matter(status: np.ndarray) -> list[int]:
    """Axes along which some pair of known neighbours differs (one passes, the other fails)."""
    found = []
    for axis in range(status.ndim):
        lo = np.take(status, range(status.shape[axis] - 1), axis=axis)
        hi = np.take(status, range(1, status.shape[axis]), axis=axis)
        if ((lo == PASS) & (hi == FAIL)).any() or ((lo == FAIL) & (hi == PASS)).any():
            found.append(axis)
    return found


def _staircase(status2d: np.ndarray) -> np.ndarray:
    """For each x level, the highest y level known to pass (-1: none)."""
    passing = status2d == PASS
    top = np.where(passing.any(axis=1), status2d.shape[1] - 1 - np.argmax(passing[:, ::-1],
                                                                          axis=1), -1)
    return top


MAX_STAIRS = 6  # staircases drawn per panel; more combinations of the other knobs: the extremes


def frontier_png(frontier: Frontier) -> bytes:
    """The boundary over each pair of knobs that matter: the share of configurations that
    compile (over the other knobs) as the background, and for each combination of the other
    knobs' levels (or their smallest and largest, when there are many) the staircase of
    maximal passing configs, compiled ones filled and inferred ones hollow."""
    import itertools

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lat, k = frontier.lattice, frontier.knowledge
    axes_used = knobs_that_matter(k.status) or list(range(len(lat.names)))
    pairs = list(itertools.combinations(axes_used, 2)) or [(axes_used[0], None)]
    cols = min(2, len(pairs))
    rows = -(-len(pairs) // cols)
    fig, panels = plt.subplots(rows, cols, figsize=(6.2 * cols, 5.6 * rows), squeeze=False,
                               constrained_layout=True)
    image = None
    for ax, (i, j) in zip(panels.flat, pairs):
        image = _pair_panel(ax, plt, frontier, i, j)
    for ax in list(panels.flat)[len(pairs):]:
        ax.axis("off")
    if image is not None:
        bar = fig.colorbar(image, ax=panels.ravel().tolist(), shrink=0.8)
        bar.set_label("share of configurations that compile\n(over the other knobs; unknown "
                      "counts half)", fontsize=8)
    fig.suptitle(f"frontier: staircase of maximal passing configs (filled: compiled, hollow: "
                 f"inferred); {len(k.observed)} compiled, {k.unknown} unknown of {lat.size}",
                 fontsize=10)
    return png_bytes(fig)


def _pair_panel(ax, plt, frontier: Frontier, i: int, j: int | None):
    """One panel: knob i across, knob j up (None: one knob matters); returns its image."""
    import itertools

    lat, status = frontier.lattice, frontier.knowledge.status
    others = [a for a in range(status.ndim) if a not in (i, j)]
    if j is None:  # one knob matters: a one-level dummy axis stands for y
        grid = np.expand_dims(np.moveaxis(status, i, 0), 1)
        y_labels, y_name = ["passes"], ""
    else:
        grid = np.moveaxis(status, (i, j), (0, 1))
        y_labels, y_name = [str(v) for v in lat.knobs[j].values], lat.names[j]
    flat = grid.reshape(grid.shape[0], grid.shape[1], -1)  # others' combos last, C order
    share = ((flat == PASS) + 0.5 * (flat == UNKNOWN)).mean(axis=2)
    image = ax.imshow(share.T, origin="lower", cmap="RdYlGn", vmin=0, vmax=1,
                      aspect="auto", alpha=0.55)
    combos = list(itertools.product(*(range(lat.shape[a]) for a in others)))
    if len(combos) > MAX_STAIRS:
        combos = [combos[0], combos[-1]]
    colours = plt.cm.viridis(np.linspace(0, 0.9, max(1, len(combos))))
    for n, combo in enumerate(combos):
        column = int(np.ravel_multi_index(combo, [lat.shape[a] for a in others])) \
            if others else 0
        _staircase_on(ax, frontier, flat[:, :, column], (i, j), others, combo, colours[n])
    ax.set_xticks(range(lat.shape[i]), [str(v) for v in lat.knobs[i].values], fontsize=9)
    ax.set_yticks(range(len(y_labels)), y_labels, fontsize=9)
    ax.set_xlabel(lat.names[i], fontsize=10)
    ax.set_ylabel(y_name, fontsize=10)
    ax.set_ylim(-0.5, len(y_labels) - 0.5)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False,
              title="largest passing config, the other knobs at", title_fontsize=7)
    return image


def _staircase_on(ax, frontier: Frontier, plane, pair, others, combo, colour) -> None:
    """The staircase of one combination of the other knobs, its points filled where compiled."""
    lat, k = frontier.lattice, frontier.knowledge
    i, j = pair
    top = _staircase(plane)
    xs = np.arange(len(top))
    label = ", ".join(f"{lat.names[a]}={lat.knobs[a].values[c]}"
                      for a, c in zip(others, combo)) or "boundary"
    if (top < 0).all():
        label += ": nothing passes"
    ax.step(xs, np.where(top < 0, np.nan, top), where="mid", color=colour, lw=2, label=label)
    for x, y in zip(xs, top):
        if y < 0:
            continue
        point = [0] * k.status.ndim
        point[i] = int(x)
        if j is not None:
            point[j] = int(y)
        for a, c in zip(others, combo):
            point[a] = int(c)
        ax.plot(x, y, "o", ms=7, mec=colour, mew=1.5,
                mfc=colour if tuple(point) in k.observed else "white")


def write_reports(frontier: Frontier, out_dir: str | Path, title: str = "Frontier",
                  png: bool = True) -> list[Path]:
    out_dir = Path(out_dir)
    written = [write_text(out_dir / "frontier.tsv", frontier_tsv(frontier)),
               write_text(out_dir / "frontier.md", frontier_markdown(frontier, title))]
    if png:
        written.append(write_bytes(out_dir / "frontier.png", frontier_png(frontier)))
    return written
