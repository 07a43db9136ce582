"""The runbook's "Next knob": exactly one change, chosen from the failure family.

The rule, in order (the first failing row in run order decides; its layer family refines it):

| first failure                                   | next knob                                         |
|-------------------------------------------------|---------------------------------------------------|
| missing_sdk                                     | compiler=estimate                                 |
| unsupported_kernel, or any failure in a deconv  | model.decoder=conv1x1_head                        |
| parse_unsupported_op in a norm layer            | model.norm=affine                                 |
| parse_unsupported_op in an activation layer     | model.activation=relu                             |
| quantization                                    | model.norm: gLN -> cLN -> affine; then            |
|                                                 | model.activation=relu                             |
| calibration_shape                               | compiler.calibration.input_length_policy=pad      |
| reshape_failed with skip_topology=sum           | model.skip_topology=project                       |
| allocator_infeasible, memory_capacity,          | tiling none and width > 256: tiling=temporal;     |
| reshape_failed                                  | temporal: tiling=blocked; blocked: halve          |
|                                                 | tiling.channel_block down to 16, then halve       |
|                                                 | tiling.tile_width                                 |
| allocator_timeout                               | compiler.allocator_timeout doubled                |
| timeout, crash                                  | compiler.timeout_s doubled                        |
| deploy_limit (more HEFs than tiling.max_hefs)   | tiling.channel_block doubled (fewer instances);   |
|                                                 | temporal: tiling=none                             |
| anything else                                   | halve the failing unit's width (model.time_len    |
|                                                 | for waveform units, unit.width otherwise)         |
| no failure, an estimate verdict=uncertain       | compiler=hailo_dfc (only a real compile answers   |
|                                                 | inside the recorded bracket)                      |
| no failure                                      | scale up: double model.time_len (or               |
|                                                 | tiling.tile_width when tiled)                     |

An ``uncertain`` row (the estimate's row buffer inside a recorded bracket) is neither a pass nor
a failure: it never decides a failure rule.
"""

from __future__ import annotations

from dataclasses import dataclass

TILE = 256
MIN_CHANNEL_BLOCK = 16


@dataclass
class NextKnob:
    override: str
    reason: str


def _int(row: dict, key: str, default: int = 0) -> int:
    try:
        return int(float(row.get(key) or default))
    except ValueError:
        return default


def _seconds(text: str) -> str:
    """Double an allocator timeout like '30m' or '90s' (minutes by default)."""
    text = (text or "30m").strip()
    unit = text[-1] if text[-1] in "smh" else "m"
    number = float(text[:-1] if text[-1] in "smh" else text)
    return f"{number * 2:g}{unit}"


def _is_pass(row: dict) -> bool:
    return str(row.get("hef_success", "")).lower() == "true"


def _is_uncertain(row: dict) -> bool:
    return str(row.get("verdict", "")).lower() == "uncertain"


def _unsure_reason(row: dict) -> str:
    return (f"the estimate is unsure about unit {row.get('unit')}: layer "
            f"{row.get('est_bracket_layer') or '?'} buffers {row.get('est_bracket_row_bytes') or '?'}"
            f" B, between the {row.get('est_bracket_pass_max') or '?'} B that passed and the "
            f"{row.get('est_bracket_fail_min') or '?'} B that failed in real compiles; only a "
            "real compile can tell")


def next_knob(rows: list[dict], compiler: dict | None = None) -> NextKnob:
    """One change for the next run, from rows of a summary TSV in run order.

    ``compiler`` holds the sweep's compiler settings (timeouts), which rows do not record.
    The rules are tried in the order of the table above."""
    failing = next((r for r in rows if not _is_pass(r) and not _is_uncertain(r)), None)
    unsure = next((r for r in rows if _is_uncertain(r)), None)
    if failing is None and unsure is not None:
        return NextKnob("compiler=hailo_dfc", _unsure_reason(unsure))
    if failing is None:
        return _scale_up(rows[-1] if rows else {})
    family = failing.get("failure_family") or "unknown"
    layer = failing.get("first_failing_layer_family") or ""
    where = f"{family} in unit {failing.get('unit')}" + (f" ({layer} layer)" if layer else "")
    return (_model_change(failing, family, layer, where)
            or _compile_change(failing, family, where, compiler or {})
            or _halve_width(failing, where))


