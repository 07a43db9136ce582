"""Answers from a TSV of recorded outcomes: a previous sweep's summary.tsv or the public table.

A request matches a row when every descriptive column the row fills in (unit or module, channel
counts, widths, knobs, hw_arch) equals the request's value; the most specific match wins.  The
public table's module names and ``model_config`` pairs are mapped onto this project's unit names
and knob columns.  Every answer is labelled ``evidence=replay``; where the row itself came from
an estimate, ``metrics.replayed_evidence`` says so; a row whose estimate was unsure
(``verdict=uncertain``) replays as uncertain, with its bracket.

A row with a recorded duration (a summary's ``compile_seconds``, else its trial ``seconds``; the
public table has none) gives its stage times that duration, and with
``compiler.replay_time_scale`` > 0 the answer comes after duration x scale seconds: a farm's
search is rehearsed on one machine, reporting the recorded compile-hours in scaled wall time.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path

from ..config import ConfigError
from ..outcome_table import TableError, read_table
from ..resources import PUBLIC_OUTCOMES
from .base import STAGES, CompileBackend, CompileOutcome, CompileRequest, Failure, StageResult
from .cache import file_digest
from .estimate import EstimateBackend
from .failures import classify

#: public-table module names -> unit names of this project
MODULE_ALIASES = {
    "hailo_convtasnet": "full", "source_projector_out0": "source_projector",
    "source_projector_out1": "source_projector", "source_projector_block": "source_projector",
    "decoder_head_src0": "decoder_head", "decoder_head_src1": "decoder_head",
    "decoder_head_block": "decoder_head", "decoder_pre_half0": "decoder_pre",
    "decoder_pre_half1": "decoder_pre", "decoder_pre_block": "decoder_pre",
}
KNOB_ALIASES = {"hid": "hidden", "hid_chan": "hidden", "kernel": "conv_kernel",
                "norm_mode": "unit_op"}
#: a row must agree on these; the other columns count where both sides are filled in
REQUIRED_COLUMNS = ("unit", "in_chan", "latent_width")
MATCH_COLUMNS = ("unit", "unit_op", "in_chan", "latent_width", "time_len", "hw_arch",
                 "n_src", "n_filters", "kernel_size", "stride", "bn", "hidden", "skip",
                 "conv_kernel", "n_blocks", "n_repeats", "norm", "activation", "mask_act",
                 "skip_topology", "mask_mul", "decoder", "truncate_k_blocks",
                 "tiling", "tile_width", "channel_block")
TRUE = {"true", "1", "yes", "pass"}
#: ``compiler.replay_tsv=public``: the public outcomes table shipped in the package
PUBLIC_NAME = "public"
OPTIMIZE_FAMILIES = frozenset({"quantization", "calibration_shape"})
#: columns holding a row's recorded duration, in order of preference (a summary.tsv's compile
#: stages' sum, else its whole trial's seconds)
DURATION_COLUMNS = ("compile_seconds", "seconds")


def _normalise(row: dict) -> dict:
    """A recorded row as {column: text} in this project's vocabulary."""
    out = {k: (v or "").strip() for k, v in row.items() if k}
    if not out.get("unit") and out.get("module"):
        out["unit"] = MODULE_ALIASES.get(out["module"], out["module"])
    # a 1x1 row's graph is fixed by its channels and width; its model_config only names the
    # model it was cut from, so it is context there, not something to match
    pairs = [] if out.get("layers", "").startswith("conv1x1") else \
        re.findall(r"(\w+)=(\S+)", out.get("model_config", ""))
    for pair in pairs:
        key = KNOB_ALIASES.get(pair[0], pair[0])
        if pair[0] == "kernel" and out.get("unit") in ("encoder", "encoder_only"):
            key = "kernel_size"  # the public table says kernel= for the encoder's L too
        if pair[0] == "mask_act" and out.get("unit") == "activation":
            key = "unit_op"
        if key in MATCH_COLUMNS and not out.get(key):
            out[key] = pair[1]
    if not out.get("exception_type") and out.get("exception"):
        out["exception_type"] = out["exception"]
    return out


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def tsv_path(value) -> Path:
    """``compiler.replay_tsv`` as a path: ``public`` names the table shipped in the package."""
    return PUBLIC_OUTCOMES if str(value) == PUBLIC_NAME else Path(value)


def check_tsv(path) -> Path:
    """The replay TSV's path if it exists and every row reads; else a ConfigError."""
    path, _ = _checked_rows(path)
    return path


def load_rows(path: str | Path) -> list[dict]:
    return [_normalise(r) for r in _checked_rows(path)[1]]


def _checked_rows(path) -> tuple[Path, list[dict]]:
    """(path, rows) of the replay TSV, read once and strictly; else a ConfigError."""
    if not path:
        raise ConfigError(["compiler.replay_tsv is not set: expected the path of a TSV of "
                           "recorded outcomes, e.g. compiler.replay_tsv=outputs/.../summary.tsv, "
                           f"or {PUBLIC_NAME} for the public outcomes shipped in the package"])
    path = tsv_path(path)
    if not path.is_file():
        raise ConfigError([f"compiler.replay_tsv={str(path)!r} does not exist: expected a TSV "
                           f"of recorded outcomes (a summary.tsv) or {PUBLIC_NAME} (the public "
                           "outcomes shipped in the package)"])
    with open(path, newline="", errors="replace") as f:
        header = next((ln for ln in f if not ln.startswith("#")), "")
    if "hef_success" not in header.rstrip("\n").split("\t"):
        raise ConfigError([f"compiler.replay_tsv={str(path)!r} has no hef_success column: "
                           "expected a summary.tsv or the public outcomes table"])
    try:
        return path, read_table(path)[0]
    except TableError as exc:
        raise ConfigError([f"compiler.replay_tsv: {exc}"]) from None


