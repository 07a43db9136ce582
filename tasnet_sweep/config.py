"""Structured configs (Hydra ConfigStore) and the checks that run before any work starts.

OmegaConf enforces types (an ``int`` field rejects ``abc``); ``validate`` enforces meaning
(positive channels, known names, kernel >= stride, ...) and returns one line per problem,
each naming the key, the bad value and what would be accepted.  Cross-field checks live here
too, so a grid can be checked job by job before the first job runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

NORM_NAMES = ("gLN", "cLN", "affine", "identity")
ACTIVATION_NAMES = ("prelu", "relu")
MASK_ACT_NAMES = ("sigmoid", "relu")
UNIT_ACTIVATION_NAMES = ("sigmoid", "relu", "prelu")
SKIP_TOPOLOGIES = ("sum", "project")
MASK_MUL_MODES = ("normal", "bypass")
DECODERS = ("convtranspose", "conv1x1_head")
TILING_MODES = ("none", "temporal", "blocked")
HOST_OPS = ("norm", "activation", "mask_mul", "overlap_add")
COMPILER_BACKENDS = ("estimate", "hailo_dfc", "replay")
HW_ARCHS = ("hailo8", "hailo8l", "hailo8r", "hailo10h", "hailo15h", "hailo15m", "hailo15l")
RUNTIMES = ("torch", "onnxruntime", "hailort")
TRACKING_BACKENDS = ("none", "mlflow")
SAFE_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=,+-]{0,127}$")


@dataclass
class ModelConfig:
    name: str = "convtasnet"
    n_src: int = 2
    n_filters: int = 512  # N
    kernel_size: int = 16  # L
    stride: int = 8
    bn: int = 128  # B, bottleneck
    hidden: int = 512  # H
    skip: int = 128  # Sc
    conv_kernel: int = 3  # P
    n_blocks: int = 8  # X
    n_repeats: int = 3  # R
    norm: str = "gLN"
    activation: str = "prelu"
    mask_act: str = "sigmoid"
    skip_topology: str = "sum"
    mask_mul: str = "normal"
    decoder: str = "convtranspose"
    truncate_k_blocks: Optional[int] = None  # None: all n_blocks * n_repeats blocks
    time_len: int = 16000


@dataclass
class UnitConfig:
    name: str = "full"
    channels: Optional[int] = None  # norm / activation units: channels (default model.bn)
    width: Optional[int] = None  # latent units: time width T' (default: from model.time_len)
    op: Optional[str] = None  # norm unit: a norm name; activation unit: an activation name
    block: int = 0  # conv1d_block: which block (sets the dilation)
    blocks: Optional[int] = None  # tdconvnet: blocks kept (default truncate_k_blocks, else 1)
    source: int = 0  # per-source units: which source


@dataclass
class TilingConfig:
    mode: str = "none"
    tile_width: Optional[int] = None
    channel_block: Optional[int] = None
    host_ops: list[str] = field(default_factory=lambda: ["overlap_add"])


@dataclass
class CalibrationConfig:
    source: str = "synthetic"  # synthetic | npz | wav_dir
    count: int = 16
    seed: int = 0
    path: Optional[str] = None
    input_length_policy: str = "error"  # error | pad | crop


@dataclass
class CompilerConfig:
    backend: str = "estimate"
    timeout_s: float = 3600.0
    optimization_level: int = 0
    compression_level: int = 0
    compiler_optimization_level: str = "1"
    allocator_timeout: str = "30m"
    max_utilization: Optional[float] = None
    context_switch: str = "allowed"
    replay_tsv: Optional[str] = None
    replay_missing: str = "error"  # error | estimate
    cache: bool = True
    cache_dir: str = "outputs/cache"
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)


@dataclass
class HwConfig:
    arch: str = "hailo8"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RuntimeConfig:
    name: str = "torch"


@dataclass
class TrackingConfig:
    backend: str = "none"
    tracking_uri: Optional[str] = None
    experiment: Optional[str] = None


@dataclass
class ExportConfig:
    opset: int = 13
    parity: bool = True
    parity_tol: float = 1e-4
    seed: int = 0


@dataclass
class Config:
    model: ModelConfig = MISSING
    unit: UnitConfig = MISSING
    tiling: TilingConfig = MISSING
    compiler: CompilerConfig = MISSING
    hw: HwConfig = MISSING
    runtime: RuntimeConfig = MISSING
    tracking: TrackingConfig = MISSING
    export: ExportConfig = field(default_factory=ExportConfig)
    run_tag: str = "run"
    summary_name: str = "summary.tsv"


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)


class ConfigError(ValueError):
    """A user mistake in the config: printed as one line, exit code 2."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def _positive(problems, key, value):
    if value is None or isinstance(value, bool) or not isinstance(value, int) or value < 1:
        problems.append(f"{key}={value!r} is invalid: expected a whole number >= 1")
        return False
    return True


