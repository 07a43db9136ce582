"""The sweep-level summary TSV: one row per trial, appended under a lock, rewritten atomically.

Columns extend the seed runbook's (case/module/... -> run_tag/unit/...) so old tooling that
reads ``har_success``, ``hef_success``, ``exception_type`` and ``failure_head`` keeps working.
The TSV is derived data: ``rebuild`` regenerates it from the per-trial ``result.json`` files.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

from ..atomic import locked, write_text
from ..results import read_summary_row

log = logging.getLogger(__name__)

KNOB_COLUMNS = ("n_src", "n_filters", "kernel_size", "stride", "bn", "hidden", "skip",
                "conv_kernel", "n_blocks", "n_repeats", "norm", "activation", "mask_act",
                "skip_topology", "mask_mul", "decoder", "encoder_activation", "truncate_k_blocks",
                "time_len")
SUMMARY_COLUMNS = (
    "run_tag", "unit", "unit_op", *KNOB_COLUMNS, "tiling", "tile_width", "channel_block",
    "in_chan", "out_chan", "latent_width", "params", "macs",
    "backend", "evidence", "hw_arch", "verdict", "har_success", "hef_success",
    "exception_type", "failure_family", "failure_head", "first_failing_layer",
    "first_failing_layer_family", "est_contexts", "est_fps",
    # verdict=uncertain (estimate only): the estimate's own guess, and the layer whose row
    # buffer lies inside its family's recorded bracket [pass_max, fail_min] (bytes)
    "est_point_verdict", "est_bracket_family", "est_bracket_layer", "est_bracket_row_bytes",
    "est_bracket_pass_max", "est_bracket_fail_min",
    "n_hefs", "configure_waves_per_audio_s", "switches_per_audio_s", "est_device_rtf",
    "cache_hit", "compile_seconds", "compile_seconds_spent",
    "parity_max_abs", "status", "seconds",
    "onnx_path", "har_path", "hef_path", "result_path", "run_dir",
)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value).replace("\t", " ").replace("\n", " ").replace("\r", " ")


def format_rows(rows: list[dict], columns=SUMMARY_COLUMNS) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_NONE,
                   escapechar="\\")
    w.writerow(columns)
    for row in rows:
        w.writerow([_cell(row.get(c)) for c in columns])
    return buf.getvalue()


def read_rows(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\"))


class ForeignSummary(ValueError):
    """A file at a summary's path that this tool did not write (why, in one line)."""


def _rows_for_append(path: Path) -> list[dict]:
    """The complete rows of our summary at ``path``; a torn or garbage row (a writer cut off,
    a hand edit) is dropped, since the summary is rebuilt from result.json files anyway."""
    if not path.exists():
        return []
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ForeignSummary("it is not UTF-8 text") from None
    if "\0" in text:
        raise ForeignSummary("it holds binary data")
    lines = list(csv.reader(io.StringIO(text, newline=""), delimiter="\t",
                            quoting=csv.QUOTE_NONE, escapechar="\\"))
    if not lines:
        return []
    header = lines[0]
    if not {"run_dir", "verdict"} <= set(header):
        raise ForeignSummary("its header has no run_dir and verdict columns")
    return [dict(zip(header, cells)) for cells in lines[1:] if len(cells) == len(header)]


def append_row(path: str | Path, row: dict, columns=SUMMARY_COLUMNS) -> Path:
    """Add or replace (by ``run_dir``) one row; concurrent writers never interleave.

    A file at ``path`` that is not a summary (binary, another table) is left alone: the row
    goes to ``<stem>.tasnet_sweep<suffix>`` beside it, which is returned and logged."""
    path = Path(path)
    with locked(path):
        try:
            _write(path, _rows_for_append(path), row, columns)
            return path
        except ForeignSummary as exc:
            why = exc
    beside = path.with_name(f"{path.stem}.tasnet_sweep{path.suffix}")
    log.warning("%s is not a summary this tool wrote (%s): left as it is; this trial's row "
                "went to %s", path, why, beside)
    with locked(beside):
        _write(beside, _rows_for_append(beside), row, columns)
    return beside


def _write(path: Path, rows: list[dict], row: dict, columns) -> None:
    rows = [r for r in rows if r.get("run_dir") != str(row.get("run_dir"))]
    rows += [{c: _cell(r.get(c)) for c in columns} for r in _unlisted(path.parent, rows, row)]
    rows.append({c: _cell(row.get(c)) for c in columns})
    write_text(path, format_rows(rows, columns))


def _unlisted(folder: Path, rows: list[dict], row: dict) -> list[dict]:
    """Trials in ``folder``'s job dirs that the summary lacks: a row whose write failed (a full
    disk after its result.json was written) joins with the next trial that can write."""
    known = {r.get("run_dir") for r in rows} | {str(row.get("run_dir"))}
    found = []
    for result in sorted(folder.glob("*/result.json")):
        if str(result.parent) in known:
            continue
        missing = read_summary_row(result)
        if missing is not None and str(missing["run_dir"]) not in known:
            found.append(missing)
            log.info("%s: adding the row of %s, missing from it", folder, result.parent)
    return found


def rebuild(sweep_dir: str | Path, name: str = "summary.tsv") -> tuple[Path, int]:
    """Regenerate ``<sweep_dir>/<name>`` from every ``result.json`` below it; also returns
    how many result.json files had no row to give (cut off, or not a trial's)."""
    sweep_dir = Path(sweep_dir)
    rows, skipped = [], 0
    for result in sorted(sweep_dir.rglob("result.json")):
        row = read_summary_row(result)
        if row is None:
            skipped += 1
        else:
            rows.append(row)
    out = sweep_dir / name
    with locked(out):
        write_text(out, format_rows(rows))
    return out, skipped
