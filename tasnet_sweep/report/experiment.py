"""``report.md`` for an experiment, in the runbook's template, from its summary TSV.

Every statement in the report is computed from the TSV rows (and ``ladder.json`` where a
ladder ran), so the report can never disagree with the table it summarises.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import write_text
from .next_knob import next_knob
from .plots import pass_fail_strip, varying_columns
from .tsv import KNOB_COLUMNS, read_rows

EVIDENCE_TEXT = {
    "real": "real: compiled by the Hailo Dataflow Compiler",
    "estimate": "estimate: predicted by the offline allocator model, nothing was compiled",
    "replay": "replay: recorded outcomes played back, nothing was compiled",
}
LABEL_CANDIDATES = ("unit_op", *KNOB_COLUMNS, "tiling", "tile_width", "channel_block",
                    "latent_width", "in_chan")


def _ok(row, key) -> bool:
    return str(row.get(key, "")).lower() == "true"


def evidence_line(rows: list[dict], replay_source: str | None = None) -> str:
    kinds = sorted({r.get("evidence") or "?" for r in rows})
    text = "; ".join(EVIDENCE_TEXT.get(k, k) for k in kinds)
    if "replay" in kinds and replay_source:
        text += f" (from `{replay_source}`)"
    return f"**Evidence:** {text}"


def write_report(sweep_dir: str | Path, summary_name: str, experiment: str,
                 compiler: dict | None = None) -> Path:
    """``report.md`` and ``report.png`` of an experiment's sweep: HAR and HEF status, where a
    ladder stopped, the next knob, and every row."""
    sweep_dir = Path(sweep_dir)
    summary = sweep_dir / summary_name
    rows = read_rows(summary)
    compiler = compiler or {}
    lines = [f"# {experiment}", "",
             evidence_line(rows, compiler.get("replay_tsv") if compiler.get("backend") == "replay"
                           else None), ""]
    if not rows:
        lines += ["No trial finished: the summary is empty.", ""]
        return write_text(sweep_dir / "report.md", "\n".join(lines))
    lines += _status_lines(rows, summary)
    ladder_path = sweep_dir / "ladder.json"
    if ladder_path.exists():
        lines += _ladder_lines(json.loads(ladder_path.read_text()))
    knob = next_knob(rows, compiler)
    lines += ["", "## Next knob", "", f"`{knob.override}`: {knob.reason}.",
              "(The rule is documented in `tasnet_sweep/report/next_knob.py`.)",
              ""]
    label_cols = varying_columns(rows, LABEL_CANDIDATES)
    plot_cols = (["unit"] if len({r.get("unit") for r in rows}) > 1 else []) + label_cols
    evidence = {r.get("evidence", "") for r in rows}
    png = pass_fail_strip(rows, plot_cols, sweep_dir / "report.png",
                          f"{experiment}: pass/fail ({', '.join(sorted(evidence))})")
    lines += _rows_table(rows, label_cols[:6])
    assert png.exists()
    return write_text(sweep_dir / "report.md", "\n".join(lines))


def _unsure(row) -> bool:
    """An estimate inside a recorded bracket: neither a pass nor a fail."""
    return str(row.get("verdict", "")).lower() == "uncertain"


def _status_lines(rows: list[dict], summary: Path) -> list[str]:
    har_ok = sum(_ok(r, "har_success") for r in rows)
    hef_ok = sum(_ok(r, "hef_success") for r in rows)
    first_fail = next((r for r in rows if not _ok(r, "hef_success") and not _unsure(r)), None)
    unsure = sum(_unsure(r) for r in rows)
    lines = ["## HAR status", "",
             f"{'PASS' if har_ok == len(rows) else 'FAIL'}: {har_ok}/{len(rows)} parsed. "
             f"Summary: `{summary}`", "",
             "## HEF status", ""]
    if first_fail is None and unsure:
        lines.append(f"UNCERTAIN: {hef_ok}/{len(rows)} compiled, no failure.")
    elif first_fail is None:
        lines.append(f"PASS: {hef_ok}/{len(rows)} compiled.")
    else:
        family = first_fail.get("first_failing_layer_family") or "unknown"
        lines.append(f"FAIL: {hef_ok}/{len(rows)} compiled. First failing layer family: "
                     f"**{family}** (unit `{first_fail.get('unit')}`, layer "
                     f"`{first_fail.get('first_failing_layer') or '?'}`, failure "
                     f"`{first_fail.get('failure_family') or '?'}`).")
    if unsure:
        lines.append(f"{unsure} row(s) uncertain: the estimate's row buffer lies inside a "
                     "recorded bracket (`est_bracket_*` columns), neither pass nor fail; "
                     "only a real compile can tell.")
    return lines


def _ladder_lines(ladder: dict) -> list[str]:
    if not ladder:
        return []
    if ladder.get("stopped_at") is not None:
        return ["", f"The ladder stopped at rung {ladder['stopped_at'] + 1} of "
                f"{len(ladder['rungs'])} (first {ladder['stop_on']}): "
                f"`{' '.join(ladder['rungs'][ladder['stopped_at']])}`."]
    return ["", f"The ladder ran all {ladder['completed']} of {len(ladder['rungs'])} rungs."]


def _rows_table(rows: list[dict], label_cols: list[str]) -> list[str]:
    lines = ["## Rows", "", "![pass/fail per row](report.png)", "",
             "| # | " + " | ".join(["unit", *label_cols, "HAR", "HEF", "failure", "layer"])
             + " |", "|" + "---|" * (len(label_cols) + 6)]
    for i, r in enumerate(rows, 1):
        cells = [r.get("unit", ""), *[r.get(c, "") for c in label_cols],
                 "pass" if _ok(r, "har_success") else "fail",
                 "uncertain" if _unsure(r) else "pass" if _ok(r, "hef_success") else "fail",
                 r.get("failure_family", ""), r.get("first_failing_layer", "")]
        lines.append(f"| {i} | " + " | ".join(str(c) for c in cells) + " |")
    lines.append("")
    return lines
