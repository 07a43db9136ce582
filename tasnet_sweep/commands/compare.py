"""The trials of one or more sweeps side by side, from MLflow (``python -m
tasnet_sweep.commands.compare``).

Sweeps run on other days, machines or compiler versions land in the same store; this prints
their trials as one table sorted by model size (params), with verdict and evidence kind, and
draws them as one lane per sweep (x: params, colour: verdict, marker: evidence).

    python -m tasnet_sweep.commands.compare [--uri URI] [--experiment NAME ...] [--parent RUN_ID]
                                   [--png PATH]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from ..report.plots import save_png
from ..tracking.flatten import KIND_TAG
from ..tracking.mlflow_store import resolve_uri

COLUMNS = ("sweep", "run_tag", "unit", "params", "macs", "verdict", "evidence",
           "failure_family", "est_contexts", "est_fps", "hw_arch", "compiler_version")
MARKERS = {"real": "o", "estimate": "^", "replay": "s", "inferred": "x"}
COLOURS = {"pass": "#2e7d32", "fail": "#c62828", "uncertain": "#f9a825"}  # uncertain: estimate


def trial_rows(uri: str, experiments: list[str] | None = None,
               parent: str | None = None) -> list[dict]:
    """One dict per trial run (COLUMNS), sorted by params then MACs."""
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(uri)
    where = f"tags.`{KIND_TAG}` = 'trial'"
    if parent:
        where += f" AND tags.`mlflow.parentRunId` = '{parent}'"
    if experiments:
        df = mlflow.search_runs(experiment_names=experiments, filter_string=where,
                                output_format="list")
    else:
        df = mlflow.search_runs(search_all_experiments=True, filter_string=where,
                                output_format="list")
    client = MlflowClient(tracking_uri=uri)
    names: dict[str | None, str] = {}
    experiment_names: dict[str, str] = {}
    rows = []
    for run in df:
        tags, metrics = run.data.tags, run.data.metrics
        pid = tags.get("mlflow.parentRunId")
        if pid not in names:
            names[pid] = _run_name(client, pid) if pid else "(single runs)"
        eid = run.info.experiment_id
        if eid not in experiment_names:
            experiment_names[eid] = client.get_experiment(eid).name
        rows.append({
            "sweep": f"{experiment_names[eid]}/{names[pid]}",
            "run_tag": tags.get("run_tag", run.info.run_name),
            "unit": tags.get("unit"),
            "params": _int(metrics.get("params")), "macs": _int(metrics.get("macs")),
            "verdict": tags.get("verdict"), "evidence": tags.get("evidence"),
            "failure_family": tags.get("failure_family"),
            "est_contexts": _int(metrics.get("est_contexts")),
            "est_fps": metrics.get("est_fps"),
            "hw_arch": tags.get("hw_arch"), "compiler_version": tags.get("compiler_version"),
            "run_id": run.info.run_id,
        })
    rows.sort(key=lambda r: (r["params"] if r["params"] is not None else math.inf,
                             r["macs"] if r["macs"] is not None else math.inf, r["sweep"]))
    return rows


def _run_name(client, run_id: str) -> str:
    try:
        return client.get_run(run_id).info.run_name or run_id[:8]
    except Exception:  # a parent that was deleted
        return run_id[:8]


def _int(value):
    return None if value is None else int(value)


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def format_table(rows: list[dict]) -> str:
    cells = [list(COLUMNS)] + [[_cell(r[c]) for c in COLUMNS] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    numeric = {"params", "macs", "est_contexts", "est_fps"}
    lines = []
    for row in cells:
        lines.append("  ".join(v.rjust(w) if COLUMNS[i] in numeric else v.ljust(w)
                               for i, (v, w) in enumerate(zip(row, widths))).rstrip())
    return "\n".join(lines)


def plot(rows: list[dict], path: str | Path) -> Path:
    """One lane per sweep; each trial a marker at its params (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    sweeps = sorted({r["sweep"] for r in rows})
    fig, ax = plt.subplots(figsize=(9, 1.6 + 0.5 * len(sweeps)))
    offset = {"pass": 0.15, "fail": -0.15}  # pass above, fail below: both seen at one size
    for r in rows:
        if r["params"] is None:
            continue
        y = sweeps.index(r["sweep"]) + offset.get(r["verdict"], 0.0)
        ax.scatter(r["params"], y, marker=MARKERS.get(r["evidence"], "o"), s=60,
                   color=COLOURS.get(r["verdict"], "#9e9e9e"), edgecolors="black",
                   linewidths=0.4, zorder=3, alpha=0.85)
    ax.set_xscale("symlog", linthresh=1)  # zero-parameter units (norms, activations) stay
    ax.set_yticks(range(len(sweeps)), sweeps, fontsize=7)
    ax.set_ylim(-0.7, len(sweeps) - 0.3)
    ax.set_xlabel("params (log scale; 0 for parameter-free units)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("trials per sweep: colour = verdict, marker = evidence", fontsize=9)
    handles = [Line2D([], [], ls="", marker="o", color=c, label=v) for v, c in COLOURS.items()]
    handles += [Line2D([], [], ls="", marker=m, color="#616161", label=f"evidence={e}")
                for e, m in MARKERS.items() if any(r["evidence"] == e for r in rows)]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7,
              frameon=False)
    fig.tight_layout()
    return save_png(fig, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tasnet_sweep.commands.compare",
        description="Trials of one or more sweeps from MLflow, sorted by params.")
    parser.add_argument("--uri", help="tracking URI (default: $MLFLOW_TRACKING_URI, else "
                        "sqlite:///outputs/mlflow.db)")
    parser.add_argument("--experiment", nargs="+", action="extend",
                        help="experiment name(s) (default: every experiment)")
    parser.add_argument("--parent", help="only the trials of this sweep (its parent run id)")
    parser.add_argument("--png", help="also draw the trials into this PNG")
    args = parser.parse_args(argv)

    uri = args.uri or None
    if uri is None or uri.startswith("sqlite:///"):
        db = Path(resolve_uri(uri, create=False)[len("sqlite:///"):])
        if not db.is_file():
            print(f"tasnet_sweep.commands.compare: no MLflow store at {db}: expected --uri or "
                  "$MLFLOW_TRACKING_URI naming a store that sweeps logged to", file=sys.stderr)
            return 2
    try:
        rows = trial_rows(resolve_uri(uri), args.experiment, args.parent)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        print(f"tasnet_sweep.commands.compare: {type(exc).__name__}: {first}", file=sys.stderr)
        return 1
    if not rows:
        print("tasnet_sweep.commands.compare: no trial runs found"
              + (f" in experiment(s) {', '.join(args.experiment)}" if args.experiment else "")
              + (f" under parent {args.parent}" if args.parent else ""), file=sys.stderr)
        return 1
    print(format_table(rows))
    unsure = sum(r["verdict"] == "uncertain" for r in rows)
    print(f"{len(rows)} trial(s), {sum(r['verdict'] == 'pass' for r in rows)} pass, "
          + (f"{unsure} uncertain (estimate inside a recorded bracket), " if unsure else "")
          + f"{len({r['sweep'] for r in rows})} sweep(s)")
    if args.png:
        print(f"plot: {plot(rows, args.png)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