def _one_of(problems, key, value, accepted):
    if value not in accepted:
        problems.append(f"{key}={value!r} is invalid: expected one of {', '.join(accepted)}")
        return False
    return True


def validate_model(m, problems: list[str]) -> None:
    ok = all([_positive(problems, f"model.{k}", m[k]) for k in
              ("n_src", "n_filters", "kernel_size", "stride", "bn", "hidden", "skip",
               "conv_kernel", "n_blocks", "n_repeats", "time_len")])
    _one_of(problems, "model.norm", m.norm, NORM_NAMES)
    _one_of(problems, "model.activation", m.activation, ACTIVATION_NAMES)
    _one_of(problems, "model.mask_act", m.mask_act, MASK_ACT_NAMES)
    _one_of(problems, "model.skip_topology", m.skip_topology, SKIP_TOPOLOGIES)
    _one_of(problems, "model.mask_mul", m.mask_mul, MASK_MUL_MODES)
    _one_of(problems, "model.decoder", m.decoder, DECODERS)
    if not ok:
        return
    if m.kernel_size < m.stride:
        problems.append(f"model.kernel_size={m.kernel_size} is smaller than model.stride="
                        f"{m.stride}: expected kernel_size >= stride (frames would skip samples)")
    if m.conv_kernel % 2 == 0:
        problems.append(f"model.conv_kernel={m.conv_kernel} is invalid: expected an odd number "
                        "(the depthwise conv keeps the time width with symmetric padding)")
    if m.time_len < m.kernel_size:
        problems.append(f"model.time_len={m.time_len} is too short: expected at least "
                        f"model.kernel_size={m.kernel_size} samples")
    total = m.n_blocks * m.n_repeats
    k = m.truncate_k_blocks
    if k is not None and (not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= total):
        problems.append(f"model.truncate_k_blocks={k!r} is invalid: expected null or a whole "
                        f"number from 1 to n_blocks*n_repeats={total}")


def validate(cfg) -> list[str]:
    """Every problem in a composed config, one line each (empty when it is good to run)."""
    problems: list[str] = []
    validate_model(cfg.model, problems)
    tag = cfg.run_tag
    if not isinstance(tag, str) or not SAFE_TAG.match(tag) or ".." in tag:
        problems.append(f"run_tag={tag!r} is invalid: expected 1-128 characters from "
                        "A-Z a-z 0-9 . _ = , + - starting with a letter or digit, without '..'")
    _one_of(problems, "tiling.mode", cfg.tiling.mode, TILING_MODES)
    for op in cfg.tiling.host_ops:
        _one_of(problems, "tiling.host_ops", op, HOST_OPS)
    _one_of(problems, "compiler.backend", cfg.compiler.backend, COMPILER_BACKENDS)
    _one_of(problems, "hw.arch", cfg.hw.arch, HW_ARCHS)
    _one_of(problems, "runtime.name", cfg.runtime.name, RUNTIMES)
    _one_of(problems, "tracking.backend", cfg.tracking.backend, TRACKING_BACKENDS)
    if not 7 <= cfg.export.opset <= 20:
        problems.append(f"export.opset={cfg.export.opset} is invalid: expected 7 to 20 "
                        "(the legacy exporter's range; 13 is the default)")
    _one_of(problems, "compiler.replay_missing", cfg.compiler.replay_missing,
            ("error", "estimate"))
    if not problems:
        # unit checks need a sound model config to derive shapes from
        from .compile import backend_problems
        from .model.catalog import unit_problems

        problems.extend(unit_problems(cfg))
        problems.extend(backend_problems(cfg.compiler))
    return problems