def _scale_up(last: dict) -> NextKnob:
    if last.get("tiling") not in (None, "", "none"):
        w = _int(last, "tile_width", TILE)
        return NextKnob(f"tiling.tile_width={w * 2}", "every row compiles: scale up the tile")
    t = _int(last, "time_len", 16000)
    return NextKnob(f"model.time_len={t * 2}", "every row compiles: scale up the input")


def _model_change(failing: dict, family: str, layer: str, where: str) -> NextKnob | None:
    """The rows of the table that change the model (or the backend, without the SDK)."""
    if family == "missing_sdk":
        return NextKnob("compiler=estimate", f"{where}: the Dataflow Compiler is not installed")
    if family == "unsupported_kernel" or layer == "deconv":
        return NextKnob("model.decoder=conv1x1_head",
                        f"{where}: the transposed-conv decoder is the blocker; a 1x1 head with "
                        "host-side overlap-add computes the same output")
    if family == "parse_unsupported_op" and layer == "norm":
        return NextKnob("model.norm=affine", f"{where}: the parser rejects the norm")
    if family == "parse_unsupported_op" and layer == "activation":
        return NextKnob("model.activation=relu", f"{where}: the parser rejects the activation")
    if family == "quantization":
        nxt = {"gLN": "model.norm=cLN", "cLN": "model.norm=affine"}.get(
            failing.get("norm"), "model.activation=relu")
        return NextKnob(nxt, f"{where}: quantization failed; step to a simpler norm/activation")
    if family == "calibration_shape":
        return NextKnob("compiler.calibration.input_length_policy=pad",
                        f"{where}: calibration data does not match the unit's input")
    if family == "reshape_failed" and failing.get("skip_topology") == "sum":
        return NextKnob("model.skip_topology=project",
                        f"{where}: the skip-sum branch needs a reshape the allocator cannot add")
    return None


def _compile_change(failing: dict, family: str, where: str, compiler: dict) -> NextKnob | None:
    """The rows of the table about resources, time and the deployment."""
    if family in ("allocator_infeasible", "memory_capacity", "reshape_failed"):
        return _shrink(failing, where)
    if family == "allocator_timeout":
        return NextKnob(f"compiler.allocator_timeout={_seconds(compiler.get('allocator_timeout'))}",
                        f"{where}: the allocator ran out of time")
    if family == "deploy_limit":
        if (failing.get("tiling") or "none") == "blocked":
            block = _int(failing, "channel_block", 64)
            return NextKnob(f"tiling.channel_block={block * 2}",
                            f"{where}: the plan needs too many HEFs; larger blocks need fewer")
        return NextKnob("tiling=none", f"{where}: the plan needs too many HEFs; one graph is one")
    if family in ("timeout", "crash"):
        t = int(float(compiler.get("timeout_s") or 3600))
        return NextKnob(f"compiler.timeout_s={t * 2}", f"{where}: the compile did not finish")
    return None


def _shrink(row: dict, where: str) -> NextKnob:
    tiling = row.get("tiling") or "none"
    width = _int(row, "latent_width")
    if tiling == "none" and width > TILE:
        return NextKnob("tiling=temporal",
                        f"{where}: a {width}-wide one-row tensor does not fit; tile time at {TILE}")
    if tiling == "temporal":
        return NextKnob("tiling=blocked", f"{where}: tiles still do not fit; split channels too")
    if tiling == "blocked":
        block = _int(row, "channel_block", 64)
        if block > MIN_CHANNEL_BLOCK:
            return NextKnob(f"tiling.channel_block={block // 2}",
                            f"{where}: {block}-channel blocks do not fit")
        return NextKnob(f"tiling.tile_width={max(1, _int(row, 'tile_width', TILE) // 2)}",
                        f"{where}: the smallest channel blocks do not fit; narrow the tiles")
    return _halve_width(row, where)


def _halve_width(row: dict, where: str) -> NextKnob:
    if row.get("unit") in ("full", "encoder", "encoder_only"):
        return NextKnob(f"model.time_len={max(1, _int(row, 'time_len', 16000) // 2)}",
                        f"{where}: halve the input")
    return NextKnob(f"unit.width={max(1, _int(row, 'latent_width') // 2)}",
                    f"{where}: halve the unit's width")
