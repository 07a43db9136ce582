"""What a runtime command runs: the model (checkpoint or seeded weights), its plan, and an
executor for ``runtime.name`` (torch, onnxruntime, hailort through either HailoRT API)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from ..config import ConfigError
from ..tiling.plan import build_plan


@dataclass
class Deployment:
    model: object  # the torch ConvTasNet (the float reference)
    model_cfg: dict  # the model knobs actually used (a checkpoint fixes the architecture)
    plan: object
    params: dict
    sample_rate: int
    notes: list[str] = field(default_factory=list)
    #: where the weights came from: {"source", "path", "sha256"} or {"source": "random", "seed"}
    weights: dict = field(default_factory=dict)


def load_deployment(cfg) -> Deployment:
    """Model, plan and weights for ``cfg``; checkpoint problems raise ConfigError (one line)."""
    import torch
    from omegaconf import OmegaConf

    from ..model.checkpoints import CheckpointError, build_from_checkpoint, file_sha256
    from ..model.convtasnet import build_model
    from ..tiling.weights import model_params

    rate, notes = int(cfg.runtime.sample_rate), []
    if cfg.runtime.checkpoint:
        try:
            model, model_cfg, ckpt = build_from_checkpoint(cfg.runtime.checkpoint, cfg.model)
        except CheckpointError as exc:
            raise ConfigError([str(exc)]) from None
        notes += ckpt.notes
        weights = {"source": ckpt.source, "path": str(cfg.runtime.checkpoint),
                   "sha256": file_sha256(cfg.runtime.checkpoint)}
        if ckpt.sample_rate and int(ckpt.sample_rate) != rate:
            notes.append(f"sample rate {ckpt.sample_rate} Hz from the checkpoint (runtime."
                         f"sample_rate={rate} ignored)")
            rate = int(ckpt.sample_rate)
    else:
        torch.manual_seed(cfg.runtime.seed)
        model = build_model(cfg.model)
        weights = {"source": "random", "seed": int(cfg.runtime.seed)}
        model_cfg = {k: cfg.model[k] for k in cfg.model}
    plan = build_plan(OmegaConf.create(model_cfg), cfg.tiling)
    return Deployment(model, model_cfg, plan, model_params(model), rate, notes, weights)


class TimedExecutor:
    """Wraps an executor and adds up the seconds its ``run`` (and ``run_group``) calls take
    (the NPU share)."""

    def __init__(self, inner):
        self.inner, self.seconds, self.calls = inner, 0.0, 0
        self.name = inner.name
        self.unit_batches = getattr(inner, "unit_batches", False)

    def run(self, inst, x):
        return self._timed(self.inner.run, inst, x)

    def run_group(self, step, group, x):
        return self._timed(self.inner.run_group, step, group, x)

    def _timed(self, fn, *args):
        t0 = time.perf_counter()
        y = fn(*args)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        return y

    def close(self):
        self.inner.close()


def make_executor(cfg, plan, params):
    """The executor ``runtime.name`` asks for; a missing folder is a ConfigError."""
    from ..tiling.executors import HailortExecutor, OrtExecutor, TorchExecutor

    r = cfg.runtime
    if r.name == "torch":
        return TorchExecutor(plan, params)
    if r.name == "onnxruntime":
        if r.onnx_dir and not Path(r.onnx_dir).is_dir():
            raise ConfigError([f"runtime.onnx_dir={r.onnx_dir!r} is not a directory: expected "
                               "a folder of <instance>.onnx files, or null to build them"])
        return OrtExecutor(plan, params, Path(r.onnx_dir) if r.onnx_dir else None)
    if not r.hef_dir or not Path(r.hef_dir).is_dir():
        raise ConfigError([f"runtime.hef_dir={r.hef_dir!r} is not a directory: runtime=hailort "
                           "needs a folder of <instance>.hef files"])
    try:
        import hailo_platform  # noqa: F401
    except ImportError:
        raise ConfigError(["runtime=hailort needs HailoRT's hailo_platform, which is not "
                           "installed: install Hailo's wheel, or use runtime=onnxruntime"]
                          ) from None
    limit = int(cfg.hw.max_configured_networks)
    if r.hailort_api == "vstreams":
        from .hailort_vstreams import VStreamsExecutor

        return VStreamsExecutor(plan, params, Path(r.hef_dir), timeout_ms=r.timeout_ms,
                                max_configured=limit)
    return HailortExecutor(plan, params, Path(r.hef_dir), timeout_ms=r.timeout_ms,
                           max_configured=limit)