class ReplayBackend(CompileBackend):
    name = "replay"
    evidence = "replay"

    def __init__(self, compiler_cfg, hw_cfg):
        self.path = tsv_path(compiler_cfg.replay_tsv)
        self.rows = load_rows(self.path)
        self.missing = compiler_cfg.replay_missing
        self.time_scale = float(compiler_cfg.get("replay_time_scale") or 0.0)
        self._compiler_cfg, self._hw_cfg = compiler_cfg, hw_cfg
        self._digest = file_digest(self.path)

    def version(self) -> str:
        return f"replay:{self._digest[:16]}"

    def cache_identity(self) -> dict:
        return {"tsv": self._digest, "missing": self.missing}

    def match(self, signature: dict) -> dict | None:
        best, best_score = None, -1
        for row in self.rows:
            score = 0
            for col in MATCH_COLUMNS:
                recorded, wanted = row.get(col, ""), _text(signature.get(col))
                if col in REQUIRED_COLUMNS and not recorded:
                    break
                if recorded == "" or (wanted == "" and col not in REQUIRED_COLUMNS):
                    continue
                if recorded != wanted:
                    break
                score += 1
            else:
                if score > best_score:
                    best, best_score = row, score
        return best

    def compile(self, request: CompileRequest) -> CompileOutcome:
        row = self.match(request.knobs)
        if row is None:
            if self.missing == "estimate":
                return EstimateBackend(self._compiler_cfg, self._hw_cfg).compile(request)
            described = " ".join(f"{k}={_text(request.knobs.get(k))}" for k in
                                 ("unit", "in_chan", "out_chan", "latent_width", "hw_arch"))
            raise ConfigError([f"compiler.replay_tsv={str(self.path)!r} has no recorded outcome "
                               f"for {described}: record it, or set "
                               "compiler.replay_missing=estimate"])
        outcome = outcome_from_row(row, self.path)
        seconds = recorded_seconds(row)
        if seconds and self.time_scale > 0:  # the recorded compile, played scaled
            time.sleep(seconds * self.time_scale)
        return outcome


def recorded_seconds(row: dict) -> float | None:
    """The row's recorded compile duration (``DURATION_COLUMNS``), or None when it has none
    that is a number of seconds."""
    for column in DURATION_COLUMNS:
        try:
            seconds = float(row.get(column) or "")
        except ValueError:
            continue
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    return None


def _timed(stages: list[StageResult], seconds: float | None) -> list[StageResult]:
    """The recorded duration on the last stage that ran (a row records no split by stage)."""
    ran = [s for s in stages if s.ok is not None]
    if seconds and ran:
        ran[-1].seconds = seconds
        ran[-1].log += f" (recorded {seconds:g} s for the whole compile)"
    return stages


def outcome_from_row(row: dict, source: Path) -> CompileOutcome:
    if row.get("verdict", "").lower() == "uncertain":
        return _uncertain_from_row(row, source)
    har = row.get("har_success", "").lower() in TRUE
    hef = row.get("hef_success", "").lower() in TRUE
    log = f"replayed from {source}: {row.get('run_tag') or row.get('case') or 'row'}"
    failure = None
    if not hef:
        exc, head = row.get("exception_type", ""), row.get("failure_head", "")
        family, layer = row.get("failure_family", ""), row.get("first_failing_layer") or None
        layer_family = row.get("first_failing_layer_family") or None
        if not family:
            family, layer, layer_family = _classify(exc, head, "compile" if har else "translate",
                                                    layer, layer_family)
        stage = ("translate" if not har else
                 "optimize" if family in OPTIMIZE_FAMILIES else "compile")
        failure = Failure(family=family or "unknown", stage=stage, exception_type=exc,
                          message=head, layer=layer, layer_family=layer_family)
    failed_at = STAGES.index(failure.stage) if failure else len(STAGES)
    stages = _timed([StageResult(name,
                                 True if i < failed_at else (False if i == failed_at else None),
                                 log=log if i <= failed_at else "")
                     for i, name in enumerate(STAGES)], recorded_seconds(row))
    metrics = {"replayed_evidence": row.get("evidence") or "real"}
    return CompileOutcome("replay", "replay", stages, failure, metrics,
                          tool_version=row.get("tool_version", ""))


def _uncertain_from_row(row: dict, source: Path) -> CompileOutcome:
    """A summary row of an estimate that was unsure (``verdict=uncertain``): replayed as
    uncertain, with its bracket -- neither a pass nor a fail."""
    log = (f"replayed from {source}: {row.get('run_tag') or 'row'} (verdict=uncertain: the "
           "estimate lay inside a recorded bracket)")
    stages = _timed([StageResult("translate", True, log=log), StageResult("optimize", True),
                     StageResult("compile", None, log=log)], recorded_seconds(row))

    def number(column: str) -> int | None:
        try:
            return int(float(row.get(column) or ""))
        except ValueError:
            return None

    bracket = {"family": row.get("est_bracket_family") or None, "quantity": "row_bytes",
               "value": number("est_bracket_row_bytes"),
               "pass_max": number("est_bracket_pass_max"),
               "fail_min": number("est_bracket_fail_min"),
               "layer": row.get("est_bracket_layer") or None, "layer_family": None,
               "point_verdict": row.get("est_point_verdict") or None, "inside": []}
    return CompileOutcome("replay", "replay", stages, None,
                          {"replayed_evidence": row.get("evidence") or "estimate"},
                          tool_version=row.get("tool_version", ""), bracket=bracket)


def _classify(exc: str, head: str, stage: str, layer, layer_family):
    f = classify(exc, head, stage)
    return f.family, layer or f.layer, layer_family or f.layer_family
