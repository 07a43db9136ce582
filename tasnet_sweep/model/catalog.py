"""The unit names and the config checks that need no torch (so preflight stays fast)."""

from __future__ import annotations

from ..config import NORM_NAMES, UNIT_ACTIVATION_NAMES

UNIT_NAMES = ("full", "encoder", "encoder_only", "masker_only", "tdconvnet", "masker_bottleneck",
              "conv1d_block", "masker_tcn_block0", "masker_mask_head", "source_projector",
              "decoder_pre", "decoder", "decoder_head", "norm", "activation")
#: units whose input is the waveform; their width comes from model.time_len
WAVEFORM_UNITS = frozenset({"full", "encoder", "encoder_only"})
#: the sample rate the per-second figures assume (the project's 2 s = 16000 samples)
SAMPLE_RATE = 8000


def n_active_blocks(m) -> int:
    return m.truncate_k_blocks or m.n_blocks * m.n_repeats


def unit_problems(cfg) -> list[str]:
    """What is wrong with ``unit`` for this model: sizes, the op, indices into the model."""
    u, m = cfg.unit, cfg.model
    if u.name not in UNIT_NAMES:
        return [f"unit.name={u.name!r} is invalid: expected one of {', '.join(UNIT_NAMES)}"]
    problems = [*_size_problems(u), *_op_problems(u), *_index_problems(u, m)]
    if u.name == "decoder_pre" and m.mask_mul == "bypass":
        problems.append("unit=decoder_pre has no work when model.mask_mul=bypass (there is no "
                        "mask multiply): choose model.mask_mul=normal or another unit")
    return problems


def _size_problems(u) -> list[str]:
    problems = []
    if u.width is not None:
        if u.name in WAVEFORM_UNITS:
            problems.append(f"unit.width={u.width} does not apply to unit={u.name}: its input is "
                            "the waveform, so set model.time_len instead")
        elif u.width < 1:
            problems.append(f"unit.width={u.width} is invalid: expected a whole number >= 1")
    if u.channels is not None and u.channels < 1:
        problems.append(f"unit.channels={u.channels} is invalid: expected a whole number >= 1")
    return problems


def _op_problems(u) -> list[str]:
    if u.op is None:
        return []
    if u.name == "norm" and u.op not in NORM_NAMES:
        return [f"unit.op={u.op!r} is invalid for unit=norm: expected one of "
                f"{', '.join(NORM_NAMES)}"]
    if u.name == "activation" and u.op not in UNIT_ACTIVATION_NAMES:
        return [f"unit.op={u.op!r} is invalid for unit=activation: expected one of "
                f"{', '.join(UNIT_ACTIVATION_NAMES)}"]
    if u.name not in ("norm", "activation"):
        return [f"unit.op={u.op!r} applies only to unit=norm or unit=activation, "
                f"not unit={u.name}"]
    return []


def _index_problems(u, m) -> list[str]:
    problems = []
    if not 0 <= u.source < m.n_src:
        problems.append(f"unit.source={u.source} is invalid: expected 0 to model.n_src-1="
                        f"{m.n_src - 1}")
    if not 0 <= u.block < n_active_blocks(m):
        problems.append(f"unit.block={u.block} is invalid: expected 0 to {n_active_blocks(m) - 1} "
                        "(the model's active blocks)")
    if u.blocks is not None and not 1 <= u.blocks <= m.n_blocks * m.n_repeats:
        problems.append(f"unit.blocks={u.blocks} is invalid: expected 1 to "
                        f"n_blocks*n_repeats={m.n_blocks * m.n_repeats}")
    return problems
